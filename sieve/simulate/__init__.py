"""Replays active learning on a labeled data set, to show what each strategy would save."""
