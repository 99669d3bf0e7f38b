"""LLM and embedding endpoint faults: every tool answers within its deadline plus a second,
the input is stored, the result says what failed, no key leaks, and the next call works."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import call, stdio_client
from tests.fake_openai import FakeOpenAI, Fault, is_extraction

pytestmark = pytest.mark.anyio
SECRET = "sk-test-secret-key-123456"
TIMEOUT = 1.0


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


def llm_env(url: str) -> dict[str, str]:
    # wait=true by default here: these tests time the synchronous path (background jobs: test_background.py)
    return {"MCP_MEMORY_LLM_BASE_URL": url, "MCP_MEMORY_LLM_MODEL": "scripted", "MCP_MEMORY_LLM_API_KEY": SECRET,
            "MCP_MEMORY_LLM_TIMEOUT": str(TIMEOUT), "MCP_MEMORY_MAX_RETRIES": "1", "MCP_MEMORY_ADD_WAIT": "true"}


async def timed_add(client: Any, text: str, budget: float) -> dict[str, Any]:
    t0 = time.monotonic()
    result = await call(client, "add_memory", text=text)
    elapsed = time.monotonic() - t0
    assert elapsed <= budget + 1.0, f"add_memory took {elapsed:.1f}s, deadline {budget}s + 1s"
    assert SECRET not in json.dumps(result)
    return result


async def test_llm_endpoint_down(tmp_path: Path):
    async with stdio_client(tmp_path / "data", **llm_env(closed_port_url())) as client:
        await call(client, "search_memory", query="warm up")
        for i in range(2):
            r = await timed_add(client, f"I keep bees, hive number {i}", 2 * TIMEOUT)
            assert r["extraction"] == "failed" and "could not connect" in r["note"]
            assert r["events"][0]["memory"] == f"I keep bees, hive number {i}"
        hits = (await call(client, "search_memory", query="bees hive"))["hits"]
        assert len(hits) == 2


async def test_llm_slow_malformed_and_wrong_shapes(tmp_path: Path, fake_openai: FakeOpenAI):
    plan: list[tuple[Any, Any]] = [
        (Fault("sleep", seconds=3 * TIMEOUT), None),                                # extraction too slow
        ({"facts": ["User has a cat named Mochi"]}, Fault("sleep", seconds=3 * TIMEOUT)),  # reconciliation too slow
        (Fault("raw", body='{"choices": [{"message": {"content": "{\\"facts\\": [\\"User li'), None),  # truncated
        ({"facts": ["User has a dog"]}, {"actions": "not a list"}),
        ({"facts": ["User has a parrot"]}, {"actions": [{"event": "UPDATE", "id": "99", "text": "x"}]}),
        ({"facts": [42, None]}, None),
        ("[1, 2, 3]", None),
    ]
    step: dict[str, Any] = {}

    def script(system: str, user: str) -> Any:
        extract, reconcile = step["now"]
        return extract if is_extraction(system) else (reconcile or {"actions": []})

    fake_openai.script = script
    async with stdio_client(tmp_path / "data", **llm_env(fake_openai.url)) as client:
        await call(client, "add_memory", text="seed so reconciliation has something to compare", infer=False)
        await call(client, "add_memory", text="User has a cat named Tom", infer=False)
        notes = []
        for i, now in enumerate(plan):
            step["now"] = now
            r = await timed_add(client, f"Input {i} about my pets", 2 * TIMEOUT)
            assert r["extraction"] == "failed", r
            assert r["events"], r  # something was stored every time
            notes.append(r["note"])
        assert "timed out" in notes[0] and "timed out" in notes[1] and "reconciling" in notes[1]
        assert "malformed" in notes[2] or "reply" in notes[2]
        assert "'actions'" in notes[3] and "none of the model's actions were valid" in notes[4]
        assert "'facts'" in notes[5] and "JSON list" in notes[6]
        stored = {m["memory"] for m in (await call(client, "list_memories"))["memories"]}
        assert {"User has a cat named Mochi", "User has a dog", "User has a parrot"} <= stored
        assert "Input 0 about my pets" in stored and "Input 2 about my pets" in stored
        step["now"] = ({"facts": ["User likes tea"]}, {"actions": [{"event": "ADD", "text": "User likes tea"}]})
        ok = await call(client, "add_memory", text="I like tea")
        assert ok["extraction"] == "llm"


def vectorless(data: Path) -> int:
    con = sqlite3.connect(data / "memory.sqlite3")
    try:
        return con.execute("SELECT count(*) FROM memories WHERE state = 'active' AND vector IS NULL").fetchone()[0]
    finally:
        con.close()


async def test_embedding_endpoint_faults(tmp_path: Path, fake_openai: FakeOpenAI):
    data = tmp_path / "data"
    env = {"MCP_MEMORY_EMBEDDER": "openai", "MCP_MEMORY_EMBED_BASE_URL": fake_openai.url,
           "MCP_MEMORY_EMBED_API_KEY": SECRET, "MCP_MEMORY_EMBED_TIMEOUT": str(TIMEOUT),
           "MCP_MEMORY_MAX_RETRIES": "0"}
    async with stdio_client(data, **env) as client:
        await call(client, "add_memory", text="User grows tomatoes")
        faults = [Fault("status", status=500), Fault("status", status=429), Fault("sleep", seconds=3 * TIMEOUT),
                  Fault("raw", body='{"data": [{"index": 0, "embedding": [1, 2]}]}'),  # wrong dimension
                  Fault("raw", body='{"data": []}'), Fault("raw", body="garbage")]
        for i, fault in enumerate(faults):
            fake_openai.embed_fault = fault
            r = await timed_add(client, f"User owns kayak number {i}", TIMEOUT)
            assert r["events"][0]["event"] == "ADD" and "Embedding failed" in r["note"], r
            t0 = time.monotonic()
            found = await call(client, "search_memory", query=f"kayak number {i}")
            assert time.monotonic() - t0 <= TIMEOUT + 1.0
            assert "searched by words only" in found["note"]
            assert found["hits"][0]["memory"] == f"User owns kayak number {i}"
        arch = await call(client, "archival_memory_insert", text="Kayak club meets on Sundays")
        assert "stored without a vector" in arch["note"]
        await call(client, "core_memory_append", label="human", text="Owns kayaks")  # needs no embedder
        assert vectorless(data) == len(faults) + 1
        fake_openai.embed_fault = None  # the endpoint recovers: stored rows get their vectors
        with anyio.fail_after(40):
            while vectorless(data):
                await anyio.sleep(0.5)
        found = await call(client, "search_memory", query="kayak number 3")
        assert "note" not in found and found["hits"][0]["memory"] == "User owns kayak number 3"
    # restarting while the endpoint is down still opens the store (its record of the embedder stands in)
    fake_openai.embed_fault = Fault("status", status=503)
    async with stdio_client(data, **env) as client:
        r = await call(client, "add_memory", text="User paddles on Saturdays")
        assert r["events"][0]["event"] == "ADD" and "Embedding failed" in r["note"]
        hits = (await call(client, "search_memory", query="paddles Saturdays"))["hits"]
        assert hits[0]["memory"] == "User paddles on Saturdays"
    assert all(SECRET not in json.dumps(r["body"]) for r in fake_openai.requests)
