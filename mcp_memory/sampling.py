"""The client's own model as the LLM, through MCP sampling (`sampling/createMessage`).

Used by `add_memory` when no LLM endpoint is configured and the connected client
declared the sampling capability on a connection that can carry server-to-client
requests (the handshake-era protocol; the 2026-07-28 revision deprecates sampling).
The engine runs in a worker thread; `anyio.from_thread.run` hops to the event loop.
"""

from __future__ import annotations

import warnings
from typing import Any

import anyio
import anyio.from_thread
from mcp_types import ClientCapabilities, SamplingCapability, SamplingMessage, TextContent

from mcp_memory.errors import ProviderError
from mcp_memory.llm import LLM


class SamplingLLM(LLM):
    kind = "sampling"
    name = "sampling"

    def __init__(self, session: Any, request_id: Any) -> None:
        self._session = session
        self._request_id = request_id

    def complete(self, system: str, user: str, max_tokens: int, timeout: float) -> str:
        async def call() -> Any:
            with anyio.fail_after(timeout), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sampling is deprecated in the newest protocol revision
                return await self._session.create_message(
                    messages=[SamplingMessage(role="user", content=TextContent(type="text", text=user))],
                    max_tokens=max_tokens,
                    system_prompt=system,
                    temperature=0,
                    related_request_id=self._request_id,
                )

        try:
            result = anyio.from_thread.run(call)
        except TimeoutError:
            raise ProviderError(f"the client's model did not answer the sampling request within "
                                f"{timeout:.0f}s") from None
        except Exception as exc:
            message = getattr(getattr(exc, "error", None), "message", None) or type(exc).__name__
            raise ProviderError(f"the client's sampling request failed ({str(message)[:200]})") from None
        content = getattr(result, "content", None)
        if not isinstance(content, TextContent) or not content.text:
            raise ProviderError("the client's model returned no text")
        return content.text


def sampling_llm(ctx: Any) -> SamplingLLM | None:
    """A sampling-backed LLM for this request, or None if the client cannot sample."""
    try:
        session = ctx.session
        if not session.can_send_request:
            return None
        if not session.check_client_capability(ClientCapabilities(sampling=SamplingCapability())):
            return None
        return SamplingLLM(session, ctx.request_id)
    except (ValueError, AttributeError):  # no request context (called outside a request)
        return None
