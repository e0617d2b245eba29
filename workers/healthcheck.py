"""`python -m sieve.workers.healthcheck`: exit 0 if this container's RQ worker is alive and registered.

A worker's registration in Redis lapses when its heartbeat stops, but one killed without a chance to
unregister stays listed until then; the process it names must also be running here and be the one that
registered (a restarted container reuses the hostname and, as PID 1, the pid).
"""

from __future__ import annotations

import os
import socket
import sys

from rq import Worker

from sieve.settings import Settings
from sieve.storage.connection import connect


def _started_at(pid: int) -> float | None:
    """When the process started, in seconds since the epoch; None if it does not exist."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
        boot = next(line for line in open("/proc/stat") if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the command's parentheses
    return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")


def healthy(redis, hostname: str) -> bool:
    for worker in Worker.all(connection=redis):
        if worker.hostname != hostname or not worker.pid or worker.birth_date is None:
            continue
        started = _started_at(worker.pid)
        # A second of slack: the start time has the kernel's tick and the boot time's whole seconds.
        if started is not None and worker.birth_date.timestamp() >= started - 1:
            return True
    return False


def main() -> int:
    redis = connect(Settings.from_env())
    if healthy(redis, socket.gethostname()):
        return 0
    print(f"no live RQ worker of {socket.gethostname()} is registered in Redis", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
