"""Typed values that cross the service boundary (tool results, CLI output).

Optional fields stay ``None`` when empty and are left out of the JSON an assistant
reads (`compact_json`): every token of a tool result is paid for.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Event = Literal["ADD", "UPDATE", "DELETE", "NONE"]
Extraction = Literal["llm", "sampling", "none", "skipped", "failed", "queued"]


def utcnow() -> str:
    """Current UTC time as stored: ISO 8601 with microseconds, sortable as text."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def short_ts(ts: str | None) -> str | None:
    """A stored timestamp trimmed to seconds for output."""
    if ts is None:
        return None
    return ts[:19] + "Z" if len(ts) > 20 and ts.endswith("Z") else ts


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def compact(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def compact_json(model: BaseModel) -> str:
    data = model.compact() if isinstance(model, _Out) else model.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Scope(BaseModel):
    """Who a memory belongs to. Searches match every field that is set."""

    model_config = ConfigDict(frozen=True)
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None


class Message(_Out):
    id: int
    role: str
    content: str
    name: str | None = None
    created_at: str
    run_id: str | None = None


class Memory(_Out):
    id: str
    memory: str
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: str
    updated_at: str
    state: Literal["active", "deleted"] | None = Field(None, description="Shown by get_memory only.")
    source: list[Message] | None = Field(None, description="Messages the fact was extracted from.")


class Hit(_Out):
    id: str
    memory: str
    score: float
    created_at: str
    updated_at: str
    metadata: dict[str, Any] | None = None


class MemoryEvent(_Out):
    id: str
    memory: str
    event: Event
    previous: str | None = Field(None, description="The text this event replaced or removed.")
    reason: str | None = None


class AddResult(_Out):
    events: list[MemoryEvent]
    extraction: Extraction = Field(description="How facts were derived: llm, sampling (the client's model), "
                                   "none (no LLM: stored as given), skipped (infer=false), failed, "
                                   "queued (wait=false: a background job will do it).")
    note: str | None = None
    related: list[Hit] | None = Field(None, description="Existing memories that may overlap the new ones.")
    messages_logged: int | None = None
    job_id: str | None = Field(None, description="With wait=false: the background job; see memory_jobs.")


class SearchResult(_Out):
    hits: list[Hit]
    relations: list[Relation] | None = Field(None, description="With include_relations: what the hits state, as "
                                             "current relations between entities.")
    note: str | None = None


class MemoryList(_Out):
    memories: list[Memory]
    page: int
    page_size: int
    total: int


class HistoryEntry(_Out):
    event: Event
    old: str | None = None
    new: str | None = None
    reason: str | None = None
    actor: str | None = None
    at: str


class History(_Out):
    memory_id: str
    entries: list[HistoryEntry]


class DeleteResult(_Out):
    deleted: int
    note: str | None = None


# -- Letta-style memory ------------------------------------------------------------------
class Block(_Out):
    label: str
    value: str
    description: str | None = None
    chars_current: int
    chars_limit: int
    read_only: bool = False
    version: int
    updated_at: str


class BlockList(_Out):
    blocks: list[Block]


class BlockVersion(_Out):
    version: int
    event: str
    value: str
    actor: str | None = None
    at: str


class BlockHistory(_Out):
    label: str
    versions: list[BlockVersion]


class ArchivalInsert(_Out):
    ids: list[str]
    chunks: int
    duplicates: int = 0
    note: str | None = None


class ArchivalHit(_Out):
    id: str
    text: str
    score: float
    created_at: str
    kind: Literal["archival", "fact"]
    tags: list[str] | None = None


class ArchivalResult(_Out):
    hits: list[ArchivalHit]
    page: int
    has_more: bool


class RecallHit(_Out):
    id: int
    role: str
    name: str | None = None
    content: str
    created_at: str
    run_id: str | None = None


class RecallResult(_Out):
    messages: list[RecallHit]
    page: int
    has_more: bool
    note: str | None = None


class LogResult(_Out):
    logged: int
    first_id: int
    last_id: int


class JobInfo(_Out):
    id: str
    state: Literal["pending", "running", "done", "failed"]
    attempts: int
    created_at: str
    updated_at: str
    extraction: str | None = None
    events: list[dict[str, Any]] | None = None
    note: str | None = None
    error: str | None = None


class JobList(_Out):
    jobs: list[JobInfo]
    counts: dict[str, int]


class ContextBlock(_Out):
    context: str
    tokens: int
    max_tokens: int
    fact_ids: list[str]
    message_ids: list[int]
    omitted: int = Field(0, description="Relevant items left out to stay within the budget.")


# -- graph and temporal memory --------------------------------------------------------------
class Relation(_Out):
    source: str
    relation: str
    target: str
    valid_from: str
    valid_to: str | None = Field(None, description="When it stopped being true; absent while it holds.")
    ended: str | None = Field(None, description="Why it ended.")


class GraphEntity(_Out):
    id: str
    name: str
    type: str | None = None
    aliases: list[str] | None = None


class GraphResult(_Out):
    entities: list[GraphEntity] = Field(description="The entities the query named.")
    relations: list[Relation]
    as_of: str | None = None


class EntityInfo(_Out):
    entity: GraphEntity
    current: list[Relation]
    past: list[Relation]
    memories: list[str] = Field(description="Stored facts that state its relations.")
    others_named_alike: list[str] | None = None


class RelationsResult(_Out):
    added: list[Relation]
    ended: list[Relation]


SearchResult.model_rebuild()
