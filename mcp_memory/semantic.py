"""Mem0-style memory engine: extract facts -> fetch similar memories -> decide
ADD / UPDATE / DELETE / NONE per fact -> apply with history.

With an LLM (an endpoint, or the client's model through MCP sampling) both decisions
are the model's. Without one, rules do what can be done safely: split text into
statements, merge exact and near duplicates, honour explicit retractions ("scratch
that, ..."), and list related memories so the assistant can reconcile them itself.
If the model fails, the input is stored as given and the result says why.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from mcp_memory import text as textlib
from mcp_memory.embeddings import Embedder, try_embed
from mcp_memory.errors import ProviderError
from mcp_memory.graph import GraphEngine, parse_model_graph
from mcp_memory import graph_rules
from mcp_memory.graph_rules import Triple
from mcp_memory.llm import LLM
from mcp_memory.models import AddResult, Event, Extraction, Hit, MemoryEvent, Scope, short_ts, utcnow
from mcp_memory.prompts import EXTRACT_SYSTEM, RECONCILE_SYSTEM, extraction_input, reconcile_input
from mcp_memory.search import Retriever, Scored
from mcp_memory.store.sql import MemoryRow, SQLStore
from mcp_memory.store.sync import IndexSync

log = logging.getLogger(__name__)

NEAR_DUP_COSINE = 0.8
RETRACTION_WINDOW = timedelta(minutes=30)
OnCommit = Callable[[sqlite3.Connection, list[MemoryEvent]], None]
SIMILAR_PER_FACT = 5
RELATED_PER_FACT = 4
MAX_FACTS = 50


@dataclass
class Action:
    event: Event
    text: str
    target: MemoryRow | None = None
    reason: str | None = None


@dataclass
class Plan:
    actions: list[Action]
    extraction: Extraction
    notes: list[str] = field(default_factory=list)
    actor: str = "rules"
    relations: list[Triple] | None = None  # the model's; None: the rules read them from the stored facts
    hints: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # statement -> what the near-duplicate check found (before the write): reused as 'related'
    similar: dict[str, list[Scored]] = field(default_factory=dict)
    # statement -> its vector, embedded for that check: the write reuses it
    vectors: dict[str, Any] = field(default_factory=dict)


class SemanticEngine:
    def __init__(self, sql: SQLStore, retriever: Retriever, sync: IndexSync, embedder: Embedder,
                 max_chars: int, llm_timeout: float, graph: GraphEngine) -> None:
        self.graph = graph
        self.sql = sql
        self.retriever = retriever
        self.sync = sync
        self.embedder = embedder
        self.max_chars = max_chars
        self.llm_timeout = llm_timeout

    def _search(self, query: str, scope: Scope, limit: int, vector: Any = None,
                vector_only: bool = False) -> list[Scored]:
        """Similar memories; on full text alone if the query cannot be embedded. Rows still
        queued for the index are scored from SQLite: an add never waits for the index writer.
        ``vector_only``: candidates by meaning only (no full-text query: the duplicate checks)."""
        try:
            return self.retriever.search(query, scope, limit=limit, vector=vector, wait_index=False,
                                         vector_only=vector_only)
        except ProviderError:
            return self.retriever.search(query, scope, limit=limit, text_only=True, wait_index=False)

    # -- entry point ---------------------------------------------------------------
    def add(self, *, text: str | None, messages: Sequence[dict[str, Any]] | None, scope: Scope,
            metadata: dict[str, Any] | None, infer: bool, llm: LLM | None,
            source_ids: list[int] | None, on_commit: OnCommit | None = None) -> AddResult:
        """``on_commit(conn, events)`` runs inside the transaction that writes the events (a
        background job marks itself done there, so it can never apply twice)."""
        plan = self.plan(text=text, messages=messages, scope=scope, infer=infer, llm=llm)
        when = max((m["created_at"] for m in messages), default=None) if messages else None
        events = self.apply(plan.actions, scope, metadata, source_ids, plan.actor, plan.notes, on_commit,
                            plan=plan, when=when)
        related = None
        if plan.extraction in ("none", "failed") and any(e.event in ("ADD", "UPDATE") for e in events):
            related = self._related(events, scope, plan.similar)
            if related:
                plan.notes.append("'related' lists similar stored memories: if a new fact replaces one, "
                                  "call update_memory or delete_memory on it.")
        return AddResult(events=events, extraction=plan.extraction, note=" ".join(plan.notes) or None,
                         related=related or None)

    def plan(self, *, text: str | None, messages: Sequence[dict[str, Any]] | None, scope: Scope, infer: bool,
             llm: LLM | None) -> Plan:
        given = [text] if text is not None else [m["content"] for m in messages or () if m["role"] == "user"]
        if not infer:
            return Plan(self.rule_actions(given, scope, near=False, retraction=False), "skipped",
                        ["infer=false: stored as given."])
        if llm is None:
            statements = [s for g in given for s in textlib.split_statements(g)]
            similar: dict[str, list[Scored]] = {}
            vectors: dict[str, Any] = {}
            plan = Plan(self.rule_actions(statements, scope, similar=similar, vectors=vectors), "none",
                        ["No LLM available (none configured, no sampling from the client): no extraction ran; "
                         "the text was stored as given" + (f", split into {len(statements)} statements" if
                                                          len(statements) > len(given) else "") + "."],
                        similar=similar, vectors=vectors)
            return plan
        # both model calls share one budget, so add_memory answers within 2 x the LLM timeout
        deadline = time.monotonic() + 2 * self.llm_timeout
        known = self.graph.known_entities(scope.user_id or "", text or " ".join(m["content"] for m in messages or ()))
        try:
            facts, relations, hints = self._extract(llm, text, messages, deadline, known)
        except ProviderError as exc:
            similar, vectors = {}, {}
            return Plan(self.rule_actions(given, scope, retraction=False, similar=similar, vectors=vectors),
                        "failed", [f"Fact extraction failed ({exc}); the input was stored as given."],
                        similar=similar, vectors=vectors)
        if not facts:
            return Plan([], llm.kind, ["The model found no facts worth remembering; nothing was stored."],
                        actor=llm.name, relations=relations, hints=hints)
        try:
            actions = self._reconcile(llm, facts, scope, deadline)
        except ProviderError as exc:
            return Plan(self.rule_actions(facts, scope, retraction=False), "failed",
                        [f"Facts were extracted but reconciling them with memory failed ({exc}); "
                         "they were added with duplicate checks only."], actor=llm.name, relations=relations,
                        hints=hints)
        return Plan(actions, llm.kind, actor=llm.name, relations=relations, hints=hints)

    # -- the model's path -----------------------------------------------------------
    def _time_left(self, deadline: float) -> float:
        left = min(self.llm_timeout, deadline - time.monotonic())
        if left < 0.5:
            raise ProviderError("no time was left for the model within this call's deadline")
        return left

    def _extract(self, llm: LLM, text: str | None, messages: Sequence[dict[str, Any]] | None, deadline: float,
                 known: Sequence[tuple[str, str, str | None, list[str]]]
                 ) -> tuple[list[str], list[Triple] | None, dict[str, tuple[str, str | None]]]:
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        reply = llm.complete_json(EXTRACT_SYSTEM % today, extraction_input(text, messages, known),
                                  self._time_left(deadline))
        facts = reply.get("facts")
        if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
            raise ProviderError("the model's reply had no 'facts' list of strings")
        cleaned = [textlib.clean(f)[: self.max_chars] for f in facts]
        relations, hints = parse_model_graph(reply, known)
        return list(dict.fromkeys(f for f in cleaned if f))[:MAX_FACTS], relations, hints

    def _reconcile(self, llm: LLM, facts: list[str], scope: Scope, deadline: float) -> list[Action]:
        similar: dict[str, MemoryRow] = {}
        vectors, _ = try_embed(self.embedder, facts)
        for fact, vec in zip(facts, vectors):
            for hit in self._search(fact, _owner(scope), SIMILAR_PER_FACT, vec):
                similar.setdefault(hit.row.id, hit.row)
        if not similar:
            return [Action("ADD", f, reason="new fact") for f in facts]
        temp = {str(i): row for i, row in enumerate(similar.values())}
        reply = llm.complete_json(RECONCILE_SYSTEM, reconcile_input([(t, r.text) for t, r in temp.items()], facts),
                                  self._time_left(deadline))
        raw = reply.get("actions", reply.get("memory"))
        if not isinstance(raw, list):
            raise ProviderError("the model's reply had no 'actions' list")
        actions: list[Action] = []
        used: set[str] = set()
        for item in raw:
            action = self._parse_action(item, temp, used)
            if action is not None:
                actions.append(action)
        if not actions:
            raise ProviderError("none of the model's actions were valid")
        return actions

    def _parse_action(self, item: Any, temp: dict[str, MemoryRow], used: set[str]) -> Action | None:
        if not isinstance(item, dict):
            return None
        event = str(item.get("event", "")).upper()
        text = item.get("text")
        text = textlib.clean(text)[: self.max_chars] if isinstance(text, str) else ""
        reason = item.get("reason") if isinstance(item.get("reason"), str) else None
        tid = str(item.get("id", "")).strip("[] ")
        if event == "ADD":
            return Action("ADD", text, reason=reason) if text else None
        if event not in ("UPDATE", "DELETE", "NONE") or tid not in temp:
            log.info("ignoring invalid action from the model: %r", item)
            return None
        if event != "NONE" and tid in used:
            return None
        target = temp[tid]
        if event == "UPDATE":
            if not text:
                return None
            used.add(tid)
            return Action("UPDATE", text, target, reason)
        if event == "DELETE":
            used.add(tid)
        return Action(event, target.text, target, reason)

    # -- the rules' path --------------------------------------------------------------
    def rule_actions(self, statements: Sequence[str], scope: Scope, *, near: bool = True,
                     retraction: bool = True, similar: dict[str, list[Scored]] | None = None,
                     vectors: dict[str, Any] | None = None) -> list[Action]:
        """``similar`` (if given) receives what each statement's near-duplicate search found,
        ``vectors`` the vector it embedded for it."""
        actions: list[Action | str] = []  # a str: the statement, waiting for its near-duplicate check
        seen: set[str] = set()
        for i, statement in enumerate(statements):
            statement = textlib.clean(statement)
            retracted = False
            if retraction and i == 0:
                statement, retracted = textlib.strip_retraction(statement)
            h = textlib.text_hash(statement)
            if not statement or h in seen:
                continue
            seen.add(h)
            existing = self.sql.find_active_by_hash(h, _owner(scope), "fact")
            if existing is not None:
                actions.append(Action("NONE", existing.text, existing, "already stored"))
                continue
            if retracted:
                previous = self._latest(scope)
                if previous is not None:
                    actions.append(Action("UPDATE", statement, previous,
                                          "explicit retraction of the previous memory"))
                    continue
            actions.append(statement if near else Action("ADD", statement, reason="new statement"))
        checks = self._near_duplicates([a for a in actions if isinstance(a, str)], scope, similar, vectors)
        return [checks.get(a) or Action("ADD", a, reason="new statement") if isinstance(a, str) else a
                for a in actions]

    def _near_duplicates(self, statements: list[str], scope: Scope, similar: dict[str, list[Scored]] | None,
                         vectors: dict[str, Any] | None) -> dict[str, Action | None]:
        """Same content words (or a subset of them) as a stored memory, and close in meaning.
        A statement with a word the other lacks *and* vice versa ("flight at 3pm" / "flight at
        5pm") carries different information and is never merged. All statements are embedded
        together and compared in one pass over the stored vectors."""
        tokens = {s: textlib.content_tokens(s) for s in statements}
        todo = [s for s in statements if len(tokens[s]) >= 2]
        if not todo:
            return {}
        try:
            embedded = list(self.embedder.embed_batch(todo))
            if vectors is not None:
                vectors.update(zip(todo, embedded))
            found = self.retriever.similar(todo, embedded, _owner(scope), limit=RELATED_PER_FACT)
        except ProviderError:  # on words alone
            found = [self.retriever.search(s, _owner(scope), limit=RELATED_PER_FACT, text_only=True,
                                           wait_index=False) for s in todo]
        out: dict[str, Action | None] = {}
        for statement, hits in zip(todo, found):
            if similar is not None:
                similar[statement] = hits
            out[statement] = self._covered(statement, tokens[statement], hits)
        return out

    @staticmethod
    def _covered(statement: str, tokens: set[str], hits: list[Scored]) -> Action | None:
        for hit in hits[:3]:
            other = textlib.content_tokens(hit.row.text)
            if hit.cosine < NEAR_DUP_COSINE or textlib.negated(statement) != textlib.negated(hit.row.text):
                continue
            if tokens > other and len(other) >= 2:
                return Action("UPDATE", statement, hit.row, "same fact with more detail")
            if tokens <= other:
                return Action("NONE", hit.row.text, hit.row, "already covered by a stored memory")
        return None

    def _latest(self, scope: Scope) -> MemoryRow | None:
        since = (datetime.now(timezone.utc) - RETRACTION_WINDOW).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows, _ = self.sql.list_memories(scope, "fact", 1, 0)
        return rows[0] if rows and rows[0].updated_at >= since else None

    def _related(self, events: list[MemoryEvent], scope: Scope,
                 similar: dict[str, list[Scored]] | None = None) -> list[Hit]:
        """Stored memories similar to what was written; the near-duplicate check's search is
        reused where it ran on the same text (one search per add instead of two)."""
        mine = {e.id for e in events}
        found: dict[str, Hit] = {}
        for e in events:
            if e.event not in ("ADD", "UPDATE"):
                continue
            hits = (similar or {}).get(e.memory)
            if hits is None:  # a statement too short for the duplicate check: by meaning too, not BM25
                hits = self._search(e.memory, _owner(scope), RELATED_PER_FACT, vector_only=True)
            for s in hits:
                if s.row.id not in mine and s.row.id not in found and s.score >= 0.15:
                    found[s.row.id] = Hit(id=s.row.id, memory=s.row.text, score=s.score,
                                          created_at=short_ts(s.row.created_at) or "",
                                          updated_at=short_ts(s.row.updated_at) or "")
        return sorted(found.values(), key=lambda h: h.score, reverse=True)[:5]

    # -- applying a plan ----------------------------------------------------------------
    def apply(self, actions: Sequence[Action], scope: Scope, metadata: dict[str, Any] | None,
              source_ids: list[int] | None, actor: str, notes: list[str],
              on_commit: OnCommit | None = None, plan: Plan | None = None, when: str | None = None
              ) -> list[MemoryEvent]:
        known = plan.vectors if plan is not None else {}
        to_embed = [a.text for a in actions if a.event in ("ADD", "UPDATE") and a.text not in known]
        embedded, failure = try_embed(self.embedder, to_embed)
        if failure:
            notes.append(f"Embedding failed ({failure}).")
        fresh = dict(zip(to_embed, embedded))
        vectors = iter([fresh[a.text] if a.text in fresh else known[a.text]
                        for a in actions if a.event in ("ADD", "UPDATE")])
        events: list[MemoryEvent] = []
        now = utcnow()
        with self.sql.write() as conn:
            for a in actions:
                vec = next(vectors) if a.event in ("ADD", "UPDATE") else None
                if a.event == "UPDATE" and a.target is not None:
                    current = self.sql.get_memory(a.target.id)
                    if current is None or current.state != "active" or current.text != a.target.text:
                        # changed by another writer since the decision: do not overwrite blindly
                        a = Action("ADD", a.text, None, (a.reason or "") + " (target changed meanwhile)")
                if a.event == "ADD":
                    h = textlib.text_hash(a.text)
                    dup = self.sql.find_active_by_hash(h, _owner(scope), "fact")
                    if dup is not None:
                        events.append(MemoryEvent(id=dup.id, memory=dup.text, event="NONE", reason="already stored"))
                        continue
                    row = MemoryRow(id=uuid.uuid4().hex, kind="fact", text=a.text, hash=h, user_id=scope.user_id,
                                    agent_id=scope.agent_id, run_id=scope.run_id, metadata=metadata or None,
                                    tags=None, state="active", vector=vec, source=source_ids or None,
                                    created_at=now, updated_at=now)
                    SQLStore.insert_memory(conn, row)
                    SQLStore.add_history(conn, row.id, "ADD", None, a.text, a.reason, actor, now)
                    events.append(MemoryEvent(id=row.id, memory=a.text, event="ADD"))
                elif a.event == "UPDATE":
                    assert a.target is not None
                    if textlib.text_hash(a.text) == a.target.hash:
                        events.append(MemoryEvent(id=a.target.id, memory=a.target.text, event="NONE",
                                                  reason=a.reason))
                        continue
                    SQLStore.update_memory_text(conn, a.target.id, a.text, textlib.text_hash(a.text), vec,
                                                source_ids or None, now)
                    SQLStore.add_history(conn, a.target.id, "UPDATE", a.target.text, a.text, a.reason, actor, now)
                    events.append(MemoryEvent(id=a.target.id, memory=a.text, event="UPDATE",
                                              previous=a.target.text, reason=a.reason))
                elif a.event == "DELETE":
                    assert a.target is not None
                    current = self.sql.get_memory(a.target.id)
                    if current is None or current.state != "active":
                        continue
                    SQLStore.mark_deleted(conn, a.target.id, now)
                    SQLStore.add_history(conn, a.target.id, "DELETE", current.text, None, a.reason, actor, now)
                    events.append(MemoryEvent(id=a.target.id, memory=current.text, event="DELETE",
                                              reason=a.reason))
                else:
                    assert a.target is not None
                    events.append(MemoryEvent(id=a.target.id, memory=a.target.text, event="NONE", reason=a.reason))
            self._update_graph(conn, events, scope, plan, when or now)
            if on_commit is not None:
                on_commit(conn, events)
        self.sync.notify()
        return events


    def _update_graph(self, conn: sqlite3.Connection, events: list[MemoryEvent], scope: Scope, plan: Plan | None,
                      when: str) -> None:
        """Inside the write: each written fact states its relations (the model's when it gave any,
        else what the rules read in the fact); relations a fact no longer states, or a deleted
        fact stated, end at ``when``."""
        user = scope.user_id or ""
        written = [e for e in events if e.event in ("ADD", "UPDATE")]
        stated: dict[str, list[Triple]] = {e.id: [] for e in written}
        if plan is not None and plan.relations is not None:
            for t in plan.relations:
                s, o = t.source.casefold(), t.target.casefold()
                ids = [e.id for e in written if o in e.memory.casefold() and
                       (s in e.memory.casefold() or s in ("user", "i"))] or [e.id for e in written]
                for i in ids:
                    stated[i].append(t)
        else:
            for e in written:
                stated[e.id] = graph_rules.extract(e.memory)
        for e in events:
            if e.event == "DELETE":
                self.graph.memory_changed(conn, e.id, when, f"deleted: {e.memory}"[:300])
            elif e.event in ("ADD", "UPDATE"):
                self.graph.restate(conn, user, e.id, stated[e.id], when, f"superseded: {e.memory}"[:300],
                                   plan.hints if plan else None)


def _owner(scope: Scope) -> Scope:
    """The scope facts are reconciled in: the user (and agent), across runs."""
    return Scope(user_id=scope.user_id, agent_id=scope.agent_id)
