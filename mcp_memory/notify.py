"""Resource change notifications for core memory, whoever made the change.

Another server process (another assistant) may edit a block, so changes are found by
polling block versions in SQLite (a tiny indexed query) rather than by hooking our own
tools. Subscribers hear about them both ways MCP offers: `subscriptions/listen`
streams (2026-07-28) through the server's bus, and `resources/subscribe` sessions on
handshake-era connections.
"""

import logging
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp_types import EmptyResult

from mcp_memory.service import MemoryService

log = logging.getLogger(__name__)

CORE_URI = "memory://core"


class CoreWatcher:
    def __init__(self, service: MemoryService, bus: SubscriptionBus, interval: float = 0.5) -> None:
        self.service = service
        self.bus = bus
        self.interval = interval
        self._versions: dict[str, int] | None = None
        self._sessions: dict[str, list[Any]] = {}

    # handshake-era resources/subscribe and resources/unsubscribe
    async def subscribe(self, ctx: Any, params: Any) -> EmptyResult:
        sessions = self._sessions.setdefault(str(params.uri), [])
        if ctx.session not in sessions:
            sessions.append(ctx.session)
        return EmptyResult()

    async def unsubscribe(self, ctx: Any, params: Any) -> EmptyResult:
        sessions = self._sessions.get(str(params.uri), [])
        if ctx.session in sessions:
            sessions.remove(ctx.session)
        return EmptyResult()

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a failed poll is retried on the next tick
                log.debug("core memory poll failed", exc_info=True)

    async def check(self) -> None:
        if not self.service.is_open:
            return
        versions = await anyio.to_thread.run_sync(self.service.agent.core.versions,
                                                  self.service.settings.default_user_id)
        before, self._versions = self._versions, versions
        if before is None:
            return
        changed = [label for label, v in versions.items() if before.get(label) != v]
        if changed:
            for uri in [CORE_URI, *(f"{CORE_URI}/{label}" for label in changed)]:
                await self.bus.publish(ResourceUpdated(uri=uri))
                for session in list(self._sessions.get(uri, ())):
                    await self._send(session, uri)
        if set(versions) - set(before):
            await self.bus.publish(ResourcesListChanged())

    async def _send(self, session: Any, uri: str) -> None:
        try:
            await session.send_resource_updated(uri)
        except Exception:  # the client went away: forget it
            for sessions in self._sessions.values():
                if session in sessions:
                    sessions.remove(session)
