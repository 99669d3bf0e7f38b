"""MemoryService: the one typed API that the MCP server and the command line both call.

Opening is lazy and may run in the background (`start`), so a stdio server answers
`initialize` before LanceDB, the embedder and the stores are loaded; every method
waits for the open to finish and raises its error if it failed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mcp_memory import text as textlib
from mcp_memory import validate
from mcp_memory.config import Settings

if TYPE_CHECKING:
    from mcp_memory.agentic import AgentMemory
    from mcp_memory.bulk import ImportResult
    from mcp_memory.models import BlockList
from mcp_memory.embeddings import Embedder, EmbedderIdentity, make_embedder
from mcp_memory.errors import EmbedderMismatch, InvalidInput, MemoryServiceError, NotFound, StoreError
from mcp_memory.llm import LLM, make_llm
from mcp_memory.models import (
    AddResult,
    DeleteResult,
    History,
    HistoryEntry,
    Hit,
    Memory,
    MemoryEvent,
    MemoryList,
    Message,
    Scope,
    SearchResult,
    short_ts,
    utcnow,
)

log = logging.getLogger(__name__)


class MemoryService:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, llm: LLM | None = None) -> None:
        self.settings = settings
        self._embedder_given = embedder
        self._llm_given = llm
        self._open_lock = threading.Lock()
        self._opened = False
        self._starter: threading.Thread | None = None
        self._shown_blocks: list[tuple[str, list[Any]]] = []

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        """Open in a background thread; calls made meanwhile wait for it."""
        if self._starter is None and not self._opened:
            self._starter = threading.Thread(target=self._open_quietly, name="mcp-memory-open", daemon=True)
            self._starter.start()

    def _open_quietly(self) -> None:
        try:
            self.open()
        except MemoryServiceError as exc:  # reported again on the first call
            log.error("%s", exc)
        except Exception:
            log.exception("opening the memory store failed")

    def open(self) -> None:
        with self._open_lock:
            if self._opened:
                return
            from mcp_memory.agentic import AgentMemory
            from mcp_memory.search import Retriever
            from mcp_memory.semantic import SemanticEngine
            from mcp_memory.store.lock import InterProcessLock
            from mcp_memory.store.sql import SQLStore
            from mcp_memory.store.sync import IndexSync
            from mcp_memory.store.vectors import VectorIndex

            s = self.settings
            self.sql = SQLStore(s.sqlite_path, s.lock_dir)
            self.sql.open()
            self.embedder = self._embedder_given or make_embedder(s)
            self.identity = self.embedder.identity()
            self._check_identity(self.identity)
            self.llm = self._llm_given if self._llm_given is not None else make_llm(s)
            self.index = VectorIndex(s.lance_path, self.identity.dim)
            self.index.open()
            self.sync = IndexSync(self.sql, self.index, InterProcessLock(s.lock_dir / "index.lock"))
            self.sync.drain()
            if self.sql.count_active() != self.index.count():
                self.sync.reconcile()
            self.retriever = Retriever(self.sql, self.index, self.sync, self.embedder)
            self.engine = SemanticEngine(self.sql, self.retriever, self.sync, self.embedder, s.max_text_chars)
            self._agent = AgentMemory(s, self.sql, self.retriever, self.sync, self.embedder)
            for user_id, blocks in self._shown_blocks:
                self._agent.core._see(user_id, blocks)
            self._opened = True

    def core_snapshot(self, user_id: str | None = None) -> BlockList:
        """The core blocks straight from SQLite, without loading the search index or the embedder:
        what a server puts in its `initialize` instructions. The versions shown count as seen, so a
        later whole-block rewrite detects edits made by other clients since."""
        from mcp_memory.agentic import CoreMemory
        from mcp_memory.store.sql import SQLStore

        user = self.scope(user_id).user_id or self.settings.default_user_id
        if self._opened:
            return self._agent.core_read(user_id=user)
        sql = SQLStore(self.settings.sqlite_path, self.settings.lock_dir)
        try:
            sql.open()
            blocks = CoreMemory(sql).read(user)
        finally:
            sql.close()
        self._shown_blocks.append((user, blocks.blocks))
        return blocks

    def _check_identity(self, current: EmbedderIdentity) -> None:
        stored = self.sql.get_meta("embedder")
        value = json.dumps({"name": current.name, "dim": current.dim, "fingerprint": current.fingerprint})
        if stored is None or self.sql.count_active() == 0:
            if stored != value:
                with self.sql.write() as conn:
                    self.sql.set_meta(conn, "embedder", value)
            return
        old = EmbedderIdentity(**json.loads(stored))
        if old != current:
            raise EmbedderMismatch(
                f"this memory store was indexed with {old}, but the configured embedder is {current}; "
                "configure the original embedder again, or run `mcp-memory reindex` to re-embed every memory "
                "with the new one"
            )

    def close(self) -> None:
        if self._starter is not None:
            self._starter.join(timeout=30)
        if self._opened:
            self.sql.close()

    def _ready(self) -> None:
        if not self._opened:
            self.open()

    @property
    def is_open(self) -> bool:
        return self._opened

    @property
    def agent(self) -> AgentMemory:
        """The Letta-style API (core blocks, archival, recall) over the same store."""
        self._ready()
        return self._agent

    # -- validation helpers bound to these settings ------------------------------------------
    def scope(self, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None) -> Scope:
        return validate.scope(self.settings, user_id, agent_id, run_id)

    def _text(self, text: str, name: str = "text") -> str:
        return validate.text(text, self.settings.max_text_chars, name)

    # -- Mem0-style API ---------------------------------------------------------------------
    def add(self, text: str | None = None, messages: Sequence[dict[str, Any]] | None = None, *,
            user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
            metadata: dict[str, Any] | None = None, infer: bool = True, llm: LLM | None = None) -> AddResult:
        if (text is None) == (not messages):
            raise InvalidInput("pass either text or a non-empty messages list, not both")
        scope = self.scope(user_id, agent_id, run_id)
        clean_text = self._text(text) if text is not None else None
        msgs = validate.messages(messages, self.settings.max_text_chars) if messages else None
        meta = validate.metadata(metadata)
        self._ready()
        source_ids = None
        if msgs:
            with self.sql.write() as conn:  # the raw conversation is on disk before any model runs
                source_ids = self.sql.insert_messages(conn, msgs, scope)
        result = self.engine.add(text=clean_text, messages=msgs, scope=scope, metadata=meta, infer=infer,
                                 llm=llm or self.llm, source_ids=source_ids)
        if msgs:
            result.messages_logged = len(msgs)
        if text is not None and textlib.had_invisible(text):
            result.note = ((result.note or "") + " Invisible characters were removed.").strip()
        return result

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int = 10,
               threshold: float | None = None) -> SearchResult:
        query = self._text(query, "query")
        scope = self.scope(user_id, agent_id, run_id)
        if not 1 <= limit <= 100:
            raise InvalidInput("limit must be between 1 and 100")
        self._ready()
        hits = self.retriever.search(query, scope, limit=limit, filters=validate.metadata(filters, "filters"),
                                     threshold=threshold)
        return SearchResult(hits=[Hit(id=s.row.id, memory=s.row.text, score=s.score,
                                      created_at=short_ts(s.row.created_at) or "",
                                      updated_at=short_ts(s.row.updated_at) or "",
                                      metadata=s.row.metadata) for s in hits])

    def list(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
             page: int = 1, page_size: int = 100) -> MemoryList:
        scope = self.scope(user_id, agent_id, run_id)
        if page < 1 or not 1 <= page_size <= 1000:
            raise InvalidInput("page must be >= 1 and page_size between 1 and 1000")
        self._ready()
        rows, total = self.sql.list_memories(scope, "fact", page_size, (page - 1) * page_size)
        return MemoryList(memories=[_memory(r) for r in rows], page=page, page_size=page_size, total=total)

    def get(self, memory_id: str) -> Memory:
        mid = validate.memory_id(memory_id)
        self._ready()
        row = self.sql.get_memory(mid)
        if row is None:
            raise NotFound(f"no memory with id {mid}")
        memory = _memory(row)
        memory.state = row.state  # type: ignore[assignment]
        if row.source:
            memory.source = [Message(id=m["id"], role=m["role"], name=m["name"], content=m["content"],
                                     created_at=short_ts(m["created_at"]) or "", run_id=m["run_id"])
                             for m in self.sql.get_messages(row.source)]
        return memory

    def update(self, memory_id: str, text: str, reason: str | None = None) -> MemoryEvent:
        mid = validate.memory_id(memory_id)
        new = self._text(text)
        self._ready()
        vector = self.embedder.embed(new)
        now = utcnow()
        with self.sql.write() as conn:
            row = self.sql.get_memory(mid)
            if row is None or row.state != "active":
                raise NotFound(f"no active memory with id {mid}")
            if textlib.text_hash(new) == row.hash and new == row.text:
                return MemoryEvent(id=mid, memory=row.text, event="NONE", reason="text unchanged")
            self.sql.update_memory_text(conn, mid, new, textlib.text_hash(new), vector, None, now)
            self.sql.add_history(conn, mid, "UPDATE", row.text, new, reason or "updated by request", "tool", now)
        self.sync.drain()
        return MemoryEvent(id=mid, memory=new, event="UPDATE", previous=row.text)

    def delete(self, memory_id: str, reason: str | None = None) -> MemoryEvent:
        mid = validate.memory_id(memory_id)
        self._ready()
        now = utcnow()
        with self.sql.write() as conn:
            row = self.sql.get_memory(mid)
            if row is None or row.state != "active":
                raise NotFound(f"no active memory with id {mid}")
            self.sql.mark_deleted(conn, mid, now)
            self.sql.add_history(conn, mid, "DELETE", row.text, None, reason or "deleted by request", "tool", now)
        self.sync.drain()
        return MemoryEvent(id=mid, memory=row.text, event="DELETE")

    def history(self, memory_id: str) -> History:
        mid = validate.memory_id(memory_id)
        self._ready()
        rows = self.sql.history(mid)
        if not rows and self.sql.get_memory(mid) is None:
            raise NotFound(f"no memory with id {mid}")
        return History(memory_id=mid, entries=[
            HistoryEntry(event=r["event"], old=r["old_value"], new=r["new_value"], reason=r["reason"],
                         actor=r["actor"], at=short_ts(r["created_at"]) or "") for r in rows])

    def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> DeleteResult:
        if user_id is None and agent_id is None and run_id is None:
            raise InvalidInput("name the user_id, agent_id or run_id to erase; nothing is erased without a scope")
        checked = self.scope(user_id, agent_id, run_id)
        scope = Scope(user_id=checked.user_id if user_id is not None else None, agent_id=agent_id, run_id=run_id)
        self._ready()
        with self.sql.write() as conn:
            ids = self.sql.erase_scope(conn, scope, ("fact", "archival"))
            if user_id is not None and agent_id is None and run_id is None:
                from mcp_memory.store.blocks import erase_user

                erase_user(conn, checked.user_id or user_id)
        self.purge_disk()
        return DeleteResult(deleted=len(ids), note="erased from the database, its history, the message log "
                                                   "and the search index, and compacted on disk")

    def purge_disk(self) -> None:
        """Make deletions physical: apply them to the index, drop old index versions, vacuum SQLite."""
        self.sync.drain()
        self.sync.compact_now(timedelta(0))
        with self.sync.lock.hold():
            try:
                self.sql.vacuum()
            except Exception as exc:  # sqlite3 errors: another process holds a read snapshot
                raise StoreError(f"rows were deleted but compacting the database failed ({exc}); "
                                 "run `mcp-memory purge` when no other client is busy") from None

    def import_memories(self, rows: Iterable[str | Mapping[str, Any]], *, user_id: str | None = None,
                        agent_id: str | None = None, run_id: str | None = None,
                        batch_size: int = 5000) -> ImportResult:
        """Bulk-load memories (texts, or objects with text, scope, metadata, tags, kind, dates):
        batched embedding, one SQLite transaction per batch, batched index writes. Exact
        duplicates are skipped; no extraction or near-duplicate merging runs (`mcp_memory.bulk`)."""
        from mcp_memory.bulk import import_memories

        return import_memories(self, rows, user_id=user_id, agent_id=agent_id, run_id=run_id,
                               batch_size=batch_size)

    # -- maintenance --------------------------------------------------------------------------
    def reindex(self) -> int:
        """Re-embed every active memory with the configured embedder and rebuild the index."""
        with self._open_lock:
            from mcp_memory.store.lock import InterProcessLock
            from mcp_memory.store.sql import SQLStore
            from mcp_memory.store.sync import IndexSync
            from mcp_memory.store.vectors import VectorIndex

            s = self.settings
            sql = SQLStore(s.sqlite_path, s.lock_dir)
            sql.open()
            embedder = self._embedder_given or make_embedder(s)
            identity = embedder.identity()
            for batch in sql.iter_active(512):
                vectors = embedder.embed_batch([r.text for r in batch])
                with sql.write() as conn:
                    conn.executemany("UPDATE memories SET vector = ? WHERE id = ?",
                                     [(v.astype("float32").tobytes(), r.id) for r, v in zip(batch, vectors)])
            with sql.write() as conn:
                sql.set_meta(conn, "embedder", json.dumps(
                    {"name": identity.name, "dim": identity.dim, "fingerprint": identity.fingerprint}))
            index = VectorIndex(s.lance_path, identity.dim)
            index.open()
            n = IndexSync(sql, index, InterProcessLock(s.lock_dir / "index.lock")).rebuild()
            sql.close()
            self._opened = False
        return n

    def stats(self) -> dict[str, Any]:
        self._ready()
        c = self.sql.conn
        return {
            "data_dir": str(self.settings.data_dir),
            "memories_active": self.sql.count_active("fact"),
            "memories_deleted": c.execute("SELECT count(*) FROM memories WHERE state != 'active'").fetchone()[0],
            "history_entries": c.execute("SELECT count(*) FROM history").fetchone()[0],
            "messages": c.execute("SELECT count(*) FROM messages").fetchone()[0],
            "index_rows": self.index.count(),
            "index_versions": self.index.version_count(),
            "index_pending": len(self.sql.pending_index()),
            "embedder": str(self.identity),
            "llm": self.llm.name if self.llm else None,
        }


def _memory(row: Any) -> Memory:
    return Memory(id=row.id, memory=row.text, user_id=row.user_id, agent_id=row.agent_id, run_id=row.run_id,
                  metadata=row.metadata, created_at=short_ts(row.created_at) or "",
                  updated_at=short_ts(row.updated_at) or "")
