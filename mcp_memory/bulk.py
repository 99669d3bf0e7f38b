"""Bulk import: load many memories at once, fast (restores, migrations, benchmark stores).

The per-call path (`add_memory`) embeds one text, runs the duplicate rules, commits one
SQLite transaction and writes the search index once per call. Here every row is
validated first (a bad row fails the whole call before anything is written), then
texts are embedded in large batches and the rows, their ADD history entries and their
index-outbox entries are written in one ``BEGIN IMMEDIATE`` transaction per batch,
so other writers interleave between batches instead of waiting for the whole import.
The index sync then applies the outbox to LanceDB in its own large batches, and one
compaction folds the new fragments into the vector and full-text indices.

Exact duplicates (same normalised text in the same user/agent scope, the rule
`add_memory` uses) are skipped, whether they are already stored or repeated in the
input. No near-duplicate or LLM reconciliation runs: import what you mean to keep.
A crash mid-import leaves whole batches stored; the index catches up from the outbox
on the next start.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mcp_memory import text as textlib
from mcp_memory import validate
from mcp_memory.errors import InvalidInput
from mcp_memory.models import utcnow

if TYPE_CHECKING:
    from mcp_memory.service import MemoryService

KINDS = ("fact", "archival")
BATCH = 5000  # rows per SQLite transaction (~25 ms of writing: other writers wait at most that long)
_FIELDS = frozenset({"text", "memory", "user_id", "agent_id", "run_id", "metadata", "tags", "kind",
                     "created_at", "updated_at"})


class ImportResult(BaseModel):
    imported: int
    skipped: int
    seconds: float
    embed_seconds: float
    write_seconds: float
    index_seconds: float

    @property
    def rate(self) -> float:
        """Memories imported per second, end to end (validation, embedding, SQLite, search index)."""
        return self.imported / self.seconds if self.seconds else 0.0


@dataclass(slots=True)
class _Row:
    text: str
    hash: str
    kind: str
    user_id: str
    agent_id: str | None
    run_id: str | None
    metadata: str | None
    tags: str | None
    created_at: str
    updated_at: str


def _json(value: Any) -> str | None:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else None


def _parse(service: MemoryService, i: int, raw: str | Mapping[str, Any], now: str) -> _Row:
    if isinstance(raw, str):
        raw = {"text": raw}
    elif not isinstance(raw, Mapping):
        raise InvalidInput(f"rows[{i}] must be a string or an object with 'text'")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise InvalidInput(f"rows[{i}] has unknown fields: {', '.join(sorted(unknown))}")
    body = raw.get("text", raw.get("memory"))
    if not isinstance(body, str):
        raise InvalidInput(f"rows[{i}].text must be a string")
    text = validate.text(body, service.settings.max_text_chars, f"rows[{i}].text")
    kind = raw.get("kind") or "fact"
    if kind not in KINDS:
        raise InvalidInput(f"rows[{i}].kind must be one of {', '.join(KINDS)}")
    scope = service.scope(raw.get("user_id"), raw.get("agent_id"), raw.get("run_id"))
    meta = raw.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise InvalidInput(f"rows[{i}].metadata must be a JSON object")
    meta = validate.metadata(meta, f"rows[{i}].metadata")
    tags = raw.get("tags")
    if tags is not None and (isinstance(tags, str) or not isinstance(tags, Iterable)):
        raise InvalidInput(f"rows[{i}].tags must be a list of strings")
    created = validate.timestamp(raw.get("created_at"), f"rows[{i}].created_at") or now
    updated = validate.timestamp(raw.get("updated_at"), f"rows[{i}].updated_at") or created
    assert scope.user_id is not None
    return _Row(text=text, hash=textlib.text_hash(text), kind=kind, user_id=scope.user_id,
                agent_id=scope.agent_id, run_id=scope.run_id, metadata=_json(meta),
                tags=_json(validate.tags(list(tags)) if tags else None), created_at=created, updated_at=updated)


def import_memories(service: MemoryService, rows: Iterable[str | Mapping[str, Any]], *,
                    user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                    batch_size: int = BATCH, actor: str = "import", compact: bool = True) -> ImportResult:
    """Store ``rows`` (texts, or objects with ``text`` and optional ``user_id``, ``agent_id``,
    ``run_id``, ``metadata``, ``tags``, ``kind`` ('fact' or 'archival'), ``created_at``,
    ``updated_at``). The keyword scope applies to rows that name none."""
    if batch_size < 1:
        raise InvalidInput("batch_size must be >= 1")
    t0 = time.perf_counter()
    default = service.scope(user_id, agent_id, run_id)
    now = utcnow()
    parsed: list[_Row] = []
    for i, raw in enumerate(rows):
        if isinstance(raw, Mapping) and not any(k in raw for k in ("user_id", "agent_id", "run_id")):
            raw = {**raw, "user_id": default.user_id, "agent_id": default.agent_id, "run_id": default.run_id}
        elif isinstance(raw, str):
            raw = {"text": raw, "user_id": default.user_id, "agent_id": default.agent_id, "run_id": default.run_id}
        parsed.append(_parse(service, i, raw, now))
    service._ready()
    sql, embedder = service.sql, service.embedder

    seen: set[tuple[str, str, str | None, str]] = set()
    imported = skipped = 0
    embed_s = write_s = 0.0
    for start in range(0, len(parsed), batch_size):
        batch = parsed[start:start + batch_size]
        fresh = []
        for r in batch:  # repeats inside the input, by the rule used for stored rows
            if _is_stored(r, seen):
                skipped += 1
                continue
            seen.update(_keys(r))
            fresh.append(r)
        if not fresh:
            continue
        t = time.perf_counter()
        vectors = embedder.embed_batch([r.text for r in fresh])
        embed_s += time.perf_counter() - t
        t = time.perf_counter()
        with sql.write() as conn:
            stored = _stored_hashes(conn, fresh)
            keep = [(r, v) for r, v in zip(fresh, vectors) if not _is_stored(r, stored)]
            skipped += len(fresh) - len(keep)
            ids = [uuid.uuid4().hex for _ in keep]
            conn.executemany(
                "INSERT INTO memories (id, kind, text, hash, user_id, agent_id, run_id, metadata, tags, state, "
                "vector, source, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,'active',?,NULL,?,?)",
                [(mid, r.kind, r.text, r.hash, r.user_id, r.agent_id, r.run_id, r.metadata, r.tags,
                  v.astype("float32").tobytes(), r.created_at, r.updated_at) for mid, (r, v) in zip(ids, keep)])
            conn.executemany(
                "INSERT INTO history (memory_id, event, old_value, new_value, reason, actor, created_at) "
                "VALUES (?, 'ADD', NULL, ?, 'imported', ?, ?)",
                [(mid, r.text, actor, now) for mid, (r, _) in zip(ids, keep)])
            conn.executemany("INSERT INTO index_queue (memory_id) VALUES (?)", [(mid,) for mid in ids])
        write_s += time.perf_counter() - t
        imported += len(keep)
    t = time.perf_counter()
    service.sync.drain()
    if compact and imported:
        service.sync.compact_now()  # fold the new fragments into the vector and full-text indices
    index_s = time.perf_counter() - t
    return ImportResult(imported=imported, skipped=skipped, seconds=round(time.perf_counter() - t0, 3),
                        embed_seconds=round(embed_s, 3), write_seconds=round(write_s, 3),
                        index_seconds=round(index_s, 3))


def _stored_hashes(conn: Any, rows: list[_Row]) -> set[tuple[str, str, str | None, str]]:
    """(kind, user_id, agent_id, hash) of active memories sharing a hash with ``rows``."""
    out: set[tuple[str, str, str | None, str]] = set()
    hashes = list({r.hash for r in rows})
    for i in range(0, len(hashes), 500):
        chunk = hashes[i:i + 500]
        for kind, user, agent, h in conn.execute(
                f"SELECT kind, user_id, agent_id, hash FROM memories WHERE state = 'active' "
                f"AND hash IN ({','.join('?' * len(chunk))})", chunk):
            out.update(_keys(_Key(kind, user, agent, h)))
    return out


@dataclass(slots=True)
class _Key:
    kind: str
    user_id: str
    agent_id: str | None
    hash: str


def _keys(r: _Row | _Key) -> tuple[tuple[str, str, str | None, str], ...]:
    """The lookups a stored row answers: its own scope, and its user without an agent
    (a scope that names no agent matches any agent's copy, as in `add_memory`)."""
    return ((r.kind, r.user_id, r.agent_id, r.hash), (r.kind, r.user_id, None, r.hash))


def _is_stored(r: _Row, stored: set[tuple[str, str, str | None, str]]) -> bool:
    return (r.kind, r.user_id, r.agent_id, r.hash) in stored
