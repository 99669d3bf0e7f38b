"""Letta-style tools, resources and prompt: core memory blocks, archival memory, recall."""

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import CallToolResult
from pydantic import Field

from mcp_memory.agentic import DEFAULT_LIMIT, render_blocks
from mcp_memory.instructions import AGENT
from mcp_memory.models import ArchivalInsert, ArchivalResult, Block, BlockList, LogResult, RecallResult
from mcp_memory.service import MemoryService
from mcp_memory.tooling import READ_ONLY, WRITES, RunId, UserId, ok, progress_reporter, run
from mcp_memory.tools_passive import MessageIn

INSTRUCTIONS = AGENT
LOG_IN_PROCESS = 64  # turns logged on the event loop at most (each is embedded): bigger logs go to a thread

Label = Annotated[str, Field(description="Block label, e.g. 'human' or 'persona'.")]
Date = Annotated[str | None, Field(description="ISO 8601 date or datetime (UTC if no offset).")]


def agent_prompt(service: MemoryService, user_id: str | None = None) -> str:
    blocks = service.agent.core_read(user_id=user_id).blocks
    counts = service.agent.counts(user_id)
    return (f"{INSTRUCTIONS}\n\nArchival memory holds {counts['archival']} passages and {counts['facts']} facts; "
            f"recall memory holds {counts['recall']} messages.\n\n{render_blocks(blocks)}")


def register(mcp: MCPServer, service: MemoryService) -> None:
    @mcp.tool(annotations=READ_ONLY)
    def core_memory_read(
        label: Annotated[str | None, Field(description="One block; omit for all.")] = None, user_id: UserId = None,
    ) -> Annotated[CallToolResult, BlockList]:
        """Read core memory blocks with their size and limit (chars_current / chars_limit) and version.
        Use it when your client does not show the memory://core resource, or before a whole-block rewrite."""
        return ok(service.agent.core_read(label, user_id))

    @mcp.tool(annotations=WRITES)
    def core_memory_append(
        label: Label,
        text: Annotated[str, Field(description="Text to add as a new line at the end of the block.")],
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, Block]:
        """Add a line to a core memory block, e.g. a new lasting fact about the user to 'human'.
        Fails if the block would exceed its character limit: then move detail to archival memory."""
        return ok(service.agent.core_append(label, text, user_id))

    @mcp.tool(annotations=WRITES)
    def core_memory_replace(
        label: Label,
        old_text: Annotated[str, Field(description="Exact text currently in the block; must occur once.")],
        new_text: Annotated[str, Field(description="Replacement; an empty string deletes old_text.")],
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, Block]:
        """Change part of a core memory block: old_text must occur exactly once in it (the error says how
        many times it occurs otherwise). Use it to correct or remove an outdated line."""
        return ok(service.agent.core_replace(label, old_text, new_text, user_id))

    @mcp.tool(annotations=WRITES)
    def core_memory_rethink(
        label: Label,
        new_value: Annotated[str, Field(description="The complete new content of the block.")],
        expected_version: Annotated[int | None, Field(description="Version you based the rewrite on (from "
                                                      "core_memory_read); the rewrite fails if it changed.")] = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, Block]:
        """Rewrite a whole core memory block, e.g. to reorganise or condense it. If another client edited
        the block since you last read it, this fails and shows the current value instead of losing that edit."""
        return ok(service.agent.core_rethink(label, new_value, expected_version, user_id))

    @mcp.tool(annotations=WRITES)
    def core_memory_create_block(
        label: Annotated[str, Field(description="New label: lowercase letters, digits, '_' or '-'.")],
        description: Annotated[str | None, Field(description="What the block is for.")] = None,
        limit: Annotated[int, Field(ge=1, le=100_000, description="Character limit.")] = DEFAULT_LIMIT,
        value: Annotated[str, Field(description="Initial content.")] = "",
        read_only: Annotated[bool, Field(description="Refuse later edits.")] = False,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, Block]:
        """Create another core memory block (e.g. 'project' for the current project's key facts)."""
        return ok(service.agent.core_create(label, description, limit, value, read_only, user_id))

    @mcp.tool(annotations=WRITES)
    def archival_memory_insert(
        text: Annotated[str, Field(description="A passage or a whole document; long text is chunked.")],
        ctx: Context,
        tags: Annotated[list[str] | None, Field(description="Tags to filter on later.")] = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, ArchivalInsert]:
        """Save knowledge to archival memory (unlimited, searchable): details that do not belong in core
        memory, documents, notes. Long documents are split into passages by section and paragraph."""
        return ok(service.agent.archival_insert(text, tags, user_id, progress=progress_reporter(ctx)))

    @mcp.tool(annotations=READ_ONLY)
    async def archival_search(
        query: Annotated[str, Field(description="What you are looking for, in natural language.")],
        tags: Annotated[list[str] | None, Field(description="Only passages with these tags.")] = None,
        tag_match: Annotated[Literal["any", "all"], Field(description="Match any or all of the tags.")] = "any",
        start_date: Date = None, end_date: Date = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
        page: Annotated[int, Field(ge=1)] = 1,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, ArchivalResult]:
        """Search archival memory (and the facts stored by add_memory) by meaning and keywords, optionally
        by tags and by the date passages were stored. Best first, newest first on ties; pages with page."""
        return ok(await run(service, lambda: service.agent.archival_search(query, tags, tag_match, start_date,
                                                                           end_date, limit, page, user_id)))

    @mcp.tool(annotations=WRITES)
    async def log_messages(
        messages: Annotated[list[MessageIn], Field(description="Turns to log, oldest first.")],
        run_id: RunId = None, user_id: UserId = None,
    ) -> Annotated[CallToolResult, LogResult]:
        """Append conversation turns to recall memory so they can be searched later with recall. Log each
        exchange as it happens (role, content, and created_at when known)."""
        turns = [m.model_dump() for m in messages]
        return ok(await run(service, lambda: service.agent.log_messages(turns, run_id, user_id),
                            in_process=len(turns) <= LOG_IN_PROCESS))

    @mcp.tool(annotations=READ_ONLY)
    async def recall(
        query: Annotated[str | None, Field(description="Words to find; omit for the newest messages.")] = None,
        roles: Annotated[list[Literal["user", "assistant", "system", "tool"]] | None,
                         Field(description="Only these roles.")] = None,
        start_date: Date = None, end_date: Date = None, run_id: RunId = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
        page: Annotated[int, Field(ge=1)] = 1,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, RecallResult]:
        """Search the log of past messages by words and meaning, role and date range, or list the newest.
        Results are ranked and include the turns around each match; a speaker or a date named in the query
        ("what did Sam say about the move in March 2024?") is preferred. Use it for "what did we say about
        X" and "what happened last week". Each message has its time."""
        return ok(await run(service, lambda: service.agent.recall(query, roles, start_date, end_date, run_id, limit,
                                                                  page, user_id)))

    @mcp.resource("memory://core", name="core_memory", mime_type="text/plain",
                  description="All core memory blocks, rendered as they sit in the assistant's context.")
    def core_resource() -> str:
        return render_blocks(service.agent.core_read().blocks)

    @mcp.resource("memory://core/{label}", name="core_memory_block", mime_type="text/plain",
                  description="The value of one core memory block.")
    def block_resource(label: str) -> str:
        return service.agent.core_read(label).blocks[0].value

    @mcp.prompt(name="memory_agent", description="Instructions for a self-editing memory agent, with the "
                "current core memory and the sizes of archival and recall memory.")
    def memory_agent(user_id: str | None = None) -> list[UserMessage]:
        return [UserMessage(agent_prompt(service, user_id))]
