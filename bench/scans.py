"""What the vector matrix's staged scans find, against an exact scan, and what they cost.

The add path's duplicate checks (`quick` scans) and searches both skip most of the work of an
exact scan from some size on (`mcp_memory.store.matrix`). For new statements (corpus texts past
the stored ones, as adds are), this measures per scan: ms per statement, the share of the exact
top 4 and top 16 found, and how many of the rows at cosine >= 0.8 (the near-duplicate threshold)
were found. Rows: the exact scan; the search scan; the quick scan before sign bits (three stages
on int8 components); the quick scan (sign bits first).

    .venv/bin/python bench/scans.py --store /tmp/s100k [--store /tmp/s1m]   # stores from speed.py --keep
    .venv/bin/python bench/scans.py --sizes 10000,100000                    # builds them in a temp dir

Writes the section "scans" of bench/RESULTS.md; exits 1 when the quick scan misses more than 0.5%
of the rows at cosine >= 0.8 or more than 1% of the exact top 4.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as in the server (`mcp_memory.process`)

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import corpus  # noqa: E402
from _common import fmt_ms, machine, machine_md, write_section  # noqa: E402

from mcp_memory.config import Settings  # noqa: E402
from mcp_memory.embeddings import make_embedder  # noqa: E402
from mcp_memory.models import Scope  # noqa: E402
from mcp_memory.store.matrix import VectorMatrix  # noqa: E402
from mcp_memory.store.sql import SQLStore  # noqa: E402

K = 16          # what the add path asks for (search.DUPLICATE_CANDIDATES)
CLOSE = 0.8     # semantic.NEAR_DUP_COSINE
STATEMENTS = 300
SCANS = {  # name -> (VectorMatrix options, quick)
    "exact (one stage)": ({"coarse_from": 10**12, "quick_from": 10**12}, False),
    "search (two or three stages)": ({}, False),
    "quick, before sign bits": ({"quick_from": 10**12, "rough_from": 0, "coarse_keep": 200}, False),
    "quick (sign bits first)": ({}, True),
}


def build(size: int, data_dir: Path) -> None:
    from mcp_memory.service import MemoryService

    svc = MemoryService(Settings.from_env({}, data_dir=data_dir))
    svc.open()
    svc.sync.wait_ready()
    svc.import_memories(corpus.memories(size))
    svc.close()


def measure(store: Path) -> dict[str, Any]:
    settings = Settings.from_env({}, data_dir=store)
    sql = SQLStore(settings.sqlite_path, settings.lock_dir)
    sql.open()
    try:
        size = sql.conn.execute("SELECT count(*) FROM memories WHERE state = 'active' AND kind = 'fact'").fetchone()[0]
        embedder = make_embedder(settings)
        vectors = embedder.embed_batch(corpus.memories(size + STATEMENTS)[size:])
        found: dict[str, list[dict[str, float]]] = {}
        ms: dict[str, float] = {}
        for name, (options, quick) in SCANS.items():
            m = VectorMatrix(sql, len(vectors[0]), max_rows=10**8, **options)
            m.load()
            m.nearest(vectors[0], Scope(), ("fact",), K, quick=quick)  # warm
            t = time.perf_counter()
            found[name] = [m.nearest(v, Scope(), ("fact",), K, quick=quick).cosines for v in vectors]
            ms[name] = (time.perf_counter() - t) * 1000 / len(vectors)
            del m
    finally:
        sql.close()
    exact = found["exact (one stage)"]
    close = sum(1 for e in exact for c in e.values() if c >= CLOSE)
    rows = {}
    for name, got in found.items():
        top4 = np.mean([len(set(list(g)[:4]) & set(list(e)[:4])) / 4 for g, e in zip(got, exact)])
        top16 = np.mean([len(set(g) & set(e)) / max(1, len(e)) for g, e in zip(got, exact)])
        hit = sum(1 for g, e in zip(got, exact) for mid, c in e.items() if c >= CLOSE and mid in g)
        rows[name] = {"ms": ms[name], "top4": float(top4), "top16": float(top16), "close": hit}
    return {"size": size, "close": close, "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", action="append", type=Path, default=[], help="an existing store (repeatable)")
    ap.add_argument("--sizes", default="", help="comma-separated sizes of stores to build")
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = ap.parse_args()
    stores, tmp = list(args.store), None
    if args.sizes:
        tmp = Path(tempfile.mkdtemp(prefix="mcp-memory-scans-"))
        for size in map(int, args.sizes.split(",")):
            build(size, tmp / str(size))
            stores.append(tmp / str(size))
    if not stores:
        ap.error("give --store or --sizes")
    try:
        results = [measure(s) for s in stores]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| rows | scan | ms per statement | exact top 4 found | exact top 16 found | rows at cosine >= 0.8 found |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    failed = []
    for r in results:
        for name, x in r["rows"].items():
            lines.append(f"| {r['size']:,} | {name} | {fmt_ms(x['ms'])} | {x['top4']:.2%} | {x['top16']:.2%} | "
                         f"{x['close']} / {r['close']} |")
        q = r["rows"]["quick (sign bits first)"]
        if q["close"] < 0.995 * r["close"] or q["top4"] < 0.99:
            failed.append(r["size"])
    body = "\n".join([
        "## Staged scans against an exact scan (`bench/scans.py`)", "", machine_md(machine()), "",
        f"{STATEMENTS} new statements (corpus texts past the stored ones), nearest {K} in the default user's "
        "facts (one scope holds every row), one thread.", "", *lines, ""])
    print(body)
    if not args.no_write:
        write_section("scans", body)
    for size in failed:
        print(f"MISSED: the quick scan at {size:,} rows misses close rows or the top 4")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
