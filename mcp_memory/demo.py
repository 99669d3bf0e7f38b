"""`mcp-memory demo`: a real MCP client session against a real server process.

It spawns `python -m mcp_memory serve` over stdio on a throwaway data directory, calls
the tools the way an assistant would, and prints each call and what came back.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import anyio
import click


def _line(text: str = "") -> None:
    click.echo(text)


def _call_text(name: str, args: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())
    return f"> {name}({shown})"


async def _session(data_dir: str) -> int:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = dict(os.environ)
    env["MCP_MEMORY_DATA_DIR"] = data_dir
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_memory", "serve"], env=env)
    started = time.perf_counter()
    failures = 0
    async with Client(params) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        _line(f"connected in {time.perf_counter() - started:.2f}s (MCP {client.protocol_version}); "
              f"{len(tools)} tools: {', '.join(tools)}")
        _line()

        async def call(name: str, **args: Any) -> dict[str, Any] | None:
            _line(_call_text(name, args))
            t0 = time.perf_counter()
            result = await client.call_tool(name, args)
            ms = (time.perf_counter() - t0) * 1000
            if result.is_error:
                _line(f"  error ({ms:.0f} ms): {result.content[0].text}")  # type: ignore[union-attr]
                return None
            data = result.structured_content or {}
            _show(name, data, ms)
            return data

        first = await call("add_memory", text="I am planning a trip to Tokyo")
        await call("add_memory", text="Actually, scratch that, I'm going to Paris instead")
        await call("add_memory", text="I love drinking dark roast coffee but I'm allergic to soy milk")
        await call("add_memory", text="I am a Senior Python Developer and I prefer working in dark mode")
        hits = await call("search_memory", query="where is the user travelling?", limit=3)
        if not hits or "Paris" not in hits["hits"][0]["memory"]:
            failures += 1
            _line("  !! expected the Paris memory first")
        if first:
            trip = first["events"][0]["id"]
            await call("memory_history", memory_id=trip)
        await call("search_memory", query="what milk can I use in the user's latte?", limit=2)
        await call("add_memory", text="I love dark roast coffee")
        listed = await call("list_memories")
        if listed:
            python = next((m["id"] for m in listed["memories"] if "Python" in m["memory"]), None)
            if python:
                await call("update_memory", memory_id=python, text="User is a Senior Developer; primary stack "
                           "is Rust (switched from Python)")
        _line()
        _line("Bad input is a clean tool error, and the server stays up:")
        if await call("add_memory", text="   ") is not None:
            failures += 1
        if await call("get_memory", memory_id="not-an-id") is not None:
            failures += 1
        await call("delete_all_memories", user_id="default")
        await call("list_memories")
    return failures


def _show(name: str, data: dict[str, Any], ms: float) -> None:
    timing = f"({ms:.0f} ms)"
    if "events" in data:
        for e in data["events"]:
            was = f"   (was: {e['previous']})" if e.get("previous") else ""
            _line(f"  {e['event']:<6} {e['id'][:8]}  {e['memory']}{was}")
        _line(f"  extraction: {data['extraction']} {timing}")
        if data.get("note"):
            _line(f"  note: {data['note']}")
        for h in data.get("related", []):
            _line(f"  related {h['id'][:8]}  {h['memory']}")
    elif "hits" in data:
        for h in data["hits"]:
            _line(f"  {h['score']:.3f}  {h['memory']}")
        _line(f"  {len(data['hits'])} hits {timing}")
    elif "entries" in data:
        for h in data["entries"]:
            change = f"{h.get('old')!r} -> {h.get('new')!r}" if h["event"] == "UPDATE" else repr(h.get("new"))
            _line(f"  {h['event']:<6} {change}" + (f"  [{h['reason']}]" if h.get("reason") else ""))
    elif "memories" in data:
        for m in data["memories"]:
            _line(f"  {m['id'][:8]}  {m['memory']}")
        _line(f"  {data['total']} active memories {timing}")
    elif "deleted" in data:
        _line(f"  erased {data['deleted']} memories {timing}: {data.get('note', '')}")
    else:
        _line(f"  {data.get('event', '')} {data.get('memory', '')}" + (
            f"   (was: {data['previous']})" if data.get("previous") else "") + f" {timing}")


def run_demo(keep: bool = False) -> int:
    data_dir = tempfile.mkdtemp(prefix="mcp-memory-demo-")
    _line("mcp-memory demo: a real MCP session over stdio with a server on a throwaway data directory")
    _line(f"  server: {sys.executable} -m mcp_memory serve   (MCP_MEMORY_DATA_DIR={data_dir})")
    try:
        failures = anyio.run(_session, data_dir)
    except Exception as exc:  # the server died or never started: say so in one line
        while getattr(exc, "exceptions", None):  # unwrap (Base)ExceptionGroup, also on Python 3.10
            exc = exc.exceptions[0]
        _line(f"demo failed: {type(exc).__name__}: {exc} (the server's stderr above has details)")
        failures = 1
    finally:
        if keep:
            _line(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    _line()
    _line("demo finished: memory works" if failures == 0 else f"demo finished with {failures} unexpected results")
    return 0 if failures == 0 else 1
