"""A background thread that renews a mark with a time to live while a job computes, so that the mark
outlives the job's worker by at most one time to live."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Heartbeat:
    """Calls `beat` every third of `ttl_ms` from a daemon thread, from `with` to its end."""

    def __init__(self, beat: Callable[[], object], ttl_ms: int, name: str):
        self._beat = beat
        self._every = ttl_ms / 3000
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._beat()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
