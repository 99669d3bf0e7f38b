"""The stdio transport's start-up path: the early answer to the opening request, the
handshake cache behind it, requests sent before the SDK is loaded, and end of input.

Every test drives a real `mcp-memory serve` process over its real stdin/stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mcp_memory.cli import cli
from mcp_memory.serve_stdio import CACHE_FILE
from tests.conftest import server_env

HANDSHAKE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}}
DISCOVER = {"jsonrpc": "2.0", "id": "d-1", "method": "server/discover", "params": {"_meta": META}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def serve(data_dir: Path, *messages: Any, debug: bool = True) -> tuple[dict[Any, dict[str, Any]], str]:
    """Write ``messages`` to a fresh server, close its stdin; return its replies by id, and its stderr."""
    env = server_env(data_dir, MCP_MEMORY_LOG_LEVEL="DEBUG" if debug else "WARNING")
    wire = "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)
    proc = subprocess.run([sys.executable, "-m", "mcp_memory", "serve"], input=wire, capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    replies = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout: JSON-RPC only
    by_id = {r["id"]: r for r in replies if "id" in r}
    assert len(by_id) == len(replies), replies
    return by_id, proc.stderr


def tool(request_id: Any, name: str, meta: dict[str, Any] | None = None, **arguments: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


@pytest.mark.parametrize("opening", [HANDSHAKE, DISCOVER], ids=["initialize", "server/discover"])
def test_the_early_answer_is_the_sdks_answer(tmp_path: Path, opening: dict[str, Any]):
    data = tmp_path / "data"
    first, log1 = serve(data, opening)  # nothing cached yet: the SDK answers
    assert "before the SDK was loaded" not in log1
    assert (data / CACHE_FILE).exists()
    second, log2 = serve(data, opening)  # answered at once, from the cache
    assert "before the SDK was loaded" in log2
    assert second == first
    assert "differed" not in log2
    assert "long-term memory" in second[opening["id"]]["result"]["instructions"]


def test_tool_and_prompt_lists_are_answered_early_too_and_are_the_sdks(tmp_path: Path):
    data = tmp_path / "data"
    lists = [{"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
             {"jsonrpc": "2.0", "id": 3, "method": "prompts/list", "params": {}}]
    first, log1 = serve(data, HANDSHAKE, INITIALIZED, *lists)  # cold: the SDK answers, the cache learns
    assert "answered tools/list before the SDK was loaded" not in log1
    assert any(t["name"] == "search_memory" for t in first[2]["result"]["tools"])
    second, log2 = serve(data, HANDSHAKE, INITIALIZED, *lists, tool(4, "list_memories"))
    assert "answered tools/list before the SDK was loaded" in log2
    assert "answered prompts/list before the SDK was loaded" in log2
    assert second[2] == first[2] and second[3] == first[3] and "differed" not in log2
    assert second[4]["result"]["structuredContent"]["total"] == 0  # later requests still reach the SDK
    paged = {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {"cursor": "x"}}
    _, log3 = serve(data, HANDSHAKE, INITIALIZED, paged)  # a later page: the SDK's to answer
    assert "answered tools/list" not in log3
    cache = json.loads((data / CACHE_FILE).read_text())  # a stale list is answered once, then refreshed
    cache["replies"]["tools/list after initialize 2025-11-25"]["tools"] = []
    (data / CACHE_FILE).write_text(json.dumps(cache))
    stale, log4 = serve(data, HANDSHAKE, INITIALIZED, lists[0])
    assert stale[2]["result"]["tools"] == [] and "differed from the SDK's" in log4
    fresh, _ = serve(data, HANDSHAKE, INITIALIZED, lists[0])
    assert fresh[2] == first[2]


def test_the_early_answer_carries_the_current_core_memory(tmp_path: Path):
    data = tmp_path / "data"
    serve(data, HANDSHAKE)
    result = CliRunner().invoke(cli, ["--data-dir", str(data), "blocks", "set", "human", "Name: Ana. Likes tea."])
    assert result.exit_code == 0, result.output
    replies, log = serve(data, HANDSHAKE)
    assert "before the SDK was loaded" in log and "differed" not in log
    assert "Name: Ana. Likes tea." in replies[1]["result"]["instructions"]


def test_a_stale_cache_costs_one_reply_and_is_refreshed(tmp_path: Path):
    data = tmp_path / "data"
    truth = serve(data, HANDSHAKE)[0][1]
    cache = json.loads((data / CACHE_FILE).read_text())
    cache["replies"]["initialize 2025-11-25"]["serverInfo"]["version"] = "0.0.0-stale"
    (data / CACHE_FILE).write_text(json.dumps(cache))
    stale, log = serve(data, HANDSHAKE)
    assert stale[1]["result"]["serverInfo"]["version"] == "0.0.0-stale"
    assert "differed from the SDK's; the handshake cache is refreshed" in log
    fresh, log = serve(data, HANDSHAKE)
    assert fresh[1] == truth and "differed" not in log


def test_a_cache_from_another_version_or_profile_is_not_used(tmp_path: Path):
    data = tmp_path / "data"
    serve(data, HANDSHAKE)
    cache = json.loads((data / CACHE_FILE).read_text())
    cache["fingerprint"] = cache["fingerprint"].replace("mcp-memory ", "mcp-memory 0.0.0-old-")
    (data / CACHE_FILE).write_text(json.dumps(cache))
    _, log = serve(data, HANDSHAKE)
    assert "before the SDK was loaded" not in log
    (data / CACHE_FILE).write_text("{not json")
    replies, log = serve(data, HANDSHAKE)
    assert "before the SDK was loaded" not in log and replies[1]["result"]["serverInfo"]["name"] == "mcp-memory"
    _, log = serve(data, HANDSHAKE)  # rewritten by the run before
    assert "before the SDK was loaded" in log


def test_unknown_versions_and_odd_openings_go_to_the_sdk(tmp_path: Path):
    data = tmp_path / "data"
    serve(data, HANDSHAKE)
    old = {**HANDSHAKE, "params": {**HANDSHAKE["params"], "protocolVersion": "2024-11-05"}}
    replies, log = serve(data, old)
    assert "before the SDK was loaded" not in log
    assert replies[1]["result"]["protocolVersion"] == "2024-11-05"
    no_info = {**HANDSHAKE, "params": {"protocolVersion": "2025-11-25", "capabilities": {}}}
    replies, log = serve(data, no_info)
    assert "before the SDK was loaded" not in log and "error" in replies[1]  # the SDK's own verdict


def test_requests_sent_at_once_are_all_answered_even_when_stdin_closes(tmp_path: Path):
    """A client that writes everything and closes stdin at once gets every reply: the server
    drains requests in flight before it exits (the SDK alone would drop their replies,
    although their writes were made)."""
    data = tmp_path / "data"
    serve(data, HANDSHAKE)  # warm the cache so the first request is answered early, the rest replayed
    adds = [tool(10 + i, "add_memory", text=f"Fact number {i} about the user", infer=False) for i in range(6)]
    replies, log = serve(data, "this is not JSON", HANDSHAKE, INITIALIZED, *adds,
                         tool(20, "list_memories"), debug=False)
    assert replies[1]["result"]["serverInfo"]["name"] == "mcp-memory"
    for i in range(6):
        assert replies[10 + i]["result"]["structuredContent"]["events"][0]["event"] == "ADD"
    assert "Traceback" not in log
    listed, _ = serve(data, HANDSHAKE, INITIALIZED, tool(2, "list_memories"))
    assert listed[2]["result"]["structuredContent"]["total"] == 6


def test_modern_requests_sent_before_the_sdk_is_ready(tmp_path: Path):
    data = tmp_path / "data"
    serve(data, DISCOVER)
    replies, _ = serve(data, DISCOVER, tool(2, "add_memory", META, text="User plays the cello", infer=False),
                       tool(3, "list_memories", META), debug=False)  # answered concurrently, in any order
    assert replies["d-1"]["result"]["supportedVersions"] == ["2026-07-28"]
    assert replies[2]["result"]["structuredContent"]["events"][0]["event"] == "ADD"
    assert "result" in replies[3]
    replies, _ = serve(data, DISCOVER, tool(4, "search_memory", META, query="which instrument?"), debug=False)
    assert "cello" in json.dumps(replies[4]["result"]["structuredContent"])


def test_stray_prints_while_serving_go_to_stderr_not_to_the_wire(tmp_path: Path):
    """A library (or a child process) writing to stdout while the server runs must not corrupt
    the JSON-RPC stream: fd 1 points at stderr while serving."""
    noisy = ("import sys, threading, time\n"
             "def noise():\n"
             "    time.sleep(2)\n"
             "    for _ in range(5):\n"
             "        print('NOISE from a library', flush=True)\n"
             "        import os; os.system('echo NOISE from a child process')\n"
             "threading.Thread(target=noise, daemon=True).start()\n"
             "sys.argv = ['mcp-memory', 'serve']\n"
             "from mcp_memory.cli import main\n"
             "main()\n")
    wire = "".join(json.dumps(m) + "\n" for m in (HANDSHAKE, INITIALIZED))
    proc = subprocess.Popen([sys.executable, "-c", noisy], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=server_env(tmp_path / "data"))
    assert proc.stdin and proc.stdout
    proc.stdin.write(wire)
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["id"] == 1
    time.sleep(3)  # the noise happens while the session is open
    out, err = proc.communicate(json.dumps(tool(2, "list_memories")) + "\n", timeout=60)
    assert [json.loads(line)["id"] for line in out.splitlines()] == [2]
    assert err.count("NOISE from a library") == 5 and err.count("NOISE from a child process") == 5


def test_the_store_is_closed_when_the_client_leaves_at_once(tmp_path: Path):
    """A client that leaves right after the handshake: the server waits for the store to finish
    opening, then closes it, instead of exiting with the opening thread cut off mid-way."""
    data = tmp_path / "data"
    _, log = serve(data, HANDSHAKE)
    assert "memory store closed" in log
    assert not (data / "memory.sqlite3-wal").exists()
    checks = CliRunner().invoke(cli, ["--json", "--data-dir", str(data), "doctor"])
    assert checks.exit_code == 0 and '"fail"' not in checks.output
