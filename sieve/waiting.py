"""How many queries of each tenant may wait at once in one API process."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class WaitSlots:
    """At most `limit` waiting queries per tenant in this process.

    A waiting query polls Redis until a ranking is fresh; without a bound, one tenant's many `wait=` calls
    on a pool that is not ranked could keep a process polling for nobody else's benefit. A query that
    finds no free slot does not wait: it answers at once with what exists.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._held: Counter = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def take(self, tenant: str | None) -> Iterator[bool]:
        """Yields whether the caller may wait; the slot is given back when the block ends."""
        with self._lock:
            granted = self._held[tenant] < self.limit
            if granted:
                self._held[tenant] += 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._held[tenant] -= 1
                    if not self._held[tenant]:
                        del self._held[tenant]
