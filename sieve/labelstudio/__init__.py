"""Sieve as Label Studio's ML backend: its protocol, its label configs, and pushing predictions back."""
