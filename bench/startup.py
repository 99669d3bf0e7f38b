"""Start-up time of `mcp-memory serve` over stdio, as a client sees it.

Spawns the server the way an MCP client does (a fresh process per session), speaks raw
JSON-RPC on its stdin/stdout, and reports, as the median of N runs:

- spawn -> `initialize` reply (handshake-era clients: Claude Desktop, Cursor, VS Code ...)
- spawn -> `server/discover` reply (2026-07-28 clients)
- spawn -> `tools/list` reply, sent as soon as the opening reply arrives (as clients do)
- spawn -> first `search_memory` answered, sent once the tools are listed (the store,
  LanceDB and the embedder loaded)

The store is seeded first with a few hundred memories (not timed), so the first search
does real work. Usage: python bench/startup.py [--runs 5] [--memories 300] [--json]

--cold removes the handshake cache before every start (the first start after an
install or upgrade); --code DIR runs the server from another checkout's package
(e.g. a `git archive` of an older commit) for before/after comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HANDSHAKE = "2025-11-25"
MODERN = "2026-07-28"


CODE: str | None = None
COLD = False


def _server(data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")}
    env["MCP_MEMORY_DATA_DIR"] = str(data_dir)
    if CODE:
        env["PYTHONPATH"] = CODE
    if COLD:
        (data_dir / "handshake-cache.json").unlink(missing_ok=True)
    # cwd: not this checkout, whose package `python -m` would find before PYTHONPATH's
    return subprocess.Popen([sys.executable, "-m", "mcp_memory", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=data_dir.parent)


def _send(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()


def _reply(proc: subprocess.Popen[bytes], request_id: int) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server exited (code {proc.wait()}) before answering request {request_id}")
        message = json.loads(line)
        if message.get("id") == request_id:
            if "error" in message:
                raise RuntimeError(f"request {request_id} failed: {message['error']}")
            return message


def one_run(data_dir: Path, era: str) -> tuple[float, float, float]:
    """Seconds from spawn to the opening reply, to the tools listed, and to the first search answered."""
    t0 = time.perf_counter()
    proc = _server(data_dir)
    try:
        if era == "handshake":
            _send(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": HANDSHAKE, "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"}}})
            _reply(proc, 1)
            first = time.perf_counter() - t0
            _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            meta: dict[str, Any] = {}
        else:
            meta = {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                              "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
                              "io.modelcontextprotocol/clientCapabilities": {}}}
            _send(proc, {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": meta})
            _reply(proc, 1)
            first = time.perf_counter() - t0
        _send(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": dict(meta)})
        if not any(t["name"] == "search_memory" for t in _reply(proc, 3)["result"]["tools"]):
            raise RuntimeError("tools/list did not list search_memory")
        tools = time.perf_counter() - t0
        _send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "search_memory", "arguments": {"query": "what does the user drink in the morning?"}, **meta}})
        reply = _reply(proc, 2)
        search = time.perf_counter() - t0
        result = reply["result"]
        if result.get("isError") or not result["structuredContent"]["hits"]:
            raise RuntimeError(f"the first search did not find the seeded memories: {result}")
        return first, tools, search
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def seed(data_dir: Path, n: int) -> None:
    from mcp_memory.config import Settings
    from mcp_memory.service import MemoryService

    service = MemoryService(Settings.from_env({}, data_dir=data_dir))
    try:
        service.add("User drinks a flat white every morning", infer=False)
        for i in range(n - 1):
            service.add(f"Note {i}: the user mentioned topic number {i} on day {i % 31 + 1}", infer=False)
    finally:
        service.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memories", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--cold", action="store_true", help="no handshake cache at any start")
    parser.add_argument("--code", help="run the server from the mcp_memory package in this directory")
    args = parser.parse_args()
    global CODE, COLD
    CODE, COLD = args.code, args.cold
    with tempfile.TemporaryDirectory(prefix="mcp-memory-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        seed(data_dir, args.memories)
        one_run(data_dir, "handshake")  # warm the OS file cache and the bytecode cache: not counted
        figures: dict[str, list[float]] = {"initialize": [], "discover": [], "tools_handshake": [],
                                           "tools_modern": [], "search_handshake": [], "search_modern": []}
        for _ in range(args.runs):
            first, tools, search = one_run(data_dir, "handshake")
            figures["initialize"].append(first)
            figures["tools_handshake"].append(tools)
            figures["search_handshake"].append(search)
            first, tools, search = one_run(data_dir, "modern")
            figures["discover"].append(first)
            figures["tools_modern"].append(tools)
            figures["search_modern"].append(search)
    medians = {k: round(statistics.median(v) * 1000) for k, v in figures.items()}
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
               f"Python {platform.python_version()}")
    label = ("cold" if COLD else "warm") + (f", code from {CODE}" if CODE else "")
    if args.json:
        print(json.dumps({"machine": machine, "runs": args.runs, "memories": args.memories, "start": label,
                          "median_ms": medians}))
        return 0
    print(f"machine: {machine}; {args.memories} memories in the store; {label}; median of {args.runs} runs")
    print(f"spawn -> initialize reply        {medians['initialize']:5d} ms")
    print(f"spawn -> server/discover reply   {medians['discover']:5d} ms")
    print(f"spawn -> tools/list (2025-11-25 client)   {medians['tools_handshake']:5d} ms")
    print(f"spawn -> tools/list (2026-07-28 client)   {medians['tools_modern']:5d} ms")
    print(f"spawn -> first search (2025-11-25 client) {medians['search_handshake']:5d} ms")
    print(f"spawn -> first search (2026-07-28 client) {medians['search_modern']:5d} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
