"""Keeps the LanceDB index in step with SQLite through an outbox.

Every SQLite write that changes a memory also appends its id to ``index_queue`` in
the same transaction. `IndexSync.drain` then applies the queue to LanceDB under the
inter-process writer lock, reading each row's *current* state from SQLite (so
replays are idempotent and order does not matter), and removes what it applied.
A crash between the two steps leaves the queue for the next drain: the index
catches up at start-up, after any write, or before a search.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from mcp_memory.store.lock import InterProcessLock
from mcp_memory.store.sql import SQLStore
from mcp_memory.store.vectors import VectorIndex

log = logging.getLogger(__name__)

BATCH = 2000
COMPACT_EVERY = 64           # LanceDB writes between compactions
KEEP_VERSIONS_FOR = timedelta(seconds=30)


class IndexSync:
    def __init__(self, sql: SQLStore, index: VectorIndex, lock: InterProcessLock) -> None:
        self.sql = sql
        self.index = index
        self.lock = lock
        self._writes = 0
        self._compactor: threading.Thread | None = None

    def drain(self, wait: bool = True) -> int:
        """Apply pending index work. With ``wait=False`` return at once if another
        process or thread is already applying it (it will finish the job)."""
        if not self.sql.has_pending_index():
            return 0
        if not self.lock.acquire(60.0 if wait else 0.0):
            if wait:
                from mcp_memory.errors import StoreError

                raise StoreError("timed out waiting for the search index writer lock")
            return 0
        try:
            return self._drain_locked()
        finally:
            self.lock.release()
            self._maybe_compact()

    def _drain_locked(self) -> int:
        applied = 0
        while True:
            pending = self.sql.pending_index(BATCH)
            if not pending:
                return applied
            ids = list(dict.fromkeys(mid for _, mid in pending))
            rows = self.sql.get_memories(ids, with_vector=True)
            upserts = [
                {"id": r.id, "kind": r.kind, "user_id": r.user_id, "agent_id": r.agent_id, "run_id": r.run_id,
                 "text": r.text, "vector": r.vector}
                for r in rows.values() if r.state == "active" and r.vector is not None
            ]
            keep = {u["id"] for u in upserts}
            deletes = [i for i in ids if i not in keep]
            if deletes:
                self.index.delete(deletes)
                self._writes += 1
            if upserts:
                self.index.upsert(upserts)
                self._writes += 1
            self.sql.ack_index([seq for seq, _ in pending])
            applied += len(pending)

    def rebuild(self) -> int:
        """Drop the index and re-create it from every active row in SQLite."""
        with self.lock.hold():
            with self.sql.write() as conn:
                conn.execute("DELETE FROM index_queue")
            self.index.drop()
            self.index.ensure_table()
            n = 0
            for batch in self.sql.iter_active(BATCH):
                rows = [
                    {"id": r.id, "kind": r.kind, "user_id": r.user_id, "agent_id": r.agent_id, "run_id": r.run_id,
                     "text": r.text, "vector": r.vector}
                    for r in batch if r.vector is not None
                ]
                self.index.upsert(rows)
                n += len(rows)
            self.index.compact(timedelta(0))
            return n

    def reconcile(self) -> tuple[int, int]:
        """Compare SQLite's active ids with the index's and queue every difference.
        Returns (missing from index, stale in index)."""
        with self.lock.hold():
            active = self.sql.active_ids()
            indexed = self.index.ids()
            missing, stale = active - indexed, indexed - active
            if missing or stale:
                with self.sql.write() as conn:
                    SQLStore.enqueue_index(conn, sorted(missing | stale))
        if missing or stale:
            log.warning("search index out of step with SQLite: %d missing, %d stale; repairing",
                        len(missing), len(stale))
            self.drain()
        return len(missing), len(stale)

    def compact_now(self, older_than: timedelta = KEEP_VERSIONS_FOR) -> None:
        with self.lock.hold():
            self.index.compact(older_than)
            self._writes = 0

    def _maybe_compact(self) -> None:
        if self._writes < COMPACT_EVERY or (self._compactor and self._compactor.is_alive()):
            return
        self._writes = 0

        def run() -> None:
            try:
                self.compact_now()
            except Exception:  # a failed compaction only delays the next one
                log.exception("background compaction of the search index failed")

        self._compactor = threading.Thread(target=run, name="mcp-memory-compact", daemon=True)
        self._compactor.start()
