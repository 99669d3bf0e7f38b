"""Process settings the server applies at start, and only there."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_arenas_can_be_capped_after_every_module_is_imported():
    code = ("import mcp_memory.service, mcp_memory.process as p, mcp_memory.cli; "
            "print(p.limit_malloc_arenas())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_blas_is_single_threaded_only_if_numpy_is_not_loaded_and_the_user_did_not_choose():
    code = ("import os, sys, mcp_memory.process as p; os.environ.pop('OPENBLAS_NUM_THREADS', None); "
            "os.environ['OMP_NUM_THREADS'] = '3'; print(p.single_threaded_blas(), os.environ['OPENBLAS_NUM_THREADS'], "
            "os.environ['OMP_NUM_THREADS']); import numpy; print(p.single_threaded_blas(), p.release_free_memory())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "1", "3", "False", "True"]


def test_idle_trim_runs_once_the_work_stops():
    import time

    from mcp_memory.process import IdleTrim

    runs: list[float] = []
    trim = IdleTrim(quiet=1.0, action=lambda: runs.append(time.monotonic()))
    for _ in range(10):  # busy for ~0.5 s, a call every 0.05 s (far below the quiet period on a busy machine)
        trim.touch()
        last = time.monotonic()
        time.sleep(0.05)
    assert not runs
    time.sleep(2.0)
    assert len(runs) == 1 and runs[0] - last >= 1.0  # once, a quiet period after the last call


def test_gc_is_paused_until_start_up_is_over_then_start_up_objects_are_frozen():
    code = ("import gc, threading, time, mcp_memory.process as p; done = threading.Event(); "
            "p.pause_gc_during_startup(done.is_set); print(gc.isenabled(), gc.get_freeze_count() == 0); "
            "time.sleep(0.2); print(gc.isenabled()); done.set(); time.sleep(0.3); "
            "print(gc.isenabled(), gc.get_freeze_count() > 1000); "
            "p.pause_gc_during_startup(lambda: False, limit=0.1); time.sleep(0.4); print(gc.isenabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "False", "True", "True", "True"]  # the last: resumed at the limit
