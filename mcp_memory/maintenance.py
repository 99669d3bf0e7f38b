"""Store maintenance outside the request path: re-embedding everything, and the health read
`mcp-memory doctor` makes without opening (and so migrating or repairing) the store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from mcp_memory.config import Settings
from mcp_memory.embeddings import Embedder, EmbedderIdentity
from mcp_memory.errors import StoreError

Progress = Callable[[int, int], None]
BATCH = 512


def reindex(s: Settings, embedder: Embedder, progress: Progress | None = None) -> int:
    """Re-embed every active memory and logged message with ``embedder``, record it as the
    store's embedder and rebuild the search index; returns the rows indexed. The caller
    holds the service closed meanwhile."""
    from mcp_memory.store import messages as msgsql
    from mcp_memory.store.lock import InterProcessLock
    from mcp_memory.store.sql import SQLStore
    from mcp_memory.store.sync import IndexSync
    from mcp_memory.store.vectors import VectorIndex

    sql = SQLStore(s.sqlite_path, s.lock_dir)
    sql.open()
    identity = embedder.identity()
    total = (sql.conn.execute("SELECT count(*) FROM memories WHERE state = 'active'").fetchone()[0]
             + sql.conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    done = 0
    for batch in sql.iter_active(BATCH):
        vectors = embedder.embed_batch([r.text for r in batch])
        with sql.write() as conn:
            conn.executemany("UPDATE memories SET vector = ? WHERE id = ?",
                             [(v.astype("float32").tobytes(), r.id) for r, v in zip(batch, vectors)])
        done += len(batch)
        if progress is not None:
            progress(done, total)
    for rows in msgsql.batches(sql.conn, BATCH):  # the recall log's vectors too
        vectors = embedder.embed_batch([msgsql.message_text(r["name"], r["content"], r["created_at"]) for r in rows])
        with sql.write() as conn:
            msgsql.set_vectors(conn, zip((r["id"] for r in rows), vectors), overwrite=True)
        done += len(rows)
        if progress is not None:
            progress(done, max(total, done))
    with sql.write() as conn:
        sql.set_meta(conn, "embedder", json.dumps(
            {"name": identity.name, "dim": identity.dim, "fingerprint": identity.fingerprint}))
    index = VectorIndex(s.lance_path, identity.dim)
    index.open()
    n = IndexSync(sql, index, InterProcessLock(s.lock_dir / "index.lock")).rebuild()
    sql.close()
    return n


def health(s: Settings) -> dict[str, Any]:
    """Schema migrations applied and pending, the embedder recorded in the store, SQLite's active
    rows against the search index's rows, and the index outbox. Keys are missing for parts that
    do not exist yet (a new data directory)."""
    from mcp_memory.store.schema import migrations
    from mcp_memory.store.sql import SQLStore

    out: dict[str, Any] = {"sqlite_path": str(s.sqlite_path), "lance_path": str(s.lance_path)}
    if not s.sqlite_path.exists():
        return out
    sql = SQLStore(s.sqlite_path, s.lock_dir)  # not opened: opening applies migrations
    try:
        out["migrations_applied"] = [m.name for m in migrations.applied(sql.db)]
        out["migrations_pending"] = [m.name for m in migrations.pending(sql.db)]
        if out["migrations_pending"]:
            return out
        stored = sql.get_meta("embedder")
        out["embedder_stored"] = str(EmbedderIdentity(**json.loads(stored))) if stored else None
        out["rows_active"] = sql.count_active()
        out["index_pending"] = len(sql.pending_index())
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {s.sqlite_path}: {exc}") from None
    finally:
        sql.close()
    if s.lance_path.exists():
        from mcp_memory.store.vectors import VectorIndex

        dim = json.loads(stored)["dim"] if stored else 1
        index = VectorIndex(s.lance_path, dim)
        index.open()
        out["index_rows"] = index.count()
        out["index_versions"] = index.version_count()
    return out
