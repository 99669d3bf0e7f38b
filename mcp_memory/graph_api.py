"""The graph and temporal API over one store (`MemoryService.graph`): each method validates its
raw arguments, so the MCP tools and the CLI stay one-liners."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp_memory import text as textlib
from mcp_memory import validate
from mcp_memory.config import Settings
from mcp_memory.errors import InvalidInput
from mcp_memory.graph import GraphEngine, _relation
from mcp_memory.graph_rules import Triple
from mcp_memory.models import EntityInfo, GraphResult, Relation, RelationsResult, utcnow
from mcp_memory.store import graph as gsql
from mcp_memory.store.sql import SQLStore

MAX_RELATIONS = 200


class GraphMemory:
    def __init__(self, settings: Settings, sql: SQLStore, engine: GraphEngine) -> None:
        self.settings = settings
        self.sql = sql
        self.engine = engine

    def _user(self, user_id: str | None) -> str:
        return validate.scope(self.settings, user_id).user_id or self.settings.default_user_id

    def search(self, query: str, depth: int = 2, as_of: str | None = None, user_id: str | None = None) -> GraphResult:
        """The neighbourhood of the entities ``query`` names, as relations true now (or at ``as_of``)."""
        query = validate.text(query, 2000, "query")
        return self.engine.neighbourhood(self._user(user_id), query, depth,
                                         validate.timestamp(as_of, "as_of", end_of_day=True))

    def entity(self, name: str, user_id: str | None = None) -> EntityInfo:
        return self.engine.entity(self._user(user_id), name)

    def add(self, relations: Sequence[dict[str, Any]], user_id: str | None = None) -> RelationsResult:
        """Relations stated explicitly (by an assistant without an LLM endpoint, or by a person)."""
        if not relations or len(relations) > MAX_RELATIONS:
            raise InvalidInput(f"relations must hold 1 to {MAX_RELATIONS} items")
        user = self._user(user_id)
        items = []
        for i, r in enumerate(relations):
            parts = [r.get(k) for k in ("source", "relation", "target")]
            if not all(isinstance(p, str) and p.strip() and len(p) <= 200 for p in parts):
                raise InvalidInput(f"relations[{i}] needs source, relation and target strings of 1-200 characters")
            types = [r.get(k) if isinstance(r.get(k), str) else None for k in ("source_type", "target_type")]
            when = validate.timestamp(r.get("valid_from"), f"relations[{i}].valid_from") or utcnow()
            source, relation, target = (textlib.clean(p) for p in parts)
            items.append((Triple(source, relation, target, *types, r.get("exclusive") is True), when))
        added, ended = [], []
        with self.sql.write() as conn:
            for triple, when in sorted(items, key=lambda x: x[1]):  # oldest first: later ones supersede
                a, e = self.engine.apply(conn, user, [triple], [], when)
                added += a
                ended += e
            names = gsql.entities(conn, {x for r in added + ended for x in (r.source_id, r.target_id)})
        return RelationsResult(added=[_relation(r, names) for r in added], ended=[_relation(r, names) for r in ended])

    def export(self, user_id: str | None = None, as_of: str | None = None,
               include_ended: bool = False) -> list[Relation]:
        return self.engine.all(self._user(user_id), validate.timestamp(as_of, "as_of", end_of_day=True),
                               include_ended)
