"""End to end: the real server process over stdio, driven by the mcp SDK client.

The mission's scenarios run three ways: with an LLM endpoint (a scripted
OpenAI-compatible server on loopback), with the client's model through MCP sampling,
and with no model at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp_types import CreateMessageResult, TextContent

from tests.conftest import call, call_error, server_env, stdio_client
from tests.fake_openai import FakeOpenAI
from tests.scripts import scenario_model

pytestmark = pytest.mark.anyio


def llm_env(fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    return {"MCP_MEMORY_LLM_BASE_URL": fake.url, "MCP_MEMORY_LLM_MODEL": "scripted",
            "MCP_MEMORY_LLM_API_KEY": "sk-test-secret-key", "MCP_MEMORY_ADD_WAIT": "true", **extra}


async def run_scenarios(client: Any, extraction: str) -> None:
    # Tokyo, then Paris
    tokyo = await call(client, "add_memory", text="I am planning a trip to Tokyo")
    assert tokyo["extraction"] == extraction
    [add] = tokyo["events"]
    assert add["event"] == "ADD" and "Tokyo" in add["memory"]
    paris = await call(client, "add_memory", text="Actually, scratch that, I'm going to Paris instead")
    [upd] = paris["events"]
    assert (upd["event"], upd["id"]) == ("UPDATE", add["id"]) and "Tokyo" in upd["previous"]
    hits = (await call(client, "search_memory", query="where is the user travelling?"))["hits"]
    assert "Paris" in hits[0]["memory"]
    active = [m["memory"] for m in (await call(client, "list_memories"))["memories"]]
    assert not any("Tokyo" in m and "Paris" not in m for m in active)
    history = (await call(client, "memory_history", memory_id=add["id"]))["entries"]
    assert [h["event"] for h in history] == ["ADD", "UPDATE"]
    assert "Tokyo" in history[1]["old"] and "Paris" in history[1]["new"] and history[1]["reason"]

    # one sentence, two facts
    coffee = await call(client, "add_memory", text="I love drinking dark roast coffee but I'm allergic to soy milk")
    assert [e["event"] for e in coffee["events"]] == ["ADD", "ADD"]
    assert any("soy milk" in e["memory"] for e in coffee["events"])
    assert any("coffee" in e["memory"] for e in coffee["events"])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_scenarios_with_an_llm_endpoint(tmp_path: Path, fake_openai: FakeOpenAI, mode: str):
    fake_openai.script = scenario_model
    async with stdio_client(tmp_path / "data", mode=mode, **llm_env(fake_openai)) as client:
        await run_scenarios(client, "llm")
        await call(client, "add_memory", text="I am a Senior Python Developer and I prefer working in dark mode")
        rust = await call(client, "add_memory",
                          text="I am switching my primary stack to Rust, but I still love dark mode")
        assert sorted(e["event"] for e in rust["events"]) == ["NONE", "UPDATE"]
        memories = [m["memory"] for m in (await call(client, "list_memories"))["memories"]]
        assert sum("dark mode" in m for m in memories) == 1
        primary = [m for m in memories if "primary stack" in m]
        assert primary == ["User is a Senior Developer whose primary stack is Rust (switched from Python)"]
        assert not any("Python Developer" in m for m in memories)
        superseded = next(e for e in rust["events"] if e["event"] == "UPDATE")
        history = (await call(client, "memory_history", memory_id=superseded["id"]))["entries"]
        assert history[-1]["old"] == "User is a Senior Python Developer" and history[-1]["actor"] == "openai:scripted"
    # the key went to the endpoint, and the server sent the scripted model what it needed
    assert all(r["auth"] == "Bearer sk-test-secret-key" for r in fake_openai.requests)
    assert any("<memories>" in r["body"]["messages"][1]["content"] for r in fake_openai.chat_requests())


async def test_scenarios_with_client_sampling(tmp_path: Path):
    asked: list[str] = []

    async def sampling(context: Any, params: Any) -> CreateMessageResult:
        user = params.messages[0].content.text
        asked.append(user)
        reply = scenario_model(params.system_prompt or "", user)
        return CreateMessageResult(role="assistant", model="client-model",
                                   content=TextContent(type="text", text=json.dumps(reply)))

    async with stdio_client(tmp_path / "data", mode="legacy", sampling_callback=sampling) as client:
        await run_scenarios(client, "sampling")
    assert len(asked) >= 4


async def test_scenarios_without_any_model(tmp_path: Path):
    """No endpoint, and a client on the newest protocol, which carries no sampling requests."""
    async with stdio_client(tmp_path / "data") as client:
        await run_scenarios(client, "none")
        first = await call(client, "add_memory",
                           text="I am a Senior Python Developer and I prefer working in dark mode")
        assert "no extraction ran" in first["note"]
        rust = await call(client, "add_memory",
                          text="I am switching my primary stack to Rust, but I still love dark mode")
        assert [e["event"] for e in rust["events"]] == ["ADD", "ADD"]
        related = {h["memory"] for h in rust.get("related", [])}
        assert "I prefer working in dark mode." in related
        # the assistant reconciles as the result asks it to
        python = next(m for m in (await call(client, "list_memories"))["memories"] if "Python" in m["memory"])
        await call(client, "update_memory", memory_id=python["id"], text="User's primary stack is Rust, not Python")
        dark_still = next(e["id"] for e in rust["events"] if "dark mode" in e["memory"])
        await call(client, "delete_memory", memory_id=dark_still)
        memories = [m["memory"] for m in (await call(client, "list_memories"))["memories"]]
        assert "User's primary stack is Rust, not Python" in memories
        assert sum("dark mode" in m for m in memories) == 1
        assert (await call(client, "get_memory", memory_id=dark_still))["state"] == "deleted"


async def test_scopes_never_leak_over_mcp(tmp_path: Path):
    async with stdio_client(tmp_path / "data") as client:
        await call(client, "add_memory", text="My doctor is Dr. Haddad", user_id="alice")
        await call(client, "add_memory", text="My doctor is Dr. Novak", user_id="bob")
        for user, other in (("alice", "Novak"), ("bob", "Haddad")):
            hits = (await call(client, "search_memory", query="who is my doctor? Haddad Novak", user_id=user))["hits"]
            assert hits and all(other not in h["memory"] for h in hits)
        assert (await call(client, "list_memories"))["total"] == 0
        erased = await call(client, "delete_all_memories", user_id="alice")
        assert erased["deleted"] == 1
        assert (await call(client, "list_memories", user_id="bob"))["total"] == 1


async def test_bad_input_gives_one_line_tool_errors_and_the_server_survives(tmp_path: Path):
    async with stdio_client(tmp_path / "data") as client:
        cases = [
            ("add_memory", {}, "either text or"),
            ("add_memory", {"text": ""}, "text is empty"),
            ("add_memory", {"text": 42}, "invalid arguments: text"),
            ("add_memory", {"text": "x" * 100_000}, "the limit is"),
            ("add_memory", {"messages": [{"role": "robot", "content": "hi"}]}, "invalid arguments: messages.0.role"),
            ("add_memory", {"messages": "not a list"}, "invalid arguments: messages"),
            ("add_memory", {"text": "ok", "metadata": ["not", "a", "dict"]}, "invalid arguments: metadata"),
            ("search_memory", {"query": "q", "limit": 0}, "invalid arguments: limit"),
            ("search_memory", {}, "invalid arguments: query"),
            ("get_memory", {"memory_id": "nope"}, "memory_id must be"),
            ("get_memory", {"memory_id": "0" * 32}, "no memory with id"),
            ("update_memory", {"memory_id": "0" * 32, "text": "x"}, "no active memory"),
            ("delete_memory", {"memory_id": "\x00\n" * 5}, "memory_id must be"),
            ("delete_all_memories", {}, "name the user_id"),
            ("no_such_tool", {}, "Unknown tool"),
        ]
        for tool, args, expected in cases:
            error = await call_error(client, tool, **args)
            assert expected in error, (tool, args, error)
        ok = await call(client, "add_memory", text="Still alive")
        assert ok["events"][0]["event"] == "ADD"


async def test_llm_failures_store_the_input_and_say_why(tmp_path: Path, fake_openai: FakeOpenAI):
    from tests.fake_openai import Fault

    replies: list[Any] = [
        "this is not json",
        Fault("status", status=500),
        Fault("status", status=429),
        {"facts": "not a list"},
        Fault("sleep", seconds=4),
    ]
    fake_openai.script = lambda system, user: replies.pop(0) if replies else {"facts": ["User likes tea"]}
    env = llm_env(fake_openai, MCP_MEMORY_LLM_TIMEOUT="1", MCP_MEMORY_MAX_RETRIES="0")
    async with stdio_client(tmp_path / "data", **env) as client:
        reasons = []
        for i in range(5):
            result = await call(client, "add_memory", text=f"Input number {i} must survive")
            assert result["extraction"] == "failed"
            assert [e["memory"] for e in result["events"]] == [f"Input number {i} must survive"]
            assert "sk-test-secret-key" not in json.dumps(result)
            reasons.append(result["note"])
        assert "malformed JSON" in reasons[0] or "no JSON object" in reasons[0]
        assert "HTTP 500" in reasons[1] and "429" in reasons[2] and "'facts'" in reasons[3]
        assert "timed out" in reasons[4]
        ok = await call(client, "add_memory", text="I like tea")
        assert ok["extraction"] == "llm" and ok["events"][0]["memory"] == "User likes tea"
        assert (await call(client, "list_memories"))["total"] == 6


def test_stdout_carries_only_json_rpc_and_the_server_exits_when_stdin_closes(tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-m", "mcp_memory", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=server_env(tmp_path / "data"))
    seen: list[dict[str, Any]] = []

    def send(message: dict[str, Any]) -> dict[str, Any] | None:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        if "id" not in message:
            return None
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            reply = json.loads(line)  # every line on stdout is a JSON-RPC message
            assert reply["jsonrpc"] == "2.0"
            seen.append(reply)
            if reply.get("id") == message["id"]:
                return reply

    try:
        init = send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        assert init["result"]["serverInfo"]["name"] == "mcp-memory"
        assert "long-term memory" in init["result"]["instructions"]
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        added = send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "add_memory", "arguments": {"text": "Raw protocol works"}}})
        assert added["result"]["structuredContent"]["events"][0]["event"] == "ADD"
        found = send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "search_memory", "arguments": {"query": "raw protocol"}}})
        assert found["result"]["structuredContent"]["hits"][0]["memory"] == "Raw protocol works"
        bad = send({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                    "params": {"name": "get_memory", "arguments": {}}})
        assert bad["result"]["isError"] is True
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read().strip() == ""
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_openai_compatible_embeddings_and_embedder_identity(tmp_path: Path, fake_openai: FakeOpenAI):
    data = tmp_path / "data"
    env = {"MCP_MEMORY_EMBEDDER": "openai", "MCP_MEMORY_EMBED_BASE_URL": fake_openai.url,
           "MCP_MEMORY_EMBED_MODEL": "toy-embed", "MCP_MEMORY_EMBED_DIMENSIONS": "32"}
    async with stdio_client(data, **env) as client:
        await call(client, "add_memory", text="User keeps bees in the garden")
        await call(client, "add_memory", text="User drives an old Volvo")
        hits = (await call(client, "search_memory", query="bees garden"))["hits"]
        assert hits[0]["memory"] == "User keeps bees in the garden"
    embed_calls = [r for r in fake_openai.requests if r["path"].endswith("/embeddings")]
    assert embed_calls and all(r["body"]["model"] == "toy-embed" and r["body"]["dimensions"] == 32
                               for r in embed_calls)
    # the same store opened with the default embedder: a clear error naming the fix, nothing mixed
    async with stdio_client(data) as client:
        error = await call_error(client, "search_memory", query="bees")
        assert "openai:toy-embed@32" in error and "mcp-memory reindex" in error
