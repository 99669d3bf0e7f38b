"""Graph and temporal tools: entities, relations over time, `as_of` queries."""

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from mcp_memory.graph import render
from mcp_memory.models import EntityInfo, GraphResult, RelationsResult
from mcp_memory.service import MemoryService
from mcp_memory.tooling import READ_ONLY, WRITES, UserId, ok

AsOf = Annotated[str | None, Field(description="ISO date or datetime: what was true then. Omit for now.")]


class RelationIn(BaseModel):
    source: str = Field(description="Who or what, e.g. 'User', 'Alice', 'Acme'.")
    relation: str = Field(description="A short verb, e.g. works_at, lives_in, likes, sister_of.")
    target: str
    source_type: str | None = Field(None, description="person, organisation, place, thing...")
    target_type: str | None = None
    exclusive: bool = Field(False, description="Only one target at a time: a new one ends the old one.")
    valid_from: str | None = Field(None, description="ISO date it became true; default now.")


def register(mcp: MCPServer, service: MemoryService) -> None:
    @mcp.tool(annotations=READ_ONLY)
    def search_graph(
        query: Annotated[str, Field(description="An entity name ('Acme', 'Alice', 'User') or a question naming "
                                    "one ('what do people at Acme prefer?').")],
        depth: Annotated[int, Field(ge=1, le=4, description="How many hops from the named entities.")] = 2,
        as_of: AsOf = None, user_id: UserId = None,
    ) -> Annotated[CallToolResult, GraphResult]:
        """Relations around the entities a query names, as (source, relation, target) with the dates they
        hold: e.g. who works at a company and what each of them prefers. Current facts by default; as_of
        shows what was true on a past date (superseded relations keep their time range)."""
        return ok(service.graph.search(query, depth, as_of, user_id))

    @mcp.tool(annotations=READ_ONLY)
    def get_entity(
        name: Annotated[str, Field(description="A name or alias.")], user_id: UserId = None,
    ) -> Annotated[CallToolResult, EntityInfo]:
        """One entity: its aliases, its current and past relations, and the stored facts behind them."""
        return ok(service.graph.entity(name, user_id))

    @mcp.tool(annotations=WRITES)
    def add_relations(
        relations: Annotated[list[RelationIn], Field(description="Relations to record.")], user_id: UserId = None,
    ) -> Annotated[CallToolResult, RelationsResult]:
        """Record relations between people, organisations, places and things (e.g. Alice works_at Acme).
        Useful when no LLM endpoint extracts them from add_memory. A new value of a single-valued relation
        (lives_in, works_at, travels_to, or exclusive=true) ends the old one, which stays in the history."""
        return ok(service.graph.add([r.model_dump() for r in relations], user_id))

    @mcp.resource("memory://graph", name="memory_graph", mime_type="text/plain",
                  description="Every current relation of the default user, one per line with its date range.")
    def graph_resource() -> str:
        return render(service.graph.export())
