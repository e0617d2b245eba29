"""The data folder of `sieve up`: its owner's only, and locked while a `sieve up` uses it."""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path


class FolderInUse(Exception):
    """Another `sieve up`, or the Redis it left running, holds the folder's lock."""


class DataFolder:
    LOCK = "sieve.lock"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock: int | None = None

    def lock(self) -> int:
        """Takes the folder's lock, or raises FolderInUse having changed nothing.

        The lock (flock) lasts while the returned descriptor is open in this process or in a child that
        inherited it, so a Redis still running on the folder's files keeps it even if `sieve up` was killed.
        """
        if not self.path.exists():
            self.path.mkdir(mode=0o700, parents=True)
        fd = os.open(self.path / self.LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another `sieve up`"
            os.close(fd)
            raise FolderInUse(
                f"{self.path} is in use by {holder}: stop it first, or set SIEVE_DATA_DIR to another folder"
            ) from None
        self._lock = fd
        self.path.chmod(0o700)  # a folder made by an earlier version was readable by everyone
        return fd

    def note_holder(self, text: str) -> None:
        """Says in the lock file who holds it, for the message a second `sieve up` prints."""
        os.ftruncate(self._lock, 0)
        os.pwrite(self._lock, text.encode(), 0)

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def token(self, name: str) -> str:
        """A random secret kept in the file `name`: made once, readable by the owner only."""
        path = self.path / name
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            path.chmod(0o600)
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
        return path.read_text().strip()

    def write_private(self, name: str, text: str) -> None:
        """Replaces the file `name` at once (a reader never sees half of it), readable by the owner only."""
        path = self.path / name
        partial = path.with_name(f".{name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(partial, path)
