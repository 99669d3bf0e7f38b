"""LanceDB, the search index: id, scope columns, text (full-text index) and vector.

It is derived data: every row comes from SQLite and the whole index can be rebuilt
from it (`Index.rebuild`). LanceDB is not safe for concurrent writers across
processes, so every write goes through `mcp_memory.store.sync` under one
inter-process lock; readers in other processes see new versions within
`READ_CONSISTENCY` seconds.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mcp_memory.models import Scope

log = logging.getLogger(__name__)

TABLE = "memories"
READ_CONSISTENCY = timedelta(milliseconds=250)


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
        import lancedb

        self.path.mkdir(parents=True, exist_ok=True)
        self._db = lancedb.connect(str(self.path), read_consistency_interval=READ_CONSISTENCY)
        self._table = self._open_or_create()

    def _open_or_create(self) -> Any:
        if TABLE in self._db.list_tables().tables:
            table = self._db.open_table(TABLE)
            dim = table.schema.field("vector").type.list_size
            if dim != self.dim:
                return None  # caller decides: mismatch is reported by the service
            return table
        return None

    @property
    def table(self) -> Any:
        return self._table

    def ensure_table(self) -> Any:
        """Create the table (and its full-text index) on first write. Call under the writer lock."""
        if self._table is None:
            if TABLE in self._db.list_tables().tables:
                self._db.drop_table(TABLE)
            self._table = self._db.create_table(TABLE, schema=self._schema())
        self._ensure_fts()
        return self._table

    def _ensure_fts(self) -> None:
        from lancedb.index import FTS

        if not any(ix.index_type == "FTS" for ix in self._table.list_indices()):
            self._table.create_index("text", config=FTS(with_position=False), replace=True)

    # -- writes (under the inter-process lock) --------------------------------------
    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        import pyarrow as pa

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
        (table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data))

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids or self._table is None:
            return
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            self._table.delete(f"id IN ({', '.join(_quote(x) for x in chunk)})")

    def drop(self) -> None:
        if TABLE in self._db.list_tables().tables:
            self._db.drop_table(TABLE)
        self._table = None

    def compact(self, older_than: timedelta) -> None:
        """Fold small fragments together, update indices, drop versions older than ``older_than``."""
        if self._table is not None:
            with warnings.catch_warnings():
                # cleanup_older_than=0 is only asked for under the writer lock (purge); readers retry
                warnings.simplefilter("ignore", UserWarning)
                self._table.optimize(cleanup_older_than=older_than)

    # -- reads ---------------------------------------------------------------------
    def _refresh(self) -> bool:
        if self._table is None and self._db is not None:
            self._table = self._open_or_create()
        return self._table is not None

    def vector_search(self, vector: np.ndarray, where: str, k: int) -> list[tuple[str, np.ndarray]]:
        if not self._refresh():
            return []
        res = (self._table.search(np.asarray(vector, dtype=np.float32)).where(where, prefilter=True)
               .limit(k).select(["id", "vector", "_distance"]).to_arrow())
        return list(zip(res.column("id").to_pylist(), _vectors(res)))

    def text_search(self, query: str, where: str, k: int) -> list[tuple[str, float, np.ndarray]]:
        if not self._refresh() or not query.strip():
            return []
        res = (self._table.search(query, query_type="fts").where(where, prefilter=True)
               .limit(k).select(["id", "vector", "_score"]).to_arrow())
        return list(zip(res.column("id").to_pylist(), res.column("_score").to_pylist(), _vectors(res)))

    def ids(self) -> set[str]:
        if not self._refresh():
            return set()
        return set(self._table.search().select(["id"]).limit(None).to_arrow().column("id").to_pylist())

    def count(self) -> int:
        return self._table.count_rows() if self._refresh() else 0

    def version_count(self) -> int:
        return len(self._table.list_versions()) if self._refresh() else 0


def _vectors(res: Any) -> list[np.ndarray]:
    if res.num_rows == 0:
        return []
    col = res.column("vector").combine_chunks()
    flat = col.values.to_numpy(zero_copy_only=False)
    return list(flat.reshape(res.num_rows, -1))
