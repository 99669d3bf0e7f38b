"""The HTTP transports, over real sockets: a real server process on loopback, real HTTP clients.

Raw requests (httpx2) check what the transport lets in: Host and Origin (DNS-rebinding
protection), the bearer token, the refusal to listen beyond loopback without one. The
SDK's clients then hold real MCP sessions over streamable HTTP and SSE.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import call, server_env

TOKEN = "s3cret-token-for-tests-0123456789"
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str, stderr: list[str]) -> None:
        self.proc, self.url, self.stderr = proc, url, stderr

    @property
    def base(self) -> str:
        return self.url.rsplit("/", 1)[0]

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])


@contextmanager
def http_server(data_dir: Path, *args: str, **env: str) -> Iterator[Server]:
    """`mcp-memory serve --port 0 ARGS` in a subprocess; yields once it prints where it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "mcp_memory", "serve", "--port", "0", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=server_env(data_dir, **env))
    lines: list[str] = []
    found = threading.Event()

    def drain() -> None:  # keep reading so the pipe never fills up
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "serving MCP over" in line:
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert found.wait(30), "the server did not start"
        match = next((re.search(r"at (http://\S+)", line) for line in lines if "serving MCP over" in line), None)
        assert match, "".join(lines)
        yield Server(proc, match.group(1), lines)
    finally:
        proc.terminate()
        try:
            # a graceful shutdown, then uvicorn lets SIGTERM end the process as usual
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM), "".join(lines)
            assert "Traceback" not in "".join(lines), "".join(lines)
        finally:
            if proc.poll() is None:
                proc.kill()


def post(server: Server, body: Any = INIT, **headers: str) -> httpx2.Response:
    return httpx2.post(server.url, json=body, headers={**MCP_HEADERS, **headers}, timeout=30)


def test_streamable_http_on_loopback_checks_host_and_origin(tmp_path: Path):
    with http_server(tmp_path / "data", "--transport", "http") as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/mcp")
        ok = post(server)
        assert ok.status_code == 200, ok.text
        assert "mcp-memory" in ok.text
        # a page on another site, or a DNS name rebound to 127.0.0.1, is turned away
        foreign_host = post(server, Host="evil.example.com")
        assert (foreign_host.status_code, foreign_host.text) == (421, "Invalid Host header")
        foreign_origin = post(server, Origin="http://evil.example.com")
        assert (foreign_origin.status_code, foreign_origin.text) == (403, "Invalid Origin header")
        rebound = post(server, Host=f"evil.example.com:{server.port}", Origin=f"http://evil.example.com:{server.port}")
        assert rebound.status_code == 421
        # local names and local pages are fine
        assert post(server, Host=f"localhost:{server.port}").status_code == 200
        assert post(server, Origin=f"http://localhost:{server.port}").status_code == 200
        assert post(server, Origin="http://127.0.0.1:6274").status_code == 200  # e.g. the MCP Inspector's UI


def test_sse_on_loopback_checks_host_and_origin(tmp_path: Path):
    with http_server(tmp_path / "data", "--transport", "sse") as server:
        assert server.url.endswith("/sse")
        assert httpx2.get(server.url, headers={"Host": "evil.example.com"}, timeout=10).status_code == 421
        assert httpx2.get(server.url, headers={"Origin": "http://evil.example.com"}, timeout=10).status_code == 403
        with httpx2.stream("GET", server.url, timeout=10) as stream:
            assert stream.status_code == 200
            first = next(stream.iter_lines())
            assert first == "event: endpoint"
        message_url = f"{server.base}/messages/?session_id=0123456789abcdef0123456789abcdef"
        refused = httpx2.post(message_url, json=INIT, headers={"Origin": "http://evil.example.com"}, timeout=10)
        assert refused.status_code == 403


def test_a_full_mcp_session_over_streamable_http(tmp_path: Path):
    import anyio
    from mcp import Client

    async def session(url: str, mode: str, event: str) -> None:
        async with Client(url, mode=mode) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"add_memory", "search_memory", "core_memory_append"} <= tools
            added = await call(client, "add_memory", text="I keep bees in the garden")
            assert added["events"][0]["event"] == event
            hits = (await call(client, "search_memory", query="what does the user keep in the garden?"))["hits"]
            assert [h["memory"] for h in hits] == ["I keep bees in the garden"]
            core = await client.read_resource("memory://core")
            assert "<memory_blocks>" in core.contents[0].text

    with http_server(tmp_path / "data", "--transport", "http") as server:
        anyio.run(session, server.url, "auto", "ADD")
        anyio.run(session, server.url, "legacy", "NONE")  # another session, handshake era, same store
    with http_server(tmp_path / "data", "--transport", "http") as server:  # the store outlives the server
        anyio.run(session, server.url, "auto", "NONE")


def test_a_full_mcp_session_over_sse_with_two_clients(tmp_path: Path):
    import anyio
    from mcp import Client
    from mcp.client.sse import sse_client

    async def sessions(url: str) -> None:
        async with Client(sse_client(url), mode="legacy") as one, Client(sse_client(url), mode="legacy") as two:
            await call(one, "add_memory", text="User's sister is called Ana")
            hits = (await call(two, "search_memory", query="sister"))["hits"]
            assert hits[0]["memory"] == "User's sister is called Ana"
        # the first connections are gone; the service must still be open for the next one
        async with Client(sse_client(url), mode="legacy") as three:
            assert (await call(three, "list_memories"))["total"] == 1

    with http_server(tmp_path / "data", "--transport", "sse") as server:
        anyio.run(sessions, server.url)


def test_listening_beyond_loopback_needs_a_token(tmp_path: Path):
    for host in ("0.0.0.0", "::", "192.0.2.1", "my-laptop.example.com"):
        result = subprocess.run([sys.executable, "-m", "mcp_memory", "serve", "--transport", "http", "--host", host],
                                capture_output=True, text=True, timeout=30, env=server_env(tmp_path / "data"))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""
        assert f"refusing to listen on {host} without a token" in result.stderr
        assert "MCP_MEMORY_HTTP_TOKEN" in result.stderr
    weak = subprocess.run([sys.executable, "-m", "mcp_memory", "serve", "--transport", "http", "--token", "123"],
                          capture_output=True, text=True, timeout=30, env=server_env(tmp_path / "data"))
    assert weak.returncode == 2 and "at least 16 characters" in weak.stderr and weak.stderr.count("\n") == 1


def test_with_a_token_every_request_must_carry_it(tmp_path: Path):
    import anyio
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    # all interfaces, as a user serving other machines would; the test talks to it over loopback
    with http_server(tmp_path / "data", "--transport", "http", "--host", "0.0.0.0",
                     MCP_MEMORY_HTTP_TOKEN=TOKEN) as server:
        assert "bearer token required" in "".join(server.stderr)
        url = f"http://127.0.0.1:{server.port}/mcp"
        server.url = url
        missing = post(server)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer ")
        assert missing.json()["error"] == "invalid_token"
        for wrong in ("Bearer nope", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"bearer  {TOKEN}"):
            assert post(server, Authorization=wrong).status_code == 401, wrong
        assert httpx2.get(f"http://127.0.0.1:{server.port}/anything", timeout=10).status_code == 401
        assert post(server, Authorization=f"Bearer {TOKEN}").status_code == 200
        # reached by its network name rather than loopback: the token is what protects it
        assert post(server, Authorization=f"Bearer {TOKEN}", Host=f"my-laptop.lan:{server.port}").status_code == 200

        async def session() -> None:
            http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                await call(client, "add_memory", text="User works from Lisbon")
                hits = (await call(client, "search_memory", query="Lisbon"))["hits"]
                assert hits[0]["memory"] == "User works from Lisbon"

        anyio.run(session)
        assert TOKEN not in "".join(server.stderr)


def test_a_token_on_loopback_is_enforced_too(tmp_path: Path):
    with http_server(tmp_path / "data", "--transport", "sse", "--token", TOKEN) as server:
        assert httpx2.get(server.url, timeout=10).status_code == 401
        with httpx2.stream("GET", server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as stream:
            assert stream.status_code == 200
        # the token does not switch off the rebinding checks on loopback
        assert httpx2.get(server.url, headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example.com"},
                          timeout=10).status_code == 421


def test_a_busy_port_is_one_clear_error(tmp_path: Path):
    with http_server(tmp_path / "data", "--transport", "http") as server:
        start = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "mcp_memory", "serve", "--transport", "http",
                                 "--port", str(server.port)], capture_output=True, text=True, timeout=30,
                                env=server_env(tmp_path / "data"))
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr and "--port" in result.stderr
        assert time.monotonic() - start < 20


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_names(host: str):
    from mcp_memory.serve_http import is_loopback

    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", "localhost.example.com"])
def test_not_loopback(host: str):
    from mcp_memory.serve_http import is_loopback

    assert not is_loopback(host)
