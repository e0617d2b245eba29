"""RQ side: the queue, the refresh job and the worker entry point."""
