"""Tools shared by both profiles: the token-budgeted context block and background jobs."""

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import CallToolResult, TextContent
from pydantic import Field

from mcp_memory.models import ContextBlock, JobList
from mcp_memory.service import MemoryService
from mcp_memory.tooling import READ_ONLY, AgentId, RunId, UserId, ok

Budget = Annotated[int, Field(ge=50, le=100_000, description="Token budget of the block.")]


def register(mcp: MCPServer, service: MemoryService) -> None:
    @mcp.tool(annotations=READ_ONLY)
    def memory_context(
        query: Annotated[str, Field(description="The user's request, or what the next answer is about.")],
        max_tokens: Budget = 1500,
        user_id: UserId = None, agent_id: AgentId = None, run_id: RunId = None,
    ) -> Annotated[CallToolResult, ContextBlock]:
        """One ready-to-use block of memory for a request: core memory, the most relevant facts and the
        most relevant past messages with their dates, most useful first, within max_tokens. Call it at the
        start of a task and keep the block in mind while answering."""
        block = service.context(query, max_tokens=max_tokens, user_id=user_id, agent_id=agent_id, run_id=run_id)
        result = ok(block)
        # the block itself is what the model reads, not JSON around it
        return CallToolResult(content=[TextContent(type="text", text=block.context)],
                              structured_content=result.structured_content)

    @mcp.tool(annotations=READ_ONLY)
    def memory_jobs(
        job_id: Annotated[str | None, Field(description="A job_id returned by add_memory(wait=false); omit "
                                            "for the recent jobs.")] = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, JobList]:
        """State of background extraction jobs (pending, running, done, failed) and, when done, the events
        they caused (ADD / UPDATE / DELETE / NONE with ids)."""
        return ok(service.job_status(job_id, user_id))

    @mcp.prompt(name="memory_context", description="Memory relevant to a request, within a token budget, "
                "ready to put in front of it.")
    def memory_context_prompt(query: str, max_tokens: str = "1500", user_id: str | None = None) -> list[UserMessage]:
        budget = int(max_tokens) if max_tokens.strip().isdigit() else 1500
        return [UserMessage(service.context(query, max_tokens=budget, user_id=user_id).context)]
