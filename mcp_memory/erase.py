"""Erasing for good: a scope's rows, already-deleted rows, then the copies left on disk.

A delete in SQLite or LanceDB only marks or unlinks: the text stays in free pages, the WAL,
the FTS index and old LanceDB versions. `make_physical` applies the deletions to the search
index, drops its old versions and vacuums SQLite, so no byte of the text is left.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from mcp_memory.errors import StoreError
from mcp_memory.graph import GraphEngine
from mcp_memory.models import Scope
from mcp_memory.store import blocks, graph
from mcp_memory.store.sql import SQLStore
from mcp_memory.store.sync import IndexSync

Progress = Callable[[int, int], None]


def erase_scope(sql: SQLStore, engine: GraphEngine, scope: Scope, whole_user: str | None) -> list[str]:
    """Every memory of ``scope``, its history and logged messages; for ``whole_user`` also the
    core blocks and the graph. Returns the erased memory ids."""
    with sql.write() as conn:
        ids = sql.erase_scope(conn, scope, ("fact", "archival"))
        engine.forget_memories(conn, ids)
        if whole_user is not None:
            blocks.erase_user(conn, whole_user)
            graph.erase_user(conn, whole_user)
    return ids


def purge_deleted(sql: SQLStore, engine: GraphEngine, user_id: str | None, all_history: bool) -> list[str]:
    """Soft-deleted memories and their history (of one user, or of all); with ``all_history``
    also superseded texts, ended relations and old core-memory versions."""
    scope_sql, params = ("user_id = ?", [user_id]) if user_id else ("1", [])
    with sql.write() as conn:
        ids = [r[0] for r in conn.execute(f"SELECT id FROM memories WHERE state != 'active' AND {scope_sql}", params)]
        engine.forget_memories(conn, ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            conn.execute(f"DELETE FROM history WHERE memory_id IN ({marks})", chunk)
            conn.execute(f"DELETE FROM memories WHERE id IN ({marks})", chunk)
        if all_history:
            graph.erase_ended(conn, user_id)
            conn.execute(f"DELETE FROM history WHERE memory_id IN (SELECT id FROM memories WHERE {scope_sql})", params)
            conn.execute(f"DELETE FROM block_history WHERE {scope_sql} AND id NOT IN (SELECT max(id) FROM "
                         "block_history GROUP BY user_id, label)", params)
    return ids


def make_physical(sql: SQLStore, sync: IndexSync, progress: Progress | None = None) -> None:
    """Apply deletions to the index, drop old index versions, vacuum SQLite. ``progress(step, 4)``
    after each step (the rows themselves, erased by the caller, are step 1)."""
    step = progress or (lambda done, total: None)
    step(1, 4)
    from mcp_memory.store import matrix_file

    matrix_file.remove(sql.path.parent)  # it may hold vectors of what was erased
    sync.wait_ready()
    sync.drain()
    step(2, 4)
    sync.compact_now(timedelta(0))
    step(3, 4)
    with sync.lock.hold():
        try:
            sql.vacuum()
        except Exception as exc:  # sqlite3 errors: another process holds a read snapshot
            raise StoreError(f"rows were deleted but compacting the database failed ({exc}); "
                             "run `mcp-memory purge` when no other client is busy") from None
    step(4, 4)
