"""Letta/MemGPT-style memory: core blocks the assistant keeps in context and edits
itself, archival memory it pages knowledge out to, and the recall log of messages.

Same store as the Mem0-style engine: archival passages are `memories` rows of kind
'archival' in the same SQLite table and LanceDB index, so `archival_search` also finds
facts stored by `add_memory`, and recall reads the same message log `add_memory` writes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from mcp_memory import text as textlib
from mcp_memory import validate
from mcp_memory.config import Settings
from mcp_memory.embeddings import Embedder, try_embed
from mcp_memory.errors import Conflict, InvalidInput, NotFound
from mcp_memory.models import (
    ArchivalHit,
    ArchivalInsert,
    ArchivalResult,
    Block,
    BlockHistory,
    BlockList,
    BlockVersion,
    LogResult,
    RecallHit,
    RecallResult,
    Scope,
    short_ts,
    utcnow,
)
from mcp_memory.recall_rank import RecallRanker, fts_match
from mcp_memory.search import Retriever
from mcp_memory.store import blocks as blocksql
from mcp_memory.store import messages as msgsql
from mcp_memory.store.blocks import BlockRow
from mcp_memory.store.messages import Filters
from mcp_memory.store.sql import MemoryRow, SQLStore
from mcp_memory.store.sync import IndexSync

DEFAULT_LIMIT = 5000
MAX_BLOCK_LIMIT = 100_000
MAX_DOCUMENT_CHARS = 2_000_000
CHUNK_CHARS = 1500
EMBED_BATCH = 64  # passages embedded between two progress reports
Progress = Callable[[int, int], None]  # (done, total)
DEFAULT_BLOCKS = (
    ("persona", "Who you, the assistant, are for this user: tone, habits, what they asked you to do or avoid. "
     "Edit it as you learn how they want you to work.",
     "I am the user's assistant. I remember what matters to them across sessions and keep these notes current."),
    ("human", "What you know about the user: name, role, preferences, current projects. Keep it short; move "
     "detail to archival memory.", ""),
)


def to_block(b: BlockRow) -> Block:
    return Block(label=b.label, value=b.value, description=b.description, chars_current=len(b.value),
                 chars_limit=b.char_limit, read_only=b.read_only, version=b.version,
                 updated_at=short_ts(b.updated_at) or "")


def _inert(text: str) -> str:
    """Stored text cannot close or open the tags that frame it."""
    return text.replace("<", "\u2039").replace(">", "\u203a")


def render_blocks(blocks: Sequence[Block]) -> str:
    """Core memory as the assistant sees it in context, Letta style. Values are data: angle
    brackets inside them are shown as ‹ › so a stored "</value>" cannot break the frame."""
    out = ["<memory_blocks>"]
    for b in blocks:
        ro = ' read_only="true"' if b.read_only else ""
        out.append(f'<{b.label} chars_current="{b.chars_current}" chars_limit="{b.chars_limit}"{ro}>')
        if b.description:
            out.append(f"<description>{_inert(b.description)}</description>")
        out.append(f"<value>\n{_inert(b.value)}\n</value>")
        out.append(f"</{b.label}>")
    out.append("</memory_blocks>")
    return "\n".join(out)


class CoreMemory:
    """Labelled blocks per user. Every write is one transaction over the current value, so a
    concurrent append is never lost; a whole-block rewrite (`rethink`) is compare-and-set
    against the version this process last saw, so it never overwrites an edit it has not seen."""

    def __init__(self, sql: SQLStore) -> None:
        self.sql = sql
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _see(self, user_id: str, blocks: Sequence[BlockRow | Block]) -> None:
        with self._lock:
            for b in blocks:
                self._seen[(user_id, b.label)] = b.version

    def versions(self, user_id: str) -> dict[str, int]:
        """Label -> version, without counting as read (for change notifications)."""
        return {r[0]: r[1] for r in self.sql.conn.execute(
            "SELECT label, version FROM blocks WHERE user_id = ?", (user_id,))}

    def ensure_defaults(self, user_id: str) -> None:
        if self.sql.count("user_id = ?", [user_id], table="blocks"):
            return
        now = utcnow()
        with self.sql.write() as conn:
            for label, description, value in DEFAULT_BLOCKS:
                blocksql.insert_block(conn, BlockRow(user_id, label, value, description, DEFAULT_LIMIT, False, 1,
                                                     now, now), "default")

    def read(self, user_id: str, label: str | None = None) -> BlockList:
        self.ensure_defaults(user_id)
        rows = blocksql.get_blocks(self.sql.conn, user_id)
        if label is not None:
            label = validate.label(label)
            rows = [r for r in rows if r.label == label]
            if not rows:
                raise NotFound(f"no core memory block '{label}'; existing blocks: "
                               f"{', '.join(b.label for b in blocksql.get_blocks(self.sql.conn, user_id))}")
        self._see(user_id, rows)
        return BlockList(blocks=[to_block(r) for r in rows])

    def _edit(self, user_id: str, label: str, event: str, actor: str, compute: Any,
              expected_version: int | None = None, check_seen: bool = False) -> Block:
        label = validate.label(label)
        self.ensure_defaults(user_id)
        now = utcnow()
        with self.sql.write() as conn:
            b = blocksql.get_block(conn, user_id, label)
            if b is None:
                raise NotFound(f"no core memory block '{label}'; create it first (core_memory_create_block)")
            if b.read_only:
                raise InvalidInput(f"core memory block '{label}' is read-only")
            seen = expected_version if expected_version is not None else (
                self._seen.get((user_id, label)) if check_seen else None)
            if seen is not None and seen != b.version:
                raise Conflict(f"block '{label}' changed since you read it (version {seen}, now {b.version}); "
                               f"its current value is: {b.value!r}. Re-apply your edit to that value.")
            value = compute(b)
            if len(value) > b.char_limit:
                raise InvalidInput(
                    f"block '{label}' would have {len(value)} characters; its limit is {b.char_limit} and it holds "
                    f"{len(b.value)} now. Move detail to archival memory (archival_memory_insert) or shorten the "
                    "block (core_memory_replace / core_memory_rethink)")
            version = blocksql.set_value(conn, b, value, event, actor, now)
        self._see(user_id, [Block(label=label, value=value, chars_current=len(value), chars_limit=b.char_limit,
                                  version=version, updated_at=now)])
        return to_block(BlockRow(user_id, label, value, b.description, b.char_limit, b.read_only, version,
                                 b.created_at, now))

    def append(self, user_id: str, label: str, text: str, actor: str = "assistant") -> Block:
        text = validate.text(text, MAX_BLOCK_LIMIT)
        return self._edit(user_id, label, "append", actor, lambda b: f"{b.value}\n{text}" if b.value else text)

    def replace(self, user_id: str, label: str, old_text: str, new_text: str, actor: str = "assistant") -> Block:
        if not old_text:
            raise InvalidInput("old_text is empty; to add text use core_memory_append")
        new_text = validate.text(new_text, MAX_BLOCK_LIMIT, "new_text", allow_empty=True)

        def compute(b: BlockRow) -> str:
            count = b.value.count(old_text)
            if count != 1:
                where = "does not occur" if count == 0 else f"occurs {count} times"
                raise InvalidInput(f"old_text {where} in block '{b.label}'; it must match exactly once "
                                   "(include more surrounding text, or read the block with core_memory_read)")
            i = b.value.index(old_text)
            before, after = b.value[:i], b.value[i + len(old_text):]
            if not new_text:  # deleting a whole line takes its line break with it
                if (not before or before.endswith("\n")) and after.startswith("\n"):
                    after = after[1:]
                elif before.endswith("\n") and not after:
                    before = before[:-1]
            return before + new_text + after

        return self._edit(user_id, label, "replace", actor, compute)

    def rethink(self, user_id: str, label: str, new_value: str, expected_version: int | None = None,
                actor: str = "assistant") -> Block:
        new_value = validate.text(new_value, MAX_BLOCK_LIMIT, "new_value", allow_empty=True)
        return self._edit(user_id, label, "rethink", actor, lambda b: new_value, expected_version, check_seen=True)

    def create(self, user_id: str, label: str, description: str | None = None, limit: int = DEFAULT_LIMIT,
               value: str = "", read_only: bool = False, actor: str = "assistant") -> Block:
        label = validate.label(label)
        if not 1 <= limit <= MAX_BLOCK_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_BLOCK_LIMIT} characters")
        value = validate.text(value, limit, "value", allow_empty=True)
        description = validate.text(description, 1000, "description") if description else None
        self.ensure_defaults(user_id)
        now = utcnow()
        row = BlockRow(user_id, label, value, description, limit, read_only, 1, now, now)
        with self.sql.write() as conn:
            if not blocksql.insert_block(conn, row, actor):
                raise InvalidInput(f"a block labelled '{label}' already exists")
        self._see(user_id, [row])
        return to_block(row)

    def configure(self, user_id: str, label: str, *, description: str | None = None, limit: int | None = None,
                  read_only: bool | None = None) -> Block:
        label = validate.label(label)
        with self.sql.write() as conn:
            b = blocksql.get_block(conn, user_id, label)
            if b is None:
                raise NotFound(f"no core memory block '{label}'")
            if limit is not None and not len(b.value) <= limit <= MAX_BLOCK_LIMIT:
                raise InvalidInput(f"limit must be between the current size ({len(b.value)}) and {MAX_BLOCK_LIMIT}")
            blocksql.set_flags(conn, user_id, label, description=description, char_limit=limit,
                               read_only=read_only, now=utcnow())
        return self.read(user_id, label).blocks[0]

    def history(self, user_id: str, label: str) -> BlockHistory:
        label = validate.label(label)
        rows = blocksql.versions(self.sql.conn, user_id, label)
        if not rows:
            raise NotFound(f"no core memory block '{label}'")
        return BlockHistory(label=label, versions=[
            BlockVersion(version=r["version"], event=r["event"], value=r["value"], actor=r["actor"],
                         at=short_ts(r["created_at"]) or "") for r in rows])

    def rollback(self, user_id: str, label: str, version: int, actor: str = "cli") -> Block:
        old = next((v for v in self.history(user_id, label).versions if v.version == version), None)
        if old is None:
            raise NotFound(f"block '{label}' has no version {version}")
        return self._edit(user_id, label, f"rollback to v{version}", actor, lambda b: old.value)


class Archival:
    """Long-term passages: chunked, embedded, searchable by meaning, words, tags and dates."""

    def __init__(self, sql: SQLStore, retriever: Retriever, sync: IndexSync, embedder: Embedder) -> None:
        self.sql = sql
        self.retriever = retriever
        self.sync = sync
        self.embedder = embedder

    def insert(self, scope: Scope, text: str, tags: Sequence[str] | None = None,
               metadata: dict[str, Any] | None = None, progress: Progress | None = None) -> ArchivalInsert:
        text = validate.text(text, MAX_DOCUMENT_CHARS)
        tag_list = validate.tags(tags)
        chunks = list(dict.fromkeys(textlib.chunk_document(text, CHUNK_CHARS)))
        owner = Scope(user_id=scope.user_id, agent_id=scope.agent_id)
        fresh = [c for c in chunks if self.sql.find_active_by_hash(textlib.text_hash(c), owner, "archival") is None]
        vectors: list[Any] = []
        failure = None
        for i in range(0, len(fresh), EMBED_BATCH):  # long documents: report progress between batches
            part, error = try_embed(self.embedder, fresh[i:i + EMBED_BATCH])
            vectors += part
            failure = failure or error
            if progress is not None:
                progress(len(vectors), len(fresh))
        ids: list[str] = []
        now = utcnow()
        with self.sql.write() as conn:
            for chunk, vec in zip(fresh, vectors):
                row = MemoryRow(id=uuid.uuid4().hex, kind="archival", text=chunk, hash=textlib.text_hash(chunk),
                                user_id=scope.user_id, agent_id=scope.agent_id, run_id=scope.run_id,
                                metadata=metadata, tags=tag_list, state="active", vector=vec, source=None,
                                created_at=now, updated_at=now)
                SQLStore.insert_memory(conn, row)
                SQLStore.add_history(conn, row.id, "ADD", None, chunk, "archival insert", "assistant", now)
                ids.append(row.id)
        self.sync.notify()
        return ArchivalInsert(ids=ids, chunks=len(chunks), duplicates=len(chunks) - len(fresh), note=failure)

    def search(self, scope: Scope, query: str, tags: Sequence[str] | None = None, tag_match: str = "any",
               start: str | None = None, end: str | None = None, limit: int = 10, page: int = 1,
               include_facts: bool = True) -> ArchivalResult:
        want = set(validate.tags(tags) or ())
        if tag_match not in ("any", "all"):
            raise InvalidInput("tag_match must be 'any' or 'all'")

        def keep(row: MemoryRow) -> bool:
            if want:
                have = set(row.tags or ())
                if not (want <= have if tag_match == "all" else want & have):
                    return False
            return (start is None or row.created_at >= start) and (end is None or row.created_at <= end)

        kinds = ("archival", "fact") if include_facts and not want else ("archival",)
        found = self.retriever.search(query, Scope(user_id=scope.user_id, agent_id=scope.agent_id), kinds=kinds,
                                      limit=limit * page + 1, predicate=keep)
        window = found[(page - 1) * limit: page * limit]
        return ArchivalResult(hits=[
            ArchivalHit(id=s.row.id, text=s.row.text, score=s.score, created_at=short_ts(s.row.created_at) or "",
                        kind=s.row.kind, tags=s.row.tags) for s in window  # type: ignore[arg-type]
        ], page=page, has_more=len(found) > page * limit)


class Recall:
    """The log of every message the server has seen, searchable by words, role and date.
    Ranking (words, meaning, neighbouring turns, speaker, date): `mcp_memory.recall_rank`."""

    def __init__(self, sql: SQLStore, embedder: Embedder, sync: IndexSync | None = None) -> None:
        self.sql = sql
        self.sync = sync
        self.ranker = RecallRanker(sql, embedder)

    def log(self, scope: Scope, messages: list[dict[str, Any]]) -> LogResult:
        with self.sql.write() as conn:
            ids = SQLStore.insert_messages(conn, messages, scope)
        if self.sync is not None:
            self.sync.notify()  # the index worker embeds new messages
        return LogResult(logged=len(ids), first_id=ids[0], last_id=ids[-1])

    def search(self, scope: Scope, query: str | None, roles: Sequence[str] | None, start: str | None,
               end: str | None, limit: int, page: int) -> RecallResult:
        if roles:
            bad = [r for r in roles if r not in validate.ROLES]
            if bad:
                raise InvalidInput(f"roles must be among {', '.join(validate.ROLES)}")
        match = fts_match(query)
        note = None
        if query and query.strip() and match is None:
            note = "the query had no searchable words; showing the newest messages"
        assert scope.user_id is not None
        f = Filters(scope.user_id, roles, start, end, scope.run_id)
        if match is None:
            rows = msgsql.newest(self.sql.conn, f, limit + 1, (page - 1) * limit)
        else:
            rows = self.ranker.rank(query or "", match, f, page * limit + 1)[(page - 1) * limit:]
        hits = [RecallHit(id=r["id"], role=r["role"], name=r["name"], content=r["content"],
                          created_at=short_ts(r["created_at"]) or "", run_id=r["run_id"]) for r in rows[:limit]]
        return RecallResult(messages=hits, page=page, has_more=len(rows) > limit, note=note)

    def count(self, user_id: str) -> int:
        return self.sql.count("user_id = ?", [user_id], table="messages")


class AgentMemory:
    """The Letta-style API over one store; `MemoryService.agent` hands it out once opened.
    Each method validates its raw arguments, so the MCP tools and the CLI stay one-liners."""

    def __init__(self, settings: Settings, sql: SQLStore, retriever: Retriever, sync: IndexSync,
                 embedder: Embedder) -> None:
        self.settings = settings
        self.sql = sql
        self.core = CoreMemory(sql)
        self.archival = Archival(sql, retriever, sync, embedder)
        self.recall_log = Recall(sql, embedder, sync)

    def _user(self, user_id: str | None) -> str:
        return validate.scope(self.settings, user_id).user_id or self.settings.default_user_id

    # core memory
    def core_read(self, label: str | None = None, user_id: str | None = None) -> BlockList:
        return self.core.read(self._user(user_id), label)

    def core_append(self, label: str, text: str, user_id: str | None = None) -> Block:
        return self.core.append(self._user(user_id), label, text)

    def core_replace(self, label: str, old_text: str, new_text: str, user_id: str | None = None) -> Block:
        return self.core.replace(self._user(user_id), label, old_text, new_text)

    def core_rethink(self, label: str, new_value: str, expected_version: int | None = None,
                     user_id: str | None = None) -> Block:
        return self.core.rethink(self._user(user_id), label, new_value, expected_version)

    def core_create(self, label: str, description: str | None = None, limit: int = DEFAULT_LIMIT, value: str = "",
                    read_only: bool = False, user_id: str | None = None, actor: str = "assistant") -> Block:
        return self.core.create(self._user(user_id), label, description, limit, value, read_only, actor)

    def core_configure(self, label: str, description: str | None = None, limit: int | None = None,
                       read_only: bool | None = None, user_id: str | None = None) -> Block:
        return self.core.configure(self._user(user_id), label, description=description, limit=limit,
                                   read_only=read_only)

    def core_history(self, label: str, user_id: str | None = None) -> BlockHistory:
        return self.core.history(self._user(user_id), label)

    def core_rollback(self, label: str, version: int, user_id: str | None = None) -> Block:
        return self.core.rollback(self._user(user_id), label, version)

    # archival memory
    def archival_insert(self, text: str, tags: Sequence[str] | None = None, user_id: str | None = None,
                        metadata: dict[str, Any] | None = None, progress: Progress | None = None) -> ArchivalInsert:
        """``progress(done, total)`` is called as the passages of a long document are embedded."""
        return self.archival.insert(validate.scope(self.settings, user_id), text, tags,
                                    validate.metadata(metadata), progress)

    def archival_search(self, query: str, tags: Sequence[str] | None = None, tag_match: str = "any",
                        start_date: str | None = None, end_date: str | None = None, limit: int = 10, page: int = 1,
                        user_id: str | None = None) -> ArchivalResult:
        query = validate.text(query, self.settings.max_text_chars, "query")
        page, limit = validate.page(page, limit)
        return self.archival.search(validate.scope(self.settings, user_id), query, tags, tag_match,
                                    validate.timestamp(start_date, "start_date"),
                                    validate.timestamp(end_date, "end_date", end_of_day=True), limit, page)

    # recall memory
    def log_messages(self, messages: Sequence[dict[str, Any]], run_id: str | None = None,
                     user_id: str | None = None) -> LogResult:
        scope = validate.scope(self.settings, user_id, None, run_id)
        return self.recall_log.log(scope, validate.messages(messages, self.settings.max_text_chars))

    def recall(self, query: str | None = None, roles: Sequence[str] | None = None, start_date: str | None = None,
               end_date: str | None = None, run_id: str | None = None, limit: int = 10, page: int = 1,
               user_id: str | None = None) -> RecallResult:
        if query is not None and len(query) > self.settings.max_text_chars:
            raise InvalidInput(f"query has {len(query)} characters; the limit is {self.settings.max_text_chars}")
        page, limit = validate.page(page, limit, ranked=bool(query and query.strip()))
        scope = validate.scope(self.settings, user_id, None, run_id)
        return self.recall_log.search(scope, query, [r.lower() for r in roles] if roles else None,
                                      validate.timestamp(start_date, "start_date"),
                                      validate.timestamp(end_date, "end_date", end_of_day=True), limit, page)

    def counts(self, user_id: str | None = None) -> dict[str, int]:
        user = self._user(user_id)
        return {
            "archival": self.sql.count("user_id = ? AND kind = 'archival' AND state = 'active'", [user]),
            "facts": self.sql.count("user_id = ? AND kind = 'fact' AND state = 'active'", [user]),
            "recall": self.recall_log.count(user),
        }
