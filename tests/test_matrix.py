"""The in-memory vector matrix: same answers as LanceDB, current across processes, bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcp_memory.config import Settings
from mcp_memory.embeddings import make_embedder
from mcp_memory.models import Scope
from mcp_memory.store import matrix_file, signs
from mcp_memory.store.matrix import VectorMatrix
from mcp_memory.store.sql import SQLStore

FACTS = [
    "Alice adopted a grey cat called Miso", "The user prefers dark mode in every editor",
    "Bob is allergic to peanuts", "The team meets every Tuesday at 10am in room 4",
    "Carla moved from Lisbon to Porto in March", "The user's favourite tea is genmaicha",
    "Dan is learning to play the cello", "The project deadline moved to 15 June",
    "Eve runs a marathon every autumn", "The user drives a blue electric car",
    "Frank collects vintage film cameras", "The office wifi password changes monthly",
]
QUERIES = ["which pet does Alice have", "what does the user drink", "food allergies", "when is the deadline",
           "where did Carla move", "what instrument is Dan learning", "what car does the user drive"]


def _ids(hits: Any) -> list[str]:
    return [h.id for h in hits.hits]


def test_matrix_search_returns_what_lancedb_returns(tmp_path: Path, make_service: Any):
    with_matrix = make_service(data_dir=tmp_path / "a")
    without = make_service(data_dir=tmp_path / "b", vector_cache_mb=0)
    for svc in (with_matrix, without):
        svc.import_memories([{"text": t, "created_at": "2026-01-01T00:00:00Z"} for t in FACTS])
    assert with_matrix.matrix.wait_loaded(30) and without.matrix is None
    for q in QUERIES:
        a = [h.memory for h in with_matrix.search(q, limit=5).hits]
        b = [h.memory for h in without.search(q, limit=5).hits]
        assert a == b, q


def test_another_process_write_update_and_delete_are_seen_by_the_next_search(tmp_path: Path, make_service: Any):
    data = tmp_path / "data"
    writer, reader = make_service(data_dir=data), make_service(data_dir=data)
    writer.add("The user's locker code is 4711", infer=False)
    reader.search("warm up")
    assert reader.matrix.wait_loaded(30)
    added = writer.add("Gustav keeps bees on the roof of his flat", infer=False).events[0].id
    # the writer's index worker may not have run: the row is in SQLite (and the matrix) only
    hits = reader.search("who keeps bees", limit=3).hits
    assert hits and hits[0].id == added
    writer.update(added, "Gustav keeps hens in his garden")
    hits = reader.search("who keeps hens in the garden", limit=3).hits
    assert hits and hits[0].id == added and hits[0].memory == "Gustav keeps hens in his garden"
    writer.delete(added)
    assert added not in _ids(reader.search("Gustav hens garden bees", limit=10))


def _matrix(tmp_path: Path, n: int, **kw: Any) -> tuple[SQLStore, VectorMatrix, Any]:
    sql = SQLStore(tmp_path / "m.sqlite3", tmp_path / "locks")
    sql.open()
    embedder = make_embedder(Settings.from_env({}, data_dir=tmp_path))
    texts = [f"{FACTS[i % len(FACTS)]} (note {i}, {QUERIES[i % len(QUERIES)]})" for i in range(n)]
    vectors = embedder.embed_batch(texts)
    with sql.write() as conn:
        for i, (t, v) in enumerate(zip(texts, vectors)):
            conn.execute("INSERT INTO memories (id, kind, text, hash, user_id, state, vector, created_at, updated_at) "
                         "VALUES (?, 'fact', ?, ?, ?, 'active', ?, 'x', 'x')",
                         (f"m{i}", t, f"h{i}", "u1" if i % 3 else "u2", np.asarray(v, np.float32).tobytes()))
    return sql, VectorMatrix(sql, embedder.dim if hasattr(embedder, "dim") else len(vectors[0]), **kw), embedder


@pytest.mark.parametrize("signs_from", [10**9, 1000])  # two stages; three (the sign bits first)
def test_staged_scan_finds_the_exact_nearest(tmp_path: Path, signs_from: int):
    sql, matrix, embedder = _matrix(tmp_path, 3000, max_rows=10_000, coarse_from=100, coarse_keep=300,
                                    signs_from=signs_from)
    exact = VectorMatrix(sql, matrix.dim, max_rows=10_000, coarse_from=10**9)
    matrix.load()
    exact.load()
    overlap = []
    for q in QUERIES:
        v = embedder.embed(q)
        for scope in (Scope(user_id="u1"), Scope()):
            a = matrix.nearest(v, scope, ("fact",), 10)
            b = exact.nearest(v, scope, ("fact",), 10)
            assert a is not None and b is not None and a.in_scope == b.in_scope
            overlap.append(len(set(a.cosines) & set(b.cosines)) / 10)
            for mid, c in a.cosines.items():  # the same score, whichever stage found the row
                assert abs(c - b.cosines.get(mid, c)) < 1e-5
    assert sum(overlap) / len(overlap) >= 0.95


# staged on int8 components; sign bits first. This corpus is ~140 near copies of 84 texts: many
# near-ties (a few 1e-4 apart), which staged scans may order otherwise than an exact one
@pytest.mark.parametrize("n, quick_from, top4", [(3000, 10**9, 0.95), (12_000, 100, 0.85)])
def test_a_quick_scan_finds_the_near_duplicates_an_exact_one_finds(tmp_path: Path, n: int, quick_from: int,
                                                                     top4: float):
    """The add path's duplicate checks scan keeping fewer rows (`quick`), from some size starting
    from the rows' sign bits: the close rows they look for are found all the same."""
    sql, matrix, embedder = _matrix(tmp_path, n, max_rows=20_000, coarse_from=100, signs_from=10**9,
                                    quick_from=quick_from)
    exact = VectorMatrix(sql, matrix.dim, max_rows=20_000, coarse_from=10**9)
    matrix.load()
    exact.load()
    statements = [f"{fact} (note {i})" for i, fact in enumerate(FACTS)] + QUERIES
    overlap, close = [], 0
    for v in embedder.embed_batch(statements):
        for scope in (Scope(user_id="u2"), Scope()):
            a = matrix.nearest(v, scope, ("fact",), 16, quick=True)
            b = exact.nearest(v, scope, ("fact",), 16)
            assert a is not None and b is not None
            overlap.append(len(set(list(a.cosines)[:4]) & set(list(b.cosines)[:4])) / 4)
            want = [c for c in b.cosines.values() if c >= 0.8]
            close += len(want)
            assert len([c for c in a.cosines.values() if c >= 0.8]) == len(want)  # as many close rows
            if want:
                assert want[0] - max(a.cosines.values()) < 1e-3  # the closest, or a near-tie of it
            for mid, c in a.cosines.items():  # each with its exact cosine
                assert abs(exact.score([mid], v, scope, ("fact",))[mid] - c) < 1e-5
    assert close > 100 and sum(overlap) / len(overlap) >= top4


def test_int8_rows_give_float32_cosines_and_top_hits(tmp_path: Path):
    sql, matrix, embedder = _matrix(tmp_path, 2000, max_rows=10_000, coarse_from=10**9)
    matrix.load()
    rows = sql.conn.execute("SELECT id, vector FROM memories").fetchall()
    ids = [r[0] for r in rows]
    full = np.stack([np.frombuffer(r[1], np.float32) for r in rows])
    assert all(p.dtype == np.int8 for p in matrix._parts)  # a quarter of float32's memory
    same = []
    for q in QUERIES:
        v = np.asarray(embedder.embed(q), np.float32)
        exact = full @ v
        got = matrix.nearest(v, Scope(), ("fact",), 10)
        assert got is not None
        for mid, c in got.cosines.items():
            assert abs(c - exact[ids.index(mid)]) < 0.01
        best = {ids[i] for i in np.argsort(-exact)[:10]}
        same.append(len(best & set(got.cosines)) / 10)
        scored = matrix.score(ids[:5], v, Scope(), ("fact",))
        assert all(abs(scored[m] - exact[i]) < 0.01 for i, m in enumerate(ids[:5]))
    assert sum(same) / len(same) >= 0.9


def test_matrix_follows_the_change_log_and_reloads_when_it_was_trimmed(tmp_path: Path):
    sql, matrix, embedder = _matrix(tmp_path, 50, max_rows=1000)
    matrix.load()
    v = embedder.embed("Bob is allergic to peanuts")
    assert matrix.nearest(v, Scope(), ("fact",), 1).in_scope == 50
    with sql.write() as conn:
        conn.execute("UPDATE memories SET state = 'deleted' WHERE id IN ('m0', 'm1')")
        conn.execute("DELETE FROM memories WHERE id = 'm2'")
        conn.execute("UPDATE memories SET user_id = 'u9' WHERE id = 'm3'")
    assert matrix.nearest(v, Scope(), ("fact",), 1).in_scope == 47
    assert set(matrix.nearest(v, Scope(user_id="u9"), ("fact",), 5).cosines) == {"m3"}
    # other writers went on while this process was away, and the log was trimmed past it
    for i in range(4, 30):
        with sql.write() as conn:
            conn.execute("UPDATE memories SET state = 'deleted' WHERE id = ?", (f"m{i}",))
    assert sql.trim_changes(keep=5) > 0
    assert matrix.nearest(v, Scope(), ("fact",), 1).in_scope == 21
    assert matrix.nearest(v, Scope(user_id="nobody"), ("fact",), 1).in_scope == 0


def test_a_store_bigger_than_the_matrix_budget_is_searched_with_lancedb(tmp_path: Path):
    sql, matrix, embedder = _matrix(tmp_path, 30, max_rows=20)
    matrix.load()
    assert not matrix.ready
    assert matrix.nearest(embedder.embed("cello"), Scope(), ("fact",), 5) is None


def _same_answers(a: VectorMatrix, b: VectorMatrix, embedder: Any) -> None:
    for q in QUERIES:
        v = embedder.embed(q)
        for scope in (Scope(user_id="u1"), Scope(user_id="u9"), Scope()):
            x, y = a.nearest(v, scope, ("fact",), 10), b.nearest(v, scope, ("fact",), 10)
            assert x is not None and y is not None and x.in_scope == y.in_scope, (q, scope)
            assert x.cosines.keys() == y.cosines.keys()


def test_matrix_starts_from_its_file_copy_and_catches_up(tmp_path: Path):
    file = tmp_path / "matrix.npz"
    sql, first, embedder = _matrix(tmp_path, 300, max_rows=10_000, file=file, file_min_rows=10)
    first.load()
    with sql.write() as conn:  # a free slot in the copy
        conn.execute("UPDATE memories SET state = 'deleted' WHERE id = 'm5'")
    assert first.nearest(embedder.embed("bees"), Scope(), ("fact",), 3) is not None and first.rows == 299
    legacy = tmp_path / "vector-matrix.npz"  # format 1's copy: replaced
    legacy.write_bytes(b"old")
    assert first.source == "sqlite" and first.needs_saving and first.save() and file.exists()
    assert not first.needs_saving and not legacy.exists()
    vec = np.asarray(embedder.embed("Gustav keeps bees"), np.float32).tobytes()
    with sql.write() as conn:  # changes after the copy was written
        conn.execute("UPDATE memories SET state = 'deleted' WHERE id = 'm0'")
        conn.execute("UPDATE memories SET user_id = 'u9' WHERE id = 'm3'")
        conn.execute("INSERT INTO memories (id, kind, text, hash, user_id, state, vector, created_at, updated_at) "
                     "VALUES ('new', 'fact', 'Gustav keeps bees', 'hnew', 'u1', 'active', ?, 'x', 'x')", (vec,))
    second = VectorMatrix(sql, first.dim, max_rows=10_000, file=file, file_min_rows=10)
    second.load()
    assert second.source == "file" and second.rows == 299 and second._idmap.slot("m5") is None
    assert _signs_fit_rows(second)
    fresh = VectorMatrix(sql, first.dim, max_rows=10_000)
    fresh.load()
    _same_answers(second, fresh, embedder)
    assert "new" in second.nearest(embedder.embed("who keeps bees"), Scope(user_id="u1"), ("fact",), 3).cosines


def _saved(tmp_path: Path, n: int) -> tuple[SQLStore, VectorMatrix, Any, Path]:
    """A store of ``n`` rows and its matrix, loaded and saved to a file copy."""
    file = tmp_path / "matrix.bin"
    sql, first, embedder = _matrix(tmp_path, n, max_rows=10_000, file=file, file_min_rows=10)
    first.load()
    assert first.save()
    return sql, first, embedder, file


def test_a_file_copy_that_does_not_fit_the_store_is_not_used(tmp_path: Path):
    sql, first, embedder, file = _saved(tmp_path, 200)
    good = file.read_bytes()

    def load() -> VectorMatrix:
        m = VectorMatrix(sql, first.dim, max_rows=10_000, file=file, file_min_rows=10)
        m.load()
        return m

    file.write_bytes(good[: len(good) // 2])  # torn
    assert load().source == "sqlite"
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other_sql, other, _ = _matrix(other_dir, 200, max_rows=10_000, file=other_dir / "m.npz", file_min_rows=10)
    with other_sql.write() as conn:  # another store, at the same change-log position, other rows
        conn.execute("UPDATE memories SET id = 'x' || id")
    other.load()
    other.save()
    file.write_bytes((other_dir / "m.npz").read_bytes())
    m = load()
    assert m.source == "sqlite" and m._idmap.slot("m1") is not None
    file.write_bytes(good)
    for i in range(20):  # the log moves on and is trimmed past the copy's position
        with sql.write() as conn:
            conn.execute("UPDATE memories SET state = 'deleted' WHERE id = ?", (f"m{i}",))
    assert sql.trim_changes(keep=5) > 0
    m = load()
    assert m.source == "sqlite" and m.rows == 180
    fresh = VectorMatrix(sql, first.dim, max_rows=10_000)
    fresh.load()
    _same_answers(m, fresh, embedder)


def test_a_file_copy_without_sign_bits_derives_them(tmp_path: Path):
    """A copy written before the sign bits were kept (same format otherwise) is still used."""
    sql, first, embedder, file = _saved(tmp_path, 300)
    data = file.read_bytes()
    start = len(matrix_file.MAGIC) + 8
    size = int.from_bytes(data[start - 8:start], "little")
    header = json.loads(data[start:start + size])
    del header["arrays"]["signs"]
    shorter = json.dumps(header).encode()
    file.write_bytes(data[:start] + shorter.ljust(size) + data[start + size:])  # same length: arrays stay put
    second = VectorMatrix(sql, first.dim, max_rows=10_000, file=file, file_min_rows=10)
    second.load()
    assert second.source == "file" and second.rows == 300 and _signs_fit_rows(second)
    assert second.needs_saving and second.save() and not second.needs_saving  # written with them next time
    data = file.read_bytes()
    size = int.from_bytes(data[start - 8:start], "little")
    assert "signs" in json.loads(data[start:start + size])["arrays"]
    assert np.array_equal(second._signs[:, :300], first._signs[:, :300])
    _same_answers(second, first, embedder)


def _signs_fit_rows(m: VectorMatrix) -> bool:
    rows = np.concatenate([p[:m._n] for p in m._parts], axis=1)
    return bool(np.array_equal(m._signs[:, :m._n], signs.pack(rows)))


def test_sign_bits_and_their_comparison():
    rng = np.random.default_rng(7)
    rows = rng.integers(-127, 128, size=(2 * signs.SCAN + 5, 100)).astype(np.int8)  # 100 dims: a padded word
    bits = signs.pack(rows)
    assert bits.shape == (2, len(rows)) and bits.dtype == np.uint64
    q = rows[:1].astype(np.float32)
    qbits = signs.pack(q)
    positive = rows > 0
    differ = (positive != positive[0]).sum(axis=1)
    want = (255 - differ).astype(np.uint8)  # padding bits are alike
    assert np.array_equal(signs.shared(bits, qbits, len(rows)), want)
    assert np.array_equal(signs.shared(bits, qbits, 1000), want[:1000])
    slots = rng.choice(len(rows), 70_000, replace=False)
    got = signs.shared(bits, qbits, len(rows), slots, np.empty(signs.SCRATCH_BYTES // 4, np.float32))
    assert np.array_equal(got, want[slots])
    assert got.max() == 255 and signs.shared(bits, qbits, len(rows))[0] == 255  # the row itself


def test_purge_removes_the_matrix_file(tmp_path: Path, make_service: Any):
    svc = make_service(data_dir=tmp_path / "data")
    added = svc.add("The user's locker code is 4711", infer=False).events[0].id
    svc.search("warm up")
    assert svc.matrix.save() and svc.matrix.file.exists()
    svc.delete(added)
    svc.purge()
    assert not svc.matrix.file.exists()


def test_top_keeps_at_least_the_best_in_scope_scores():
    from mcp_memory.store.matrix import _top

    rng = np.random.default_rng(7)
    for masked in (0.0, 0.5, 0.999):
        scores = rng.standard_normal(300_000).astype(np.float32)
        scores[rng.random(len(scores)) < masked] = -np.inf
        finite = int(np.isfinite(scores).sum())
        want = min(6000, finite)
        got = _top(scores, want)
        assert len(got) >= want and np.isfinite(scores[got]).sum() >= want
        best = np.argsort(-scores)[:want]
        assert set(best.tolist()) <= set(got.tolist())
        if masked < 0.9:
            assert np.isfinite(scores[got]).all() and len(got) < 2 * want  # the cut, not everything


def test_full_text_on_the_threads_own_loop_answers_as_lancedb_sync_api(tmp_path: Path, make_service: Any):
    import threading

    svc = make_service(data_dir=tmp_path)
    svc.import_memories([{"text": t, "created_at": "2026-01-01T00:00:00Z"} for t in FACTS])
    svc.sync.drain(wait=True)
    table = svc.index._reader()
    # the fast path needs the async table the synchronous one wraps: a LanceDB upgrade that
    # drops it would silently bring back the slow path, so it is checked here
    assert hasattr(getattr(table, "_table", None), "query")
    for q in [*QUERIES, "Bob"]:
        for where in (None, "kind IN ('fact')"):
            want = table.search(q, query_type="fts")
            if where:
                want = want.where(where, prefilter=True)
            want = want.limit(5).select(["id", "_score"]).to_arrow()
            got = svc.index.text_scores(q, where, 5)
            assert [m for m, _ in got] == want.column("id").to_pylist()
            assert [s for _, s in got] == pytest.approx(want.column("_score").to_pylist())
    other: list[Any] = []
    thread = threading.Thread(target=lambda: other.extend(svc.index.text_scores("Bob peanuts", None, 3)))
    thread.start()
    thread.join()
    assert other and other == svc.index.text_scores("Bob peanuts", None, 3)
