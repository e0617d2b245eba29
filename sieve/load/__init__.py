"""`sieve load`: local files (Parquet, Arrow, .npy, CSV, JSON Lines) streamed into a pool over HTTP."""

FORMAT_NAMES = ("parquet", "arrow", "npy", "csv", "jsonl")
"""The file formats `sieve load` reads (`--format`); here, beside nothing heavy, for the command line to list."""
