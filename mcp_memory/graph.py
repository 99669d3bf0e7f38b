"""Graph and temporal memory on SQLite: entities with aliases, and relations that hold over a
time range.

A relation is supported by the memories that state it. When the last of them is superseded
or deleted, the relation ends (``valid_to`` is set) instead of vanishing, and a new value of a
single-valued relation (lives_in, works_at, travels_to, ...) ends the old one; so the graph
answers both "what is true now" and "what was true on that date" (``as_of``).

Names resolve to entities through normalised aliases ("Alex", "alex", "Alex M." can be one
person); a model may say which known entity a name means, or that it is a different one.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mcp_memory import validate
from mcp_memory.errors import InvalidInput, NotFound
from mcp_memory.graph_rules import FUNCTIONAL, USER_NAMES, Triple
from mcp_memory.models import EntityInfo, GraphEntity, GraphResult, Relation, short_ts, utcnow
from mcp_memory.store import graph as gsql
from mcp_memory.store.graph import EntityRow, RelationRow
from mcp_memory.store.sql import SQLStore

MAX_RESULT_TRIPLES = 200
_RELATION_NAME = re.compile(r"[^a-z0-9]+")

Hints = Mapping[str, tuple[str, str | None]]  # normalised name -> ("same", entity id) | ("new", None)


def norm(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).casefold()
    text = re.sub(r"[^\w\s'&-]", " ", text)
    return re.sub(r"\s+", " ", text).strip(" '-")


def relation_name(name: str) -> str:
    return _RELATION_NAME.sub("_", name.strip().lower()).strip("_")[:60]


class GraphEngine:
    def __init__(self, sql: SQLStore) -> None:
        self.sql = sql

    # -- writes: always inside the caller's transaction ---------------------------------------
    def apply(self, conn: sqlite3.Connection, user_id: str, triples: Iterable[Triple], memory_ids: Sequence[str],
              when: str, hints: Hints | None = None) -> tuple[list[RelationRow], list[RelationRow]]:
        """Add relations (or add support to an identical current one); a single-valued relation
        ends its current other values at ``when``. Returns (added, ended)."""
        added, ended, _ = self._apply(conn, user_id, triples, memory_ids, when, hints)
        return added, ended

    def restate(self, conn: sqlite3.Connection, user_id: str, memory_id: str, triples: Iterable[Triple], when: str,
                reason: str, hints: Hints | None = None) -> None:
        """A memory was written (added or updated) and states ``triples``: support them, and end
        the relations it used to support that its new text no longer states."""
        _, _, touched = self._apply(conn, user_id, triples, [memory_id], when, hints)
        for r in gsql.supported_by(conn, memory_id):
            if r.id not in touched and gsql.drop_support(conn, r.id, memory_id) == 0 and r.valid_to is None:
                gsql.end(conn, r.id, when, reason)

    def _apply(self, conn: sqlite3.Connection, user_id: str, triples: Iterable[Triple], memory_ids: Sequence[str],
               when: str, hints: Hints | None) -> tuple[list[RelationRow], list[RelationRow], set[str]]:
        now = utcnow()
        added, ended, touched = [], [], set()
        for t in triples:
            rel = relation_name(t.relation)
            if not rel or not t.source.strip() or not t.target.strip():
                continue
            hints = {} if hints is None else hints
            s = self._resolve(conn, user_id, t.source, t.source_type, hints, now)
            o = self._resolve(conn, user_id, t.target, t.target_type, hints, now)
            if s == o:
                continue
            current = gsql.current(conn, user_id, s, rel)
            same = next((r for r in current if r.target_id == o), None)
            if same is not None:
                gsql.add_support(conn, same.id, memory_ids)
                touched.add(same.id)
                continue
            if t.exclusive or rel in FUNCTIONAL:
                for r in current:
                    r.valid_to, r.ended_reason = when, f"superseded by {t.target}"
                    gsql.end(conn, r.id, when, r.ended_reason)
                    ended.append(r)
            row = RelationRow(uuid.uuid4().hex, user_id, s, rel, o, when, None, None)
            gsql.insert_relation(conn, row, now)
            gsql.add_support(conn, row.id, memory_ids)
            added.append(row)
            touched.add(row.id)
        return added, ended, touched

    def memory_changed(self, conn: sqlite3.Connection, memory_id: str, when: str, reason: str) -> None:
        """A memory was superseded or deleted: relations it alone supported end now."""
        for r in gsql.supported_by(conn, memory_id):
            if gsql.drop_support(conn, r.id, memory_id) == 0 and r.valid_to is None:
                gsql.end(conn, r.id, when, reason)

    def forget_memories(self, conn: sqlite3.Connection, memory_ids: Iterable[str]) -> None:
        """Memories are being erased: relations only they supported are erased too."""
        for mid in memory_ids:
            for r in gsql.supported_by(conn, mid):
                if gsql.drop_support(conn, r.id, mid) == 0:
                    conn.execute("DELETE FROM relations WHERE id = ?", (r.id,))

    def _resolve(self, conn: sqlite3.Connection, user_id: str, name: str, type_: str | None, hints: Hints,
                 now: str) -> str:
        n = norm(name)
        if n in USER_NAMES:
            n, name, type_ = "user", "User", "person"
        hint = hints.get(n)
        if hint and hint[0] == "same" and hint[1]:
            target = gsql.entity(conn, hint[1])
            if target is not None and target.user_id == user_id:
                gsql.add_alias(conn, user_id, n, name, target.id)
                gsql.touch_entity(conn, target.id, type_, now)
                return target.id
        if not (hint and hint[0] == "new"):
            matches = gsql.by_alias(conn, user_id, n)
            if matches:
                gsql.touch_entity(conn, matches[0].id, type_, now)
                return matches[0].id
        entity = EntityRow(uuid.uuid4().hex, user_id, name.strip(), type_, now, now)
        gsql.insert_entity(conn, entity)
        gsql.add_alias(conn, user_id, n, name.strip(), entity.id)
        if hint and isinstance(hints, dict):  # later mentions in the same write mean this new entity
            hints[n] = ("same", entity.id)
        return entity.id

    # -- hints for a model: which known entities a text may mention -----------------------------
    def known_entities(self, user_id: str, text: str, limit: int = 30) -> list[tuple[str, str, str | None, list[str]]]:
        """(id, name, type, aliases) of entities with an alias whose words all occur in ``text``."""
        words = set(norm(text).split())
        found: dict[str, list[str]] = {}
        for alias_norm, alias, entity_id in self.sql.conn.execute(
                "SELECT alias_norm, alias, entity_id FROM entity_aliases WHERE user_id = ?", (user_id,)):
            if alias_norm.split() and set(alias_norm.split()) <= words or (alias_norm.split()[:1] and
                                                                           alias_norm.split()[0] in words):
                found.setdefault(entity_id, []).append(alias)
        rows = gsql.entities(self.sql.conn, list(found)[:limit])
        return [(e.id, e.name, e.type, sorted(set(found[e.id]))) for e in rows.values()]

    # -- reads ---------------------------------------------------------------------------------------
    def neighbourhood(self, user_id: str, query: str, depth: int = 2, as_of: str | None = None) -> GraphResult:
        if not 1 <= depth <= 4:
            raise InvalidInput("depth must be between 1 and 4")
        conn = self.sql.conn
        start = self._find(user_id, query)
        seen_entities = set(start)
        frontier, triples = set(start), {}
        for _ in range(depth):
            if not frontier:
                break
            nxt: set[str] = set()
            for r in gsql.relations_of(conn, user_id, sorted(frontier)):
                if _valid(r, as_of) and r.id not in triples:
                    triples[r.id] = r
                    nxt.update({r.source_id, r.target_id} - seen_entities)
            seen_entities |= nxt
            frontier = nxt
            if len(triples) >= MAX_RESULT_TRIPLES:
                break
        rels = sorted(triples.values(), key=lambda r: (r.source_id not in start, r.valid_from))[:MAX_RESULT_TRIPLES]
        names = gsql.entities(conn, {e for r in rels for e in (r.source_id, r.target_id)} | set(start))
        return GraphResult(
            entities=[GraphEntity(id=e.id, name=e.name, type=e.type) for e in names.values() if e.id in start],
            relations=[_relation(r, names) for r in rels], as_of=short_ts(as_of))

    def _find(self, user_id: str, query: str) -> list[str]:
        """Entities named by ``query``: an exact alias, else aliases found inside it, else a prefix."""
        conn = self.sql.conn
        n = norm(query)
        if n in USER_NAMES:
            n = "user"
        exact = gsql.by_alias(conn, user_id, n)
        if exact:  # every entity of that name (namesakes too), the most recently touched first
            return [e.id for e in exact]
        inside = [e for e, _, _, aliases in self.known_entities(user_id, query)
                  if any(f" {norm(a)} " in f" {n} " for a in aliases)]
        if inside:
            return inside
        escaped = n.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return [e.id for e in gsql.like(conn, user_id, f"{escaped}%", 5)]

    def entity(self, user_id: str, name: str) -> EntityInfo:
        conn = self.sql.conn
        ids = self._find(user_id, validate.text(name, 200, "name"))
        if not ids:
            raise NotFound(f"no entity called {name!r}; search_graph lists what is known")
        entity = gsql.entity(conn, ids[0])
        assert entity is not None
        rels = gsql.relations_of(conn, user_id, [entity.id])
        names = gsql.entities(conn, {e for r in rels for e in (r.source_id, r.target_id)} | set(ids))
        support = gsql.support(conn, [r.id for r in rels])
        mids = list(dict.fromkeys(m for r in rels for m in support.get(r.id, [])))
        memories = self.sql.get_memories(mids[:20])
        others = [names[i].name for i in ids[1:] if i in names]
        return EntityInfo(
            entity=GraphEntity(id=entity.id, name=entity.name, type=entity.type, aliases=gsql.aliases(conn, entity.id)),
            current=[_relation(r, names) for r in rels if r.valid_to is None],
            past=[_relation(r, names) for r in rels if r.valid_to is not None],
            memories=[m.text for m in memories.values() if m.state == "active"],
            others_named_alike=others or None)

    def relations_for_memories(self, memory_ids: Sequence[str]) -> list[Relation]:
        conn = self.sql.conn
        rels: dict[str, RelationRow] = {}
        for mid in memory_ids:
            for r in gsql.supported_by(conn, mid):
                if r.valid_to is None:
                    rels[r.id] = r
        names = gsql.entities(conn, {e for r in rels.values() for e in (r.source_id, r.target_id)})
        return [_relation(r, names) for r in rels.values()]

    def all(self, user_id: str, as_of: str | None = None, include_ended: bool = False) -> list[Relation]:
        conn = self.sql.conn
        rels = [r for r in gsql.all_relations(conn, user_id) if include_ended or _valid(r, as_of)]
        names = gsql.entities(conn, {e for r in rels for e in (r.source_id, r.target_id)})
        return [_relation(r, names) for r in rels]


def _valid(r: RelationRow, as_of: str | None) -> bool:
    if as_of is None:
        return r.valid_to is None
    return r.valid_from <= as_of and (r.valid_to is None or r.valid_to > as_of)


def _relation(r: RelationRow, names: Mapping[str, EntityRow]) -> Relation:
    src, dst = names.get(r.source_id), names.get(r.target_id)
    return Relation(source=src.name if src else "?", relation=r.relation, target=dst.name if dst else "?",
                    valid_from=short_ts(r.valid_from) or "", valid_to=short_ts(r.valid_to), ended=r.ended_reason)


def render(relations: Sequence[Relation]) -> str:
    """One line per relation, for `memory://graph` and the CLI."""
    lines = []
    for r in relations:
        span = f"{r.valid_from[:10]}..{r.valid_to[:10] if r.valid_to else ''}"
        lines.append(f"{r.source} -[{r.relation}]-> {r.target}  ({span})")
    return "\n".join(lines) or "(the graph is empty)"


def to_dot(relations: Sequence[Relation]) -> str:
    def q(s: str) -> str:
        return json.dumps(s, ensure_ascii=False)

    lines = ["digraph memory {", "  rankdir=LR;"]
    for r in relations:
        style = ', style=dashed, color="gray"' if r.valid_to else ""
        lines.append(f"  {q(r.source)} -> {q(r.target)} [label={q(r.relation)}{style}];")
    lines.append("}")
    return "\n".join(lines)


def parse_model_graph(reply: Mapping[str, Any], known: Sequence[tuple[str, str, str | None, list[str]]]
                      ) -> tuple[list[Triple] | None, dict[str, tuple[str, str | None]]]:
    """Relations and entity hints from an extraction reply; None when it gave no 'relations' key."""
    ids = {f"E{i + 1}": k[0] for i, k in enumerate(known)}
    hints: dict[str, tuple[str, str | None]] = {}
    for item in reply.get("entities") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        if item.get("new") is True:
            hints[norm(item["name"])] = ("new", None)
        elif isinstance(item.get("same_as"), str) and item["same_as"] in ids:
            hints[norm(item["name"])] = ("same", ids[item["same_as"]])
    raw = reply.get("relations")
    if not isinstance(raw, list):
        return None, hints
    triples = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        s, r, t = item.get("source"), item.get("relation"), item.get("target")
        if not all(isinstance(x, str) and x.strip() for x in (s, r, t)):
            continue
        triples.append(Triple(s[:200], r[:60], t[:200], _str(item.get("source_type")), _str(item.get("target_type")),
                              item.get("exclusive") is True))
    return triples, hints


def _str(value: Any) -> str | None:
    return value[:40] if isinstance(value, str) and value.strip() else None
