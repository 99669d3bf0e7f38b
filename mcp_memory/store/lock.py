"""A lock held across threads and processes: one writer at a time per data directory.

POSIX advisory locks (fcntl) belong to a process, so two threads of one process
would both "hold" them; a threading lock in front makes the lock exclusive per
thread too. On Windows, msvcrt.locking plays the same role.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcp_memory.errors import StoreError

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class InterProcessLock:
    """Exclusive lock on ``path``. The kernel releases it if the holder dies (SIGKILL too)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def hold(self, timeout: float = 60.0) -> Iterator[None]:
        if not self.acquire(timeout):
            raise StoreError(
                f"another process has held {self.path.name} for over {timeout:.0f}s; "
                "if no mcp-memory process is running, delete the lock file and retry"
            )
        try:
            yield
        finally:
            self.release()

    def acquire(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        if not self._thread_lock.acquire(timeout=max(timeout, 0)):
            return False
        if self._depth:  # re-entered by the thread that holds it
            self._depth += 1
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            delay = 0.001
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    os.close(fd)
                    self._thread_lock.release()
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        except BaseException:
            self._thread_lock.release()
            raise
        self._fd = fd
        self._depth = 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None
        self._thread_lock.release()
