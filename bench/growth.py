"""Growth under control: N single adds (default 10,000) must leave the LanceDB table with a
bounded number of versions and files, compacted in the background, and no add may block long.

    python bench/growth.py [--adds 10000] [--max-versions 200] [--max-files 400]

Prints the figures, appends them to bench/RESULTS.md, exits 1 if a bound is exceeded.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_line, write_section  # noqa: E402
from mcp_memory.config import Settings  # noqa: E402
from mcp_memory.service import MemoryService  # noqa: E402

WORDS = ("coffee tea Lisbon Porto cello viola Rust Python Kubernetes ECS dentist vet puppy recital garden bees "
         "Volvo flight hotel museum jazz running marathon climbing sourdough allergy soy almond oat novel poetry "
         "chess piano sister brother mother father daughter son colleague manager startup invoice budget").split()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adds", type=int, default=10_000)
    ap.add_argument("--max-versions", type=int, default=200)
    ap.add_argument("--max-files", type=int, default=400)
    ap.add_argument("--max-add-ms", type=float, default=500.0, help="no single add may take longer")
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        svc = MemoryService(Settings.from_env({}, data_dir=Path(tmp)))
        svc.open()
        times, peak_versions = [], 0
        started = time.perf_counter()
        for i in range(args.adds):
            text = f"Note {i}: the user mentioned {' '.join(rng.sample(WORDS, 4))} on day {rng.randint(1, 999)}"
            t0 = time.perf_counter()
            svc.add(text, infer=False)
            times.append((time.perf_counter() - t0) * 1000)
            if i % 500 == 0:
                peak_versions = max(peak_versions, svc.index.version_count())
        elapsed = time.perf_counter() - started
        svc.sync.wait_idle(60)
        time.sleep(8)  # quiet for longer than the idle-compaction delay
        svc.sync.wait_idle(60)
        versions, files = svc.index.version_count(), svc.index.file_count()
        rows, active = svc.index.count(), svc.sql.count_active()
        svc.close()
    times.sort()
    p50, p99, worst = statistics.median(times), times[int(len(times) * 0.99)], times[-1]
    ok = versions <= args.max_versions and files <= args.max_files and worst <= args.max_add_ms and rows == active
    lines = [
        f"{args.adds} single adds in {elapsed:.1f} s: add p50 {p50:.1f} ms, p99 {p99:.1f} ms, slowest {worst:.0f} ms",
        f"LanceDB after the burst: {versions} versions (peak seen during it {peak_versions}), {files} files; "
        f"bounds {args.max_versions} versions / {args.max_files} files",
        f"index rows {rows} = SQLite active rows {active}: {rows == active}",
        "result: " + ("OK" if ok else "BOUND EXCEEDED"),
    ]
    print("\n".join(lines))
    write_section("Growth under control (bench/growth.py)", [machine_line(), "", *[f"- {x}" for x in lines]])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
