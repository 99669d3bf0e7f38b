"""Where the time goes: search, add and start-up of mcp-memory at one store size (default 100k).

Times each step the service runs, by calling the same store primitives in the same order
(median over many repetitions), then runs cProfile over whole calls for the top functions.
Prints a breakdown and writes it to bench/RESULTS.md (section "profile") and the cProfile
listings to bench/results/profile-*.txt.

    .venv/bin/python bench/profiling.py                 # 100k store, built in a temp dir (~4 min)
    .venv/bin/python bench/profiling.py --size 10000 --store /tmp/s10k   # reuse/keep a store
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import corpus  # noqa: E402
from _common import BENCH, LoadMonitor, fmt_ms, machine, machine_md, pct, wait_quiet, write_section  # noqa: E402

from mcp_memory import text as textlib  # noqa: E402
from mcp_memory.config import Settings  # noqa: E402
from mcp_memory.models import Scope, utcnow  # noqa: E402
from mcp_memory.service import MemoryService  # noqa: E402
from mcp_memory.store.sql import MemoryRow, SQLStore  # noqa: E402
from mcp_memory.store.vectors import where_clause  # noqa: E402


def med(fn: Any, reps: int) -> tuple[float, float]:
    xs = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return pct(xs, 50), pct(xs, 95)


def ensure_store(path: Path, size: int) -> None:
    if (path / "memory.sqlite3").exists():
        return
    svc = MemoryService(Settings.from_env({}, data_dir=path))
    svc.open()
    svc.import_memories(corpus.memories(size))
    svc.close()


def search_breakdown(svc: MemoryService, queries: list[str]) -> list[tuple[str, float, float]]:
    r, idx, sql = svc.retriever, svc.index, svc.sql
    scope = svc.scope()
    where = where_clause(scope, ("fact",))
    k = 40
    matrix = svc.matrix
    if matrix is not None:
        matrix.wait_loaded(120)
    qv = {q: svc.embedder.embed(q) for q in queries}
    for q in queries[:5]:
        svc.search(q)
    it = iter(queries * 10)
    rows: list[tuple[str, float, float]] = []

    def step(name: str, fn: Any) -> None:
        p50, p95 = med(fn, len(queries))
        rows.append((name, p50, p95))

    step("embed the query (WordLlama)", lambda: svc.embedder.embed(next(it)))
    step("outbox check (sync.drain, nothing pending)", lambda: svc.sync.drain(wait=False))
    step("LanceDB vector search, where prefilter, k=40", lambda: idx.vector_search(qv[next(it)], where, k))
    step("LanceDB vector search, no where, k=40", lambda: _vs_nowhere(idx, qv[next(it)], k))
    step("LanceDB FTS, where prefilter, k=40", lambda: idx.text_search(next(it), where, k))
    if matrix is not None and matrix.ready:
        step("vector matrix: change check (nothing changed) + scope counts",
             lambda: matrix.counts(scope, ("fact",)))
        step("vector matrix: nearest 100 in scope (two-stage, exact rerank)",
             lambda: matrix.nearest(qv[next(it)], scope, ("fact",), 100))
    step("LanceDB FTS, no prefilter, ids + scores, k=151 (what search runs when one scope holds the store)",
         lambda: idx.text_scores(next(it), None, 151))
    ids = [m for m, _ in idx.vector_search(qv[queries[0]], where, k)] + \
          [m for m, _, _ in idx.text_search(queries[0], where, k)]
    step(f"SQLite fetch of the {len(set(ids))} candidates", lambda: sql.get_memories(ids))
    step("whole Retriever.search (service.search minus validation)", lambda: r.search(next(it), scope, limit=10))
    step("whole service.search", lambda: svc.search(next(it)))
    return rows


def _vs_nowhere(idx: Any, v: np.ndarray, k: int) -> Any:
    return idx._reader().search(v).limit(k).select(["id", "vector", "_distance"]).to_arrow()


def add_breakdown(svc: MemoryService, texts: list[str]) -> list[tuple[str, float, float]]:
    """The steps of add(infer=False) and of the rules path, each timed on its own."""
    sql, sync, idx = svc.sql, svc.sync, svc.index
    scope = svc.scope()
    it = iter(texts)
    rows: list[tuple[str, float, float]] = []
    n = min(40, len(texts) // 4)

    def step(name: str, fn: Any, reps: int = n) -> None:
        p50, p95 = med(fn, reps)
        rows.append((name, p50, p95))

    step("embed the text", lambda: svc.embedder.embed(next(it)))
    step("exact-duplicate lookup (hash, SQLite)",
         lambda: sql.find_active_by_hash(textlib.text_hash(next(it)), scope, "fact"))

    def sql_write() -> str:
        t = next(it)
        now = utcnow()
        row = MemoryRow(id=uuid.uuid4().hex, kind="fact", text=t, hash=textlib.text_hash(t), user_id=scope.user_id,
                        agent_id=None, run_id=None, metadata=None, tags=None, state="active",
                        vector=svc.embedder.embed(t), source=None, created_at=now, updated_at=now)
        with sql.write() as conn:
            SQLStore.insert_memory(conn, row)
            SQLStore.add_history(conn, row.id, "ADD", None, t, "bench", "bench", now)
        return row.id

    # one SQLite transaction (row + history + outbox; synchronous=FULL), then the index drain of that one row
    sql_ms, drain_ms, get_ms, upsert_ms, ack_ms = [], [], [], [], []
    for _ in range(n):
        t = time.perf_counter()
        mid = sql_write()
        sql_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        pending = sql.pending_index(2000)
        got = sql.get_memories([m for _, m in pending], with_vector=True)
        t1 = time.perf_counter()
        r = got[mid]
        idx.upsert([{"id": r.id, "kind": r.kind, "user_id": r.user_id, "agent_id": r.agent_id,
                     "run_id": r.run_id, "text": r.text, "vector": r.vector}])
        t2 = time.perf_counter()
        sql.ack_index([s for s, _ in pending])
        t3 = time.perf_counter()
        get_ms.append((t1 - t) * 1000)
        upsert_ms.append((t2 - t1) * 1000)
        ack_ms.append((t3 - t2) * 1000)
        drain_ms.append((t3 - t) * 1000)
    rows.append(("SQLite write txn: row + history + outbox (incl. embed)", pct(sql_ms, 50), pct(sql_ms, 95)))
    rows.append(("  drain: read outbox + row with vector", pct(get_ms, 50), pct(get_ms, 95)))
    rows.append(("  drain: LanceDB upsert of 1 new row (id lookup + append)", pct(upsert_ms, 50), pct(upsert_ms, 95)))
    rows.append(("  drain: ack outbox (SQLite write txn)", pct(ack_ms, 50), pct(ack_ms, 95)))
    svc.sync.compact_now()
    step("LanceDB table.add of 1 row, for comparison (no key match)",
         lambda: idx._reader().add(_one_row(idx, svc, next(it), scope)))
    svc.sync.compact_now()
    step("near-duplicate search (rules path: Retriever.search by meaning, limit 4)",
         lambda: svc.retriever.search(next(it), Scope(user_id=scope.user_id), limit=4, wait_index=False,
                                      vector_only=True))
    step("whole service.add(infer=False)", lambda: svc.add(next(it), infer=False))
    svc.sync.compact_now()
    step("whole service.add (rules, no LLM)", lambda: svc.add(next(it)))
    svc.sync.compact_now()
    return rows


def _one_row(idx: Any, svc: MemoryService, text: str, scope: Scope) -> Any:
    import pyarrow as pa

    v = svc.embedder.embed(text)
    return pa.table({"id": [uuid.uuid4().hex], "kind": ["fact"], "user_id": [scope.user_id], "agent_id": [None],
                     "run_id": [None], "text": [text],
                     "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.astype(np.float32)), idx.dim)},
                    schema=idx._schema())


def open_breakdown(path: Path) -> list[tuple[str, float, float]]:
    """Each step of MemoryService.open() in a fresh process (so imports are counted)."""
    code = r"""
import sys, time, json
t0 = time.perf_counter()
from pathlib import Path
out = {}
def mark(name, t):
    out[name] = (time.perf_counter() - t) * 1000
t = time.perf_counter(); import mcp_memory.server; mark("import mcp_memory.server (mcp SDK, pydantic)", t)
from mcp_memory.config import Settings
from mcp_memory.service import MemoryService
s = Settings.from_env({}, data_dir=Path(sys.argv[1]))
svc = MemoryService(s)
t = time.perf_counter(); mcp_memory.server.build_server(s, svc); mark("build_server (tools, core snapshot for instructions)", t)
t = time.perf_counter(); import lancedb, pyarrow; mark("import lancedb + pyarrow", t)
from mcp_memory.store.sql import SQLStore
from mcp_memory.store.vectors import VectorIndex
from mcp_memory.store.matrix import VectorMatrix
from mcp_memory.embeddings import make_embedder
t = time.perf_counter(); sql = SQLStore(s.sqlite_path, s.lock_dir); sql.open(); mark("SQLite open + migrations", t)
t = time.perf_counter(); emb = make_embedder(s); mark("WordLlama load", t)
t = time.perf_counter(); ident = emb.identity(); mark("embedder identity probe", t)
t = time.perf_counter(); idx = VectorIndex(s.lance_path, ident.dim); idx.open(); mark("LanceDB connect + open table", t)
t = time.perf_counter(); n1 = sql.count_active(); n2 = idx.count(); mark("count SQLite vs index rows (open's consistency check)", t)
t = time.perf_counter(); VectorMatrix(sql, ident.dim, 10**7).load(); mark("vector matrix load (SQLite -> numpy)", t)
sql.close()
t = time.perf_counter(); svc.open(); mark("MemoryService.open() whole (modules cached)", t)
t = time.perf_counter(); svc.search("what is the name of Anna's dog?"); mark("first search after open", t)
t = time.perf_counter(); svc.search("who is travelling to Lisbon?"); mark("second search", t)
print(json.dumps(out))
"""
    runs = []
    for _ in range(5):
        res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
        runs.append(__import__("json").loads(res.stdout.strip().splitlines()[-1]))
    return [(k, pct([r[k] for r in runs], 50), pct([r[k] for r in runs], 95)) for k in runs[0]]


def cprofile(fn: Any, reps: int, name: str) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(reps):
        fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
    buf2 = io.StringIO()
    pstats.Stats(prof, stream=buf2).sort_stats("tottime").print_stats(15)
    text = buf.getvalue() + "\n\n" + buf2.getvalue()
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / f"profile-{name}.txt").write_text(text)
    return text


def render(title: str, rows: list[tuple[str, float, float]]) -> str:
    out = [f"**{title}**", "", "| step | p50 | p95 |", "| --- | ---: | ---: |"]
    out += [f"| {n} | {fmt_ms(a)} | {fmt_ms(b)} |" for n, a, b in rows]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--store", type=Path, default=None, help="store directory to reuse (built if missing)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    print(f"load at start: {wait_quiet():.1f}", flush=True)
    mon = LoadMonitor().__enter__()
    tmp = None
    if args.store is None:
        tmp = Path(tempfile.mkdtemp(prefix="mcp-memory-profile-"))
        args.store = tmp / "store"
    try:
        t = time.perf_counter()
        ensure_store(args.store, args.size)
        print(f"store ready in {time.perf_counter() - t:.0f} s", flush=True)
        work = args.store.parent / (args.store.name + "-work")  # adds change the store: work on a copy
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(args.store, work)
        ob = open_breakdown(work)
        print(render("start-up", ob), flush=True)
        svc = MemoryService(Settings.from_env({}, data_dir=work))
        svc.open()
        queries = corpus.queries(args.queries)
        sb = search_breakdown(svc, queries)
        print(render("search", sb), flush=True)
        texts = corpus.memories(args.size + 400)[args.size:]
        ab = add_breakdown(svc, texts)
        print(render("add", ab), flush=True)
        qs = iter(queries * 3)
        cprofile(lambda: svc.search(next(qs)), 50, "search")
        more = iter(corpus.memories(args.size + 500)[args.size + 400:])
        cprofile(lambda: svc.add(next(more), infer=False), 30, "add-infer-false")
        svc.close()
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    mon.__exit__(None, None, None)
    if not args.no_write:
        n = f"{args.size // 1000}k"
        m = machine()
        m["load during the run"] = mon.describe()
        body = (f"## Where the time goes at {n} (`bench/profiling.py --size {args.size}`)\n\n{machine_md(m)}\n\n"
                + render(f"start-up steps, fresh process each (5 runs, {n} store)", ob) + "\n\n"
                + render(f"search steps ({args.queries} realistic queries, default user scope holds all {n})", sb)
                + "\n\n" + render("add steps (one memory per call)", ab) + "\n\n"
                "cProfile listings of whole calls: bench/results/profile-search.txt, "
                "bench/results/profile-add-infer-false.txt.\n")
        write_section("profile", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
