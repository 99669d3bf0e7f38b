"""Letta-style memory end to end: real server processes over stdio, the mcp SDK client."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcp_memory.cli import cli
from tests.conftest import call, call_error, server_env, stdio_client

pytestmark = pytest.mark.anyio


async def read_text(client: Any, uri: str) -> str:
    return (await client.read_resource(uri)).contents[0].text


async def test_devops_scenario_core_memory_replace(tmp_path: Path):
    data = tmp_path / "data"
    runner = CliRunner()
    result = runner.invoke(cli, ["--data-dir", str(data), "blocks", "set", "human",
                                 "Name: Alex. Prefers Kubernetes for orchestration."])
    assert result.exit_code == 0, result.output
    async with stdio_client(data) as client:
        # the core memory is in the initialize instructions as it was at start
        assert "Name: Alex. Prefers Kubernetes for orchestration." in client.instructions
        assert 'chars_limit="5000"' in client.instructions
        edited = await call(client, "core_memory_replace", label="human",
                            old_text="Prefers Kubernetes for orchestration.",
                            new_text="Migrating from Kubernetes to AWS ECS next week.")
        assert edited["value"] == "Name: Alex. Migrating from Kubernetes to AWS ECS next week."
        block = (await call(client, "core_memory_read", label="human"))["blocks"][0]
        assert block["value"] == edited["value"] and block["chars_current"] == len(edited["value"])
        assert "Migrating from Kubernetes to AWS ECS next week." in await read_text(client, "memory://core")
        assert await read_text(client, "memory://core/human") == edited["value"]
        prompt = await client.get_prompt("memory_agent")
        text = prompt.messages[0].content.text
        assert "AWS ECS" in text and f'chars_current="{len(edited["value"])}" chars_limit="5000"' in text
        assert "recall memory holds 0 messages" in text
    history = runner.invoke(cli, ["--data-dir", str(data), "blocks", "history", "human"]).output
    assert "'Name: Alex. Prefers Kubernetes for orchestration.'" in history and "replace" in history
    rolled = runner.invoke(cli, ["--data-dir", str(data), "blocks", "rollback", "human", "2"])
    assert rolled.exit_code == 0 and "Prefers Kubernetes" in rolled.output


async def test_core_memory_errors_are_clear(tmp_path: Path):
    async with stdio_client(tmp_path / "data") as client:
        await call(client, "core_memory_create_block", label="project", description="current project",
                   limit=30, value="Ship v2")
        error = await call_error(client, "core_memory_append", label="project", text="x" * 40)
        assert "would have 48 characters; its limit is 30" in error and "archival_memory_insert" in error
        await call(client, "core_memory_rethink", label="project", new_value="Café ☕ 日本 👩‍💻")
        assert (await call(client, "core_memory_read", label="project"))["blocks"][0]["value"] == "Café ☕ 日本 👩‍💻"
        await call(client, "core_memory_create_block", label="rules", value="Never share secrets", read_only=True)
        assert "read-only" in await call_error(client, "core_memory_append", label="rules", text="x")
        await call(client, "core_memory_rethink", label="human", new_value="tea, tea")
        assert "occurs 2 times" in await call_error(client, "core_memory_replace", label="human",
                                                    old_text="tea", new_text="coffee")
        assert "does not occur" in await call_error(client, "core_memory_replace", label="human",
                                                    old_text="cocoa", new_text="coffee")
        assert "text is empty" in await call_error(client, "core_memory_append", label="human", text="")
        assert "no core memory block 'nope'" in await call_error(client, "core_memory_append", label="nope",
                                                                 text="x")
        assert "label must be" in await call_error(client, "core_memory_read", label="../etc")
        deleted = await call(client, "core_memory_replace", label="human", old_text="tea, ", new_text="")
        assert deleted["value"] == "tea"


async def test_two_server_processes_editing_one_block_lose_nothing(tmp_path: Path):
    data = tmp_path / "data"
    async with stdio_client(data) as first, stdio_client(data) as second:
        async def appends(client: Any, who: str) -> None:
            for i in range(15):
                await call(client, "core_memory_append", label="human", text=f"{who} note {i}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(appends, first, "first")
            tg.start_soon(appends, second, "second")
        value = (await call(first, "core_memory_read", label="human"))["blocks"][0]["value"]
        lines = value.splitlines()
        assert sorted(lines) == sorted([f"{w} note {i}" for w in ("first", "second") for i in range(15)])

        # a whole-block rewrite based on a stale read fails and shows the other client's edit
        await call(first, "core_memory_read", label="human")
        await call(second, "core_memory_append", label="human", text="edited elsewhere")
        error = await call_error(first, "core_memory_rethink", label="human", new_value="short summary")
        assert "changed since you read it" in error and "edited elsewhere" in error
        current = (await call(first, "core_memory_read", label="human"))["blocks"][0]
        done = await call(first, "core_memory_rethink", label="human", new_value="summary; edited elsewhere",
                          expected_version=current["version"])
        assert done["version"] == current["version"] + 1


async def test_resource_update_notifications_across_processes(tmp_path: Path):
    data = tmp_path / "data"
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        uri = getattr(getattr(getattr(message, "root", message), "params", None), "uri", None)
        if uri is not None:
            updates.append(str(uri))

    async with stdio_client(data) as editor:
        await call(editor, "core_memory_read")
        # a handshake-era client subscribed to resources/subscribe
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_memory", "serve"],
                                       env=server_env(data))
        async with Client(params, mode="legacy", message_handler=on_message) as legacy:
            assert legacy.server_capabilities.resources.subscribe
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await legacy.subscribe_resource("memory://core")
            await call(legacy, "core_memory_read")  # the store is open and being watched
            await anyio.sleep(1.2)
            await call(editor, "core_memory_append", label="human", text="Lives in Lisbon")  # another process
            with anyio.fail_after(10):
                while "memory://core" not in updates:
                    await anyio.sleep(0.1)
        # a 2026-07-28 client listening on subscriptions/listen
        async with stdio_client(data) as modern:
            await call(modern, "core_memory_read")
            await anyio.sleep(1.2)
            async with modern.listen(resource_subscriptions=["memory://core/human"]) as sub:
                await call(editor, "core_memory_append", label="human", text="Works at Acme")
                with anyio.fail_after(10):
                    async for event in sub:
                        if getattr(event, "uri", None) == "memory://core/human":
                            break


async def test_archival_and_recall_over_mcp(tmp_path: Path):
    async with stdio_client(tmp_path / "data") as client:
        doc = "# Trip notes\n\n## Flights\nTAP 1234 Lisbon to Porto on May 3.\n\n## Hotel\nCasa Azul, room 12."
        inserted = await call(client, "archival_memory_insert", text=doc, tags=["travel"])
        assert inserted["chunks"] == 2
        await call(client, "add_memory", text="User is vegetarian")
        hits = (await call(client, "archival_search", query="which hotel room?"))["hits"]
        assert hits[0]["text"] == "Trip notes > Hotel\nCasa Azul, room 12." and hits[0]["created_at"]
        facts = (await call(client, "archival_search", query="vegetarian food"))["hits"]
        assert facts[0]["kind"] == "fact"
        assert (await call(client, "archival_search", query="hotel", tags=["work"]))["hits"] == []

        sessions = [
            ("s1", [("user", "I started learning the cello", "2024-01-05T10:00:00Z"),
                    ("assistant", "Lovely instrument! Who is your teacher?", "2024-01-05T10:00:04Z"),
                    ("user", "My teacher is Ms. Okafor", "2024-01-05T10:01:00Z")]),
            ("s2", [("user", "Cello recital went well", "2024-02-20T19:00:00Z"),
                    ("assistant", "Congratulations on the recital!", "2024-02-20T19:00:03Z")]),
            ("s3", [("user", "Switching to viola next term", "2024-03-15T08:00:00Z")]),
        ]
        for run_id, turns in sessions:
            logged = await call(client, "log_messages", run_id=run_id, messages=[
                {"role": r, "content": c, "created_at": t} for r, c, t in turns])
            assert logged["logged"] == len(turns)
        by_text = (await call(client, "recall", query="name of the cello teacher Okafor"))["messages"]
        assert by_text[0]["content"] == "My teacher is Ms. Okafor" and by_text[0]["created_at"] == "2024-01-05T10:01:00Z"
        february = (await call(client, "recall", start_date="2024-02-01", end_date="2024-02-29"))["messages"]
        assert [m["content"] for m in february] == ["Congratulations on the recital!", "Cello recital went well"]
        assistant = (await call(client, "recall", query="recital", roles=["assistant"]))["messages"]
        assert [m["content"] for m in assistant] == ["Congratulations on the recital!"]
        newest = await call(client, "recall", limit=2)
        assert [m["content"] for m in newest["messages"]][0] == "Switching to viola next term" and newest["has_more"]
        assert [m["run_id"] for m in (await call(client, "recall", run_id="s3"))["messages"]] == ["s3"]
        assert "end_date must be" in await call_error(client, "recall", end_date="next tuesday")
        assert "invalid arguments: roles.0" in await call_error(client, "recall", roles=["narrator"])


async def test_profiles_choose_the_tools(tmp_path: Path):
    passive_tools = {"add_memory", "search_memory", "list_memories", "get_memory", "update_memory",
                     "delete_memory", "memory_history", "delete_all_memories", "search_graph", "get_entity",
                     "add_relations"}
    agent_tools = {"core_memory_read", "core_memory_append", "core_memory_replace", "core_memory_rethink",
                   "core_memory_create_block", "archival_memory_insert", "archival_search", "log_messages",
                   "recall"}
    shared = {"memory_context", "memory_jobs"}
    for profile, expected in (("passive", passive_tools | shared), ("agent", agent_tools | shared),
                              ("all", passive_tools | agent_tools | shared)):
        async with stdio_client(tmp_path / "data", MCP_MEMORY_PROFILE=profile) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == expected, profile
            if profile == "passive":
                assert "core_memory" not in client.instructions
            else:
                assert "<memory_blocks>" in client.instructions


async def test_long_document_insert_sends_progress_notifications(tmp_path: Path):
    sections = "\n\n".join(f"## Part {i}\n" + f"Paragraph {i} about topic {i}. " * 60 for i in range(150))
    seen: list[tuple[float, float | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total))

    async with stdio_client(tmp_path / "data") as client:
        result = await client.call_tool("archival_memory_insert", {"text": "# Handbook\n\n" + sections},
                                        progress_callback=progress)
        assert not result.is_error
        chunks = result.structured_content["chunks"]
        assert chunks > 64  # more than one embedding batch
        await anyio.sleep(0.2)  # notifications may trail the result on the wire
        assert len(seen) >= 2 and seen[-1] == (chunks, chunks)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)

        seen.clear()  # erasing a user compacts the files: its steps are reported too
        result = await client.call_tool("delete_all_memories", {"user_id": "default"}, progress_callback=progress)
        assert not result.is_error and result.structured_content["deleted"] == chunks
        await anyio.sleep(0.2)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
