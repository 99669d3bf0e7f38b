"""Process-wide settings a server applies when it starts (never at import: a library user's
process is theirs to tune)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc <malloc.h>
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas. By default every thread that meets contention gets its own
    arena (up to 8 per core), and LanceDB's and the SDK's threads each keep freed memory in
    theirs. With 2 arenas, at 100k memories: 795 -> 385 MB when LanceDB scanned vectors
    (bench/RESULTS.md, prototypes); 427 -> 413 MB with the vector matrix, search over MCP
    15.1 / 15.6 ms p50 without / with (one quick run each: noise). Call before threads start.
    Returns whether it applied (glibc on Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, ok)
    return ok
