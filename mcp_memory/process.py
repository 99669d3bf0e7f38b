"""Process-wide settings a server applies when it starts (never at import: a library user's
process is theirs to tune)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc <malloc.h>
ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, loaded once (finding it runs ldconfig); None off Linux or if it cannot be loaded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas. By default every thread that meets contention gets its own
    arena (up to 8 per core), and LanceDB's and the SDK's threads each keep freed memory in
    theirs. With 2 arenas, at 100k memories: 795 -> 385 MB when LanceDB scanned vectors
    (bench/RESULTS.md, prototypes); 427 -> 413 MB with the vector matrix, search over MCP
    15.1 / 15.6 ms p50 without / with (one quick run each: noise). Call before threads start.
    Returns whether it applied (glibc on Linux only)."""
    mallopt = getattr(_libc(), "mallopt", None)  # musl and others have no mallopt
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, ok)
    return ok


def single_threaded_blas() -> bool:
    """One BLAS thread. The server's matrix-vector products are a few ms each, run from several
    threads at once, on machines with few cores: BLAS's own threads then only fight the others
    for the cores (13 ms instead of 2-3 ms for one product on a busy 2-core machine). Takes
    effect only if numpy is not loaded yet; a value the user set wins. Returns whether it applied."""
    if "numpy" in sys.modules:
        return False
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    return True


def pause_gc_during_startup(started: Callable[[], bool], limit: float = 60.0) -> None:
    """No cyclic garbage collection while the server starts, then the objects start-up built are
    frozen out of later collections (`gc.freeze`).

    Start-up imports the SDK, LanceDB and pyarrow and opens the store: ~140k objects that live as
    long as the process, which the collector otherwise walks over and over while they are made
    (~130 ms over a start-up at 10k memories and its first 50 calls, two full collections of
    ~34 ms among them), and again in every later full collection. Spawn -> first search at 100k:
    1.21 s instead of 1.39 s (bench/RESULTS.md, "Seventh speed pass"). The few thousand objects
    already garbage at the end of start-up are frozen with the rest: collecting them first would
    cost ~120 ms just when the first calls come. Resumes once ``started()`` holds (polled every
    50 ms), at most ``limit`` s after the call."""
    gc.disable()

    def resume() -> None:
        deadline = time.monotonic() + limit
        while not started() and time.monotonic() < deadline:
            time.sleep(0.05)
        gc.freeze()
        gc.enable()

    threading.Thread(target=resume, name="mcp-memory-gc", daemon=True).start()


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's malloc_trim): after a burst of
    short-lived allocations, such as loading the vector matrix (~18 MB at 100k memories), they
    would otherwise stay in the process's RSS. Returns whether it ran."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True


class IdleTrim:
    """Release free heap pages once the process has been quiet for ``quiet`` seconds after some
    work (`touch`). A search leaves a few MB of freed temporaries in the heap; a server is idle
    most of its life, and that is when its footprint is seen. Costs ~1 ms per burst of work."""

    def __init__(self, quiet: float = 1.0, action: Callable[[], object] | None = None) -> None:
        self._quiet = quiet
        self._action = action or release_free_memory
        self._work = threading.Event()
        self._thread: threading.Thread | None = None

    def touch(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mcp-memory-trim", daemon=True)
            self._thread.start()
        self._work.set()

    def _run(self) -> None:
        while True:
            self._work.wait()
            while True:  # wait for a quiet moment
                self._work.clear()
                if not self._work.wait(self._quiet):
                    break
            self._action()
