"""MemoryService: the one typed API that the MCP server and the command line both call.

Opening is lazy and may run in the background (`start`), so a stdio server answers
`initialize` before LanceDB, the embedder and the stores are loaded; every method
waits for the open to finish and raises its error if it failed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mcp_memory import graph_rules, validate
from mcp_memory import text as textlib
from mcp_memory.config import Settings

if TYPE_CHECKING:
    from mcp_memory.agentic import AgentMemory
    from mcp_memory.graph_api import GraphMemory
    from mcp_memory.bulk import ImportResult
    from mcp_memory.models import BlockList
from mcp_memory.embeddings import Embedder, EmbedderIdentity, make_embedder, try_embed
from mcp_memory.errors import EmbedderMismatch, InvalidInput, MemoryServiceError, NotFound, ProviderError
from mcp_memory.jobs import MAX_ATTEMPTS, Job, JobQueue, JobWorker
from mcp_memory.llm import LLM, make_llm
from mcp_memory.models import (
    AddResult,
    ContextBlock,
    DeleteResult,
    History,
    HistoryEntry,
    Hit,
    JobList,
    Memory,
    MemoryEvent,
    MemoryList,
    Message,
    Scope,
    SearchResult,
    compact_json,
    short_ts,
    utcnow,
)

log = logging.getLogger(__name__)
MATRIX_SAVE_AFTER = 5.0  # seconds after the matrix loaded from SQLite: its file copy is written then
Progress = Callable[[int, int], None]  # (done, total) of a long job


class MemoryService:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, llm: LLM | None = None) -> None:
        self.settings = settings
        self._embedder_given = embedder
        self._llm_given = llm
        self._open_lock = threading.Lock()
        self._opened = False
        self._closing = False
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
            from mcp_memory.graph import GraphEngine
            from mcp_memory.graph_api import GraphMemory
            from mcp_memory.search import Retriever
            from mcp_memory.semantic import SemanticEngine
            from mcp_memory.store.lock import InterProcessLock
            from mcp_memory.store import matrix_file
            from mcp_memory.store.matrix import VectorMatrix
            from mcp_memory.store.sql import SQLStore
            from mcp_memory.store.sync import IndexSync
            from mcp_memory.store.vectors import VectorIndex

            s = self.settings
            self.sql = SQLStore(s.sqlite_path, s.lock_dir)
            self.sql.open()
            self.embedder = self._embedder_given or make_embedder(s)
            self.identity = self._identity()
            self.llm = self._llm_given if self._llm_given is not None else make_llm(s)
            self.index = VectorIndex(s.lance_path, self.identity.dim)
            self.sync = IndexSync(self.sql, self.index, InterProcessLock(s.lock_dir / "index.lock"),
                                  self.embedder.embed_batch)
            # The index opens in the background: writes (SQLite + outbox) are accepted at once,
            # searches wait for it.
            # The vector matrix loads from SQLite meanwhile (sqlite releases the GIL while it reads,
            # lancedb's import holds it); searches wait for it, LanceDB's vector search is the
            # fallback for stores bigger than MCP_MEMORY_VECTOR_CACHE_MB.
            self.matrix = None
            if s.vector_cache_mb:
                self.matrix = VectorMatrix(self.sql, self.identity.dim,
                                           s.vector_cache_mb * 2**20 // VectorMatrix.row_bytes(self.identity.dim),
                                           file=matrix_file.path_in(s.data_dir))
                threading.Thread(target=self._load_matrix, name="mcp-memory-matrix", daemon=True).start()
            self._indexer = threading.Thread(target=self._open_index, name="mcp-memory-index-open", daemon=True)
            self._indexer.start()
            self.retriever = Retriever(self.sql, self.index, self.sync, self.embedder, self.matrix)
            self.graph_engine = GraphEngine(self.sql)
            self._graph = GraphMemory(s, self.sql, self.graph_engine)
            self.engine = SemanticEngine(self.sql, self.retriever, self.sync, self.embedder, s.max_text_chars,
                                         s.llm_timeout, self.graph_engine)
            self._agent = AgentMemory(s, self.sql, self.retriever, self.sync, self.embedder)
            for user_id, blocks in self._shown_blocks:
                self._agent.core._see(user_id, blocks)
            self.jobs = JobQueue(self.sql)
            self._job_worker = None
            if self.llm is not None:  # jobs need the model; a process without one leaves them to others
                self._job_worker = JobWorker(self.jobs, self._run_job, lease_seconds=2 * s.llm_timeout + 30)
                self._job_worker.start()
            self._opened = True

    def _open_index(self) -> None:
        try:
            self.sync.startup()
        except Exception:  # searches report it; writes keep going into SQLite and the outbox
            log.exception("opening the search index failed")

    def _load_matrix(self) -> None:
        assert self.matrix is not None
        try:
            self.matrix.load()
        except Exception:
            if self._closing:  # closed while loading
                return
            log.exception("loading the vector matrix failed; searching with LanceDB alone")
        from mcp_memory.process import release_free_memory

        release_free_memory()  # the load's batches are gone: give their pages back
        if self.matrix.needs_saving:  # once start-up is over: the next process starts from it
            timer = threading.Timer(MATRIX_SAVE_AFTER, self._save_matrix)
            timer.daemon = True
            timer.start()

    def _save_matrix(self) -> None:
        if self._closing or not self._opened or self.matrix is None:
            return
        try:
            self.matrix.save()
        except Exception as exc:  # derived data: the next process loads from SQLite instead
            log.info("could not write the vector matrix file: %s", exc)

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

    def _identity(self) -> EmbedderIdentity:
        """The configured embedder's identity, checked against the store's. If the embedding
        endpoint cannot be reached, the store's record stands in when the model name matches,
        so memory keeps working (writes are embedded later) instead of failing to open."""
        try:
            identity = self.embedder.identity()
        except ProviderError as exc:
            stored = self.sql.get_meta("embedder")
            old = EmbedderIdentity(**json.loads(stored)) if stored else None
            if old is not None and old.name == self.embedder.name:
                log.warning("%s; using the store's record of the embedder (%s) until it answers", exc, old)
                self.embedder.dim = old.dim
                return old
            if self.embedder.dim:
                log.warning("%s; fingerprint not verified yet", exc)
                return EmbedderIdentity(self.embedder.name, self.embedder.dim, "unverified")
            raise ProviderError(f"{exc}; cannot learn the vector size: start the endpoint or set "
                                "MCP_MEMORY_EMBED_DIMENSIONS") from None
        self._check_identity(identity)
        return identity

    def _check_identity(self, current: EmbedderIdentity) -> None:
        stored = self.sql.get_meta("embedder")
        value = json.dumps({"name": current.name, "dim": current.dim, "fingerprint": current.fingerprint})
        if stored is None or not self.sql.has_active():
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
            self._closing = True
            if self._job_worker is not None:
                self._job_worker.stop()
            self._indexer.join(timeout=30)
            if self.sync.is_ready:
                self.sync.stop(flush=True)
            self.retriever.close()
            self.sql.close()
            self._opened = self._closing = False

    def _ready(self) -> None:
        if not self._opened:
            self.open()

    @property
    def is_open(self) -> bool:
        return self._opened

    @property
    def started(self) -> bool:
        """The background start-up is over: the store open, the search index and the vector matrix
        loaded (or failed to)."""
        if not self._opened or self._indexer.is_alive():
            return False
        return self.matrix is None or self.matrix.load_finished

    @property
    def answers_in_process(self) -> bool:
        """Whether a call that needs no model answers in milliseconds now, from this process alone:
        the store open, the search index and the vector matrix loaded, and the embedder in process
        (WordLlama, not an HTTP endpoint). The MCP layer runs such calls on its event loop instead of
        handing them to a worker thread (`mcp_memory.tooling.run`)."""
        if not self._opened or not self.sync.is_ready or self.settings.embedder != "wordllama":
            return False
        return self.matrix is not None and self.matrix.ready

    @property
    def graph(self) -> GraphMemory:
        """The graph and temporal API (entities, relations, as_of) over the same store."""
        self._ready()
        return self._graph

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
            metadata: dict[str, Any] | None = None, infer: bool = True, llm: LLM | None = None,
            wait: bool | None = None) -> AddResult:
        """Remember ``text`` or ``messages``. With a configured LLM endpoint and ``wait`` false (the
        default unless MCP_MEMORY_ADD_WAIT=true), the input is stored as a background job and the
        call returns at once; `jobs` reports the events later."""
        if (text is None) == (not messages):
            raise InvalidInput("pass either text or a non-empty messages list, not both")
        scope = self.scope(user_id, agent_id, run_id)
        clean_text = self._text(text) if text is not None else None
        msgs = validate.messages(messages, self.settings.max_text_chars) if messages else None
        meta = validate.metadata(metadata)
        self._ready()
        wait = self.settings.add_wait if wait is None else wait
        background = not wait and infer and llm is None and self._job_worker is not None
        source_ids = None
        job_id = None
        if msgs or background:
            with self.sql.write() as conn:  # the raw input is on disk before any model runs
                source_ids = self.sql.insert_messages(conn, msgs, scope) if msgs else None
                if background:
                    job_id = JobQueue.enqueue(conn, {"text": clean_text, "messages": msgs,
                                                     "scope": scope.model_dump(), "metadata": meta,
                                                     "infer": infer, "source_ids": source_ids})
        if job_id is not None:
            assert self._job_worker is not None
            self._job_worker.notify()
            return AddResult(events=[], extraction="queued", job_id=job_id, messages_logged=len(msgs) if msgs else None,
                             note="Stored; facts are being extracted in the background. memory_jobs(job_id) "
                                  "shows the events when done.")
        result = self.engine.add(text=clean_text, messages=msgs, scope=scope, metadata=meta, infer=infer,
                                 llm=llm or self.llm, source_ids=source_ids)
        if msgs:
            result.messages_logged = len(msgs)
        if text is not None and textlib.had_invisible(text):
            result.note = ((result.note or "") + " Invisible characters were removed.").strip()
        return result

    def _run_job(self, job: Job) -> None:
        p = job.payload
        args = {"text": p["text"], "messages": p["messages"], "scope": Scope(**p["scope"]),
                "metadata": p["metadata"], "source_ids": p["source_ids"]}

        def done(conn: Any, events: list[MemoryEvent]) -> None:
            JobQueue.mark_done(conn, job.id, AddResult(events=events, extraction="queued"))

        if job.attempts > MAX_ATTEMPTS:  # it kept failing: keep the input, as given, and say so
            result = self.engine.add(**args, infer=False, llm=None, on_commit=done)
            with self.sql.write() as conn:
                self.jobs.mark_failed(conn, job.id, "failed repeatedly; the input was stored as given", result)
            return
        result = self.engine.add(**args, infer=p["infer"], llm=self.llm, on_commit=done)
        self.jobs.set_result(job.id, result)

    def job_status(self, job_id: str | None = None, user_id: str | None = None) -> JobList:
        """One background job (by id), or the most recent ones of a user, with counts by state."""
        self._ready()
        if job_id is not None:
            jid = job_id.strip().lower().replace("-", "")
            job = self.jobs.get(jid) if len(jid) == 32 else None
            if job is None:
                raise NotFound(f"no background job with id {job_id[:40]!r}")
            jobs = [job]
        else:
            jobs = self.jobs.recent(self.scope(user_id).user_id or "")
        return JobList(jobs=jobs, counts=self.jobs.counts())

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int = 10,
               threshold: float | None = None, max_tokens: int | None = None,
               include_relations: bool = False) -> SearchResult:
        query = self._text(query, "query")
        scope = self.scope(user_id, agent_id, run_id)
        if not 1 <= limit <= 100:
            raise InvalidInput("limit must be between 1 and 100")
        self._ready()
        note = None
        try:
            vector = self.embedder.embed(query)
        except ProviderError as exc:
            vector, note = None, f"{exc}; searched by words only"
        hits = self.retriever.search(query, scope, limit=limit, filters=validate.metadata(filters, "filters"),
                                     threshold=threshold, vector=vector, text_only=vector is None)
        result = SearchResult(note=note, hits=[Hit(id=s.row.id, memory=s.row.text, score=s.score,
                                                   created_at=short_ts(s.row.created_at) or "",
                                                   updated_at=short_ts(s.row.updated_at) or "",
                                                   metadata=s.row.metadata) for s in hits])
        if include_relations:
            result.relations = self.graph_engine.relations_for_memories([h.id for h in result.hits])
        if max_tokens is not None:
            result.hits, dropped = _within(result.hits, max_tokens)
            if dropped:
                result.note = " ".join(filter(None, [result.note, f"{dropped} more hits left out to stay within "
                                                                 f"{max_tokens} tokens."]))
        return result

    def context(self, query: str, *, max_tokens: int = 1500, user_id: str | None = None,
                agent_id: str | None = None, run_id: str | None = None) -> ContextBlock:
        """Core memory, relevant facts and relevant past messages, most useful first, within
        ``max_tokens``: a block to put in front of a prompt."""
        from mcp_memory import context

        query = self._text(query, "query")
        self.scope(user_id, agent_id, run_id)
        return context.build(self, query, max_tokens, user_id, agent_id, run_id)

    def list(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
             page: int = 1, page_size: int = 100) -> MemoryList:
        scope = self.scope(user_id, agent_id, run_id)
        page, page_size = validate.page(page, page_size, 1000, ranked=False, name="page_size")
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
        [vector], failure = try_embed(self.embedder, [new])
        now = utcnow()
        with self.sql.write() as conn:
            row = self.sql.get_memory(mid)
            if row is None or row.state != "active":
                raise NotFound(f"no active memory with id {mid}")
            if textlib.text_hash(new) == row.hash and new == row.text:
                return MemoryEvent(id=mid, memory=row.text, event="NONE", reason="text unchanged")
            self.sql.update_memory_text(conn, mid, new, textlib.text_hash(new), vector, None, now)
            self.sql.add_history(conn, mid, "UPDATE", row.text, new, reason or "updated by request", "tool", now)
            self.graph_engine.restate(conn, row.user_id or "", mid, graph_rules.extract(new), now, f"superseded: {new}"[:300])
        self.sync.notify()
        return MemoryEvent(id=mid, memory=new, event="UPDATE", previous=row.text, reason=failure)

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
            self.graph_engine.memory_changed(conn, mid, now, "deleted")
        self.sync.notify()
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
                   run_id: str | None = None, progress: Progress | None = None) -> DeleteResult:
        if user_id is None and agent_id is None and run_id is None:
            raise InvalidInput("name the user_id, agent_id or run_id to erase; nothing is erased without a scope")
        checked = self.scope(user_id, agent_id, run_id)
        scope = Scope(user_id=checked.user_id if user_id is not None else None, agent_id=agent_id, run_id=run_id)
        whole_user = checked.user_id if user_id is not None and agent_id is None and run_id is None else None
        from mcp_memory import erase

        self._ready()
        ids = erase.erase_scope(self.sql, self.graph_engine, scope, whole_user)
        erase.make_physical(self.sql, self.sync, progress)
        return DeleteResult(deleted=len(ids), note="erased from the database, its history, the message log "
                                                   "and the search index, and compacted on disk")

    def purge(self, *, user_id: str | None = None, all_history: bool = False,
              progress: Progress | None = None) -> DeleteResult:
        """Erase for good what is already deleted: soft-deleted memories and their history; with
        ``all_history`` also every superseded text (memory history, old core-memory versions).
        Then make it physical on disk."""
        user = self.scope(user_id).user_id if user_id else None
        from mcp_memory import erase

        self._ready()
        ids = erase.purge_deleted(self.sql, self.graph_engine, user, all_history)
        erase.make_physical(self.sql, self.sync, progress)
        what = "deleted memories and their history" + (", superseded texts and old block versions"
                                                       if all_history else "")
        return DeleteResult(deleted=len(ids), note=f"erased {what}; files compacted and vacuumed")

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
    def reindex(self, progress: Progress | None = None) -> int:
        """Re-embed every active memory and logged message with the configured embedder and rebuild the
        index; ``progress(done, total)`` after each batch. The service reopens on its next call."""
        from mcp_memory import maintenance

        with self._open_lock:
            n = maintenance.reindex(self.settings, self._embedder_given or make_embedder(self.settings), progress)
            self._opened = False
        return n

    def stats(self) -> dict[str, Any]:
        self._ready()
        self.sync.wait_ready()
        c = self.sql.conn
        return {
            "data_dir": str(self.settings.data_dir),
            "memories_active": self.sql.count_active("fact"),
            "memories_deleted": c.execute("SELECT count(*) FROM memories WHERE state != 'active'").fetchone()[0],
            "history_entries": c.execute("SELECT count(*) FROM history").fetchone()[0],
            "messages": c.execute("SELECT count(*) FROM messages").fetchone()[0],
            "index_rows": self.index.count(),
            "index_versions": self.index.version_count(),
            "index_pending": self.sql.pending_count(),
            "embedder": str(self.identity),
            "llm": self.llm.name if self.llm else None,
        }

    def health(self) -> dict[str, Any]:
        """What `mcp-memory doctor` reports, read without opening the store (`maintenance.health`)."""
        from mcp_memory import maintenance

        return maintenance.health(self.settings)


def _within(hits: list[Hit], max_tokens: int) -> tuple[list[Hit], int]:
    """The best hits whose compact JSON fits in ``max_tokens`` (counted with `mcp_memory.tokens`)."""
    from mcp_memory import tokens

    if max_tokens < 1:
        raise InvalidInput("max_tokens must be at least 1")
    kept, used = [], 2  # the surrounding {"hits":[...]}
    costs = tokens.count_many([compact_json(h) for h in hits]) if hits else []
    for hit, cost in zip(hits, costs):
        if used + cost + 1 <= max_tokens:
            kept.append(hit)
            used += cost + 1
    return kept, len(hits) - len(kept)


def _memory(row: Any) -> Memory:
    return Memory(id=row.id, memory=row.text, user_id=row.user_id, agent_id=row.agent_id, run_id=row.run_id,
                  metadata=row.metadata, created_at=short_ts(row.created_at) or "",
                  updated_at=short_ts(row.updated_at) or "")
