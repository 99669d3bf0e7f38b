"""The HTTP transports: streamable HTTP (``/mcp``) and SSE (``/sse`` + ``/messages/``).

Safe by default: the server listens on 127.0.0.1, and on a loopback address it checks
the Host and Origin headers of every request (DNS-rebinding protection, done by the
SDK's `TransportSecurityMiddleware`: a foreign Host gets 421, a foreign Origin 403).
Listening on any other address is refused unless a bearer token is configured; with a
token, every request must carry ``Authorization: Bearer <token>`` or it gets 401.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp_memory.config import Settings
from mcp_memory.errors import ConfigError, ListenError

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

PATHS = {"http": "/mcp", "sse": "/sse"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond this machine without a token (raises ConfigError)."""
    if not is_loopback(settings.http_host) and settings.http_token is None:
        raise ConfigError(
            f"refusing to listen on {settings.http_host} without a token: anyone who can reach it could read "
            "and change your memories; set MCP_MEMORY_HTTP_TOKEN (or --token), or listen on 127.0.0.1")


def security_settings(host: str) -> TransportSecuritySettings:
    """Host/Origin checks for a loopback listener. Beyond loopback the names clients use cannot
    be known in advance, so the checks are off there and the bearer token protects instead."""
    from mcp.server.transport_security import TransportSecuritySettings

    if not is_loopback(host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = ["127.0.0.1", "localhost", "[::1]"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{n}:*" for n in names],
        allowed_origins=[f"{scheme}://{n}:*" for scheme in ("http", "https") for n in names],
    )


class HostOriginCheck:
    """ASGI middleware: the SDK's Host/Origin checks on every HTTP request, answered here.

    The SDK's transports run the same checks, but its SSE endpoint raises after sending the
    error response, which logs a traceback for every refused request."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        from mcp.server.transport_security import TransportSecurityMiddleware

        self.app = app
        self._check = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from starlette.requests import Request

            refused = await self._check.validate_request(Request(scope, receive), is_post=False)
            if refused is not None:
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BearerToken:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan events
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        reason = "missing bearer token" if not given else "invalid bearer token"
        body = json.dumps({"error": "invalid_token", "error_description": reason}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", f'Bearer realm="mcp-memory", error="invalid_token", '
                                  f'error_description="{reason}"'.encode())]})
        await send({"type": "http.response.body", "body": body})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port); one clear error if that fails."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}: {exc.strerror}; pass an IP address or a known host name "
                          "with --host") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port "
                         "(or stop the process using it)") from None
    sock.set_inheritable(True)
    return sock


def url(transport: str, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{PATHS[transport]}"


def app(server: Any, transport: str, settings: Settings) -> ASGIApp:
    """The ASGI application for ``transport`` ("http" or "sse"), with the token check if configured."""
    security = security_settings(settings.http_host)
    if transport == "sse":
        asgi = server.sse_app(transport_security=security, host=settings.http_host)
    else:
        asgi = server.streamable_http_app(transport_security=security, host=settings.http_host)
    if settings.http_token is not None:
        asgi = BearerToken(asgi, settings.http_token.get_secret_value())
    return HostOriginCheck(asgi, security) if security.enable_dns_rebinding_protection else asgi


def serve(settings: Settings, transport: str, ready: Callable[[str], None] | None = None) -> None:
    """Serve the MCP server over ``transport`` ("http" or "sse") until interrupted."""
    import anyio

    check_exposure(settings)
    sock = bind(settings.http_host, settings.http_port)
    try:
        anyio.run(_serve, settings, transport, sock, ready)
    finally:
        sock.close()


async def _serve(settings: Settings, transport: str, sock: socket.socket,
                 ready: Callable[[str], None] | None) -> None:
    import uvicorn

    from mcp_memory.server import build_server

    # SSE enters the server's lifespan once per connection: the service's lifespan wraps the
    # whole server instead, so it opens once and closes when the server stops.
    server = build_server(settings, lifespan_per_connection=transport == "sse")
    config = uvicorn.Config(app(server, transport, settings), log_config=None, access_log=False,
                            log_level=settings.log_level.lower(), lifespan="on" if transport == "http" else "off")
    uv = uvicorn.Server(config)
    if ready:
        ready(f"mcp-memory: serving MCP over {'streamable HTTP' if transport == 'http' else 'SSE'} at "
              f"{url(transport, sock)}" + (" (bearer token required)" if settings.http_token else ""))
    if transport == "sse":
        async with server.process_lifespan(server):
            await uv.serve(sockets=[sock])
    else:
        await uv.serve(sockets=[sock])
