"""What the vector matrix's staged scans find, against an exact scan, and what they cost.

The add path's duplicate checks (`quick` scans) and searches both skip most of the work of an
exact scan from some size on (`mcp_memory.store.matrix`). For new statements (corpus texts past
the stored ones, as adds are), this measures per scan: ms per statement, the share of the exact
top 4 and top 16 found, and how many of the rows at cosine >= 0.8 (the near-duplicate threshold)
were found. Rows: the exact scan; the search and the quick scan as they are (sign bits first from
some size: `mcp_memory.store.matrix`), and each without the sign bits (the first half of every
int8 row first).

    .venv/bin/python bench/scans.py --store /tmp/s100k [--store /tmp/s1m]   # stores from speed.py --keep
    .venv/bin/python bench/scans.py --sizes 10000,100000                    # builds them in a temp dir

Writes the section "scans" of bench/RESULTS.md; exits 1 when the quick scan misses more than 0.5%
of the rows at cosine >= 0.8 or more than 1% of the exact top 4, or the search more than 1% of
the exact top 16.
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

QUICK_K = 16    # what the add path asks for (search.DUPLICATE_CANDIDATES)
SEARCH_K = 100  # what a search asks for (search.MIN_CANDIDATES)
CLOSE = 0.8     # semantic.NEAR_DUP_COSINE
STATEMENTS = 300
EXACT = "exact (one stage)"
SCANS = {  # name -> (VectorMatrix options, quick)
    EXACT: ({"coarse_from": 10**12, "quick_from": 10**12, "signs_from": 10**12}, False),
    "search, without sign bits (half vectors first)": ({"signs_from": 10**12}, False),
    "search": ({}, False),
    "quick, without sign bits (half vectors first)": ({"quick_from": 10**12}, True),
    "quick": ({}, True),
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
            k = QUICK_K if quick else SEARCH_K
            m.nearest(vectors[0], Scope(), ("fact",), k, quick=quick)  # warm
            t = time.perf_counter()
            found[name] = [m.nearest(v, Scope(), ("fact",), k, quick=quick).cosines for v in vectors]
            ms[name] = (time.perf_counter() - t) * 1000 / len(vectors)
            del m
    finally:
        sql.close()
    rows = {}
    for name, got in found.items():
        k = QUICK_K if SCANS[name][1] else SEARCH_K
        exact = [dict(list(e.items())[:k]) for e in found[EXACT]]  # the exact k nearest
        top4 = np.mean([len(set(list(g)[:4]) & set(list(e)[:4])) / 4 for g, e in zip(got, exact)])
        top16 = np.mean([len(set(list(g)[:16]) & set(list(e)[:16])) / 16 for g, e in zip(got, exact)])
        topk = np.mean([len(set(g) & set(e)) / max(1, len(e)) for g, e in zip(got, exact)])
        close = sum(1 for e in exact for c in e.values() if c >= CLOSE)
        hit = sum(1 for g, e in zip(got, exact) for mid, c in e.items() if c >= CLOSE and mid in g)
        rows[name] = {"k": k, "ms": ms[name], "top4": float(top4), "top16": float(top16), "topk": float(topk),
                      "close": hit, "close_exact": close}
    return {"size": size, "rows": rows}


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
    lines = ["| rows | scan | k | ms per statement | exact top 4 found | exact top 16 found | exact top k found | "
             "rows at cosine >= 0.8 among them found |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    failed = []
    for r in results:
        for name, x in r["rows"].items():
            lines.append(f"| {r['size']:,} | {name} | {x['k']} | {fmt_ms(x['ms'])} | {x['top4']:.2%} | "
                         f"{x['top16']:.2%} | {x['topk']:.2%} | {x['close']} / {x['close_exact']} |")
        q, s = r["rows"]["quick"], r["rows"]["search"]
        if q["close"] < 0.995 * q["close_exact"] or q["top4"] < 0.99 or s["top16"] < 0.99:
            failed.append(r["size"])
    body = "\n".join([
        "## Staged scans against an exact scan (`bench/scans.py`)", "", machine_md(machine()), "",
        f"{STATEMENTS} new statements (corpus texts past the stored ones), their nearest k rows in the default "
        f"user's facts (one scope holds every row): k = {QUICK_K} for quick scans (the add path), {SEARCH_K} for "
        "searches. One thread.", "", *lines, ""])
    print(body)
    if not args.no_write:
        write_section("scans", body)
    for size in failed:
        print(f"MISSED: at {size:,} rows the quick scan misses close rows or the top 4, or the search the top 16")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
