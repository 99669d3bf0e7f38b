"""LanceDB, the search index: id, scope columns, text (full-text index) and vector.

It is derived data: every row comes from SQLite and the whole index can be rebuilt
from it (`Index.rebuild`). LanceDB is not safe for concurrent writers across
processes, so every write goes through `mcp_memory.store.sync` under one
inter-process lock; every read checks for the latest version, so a write is visible
to every process as soon as it is applied (the check costs nothing measurable).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mcp_memory.errors import StoreError
from mcp_memory.models import Scope

log = logging.getLogger(__name__)

TABLE = "memories"
OPEN_TIMEOUT = 120.0
READ_CONSISTENCY = timedelta(0)  # every read sees the latest version: writes are visible at once, in every process


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def where_clause(scope: Scope, kinds: Sequence[str]) -> str:
    parts = [f"kind IN ({', '.join(_quote(k) for k in kinds)})"]
    for field in ("user_id", "agent_id", "run_id"):
        value = getattr(scope, field)
        if value is not None:
            parts.append(f"{field} = {_quote(value)}")
    return " AND ".join(parts)


class VectorIndex:
    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self._db: Any = None
        self._table: Any = None
        self._mu = threading.RLock()
        self._ready = threading.Event()
        self._open_error: str | None = None

    def _schema(self) -> Any:
        import pyarrow as pa

        return pa.schema([
            pa.field("id", pa.string(), nullable=False),
            pa.field("kind", pa.string()),
            pa.field("user_id", pa.string()),
            pa.field("agent_id", pa.string()),
            pa.field("run_id", pa.string()),
            pa.field("text", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), self.dim)),
        ])

    def open(self) -> None:
        """Connect (importing lancedb takes ~1 s, so services call this off the request path).
        Every other method waits for it; if it fails, they raise its error."""
        try:
            import lancedb

            with self._mu:
                self.path.mkdir(parents=True, exist_ok=True)
                self._db = lancedb.connect(str(self.path), read_consistency_interval=READ_CONSISTENCY)
                self._table = self._load()
        except Exception as exc:
            self._open_error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._ready.set()

    def wait_open(self) -> None:
        if not self._ready.wait(OPEN_TIMEOUT):
            raise StoreError(f"the search index did not open within {OPEN_TIMEOUT:.0f}s")
        if self._open_error:
            raise StoreError(f"the search index at {self.path} could not be opened ({self._open_error}); "
                             "`mcp-memory reindex` rebuilds it from the database")

    def _load(self) -> Any:
        """The table if it is complete (right dimension, full-text index built), else None."""
        if TABLE not in self._db.list_tables().tables:
            return None
        table = self._db.open_table(TABLE)
        if table.schema.field("vector").type.list_size != self.dim:
            return None
        if not any(ix.index_type == "FTS" for ix in table.list_indices()):
            return None  # being created by a writer right now
        return table

    def refresh(self) -> None:
        """Re-read the latest version (after a read failed on a version cleaned up meanwhile)."""
        self.wait_open()
        with self._mu:
            self._table = self._load()

    def ensure_table(self) -> Any:
        """Create the table and its full-text index on first write. Call under the writer lock."""
        from lancedb.index import FTS, BTree

        self.wait_open()
        with self._mu:
            if self._table is None:
                table = None
                if TABLE in self._db.list_tables().tables:
                    table = self._db.open_table(TABLE)
                    if table.schema.field("vector").type.list_size != self.dim:
                        self._db.drop_table(TABLE)
                        table = None
                if table is None:
                    table = self._db.create_table(TABLE, schema=self._schema())
                indices = {ix.index_type for ix in table.list_indices()}
                if "BTree" not in indices and "BTREE" not in indices:
                    # upserts and deletes look rows up by id: an index keeps that from scanning the table
                    table.create_index("id", config=BTree(), replace=True)
                if "FTS" not in indices:
                    table.create_index("text", config=FTS(with_position=False), replace=True)
                self._table = table
            return self._table

    # -- writes (under the inter-process lock) --------------------------------------
    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        import pyarrow as pa
        import pyarrow.compute  # noqa: F401  (pa.compute)

        table = self.ensure_table()
        vectors = np.stack([np.asarray(r["vector"], dtype=np.float32) for r in rows])
        data = pa.table({
            "id": [r["id"] for r in rows],
            "kind": [r["kind"] for r in rows],
            "user_id": [r["user_id"] for r in rows],
            "agent_id": [r["agent_id"] for r in rows],
            "run_id": [r["run_id"] for r in rows],
            "text": [r["text"] for r in rows],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), self.dim),
        }, schema=self._schema())
        # A plain append for ids the table does not hold: at 100k rows merge_insert of one row took
        # ~13 ms, the id lookup (BTree) + append ~5 ms. Idempotent all the same: a replay after a
        # crash finds the appended ids and updates them in place.
        present = self._present(table, data.column("id").to_pylist())
        if present:
            mask = pa.array([i in present for i in data.column("id").to_pylist()])
            old = data.filter(mask)
            data = data.filter(pa.compute.invert(mask))
            table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(old)
        if data.num_rows:
            table.add(data)

    @staticmethod
    def _present(table: Any, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            res = table.search().where(f"id IN ({', '.join(_quote(x) for x in chunk)})").select(["id"]) \
                .limit(None).to_arrow()
            out.update(res.column("id").to_pylist())
        return out

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        self.wait_open()
        table = self._table
        if not ids or table is None:
            return
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            table.delete(f"id IN ({', '.join(_quote(x) for x in chunk)})")

    def drop(self) -> None:
        self.wait_open()
        with self._mu:
            if TABLE in self._db.list_tables().tables:
                self._db.drop_table(TABLE)
            self._table = None

    def compact(self, older_than: timedelta) -> None:
        """Fold small fragments together, update indices, drop versions older than ``older_than``."""
        self.wait_open()
        table = self._table
        if table is not None:
            with warnings.catch_warnings():
                # cleanup_older_than=0 is only asked for under the writer lock (purge); readers retry
                warnings.simplefilter("ignore", UserWarning)
                table.optimize(cleanup_older_than=older_than)

    # -- reads ---------------------------------------------------------------------
    def _reader(self) -> Any:
        self.wait_open()
        table = self._table
        if table is None and self._db is not None:
            self.refresh()
            table = self._table
        return table

    def vector_search(self, vector: np.ndarray, where: str, k: int) -> list[tuple[str, np.ndarray]]:
        table = self._reader()
        if table is None:
            return []
        res = (table.search(np.asarray(vector, dtype=np.float32)).where(where, prefilter=True)
               .limit(k).select(["id", "vector", "_distance"]).to_arrow())
        return list(zip(res.column("id").to_pylist(), _vectors(res)))

    def text_search(self, query: str, where: str, k: int) -> list[tuple[str, float, np.ndarray]]:
        table = self._reader()
        if table is None or not query.strip():
            return []
        res = (table.search(query, query_type="fts").where(where, prefilter=True)
               .limit(k).select(["id", "vector", "_score"]).to_arrow())
        return list(zip(res.column("id").to_pylist(), res.column("_score").to_pylist(), _vectors(res)))

    def text_scores(self, query: str, where: str | None, k: int) -> list[tuple[str, float]]:
        """Full-text (BM25) ids and scores, best first; ``where=None``: over every row."""
        table = self._reader()
        if table is None or not query.strip():
            return []
        inner = getattr(table, "_table", None)
        if hasattr(inner, "query") and _loops.usable():
            res = _loops.run(_fts(inner, query, where, k))
        else:
            q = table.search(query, query_type="fts")
            if where is not None:
                q = q.where(where, prefilter=True)
            res = q.limit(k).select(["id", "_score"]).to_arrow()
        hits = list(zip(res.column("id").to_pylist(), res.column("_score").to_pylist()))
        return sorted(hits, key=lambda h: h[1], reverse=True)

    def ids(self) -> set[str]:
        table = self._reader()
        if table is None:
            return set()
        return set(table.search().select(["id"]).limit(None).to_arrow().column("id").to_pylist())

    def count(self) -> int:
        table = self._reader()
        return table.count_rows() if table is not None else 0

    def version_count(self) -> int:
        table = self._reader()
        return len(table.list_versions()) if table is not None else 0

    def fragment_count(self) -> int:
        """Data files the latest version reads (each write adds one until a compaction folds them)."""
        table = self._reader()
        return int(table.stats()["fragment_stats"]["num_fragments"]) if table is not None else 0

    def file_count(self) -> int:
        return sum(1 for p in self.path.rglob("*") if p.is_file()) if self.path.exists() else 0


async def _fts(table: Any, query: str, where: str | None, k: int) -> Any:
    q = table.query().nearest_to_text(query)
    if where is not None:
        q = q.where(where)  # a prefilter, as in the synchronous query
    return await q.limit(k).select(["id", "_score"]).to_arrow()


class _ThreadLoops:
    """An event loop per thread, for the full-text query on every search.

    LanceDB's synchronous query hands the work to its one background event loop thread six
    times per query (the table schema three times, the query, each batch), and every hand-off
    needs the GIL: a full-text query took 4.8 ms alone, 7.3 ms while a matrix scan ran in another
    thread, 221 ms while pure Python did. The same query awaited on the calling thread's own
    loop (LanceDB's async API, which the synchronous table wraps) hands off once."""

    def __init__(self) -> None:
        self._local = threading.local()

    @staticmethod
    def usable() -> bool:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return True
        return False  # called from a coroutine: its loop cannot be re-entered

    def run(self, coro: Any) -> Any:
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = _LoopHolder()
        return holder.loop.run_until_complete(coro)


class _LoopHolder:
    def __init__(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:  # the thread ended: its loop's descriptors go with it
        self.loop.close()


_loops = _ThreadLoops()


def _vectors(res: Any) -> list[np.ndarray]:
    if res.num_rows == 0:
        return []
    col = res.column("vector").combine_chunks()
    flat = col.values.to_numpy(zero_copy_only=False)
    return list(flat.reshape(res.num_rows, -1))
