"""Sieve: an active-learning service that tells a labeling team which items to label next."""
