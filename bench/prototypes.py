"""Scratch prototypes of the optimisations proposed in RESULTS.md, measured on a copy of a real
store (default 100k memories). Nothing here is used by the package: each block rebuilds one
step of search or add another way and times it against today's way, same run, same queries.

    .venv/bin/python bench/prototypes.py                       # builds a 100k store in a temp dir (~6 min)
    .venv/bin/python bench/prototypes.py --store /tmp/s100k    # reuse a store from speed/profiling
    .venv/bin/python bench/prototypes.py --only vectors,rss

Blocks: sqlite (exact-duplicate lookup plan), vectors (LanceDB flat vs ANN vs a numpy matrix,
with recall against exact search), fts (LanceDB FTS vs SQLite FTS5), writes (per-add index
write: merge_insert vs add vs a BTREE id index), combined (a whole search without LanceDB:
numpy + FTS5 + SQLite, and its top-10 overlap with today's results), rss (server-like process
footprint with today's LanceDB path, with smaller LanceDB caches, and without LanceDB).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
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
from mcp_memory.service import MemoryService  # noqa: E402
from mcp_memory.store.vectors import where_clause  # noqa: E402

Row = tuple[str, float, float, str]  # name, p50 ms, p95 ms, note


def times(fn: Any, items: list[Any]) -> tuple[float, float]:
    xs = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        xs.append((time.perf_counter() - t) * 1000)
    return pct(xs, 50), pct(xs, 95)


def recall(truth: list[list[str]], got: list[list[str]], k: int) -> float:
    return float(np.mean([len(set(t[:k]) & set(g[:k])) / max(1, len(t[:k])) for t, g in zip(truth, got)]))


# -- sqlite: the exact-duplicate lookup ---------------------------------------------------------
def proto_sqlite(store: Path, work: Path, texts: list[str]) -> list[Row]:
    db = work / "dup.sqlite3"
    src = sqlite3.connect(store / "memory.sqlite3")
    dst = sqlite3.connect(db)
    src.backup(dst)
    src.close()
    sql = ("SELECT id FROM memories WHERE hash = ? AND kind = ? AND state = 'active' AND user_id = ? LIMIT 1")
    hashes = [textlib.text_hash(t) for t in texts[:200]]
    rows: list[Row] = []

    def run(conn: sqlite3.Connection, q: str, name: str) -> None:
        plan = conn.execute("EXPLAIN QUERY PLAN " + q, ("x", "fact", "default")).fetchall()[-1][-1]
        p50, p95 = times(lambda h: conn.execute(q, (h, "fact", "default")).fetchone(), hashes)
        rows.append((name, p50, p95, plan))

    run(dst, sql, "today: planner picks memories_scope (user, kind, state)")
    t = time.perf_counter()
    dst.execute("ANALYZE")
    dst.commit()
    analyze_ms = (time.perf_counter() - t) * 1000
    dst.close()
    dst = sqlite3.connect(db)
    run(dst, sql, f"after ANALYZE ({analyze_ms:.0f} ms once; PRAGMA optimize keeps it current)")
    run(dst, sql.replace("FROM memories WHERE", "FROM memories INDEXED BY memories_hash WHERE"),
        "INDEXED BY memories_hash (no statistics needed)")
    dst.close()
    db.unlink()
    return rows


# -- vectors ---------------------------------------------------------------------------------
def load_matrix(store: Path) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    """(ids, float32 matrix, user_id codes, seconds) straight from SQLite, as a server would at open."""
    t = time.perf_counter()
    conn = sqlite3.connect(store / "memory.sqlite3")
    ids, blobs, users = [], [], []
    for mid, vec, user in conn.execute("SELECT id, vector, user_id FROM memories WHERE state = 'active' "
                                       "AND kind = 'fact'"):
        ids.append(mid)
        blobs.append(vec)
        users.append(user)
    conn.close()
    mat = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), -1).copy()
    codes = np.array([hash(u) for u in users])
    return ids, mat, codes, time.perf_counter() - t


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part])]


def proto_vectors(store: Path, work: Path, queries: list[str], svc: MemoryService, big: int) -> list[Row]:
    rows: list[Row] = []
    idx = svc.index
    where = where_clause(svc.scope(), ("fact",))
    qv = [svc.embedder.embed(q) for q in queries]
    k = 40

    flat = [[m for m, _ in idx.vector_search(v, where, k)] for v in qv]
    p50, p95 = times(lambda v: idx.vector_search(v, where, k), qv)
    rows.append(("LanceDB flat, where prefilter (today)", p50, p95, "recall 1.00 (it is the truth)"))

    ids, mat, codes, load_s = load_matrix(store)
    user = hash("default")
    id_arr = np.array(ids)

    def numpy_search(v: np.ndarray, m: np.ndarray = mat) -> list[str]:
        s = m @ v
        s = np.where(codes == user, s, -np.inf)  # the scope prefilter
        return list(id_arr[topk(s, k)])

    got = [numpy_search(v) for v in qv]
    p50, p95 = times(numpy_search, qv)
    rows.append((f"numpy float32 matrix + scope mask ({mat.nbytes / 2**20:.0f} MB, loaded from SQLite in "
                 f"{load_s:.1f} s)", p50, p95, f"recall@10 {recall(flat, got, 10):.2f}, @40 {recall(flat, got, 40):.2f}"))
    mat16 = mat.astype(np.float16)

    def numpy16(v: np.ndarray) -> list[str]:
        s = (mat16 @ v.astype(np.float16)).astype(np.float32)
        s = np.where(codes == user, s, -np.inf)
        return list(id_arr[topk(s, k)])

    got16 = [numpy16(v) for v in qv]
    p50, p95 = times(numpy16, qv)
    rows.append((f"numpy float16 matrix ({mat16.nbytes / 2**20:.0f} MB)", p50, p95,
                 f"recall@10 {recall(flat, got16, 10):.2f}, @40 {recall(flat, got16, 40):.2f}"))
    del mat16

    # 1M rows: the same code on a synthetic matrix (matmul cost does not depend on the values)
    if big:
        rng = np.random.default_rng(0)
        bigm = rng.standard_normal((big, mat.shape[1]), dtype=np.float32)
        bigm /= np.linalg.norm(bigm, axis=1, keepdims=True)
        bigcodes = np.full(big, user)
        p50, p95 = times(lambda v: topk(np.where(bigcodes == user, bigm @ v, -np.inf), k), qv[:60])
        rows.append((f"numpy float32 at {big // 1000}k rows, synthetic ({bigm.nbytes / 2**20:.0f} MB)", p50, p95,
                     "exact"))
        p50, p95 = times(lambda v: topk(bigm @ v, k), qv[:60])
        rows.append((f"numpy float32 at {big // 1000}k rows, no scope mask", p50, p95, "exact"))
        del bigm, bigcodes

    # in-memory HNSW (usearch, an optional extra dependency: pip install usearch)
    try:
        from usearch.index import Index
    except ImportError:
        rows.append(("usearch HNSW (not installed: pip install usearch)", float("nan"), float("nan"), "skipped"))
    else:
        for dtype in ("f16", "i8"):
            uidx = Index(ndim=mat.shape[1], metric="ip", dtype=dtype, connectivity=16, expansion_add=128,
                         expansion_search=64)
            t = time.perf_counter()
            uidx.add(np.arange(len(mat)), mat, threads=2)
            build_s = time.perf_counter() - t

            def us(v: np.ndarray, uidx: Any = uidx) -> list[str]:
                return list(id_arr[uidx.search(v, k).keys])

            got = [us(v) for v in qv]
            p50, p95 = times(us, qv)
            rows.append((f"usearch HNSW in memory, {dtype} ({uidx.memory_usage / 2**20:.0f} MB, built in {build_s:.0f} s "
                         "on 2 threads), no scope filter", p50, p95,
                         f"recall@10 {recall(flat, got, 10):.2f}, @40 {recall(flat, got, 40):.2f}"))
            if dtype == "f16":
                uidx.save(str(work / "usearch-f16.index"))
            del uidx

    # ANN indices on a copy of the LanceDB table (the last one built stays for the combined block)
    import lancedb
    from lancedb.index import HnswSq, IvfPq

    lance = work / "lancedb"
    shutil.copytree(store / "lancedb", lance)
    db = lancedb.connect(str(lance))
    table = db.open_table("memories")
    for name, config, tune in [
        ("IVF_PQ", IvfPq(distance_type="l2"), [("nprobes=20", dict(nprobes=20)),
                                              ("nprobes=20, refine x5", dict(nprobes=20, refine=5))]),
        ("IVF_HNSW_SQ", HnswSq(distance_type="l2"), [("ef=64", dict(ef=64)), ("ef=150", dict(ef=150))]),
    ]:
        t = time.perf_counter()
        table.create_index("vector", config=config, replace=True)
        build_s = time.perf_counter() - t
        for label, opts in tune:
            def ann(v: np.ndarray, opts: dict[str, Any] = opts) -> list[str]:
                q = table.search(v).where(where, prefilter=True).limit(k)
                if "ef" in opts:
                    q = q.ef(opts["ef"])
                if "nprobes" in opts:
                    q = q.nprobes(opts["nprobes"])
                if "refine" in opts:
                    q = q.refine_factor(opts["refine"])
                return q.select(["id", "vector", "_distance"]).to_arrow().column("id").to_pylist()

            ann(qv[0])
            got = [ann(v) for v in qv]
            p50, p95 = times(ann, qv)
            rows.append((f"LanceDB {name} ({label}), where prefilter; index built in {build_s:.0f} s", p50, p95,
                         f"recall@10 {recall(flat, got, 10):.2f}, @40 {recall(flat, got, 40):.2f}"))
    # an ANN index covers the rows present when it was built: newer rows are searched flat until optimize()
    return rows


# -- full text -----------------------------------------------------------------------------------------
def build_fts5(store: Path, work: Path) -> tuple[sqlite3.Connection, float]:
    db = work / "fts.sqlite3"
    src = sqlite3.connect(store / "memory.sqlite3")
    dst = sqlite3.connect(db)
    src.backup(dst)
    src.close()
    t = time.perf_counter()
    dst.executescript("""
        CREATE VIRTUAL TABLE memories_fts USING fts5(text, content='memories', content_rowid='rowid',
                                                     tokenize='porter unicode61');
        INSERT INTO memories_fts(memories_fts) VALUES ('rebuild');
    """)
    dst.commit()
    return dst, time.perf_counter() - t


FTS5_SQL = ("SELECT m.id, m.vector, -bm25(memories_fts) FROM memories_fts JOIN memories m ON m.rowid = memories_fts.rowid "
            "WHERE memories_fts MATCH ? AND m.user_id = ? AND m.kind = 'fact' AND m.state = 'active' "
            "ORDER BY bm25(memories_fts) LIMIT ?")


def proto_fts(store: Path, work: Path, queries: list[str], svc: MemoryService) -> list[Row]:
    rows: list[Row] = []
    where = where_clause(svc.scope(), ("fact",))
    idx = svc.index
    lance = [[m for m, _, _ in idx.text_search(q, where, 40)] for q in queries]
    p50, p95 = times(lambda q: idx.text_search(q, where, 40), queries)
    rows.append(("LanceDB FTS, where prefilter, k=40 (today)", p50, p95, ""))
    p50, p95 = times(lambda q: idx.table.search(q, query_type="fts").limit(40).select(["id", "_score"]).to_arrow(), queries)
    rows.append(("LanceDB FTS, no where, ids only", p50, p95, ""))
    conn, build_s = build_fts5(store, work)
    got = [[r[0] for r in conn.execute(FTS5_SQL, (textlib.fts_query(q), "default", 40))] for q in queries]
    p50, p95 = times(lambda q: conn.execute(FTS5_SQL, (textlib.fts_query(q), "default", 40)).fetchall(), queries)
    rows.append((f"SQLite FTS5 (porter), content words OR-ed, scope join, k=40 (built in {build_s:.1f} s)",
                 p50, p95, f"top-10 overlap with LanceDB FTS {recall(lance, got, 10):.2f}"))
    bare = "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rank LIMIT 40"
    p50, p95 = times(lambda q: conn.execute(bare, (textlib.fts_query(q),)).fetchall(), queries)
    rows.append(("SQLite FTS5, rowids only (no scope join)", p50, p95, ""))
    conn.close()
    return rows


# -- per-add index writes -------------------------------------------------------------------------
def proto_writes(store: Path, work: Path, svc: MemoryService, texts: list[str]) -> list[Row]:
    import lancedb
    import pyarrow as pa

    rows: list[Row] = []
    lance = work / "lancedb-w"
    shutil.copytree(store / "lancedb", lance)
    db = lancedb.connect(str(lance))
    table = db.open_table("memories")
    schema = table.schema

    def one(text: str) -> Any:
        v = svc.embedder.embed(text).astype(np.float32)
        return pa.table({"id": [uuid.uuid4().hex], "kind": ["fact"], "user_id": ["default"], "agent_id": [None],
                         "run_id": [None], "text": [text],
                         "vector": pa.FixedSizeListArray.from_arrays(pa.array(v), 256)}, schema=schema)

    batches = [one(t) for t in texts[:40]]
    merge = lambda b: table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(b)  # noqa: E731
    p50, p95 = times(merge, batches[:20])
    rows.append(("merge_insert of 1 row (today, per add)", p50, p95, "a new version + data file each"))
    p50, p95 = times(table.add, batches[20:40])
    rows.append(("table.add of 1 row (ids are fresh uuids: no key match needed)", p50, p95, ""))
    table.optimize()
    t = time.perf_counter()
    table.create_scalar_index("id", index_type="BTREE")
    bt = time.perf_counter() - t
    more = [one(t) for t in texts[40:60]]
    p50, p95 = times(merge, more)
    rows.append((f"merge_insert of 1 row with a BTREE index on id (built in {bt:.1f} s)", p50, p95, ""))
    big = pa.concat_tables([one(t) for t in texts[60:160]])
    p50, p95 = times(merge, [big])
    rows.append(("merge_insert of 100 rows in one call (a drained batch)", p50, p95, "per batch, not per row"))
    return rows


# -- combined: whole hybrid searches built other ways -----------------------------------------------
def proto_combined(store: Path, work: Path, queries: list[str], svc: MemoryService) -> list[Row]:
    from concurrent.futures import ThreadPoolExecutor

    import lancedb

    ids, mat, codes, _ = load_matrix(store)
    user = hash("default")
    id_arr = np.array(ids)
    fts_db = work / "fts.sqlite3"
    conn = sqlite3.connect(fts_db, check_same_thread=False) if fts_db.exists() else build_fts5(store, work)[0]
    sql, idx = svc.sql, svc.index
    scope = svc.scope()
    where = where_clause(scope, ("fact",))
    ann_table = None
    if (work / "lancedb").exists():  # the copy with the IVF_HNSW_SQ index from the vectors block
        ann_table = lancedb.connect(str(work / "lancedb")).open_table("memories")
    usearch_idx = None
    if (work / "usearch-f16.index").exists():
        from usearch.index import Index

        usearch_idx = Index.restore(str(work / "usearch-f16.index"), view=True)
    pool = ThreadPoolExecutor(2)

    def vec_numpy(v: np.ndarray) -> list[tuple[str, float]]:
        s = np.where(codes == user, mat @ v, -np.inf)
        return [(id_arr[i], float(s[i])) for i in topk(s, 40)]

    def vec_ann(v: np.ndarray) -> list[tuple[str, float]]:
        res = (ann_table.search(v).where(where, prefilter=True).limit(40).ef(64)
               .select(["id", "vector", "_distance"]).to_arrow())
        return [(m, 1 - d / 2) for m, d in zip(res.column("id").to_pylist(), res.column("_distance").to_pylist())]

    def vec_usearch(v: np.ndarray) -> list[tuple[str, float]]:
        m = usearch_idx.search(v, 40)
        return [(id_arr[key], 1 - float(dist)) for key, dist in zip(m.keys, m.distances)]

    def txt_fts5(q: str) -> list[tuple[str, float]]:
        match = textlib.fts_query(q)
        return [(mid, score) for mid, _, score in conn.execute(FTS5_SQL, (match, "default", 40))] if match else []

    def txt_lance(q: str) -> list[tuple[str, float]]:
        res = idx.table.search(q, query_type="fts").limit(80).select(["id", "_score"]).to_arrow()
        return list(zip(res.column("id").to_pylist(), res.column("_score").to_pylist()))

    def txt_lance_where(q: str) -> list[tuple[str, float]]:
        return [(m, s) for m, s, _ in idx.text_search(q, where, 40)]

    def make(vec: Any, txt: Any, parallel: bool) -> Any:
        def search(q: str) -> list[str]:
            v = svc.embedder.embed(q)
            if parallel:
                fv, ft = pool.submit(vec, v), pool.submit(txt, q)
                vc, tc = fv.result(), ft.result()
            else:
                vc, tc = vec(v), txt(q)
            bm = dict(tc)
            rows = sql.get_memories([m for m, _ in vc] + list(bm), with_vector=True)
            cos = dict(vc)
            out = []
            top_bm = max(bm.values(), default=0.0) or 1.0
            for mid, r in rows.items():
                if r.state != "active" or r.kind != "fact" or r.user_id != scope.user_id:
                    continue
                c = cos.get(mid)
                if c is None:
                    c = float(r.vector @ v)
                out.append((0.5 * max(c, 0) + 0.5 * bm.get(mid, 0.0) / top_bm, r.updated_at, mid))
            out.sort(reverse=True)
            return [m for _, _, m in out[:10]]
        return search

    today = [[h.row.id for h in svc.retriever.search(q, scope, limit=10)] for q in queries]
    t50, t95 = times(lambda q: svc.retriever.search(q, scope, limit=10), queries)
    rows: list[Row] = [("today: Retriever.search (LanceDB flat vector + FTS, both prefiltered; SQLite fetch)",
                        t50, t95, "")]
    variants = [("numpy float32 matrix + SQLite FTS5 + SQLite fetch", vec_numpy, txt_fts5, False)]
    if ann_table is not None:
        variants += [("LanceDB IVF_HNSW_SQ (ef=64) + LanceDB FTS, both prefiltered, sequential", vec_ann,
                      txt_lance_where, False),
                     ("LanceDB IVF_HNSW_SQ + LanceDB FTS without prefilter (scope checked in SQLite), 2 threads",
                      vec_ann, txt_lance, True)]
    if usearch_idx is not None:
        variants += [("usearch HNSW f16 in memory + LanceDB FTS without prefilter, sequential", vec_usearch,
                      txt_lance, False),
                     ("usearch HNSW f16 in memory + SQLite FTS5, sequential", vec_usearch, txt_fts5, False)]
    for name, vec, txt, par in variants:
        fn = make(vec, txt, par)
        got = [fn(q) for q in queries]
        p50, p95 = times(fn, queries)
        rows.append((name, p50, p95, f"top-10 overlap with today {recall(today, got, 10):.2f}"))
    pool.shutdown()
    conn.close()
    return rows


# -- footprint -------------------------------------------------------------------------------------
RSS_CODE = r"""
import sys, re, json
from pathlib import Path
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", Path('/proc/self/status').read_text()).group(1)) / 1024
mode, store = sys.argv[1], Path(sys.argv[2])
if mode.endswith("+arena2"):  # glibc: at most 2 malloc arenas (default 8 per core): what MALLOC_ARENA_MAX=2 does
    import ctypes
    ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    mode = mode.removesuffix("+arena2")
sys.path.insert(0, sys.argv[3])
import corpus
queries = corpus.queries(100)
import mcp_memory.server  # the MCP layer a server imports
from mcp_memory.embeddings import WordLlamaEmbedder
emb = WordLlamaEmbedder()
base = rss()
if mode in ("lancedb", "lancedb-small-cache"):
    import lancedb
    from mcp_memory.store.vectors import VectorIndex, where_clause
    from mcp_memory.models import Scope
    idx = VectorIndex(store / "lancedb", 256)
    if mode == "lancedb-small-cache":
        idx.path.mkdir(parents=True, exist_ok=True)
        idx._db = lancedb.connect(str(idx.path), session=lancedb.Session(index_cache_size_bytes=16 << 20,
                                                                         metadata_cache_size_bytes=16 << 20))
        idx._table = idx._open_or_create()
    else:
        idx.open()
    where = where_clause(Scope(user_id="default"), ("fact",))
    for q in queries:
        v = emb.embed(q)
        idx.vector_search(v, where, 40)
        idx.text_search(q, where, 40)
else:
    import sqlite3, numpy as np
    conn = sqlite3.connect(store / "fts.sqlite3")
    blobs = [r[0] for r in conn.execute("SELECT vector FROM memories WHERE state='active'")]
    mat = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
    if mode == "numpy-f16":
        mat = mat.astype(np.float16)
    else:
        mat = mat.copy()
    del blobs
    from mcp_memory import text as textlib
    for q in queries:
        v = emb.embed(q).astype(mat.dtype)
        s = mat @ v
        np.argpartition(-s, 40)[:40]
        conn.execute("SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY bm25(memories_fts) LIMIT 40",
                     (textlib.fts_query(q),)).fetchall()
print(json.dumps({"base": base, "after": rss()}))
"""


def proto_rss(store: Path, work: Path) -> list[Row]:
    if not (work / "fts.sqlite3").exists():
        build_fts5(store, work)[0].close()
    rss_dir = work / "rss"  # today's index, without the ANN index the vectors block built on its own copy
    if not rss_dir.exists():
        shutil.copytree(store / "lancedb", rss_dir / "lancedb")
    out: list[Row] = []
    for mode, name in [("lancedb", "today: LanceDB, default caches"),
                       ("lancedb-small-cache", "LanceDB with Session(16 MB index + 16 MB metadata cache)"),
                       ("lancedb+arena2", "LanceDB, and mallopt(M_ARENA_MAX, 2) at process start"),
                       ("numpy-f32", "no LanceDB: numpy float32 matrix + SQLite FTS5"),
                       ("numpy-f16", "no LanceDB: numpy float16 matrix + SQLite FTS5")]:
        target = rss_dir if mode.startswith("lancedb") else work  # noqa: SIM108
        res = subprocess.run([sys.executable, "-c", RSS_CODE, mode, str(target), str(BENCH)], capture_output=True,
                             text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        out.append((name, r["after"], r["base"], "MB after 100 searches (vector + text)"))
    return out


def render(title: str, rows: list[Row], unit: str = "ms") -> str:
    if unit == "MB":
        head = ["| variant | RSS after 100 searches | RSS before (python + mcp + WordLlama) |", "| --- | ---: | ---: |"]
        body = [f"| {n} | {a:.0f} MB | {b:.0f} MB |" for n, a, b, _ in rows]
    else:
        head = ["| variant | p50 | p95 | note |", "| --- | ---: | ---: | --- |"]
        body = [f"| {n} | {fmt_ms(a)} | {fmt_ms(b)} | {note} |" for n, a, b, note in rows]
    return "\n".join([f"**{title}**", "", *head, *body])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--store", type=Path, default=None)
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--big", type=int, default=1_000_000, help="rows of the synthetic matrix (0: skip)")
    ap.add_argument("--only", default="sqlite,vectors,fts,writes,combined,rss")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"load at start: {wait_quiet():.1f}", flush=True)
    mon = LoadMonitor().__enter__()
    tmp = Path(tempfile.mkdtemp(prefix="mcp-memory-proto-"))
    store = args.store or tmp / "store"
    try:
        if not (store / "memory.sqlite3").exists():
            svc = MemoryService(Settings.from_env({}, data_dir=store))
            svc.open()
            svc.import_memories(corpus.memories(args.size))
            svc.close()
        work = tmp / "work"
        work.mkdir()
        svc = MemoryService(Settings.from_env({}, data_dir=store))
        svc.open()
        queries = corpus.queries(args.queries)
        texts = corpus.memories(args.size + 400)[args.size:]
        for q in queries[:5]:
            svc.search(q)
        n = f"{args.size // 1000}k"
        parts = []
        blocks = [
            ("sqlite", lambda: render(f"exact-duplicate lookup by hash at {n} (runs twice per add today)",
                                      proto_sqlite(store, work, texts))),
            ("vectors", lambda: render(f"vector candidates (k=40) at {n}, {args.queries} queries",
                                       proto_vectors(store, work, queries, svc, args.big))),
            ("fts", lambda: render(f"full-text candidates (k=40) at {n}", proto_fts(store, work, queries, svc))),
            ("writes", lambda: render(f"index write per add at {n}", proto_writes(store, work, svc, texts))),
            ("combined", lambda: render(f"whole hybrid search at {n}", proto_combined(store, work, queries, svc))),
            ("rss", lambda: render(f"process footprint at {n}", proto_rss(store, work), unit="MB")),
        ]
        for name, fn in blocks:
            if name in only:
                t = time.perf_counter()
                part = fn()
                print(part + f"\n({name}: {time.perf_counter() - t:.0f} s)\n", flush=True)
                parts.append(part)
        svc.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mon.__exit__(None, None, None)
    if not args.no_write and only == {"sqlite", "vectors", "fts", "writes", "combined", "rss"}:
        m = machine()
        m["load during the run"] = mon.describe()
        write_section("prototypes", f"## Prototypes of the optimisations (`bench/prototypes.py`, {n} store)\n\n"
                      + machine_md(m) + "\n\n" + "\n\n".join(parts) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
