"""The MCP server: thin tools over `MemoryService`, chosen by profile.

Errors raised on purpose become one line for the assistant; anything unexpected is
logged with its traceback on stderr and reported as one generic line, so a client
never sees a traceback. The `initialize` reply does not wait for the store: the
service opens in the background and the first tool call waits for it.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp_types import SubscribeRequestParams, UnsubscribeRequestParams
from pydantic import ValidationError

from mcp_memory import __version__
from mcp_memory.config import Settings
from mcp_memory.errors import MemoryServiceError, NotFound
from mcp_memory.service import MemoryService

log = logging.getLogger(__name__)


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "invalid arguments: " + "; ".join(parts) + more


class MemoryServer(MCPServer):
    """MCPServer whose tool and resource errors are always one clear line."""

    process_lifespan: Any = None  # set by build_server: opens and closes the service, once per process

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, MemoryServiceError):
                raise ToolError(str(cause).splitlines()[0]) from None
            log.error("tool %s failed unexpectedly", name, exc_info=cause or exc)
            raise ToolError(f"{name} failed with an internal error ({type(cause).__name__}); "
                            "the server log on stderr has the details") from None
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(_one_line(cause)) from cause
            text = str(exc)
            prefix = f"Error executing tool {name}: "
            raise ToolError((text[len(prefix):] if text.startswith(prefix) else text).splitlines()[0]) from None

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        try:
            return await super().read_resource(uri, context)
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, NotFound):
                raise ResourceNotFoundError(str(cause)) from None
            if isinstance(cause, MemoryServiceError):
                from mcp.server.mcpserver.exceptions import ResourceError

                raise ResourceError(str(cause)) from None
            raise

    def add_request_handler(self, method: str, params_type: Any, handler: Any) -> None:
        """Serve a spec method MCPServer leaves unserved (resources/subscribe on handshake-era wires)."""
        self._lowlevel_server.add_request_handler(method, params_type, handler)


def build_server(settings: Settings, service: MemoryService | None = None, *, instructions: str | None = None,
                 lifespan_per_connection: bool = False) -> MemoryServer:
    """The MCP server for ``settings.profile`` over ``service``.

    ``instructions`` defaults to `mcp_memory.instructions.build` (which reads core memory).
    The lifespan opens the service in the background and closes it at the end. Transports
    that enter the server's lifespan once per connection (SSE) pass
    ``lifespan_per_connection=True`` and enter `MemoryServer.process_lifespan` once
    around the whole server themselves.
    """
    from mcp_memory import tools_agent, tools_context, tools_graph, tools_passive
    from mcp_memory.instructions import build
    from mcp_memory.notify import CoreWatcher

    service = service or MemoryService(settings)
    bus = InMemorySubscriptionBus()
    watcher = CoreWatcher(service, bus)

    @asynccontextmanager
    async def process_lifespan(_: MCPServer) -> AsyncIterator[MemoryService]:
        service.start()  # heavy imports and store opening happen off the initialize path
        try:
            async with anyio.create_task_group() as tg:
                if settings.profile != "passive":
                    tg.start_soon(watcher.run)
                try:
                    yield service
                finally:
                    tg.cancel_scope.cancel()
        finally:
            # Outside the cancelled task group, and shielded: awaited inside it, the close was
            # cancelled before it ran, leaving the store open (and the opening thread running)
            # while the interpreter shut down.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(service.close)
            log.info("memory store closed")

    @asynccontextmanager
    async def connection_lifespan(_: MCPServer) -> AsyncIterator[MemoryService]:
        yield service

    text = build(settings, service) if instructions is None else instructions
    mcp = MemoryServer("mcp-memory", version=__version__, instructions=text,
                       lifespan=connection_lifespan if lifespan_per_connection else process_lifespan,
                       log_level=settings.log_level, subscriptions=bus)
    mcp.process_lifespan = process_lifespan
    tools_context.register(mcp, service)
    if settings.profile in ("all", "passive"):
        tools_passive.register(mcp, service)
        tools_graph.register(mcp, service)
    if settings.profile in ("all", "agent"):
        tools_agent.register(mcp, service)
        mcp.add_request_handler("resources/subscribe", SubscribeRequestParams, watcher.subscribe)
        mcp.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, watcher.unsubscribe)
    return mcp
