"""bench/startup.py still runs and measures what it says (tiny sizes: this checks the script, not the figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_startup_bench_runs():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "startup.py"), "--runs", "1", "--memories", "3",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["median_ms"]
    assert set(figures) == {"initialize", "discover", "tools_handshake", "tools_modern", "search_handshake",
                            "search_modern"}
    assert 0 < figures["initialize"] <= figures["tools_handshake"] < figures["search_handshake"]
    assert 0 < figures["discover"] <= figures["tools_modern"] < figures["search_modern"]
