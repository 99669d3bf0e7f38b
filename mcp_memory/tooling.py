"""Shared pieces of the MCP tool modules: argument types, annotations, result conversion, and
where a tool's service call runs (`run`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from mcp_memory.models import compact_json

if TYPE_CHECKING:
    from mcp_memory.service import MemoryService

T = TypeVar("T")

UserId = Annotated[str | None, Field(description="Whose memory. Omit for the default user.")]
AgentId = Annotated[str | None, Field(description="Limit to memories of one agent/assistant.")]
RunId = Annotated[str | None, Field(description="Limit to one session or conversation.")]
MemoryId = Annotated[str, Field(description="A memory id as returned by add_memory, search_memory or list_memories.")]

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


def ok(model: BaseModel) -> CallToolResult:
    """Compact JSON for the model to read, and the same data as structured content."""
    data = model.model_dump(mode="json", exclude_none=True)
    return CallToolResult(content=[TextContent(type="text", text=compact_json(model))], structured_content=data)


async def run(service: MemoryService, call: Callable[[], T], *, in_process: bool = True) -> T:
    """Run a synchronous service call for an async tool: on the event loop when the call needs no
    model and the service answers in process now (``service.answers_in_process``), in a worker
    thread otherwise (as the SDK runs synchronous tools). The hand-off to a thread and back cost
    0.3-0.6 ms of an add over MCP stdio (bench/RESULTS.md, "Seventh speed pass"). A call that may
    wait on a model or an HTTP endpoint, report progress or run long passes ``in_process=False``:
    it must not hold up the loop. What such a call may still wait for, on the loop: another
    process's SQLite write (a few ms; a bulk import ~25 ms a batch, `bulk.BATCH`), and, for a search
    right after writes, applying the index queue first (~20 ms a LanceDB write)."""
    if in_process and service.answers_in_process:
        return call()
    return await anyio.to_thread.run_sync(call)


def progress_reporter(ctx: Context) -> Callable[[int, int], None]:
    """``progress(done, total)`` for a synchronous tool (the SDK runs those in a worker thread):
    each call becomes an MCP progress notification when the client sent a progress token (a no-op
    otherwise). A notification that cannot be sent never fails the tool."""

    def report(done: int, total: int) -> None:
        try:
            anyio.from_thread.run(ctx.report_progress, done, total)
        except Exception:  # the client went away, or no event loop to report to
            logging.getLogger(__name__).debug("progress notification not sent", exc_info=True)

    return report
