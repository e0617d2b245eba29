"""`sieve load`: local files (Parquet, Arrow, .npy, CSV, JSON Lines) streamed into a pool over HTTP."""
