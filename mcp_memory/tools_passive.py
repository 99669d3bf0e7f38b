"""Mem0-style tools: passive memory of facts (add, search, list, get, update, delete, history)."""

from functools import partial
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from mcp_memory.instructions import PASSIVE
from mcp_memory.models import AddResult, DeleteResult, History, Memory, MemoryEvent, MemoryList, SearchResult
from mcp_memory.service import MemoryService
from mcp_memory.tooling import (
    DESTRUCTIVE, READ_ONLY, WRITES, AgentId, MemoryId, RunId, UserId, ok, progress_reporter, run,
)

INSTRUCTIONS = PASSIVE


class MessageIn(BaseModel):
    role: Literal["user", "assistant", "system", "tool"]
    content: str
    name: str | None = Field(None, description="Speaker name, if not just 'user'/'assistant'.")
    created_at: str | None = Field(None, description="ISO 8601 time the message was sent; default now.")


def register(mcp: MCPServer, service: MemoryService) -> None:
    settings = service.settings

    @mcp.tool(annotations=WRITES)
    async def add_memory(
        ctx: Context,
        text: Annotated[str | None, Field(description="Facts to remember, one self-contained statement per "
                                          "sentence, e.g. 'User is allergic to soy milk.'")] = None,
        messages: Annotated[list[MessageIn] | None, Field(description="Conversation turns to extract facts from "
                                                          "(instead of text); they are also logged.")] = None,
        user_id: UserId = None, agent_id: AgentId = None, run_id: RunId = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Small JSON object stored with each "
                                                         "fact, filterable in search_memory.")] = None,
        infer: Annotated[bool, Field(description="false stores the text exactly as given, without "
                                     "extraction or reconciliation.")] = True,
        wait: Annotated[bool | None, Field(description="With an LLM endpoint configured, false (the default) "
                                           "stores the input and returns at once while facts are extracted in "
                                           "the background (see memory_jobs); true waits for the events.")] = None,
    ) -> Annotated[CallToolResult, AddResult]:
        """Remember facts about the user across sessions. Call it when the user shares preferences, plans,
        facts about themselves or their work, or corrects something. The server extracts atomic facts,
        reconciles them with stored memories (ADD new, UPDATE superseded, DELETE contradicted, NONE for
        duplicates) and returns one event per fact with its id. If the result lists 'related' memories that
        the new fact replaces, call update_memory or delete_memory on them."""
        llm = None
        if service.settings.sampling and not service.settings.llm_enabled:
            from mcp_memory.sampling import sampling_llm

            llm = sampling_llm(ctx)
        call = partial(service.add, text, [m.model_dump() for m in messages] if messages else None, user_id=user_id,
                       agent_id=agent_id, run_id=run_id, metadata=metadata, infer=infer, llm=llm, wait=wait)
        no_model = not infer or (llm is None and not settings.llm_enabled)  # the rules, or verbatim
        return ok(await run(service, call, in_process=no_model))

    @mcp.tool(annotations=READ_ONLY)
    async def search_memory(
        query: Annotated[str, Field(description="What you want to know, in natural language.")],
        user_id: UserId = None, agent_id: AgentId = None, run_id: RunId = None,
        filters: Annotated[dict[str, Any] | None, Field(description="Metadata equality filters, e.g. "
                                                        "{\"topic\": \"travel\"}; a list value matches any.")] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="Most hits to return.")] = 10,
        threshold: Annotated[float | None, Field(ge=0, le=1, description="Drop hits scoring below this.")] = None,
        max_tokens: Annotated[int | None, Field(ge=1, le=100_000, description="Return only the best hits that "
                                                "fit in this many tokens.")] = None,
        include_relations: Annotated[bool, Field(description="Also return the relations between entities that "
                                                 "the hits state.")] = False,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Find the stored facts most relevant to a question (hybrid semantic + keyword search over the
        user's active memories). Call it before answering anything that may depend on what you know about
        the user. Returns hits with id, memory text, score (0-1) and dates, best first."""
        return ok(await run(service, partial(service.search, query, user_id=user_id, agent_id=agent_id,
                                             run_id=run_id, filters=filters, limit=limit, threshold=threshold,
                                             max_tokens=max_tokens, include_relations=include_relations)))

    @mcp.tool(annotations=READ_ONLY)
    def list_memories(
        user_id: UserId = None, agent_id: AgentId = None, run_id: RunId = None,
        page: Annotated[int, Field(ge=1)] = 1,
        page_size: Annotated[int, Field(ge=1, le=1000)] = 100,
    ) -> Annotated[CallToolResult, MemoryList]:
        """List the active memories of a user (newest first), a page at a time, with the total count."""
        return ok(service.list(user_id=user_id, agent_id=agent_id, run_id=run_id, page=page,
                                page_size=page_size))

    @mcp.tool(annotations=READ_ONLY)
    async def get_memory(memory_id: MemoryId) -> Annotated[CallToolResult, Memory]:
        """Show one memory with its scope, metadata, state and the messages it was extracted from."""
        return ok(await run(service, partial(service.get, memory_id)))

    @mcp.tool(annotations=WRITES)
    def update_memory(
        memory_id: MemoryId,
        text: Annotated[str, Field(description="The corrected, complete text of the memory.")],
    ) -> Annotated[CallToolResult, MemoryEvent]:
        """Replace the text of a memory that is outdated or wrong. The old text stays in its history."""
        return ok(service.update(memory_id, text))

    @mcp.tool(annotations=DESTRUCTIVE)
    def delete_memory(memory_id: MemoryId) -> Annotated[CallToolResult, MemoryEvent]:
        """Remove a memory that is no longer true or that the user wants forgotten. It leaves search;
        its history keeps a DELETE entry (use delete_all_memories to erase a user's data for good)."""
        return ok(service.delete(memory_id))

    @mcp.tool(annotations=READ_ONLY)
    def memory_history(memory_id: MemoryId) -> Annotated[CallToolResult, History]:
        """Show how a memory changed over time: each ADD / UPDATE / DELETE with old and new text, when and
        why. Use it to see what a fact said before it was superseded."""
        return ok(service.history(memory_id))

    @mcp.tool(annotations=DESTRUCTIVE)
    def delete_all_memories(
        ctx: Context,
        user_id: Annotated[str | None, Field(description=f"Erase everything of this user (the default user is "
                                             f"'{settings.default_user_id}').")] = None,
        agent_id: AgentId = None, run_id: RunId = None,
    ) -> Annotated[CallToolResult, DeleteResult]:
        """Erase for good every memory, its history and the logged messages of a user, agent or run, and
        compact the files so the text is gone from disk. Only when the user explicitly asks to be
        forgotten. At least one of user_id, agent_id, run_id is required. Returns how many memories were
        erased."""
        return ok(service.delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id,
                                     progress=progress_reporter(ctx)))
