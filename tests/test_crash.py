"""Crash safety: SIGKILL a server at random points during bursts of writes, many times over.

Every restart must succeed, every acknowledged write must survive exactly once, nothing
half-written may be visible, and SQLite and the LanceDB index must agree after start-up.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mcp_memory.cli import cli
from tests.conftest import server_env
from tests.test_durability import check_store

KILLS = int(os.environ.get("MCP_MEMORY_CRASH_KILLS", "50"))


class RawServer:
    """A server process spoken to in raw JSON-RPC lines, so it can be killed at any instant."""

    def __init__(self, data: Path, **env: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mcp_memory", "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=server_env(data, **env))
        self.replies: dict[int, dict[str, Any]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)  # stdout carries JSON-RPC only, even while dying
            if "id" in msg:
                self.replies[msg["id"]] = msg

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def call(self, rid: int, tool: str, **args: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": tool, "arguments": args}})

    def initialize(self) -> None:
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "crash", "version": "0"}}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(10)

    def acked(self, rid: int) -> dict[str, Any] | None:
        reply = self.replies.get(rid)
        if reply and "result" in reply and not reply["result"].get("isError"):
            return reply["result"]["structuredContent"]
        return None


def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path: Path):
    data = tmp_path / "data"
    assert CliRunner().invoke(cli, ["--data-dir", str(data), "blocks", "create", "journal",
                                    "--limit", "100000"]).exit_code == 0
    rng = random.Random(42)
    facts: dict[str, str] = {}
    lines: list[str] = []
    turns: list[str] = []
    slow_starts = []
    for k in range(KILLS):
        server = RawServer(data)
        server.initialize()
        sent: dict[int, tuple[str, str]] = {}
        for j in range(1, 31):
            kind = rng.choice(("fact", "fact", "line", "turn"))
            text = f"crash{k} item{j} {rng.getrandbits(40):x}"
            if kind == "fact":
                server.call(j, "add_memory", text=f"Fact {text}", infer=False)
            elif kind == "line":
                server.call(j, "core_memory_append", label="journal", text=text)
            else:
                server.call(j, "log_messages", messages=[{"role": "user", "content": text}], run_id=f"k{k}")
            sent[j] = (kind, text)
        if k % 5 == 4:  # now and then, kill it while it starts up
            time.sleep(rng.uniform(0.05, 1.5))
        else:  # otherwise in the middle of the burst of writes
            deadline = time.monotonic() + 20
            while not any(j in server.replies for j in sent) and time.monotonic() < deadline:
                time.sleep(0.005)
            if not any(j in server.replies for j in sent):
                slow_starts.append(k)
            time.sleep(rng.uniform(0.0, 0.3))
        server.kill()
        for j, (kind, text) in sent.items():
            result = server.acked(j)
            if result is None:
                continue
            if kind == "fact":
                [event] = result["events"]
                facts[event["id"]] = event["memory"]
            elif kind == "line":
                lines.append(text)
            else:
                turns.append(text)
    assert not slow_starts, f"restarts that answered no tool call within 20 s: {slow_starts}"
    assert facts and lines and turns, "the kills never let a write through: the test proves nothing"

    svc = check_store(data)  # integrity, nothing half-written, index == SQLite
    try:
        rows = svc.sql.get_memories(list(facts))
        assert {mid: (r.state, r.text) for mid, r in rows.items()} == {m: ("active", t) for m, t in facts.items()}
        texts = [r[0] for r in svc.sql.conn.execute("SELECT text FROM memories")]
        assert len(texts) == len(set(texts))  # nothing written twice
        journal = svc.agent.core_read("journal").blocks[0].value.splitlines()
        assert set(lines) <= set(journal) and len(journal) == len(set(journal))
        logged = [r[0] for r in svc.sql.conn.execute("SELECT content FROM messages")]
        assert set(turns) <= set(logged) and len(logged) == len(set(logged))
        hits = svc.search(next(iter(facts.values()))).hits
        assert hits and hits[0].memory == next(iter(facts.values()))
    finally:
        svc.close()
    print(f"{KILLS} kills: {len(facts)} facts, {len(lines)} block lines, {len(turns)} messages acknowledged")
