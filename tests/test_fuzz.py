"""Bad input, generated: every tool gets >= 1,000 argument sets (wrong types, huge strings,
control characters, invalid ids, junk keys) over stdio. Only clean tool errors may come
back: no crash, no hang, no internal error, and stdout stays pure JSON-RPC."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import server_env

EXAMPLES = int(os.environ.get("MCP_MEMORY_FUZZ_EXAMPLES", "1000"))
REPLY_TIMEOUT = 30.0


class StdioPeer:
    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mcp_memory", "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=server_env(data), bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.next_id = 0

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        rid = self.next_id
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, **({"params": params} if params is not None else {})}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.lines.get(timeout=REPLY_TIMEOUT)  # a hang fails here
            assert line is not None, "the server died"
            reply = json.loads(line)  # anything but JSON-RPC on stdout fails here
            assert reply.get("jsonrpc") == "2.0", line
            if reply.get("id") == rid:
                return reply

    def notify(self, method: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}) + "\n")
        self.proc.stdin.flush()


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StdioPeer]:
    p = StdioPeer(tmp_path_factory.mktemp("fuzz"))
    p.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                             "clientInfo": {"name": "fuzz", "version": "0"}})
    p.notify("notifications/initialized")
    yield p
    assert p.proc.stdin is not None
    p.proc.stdin.close()
    assert p.proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def schemas(peer: StdioPeer) -> dict[str, dict[str, Any]]:
    tools = peer.request("tools/list")["result"]["tools"]
    return {t["name"]: t["inputSchema"].get("properties", {}) for t in tools}


# -- generators ------------------------------------------------------------------------------
weird_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=20),  # control characters
    st.text(alphabet=st.sampled_from("\u200b\u202e\u2066\ufeff\U000e0041 a<>/\"'\\{}[]%;--"), max_size=40),
    st.sampled_from(["", " ", "\x00", "null", "None", "'; DROP TABLE memories; --", "NOT coffee AND (",
                     "../../etc/passwd", "😀" * 50, "x" * 30_000, "y " * 150_000]),
)
scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                   st.floats(allow_nan=True, allow_infinity=True), weird_text)
junk = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=8)
ids = st.one_of(st.sampled_from(["0" * 32, "f" * 32, "0" * 31, "g" * 32, "00000000-0000-0000-0000-000000000000"]),
                st.text(alphabet="0123456789abcdef-", min_size=30, max_size=36), junk)
dates = st.one_of(st.sampled_from(["2024-05-01", "2024-05-01T13:56:00Z", "2024-13-45", "yesterday",
                                   "2024-05-01T25:00:00+99:00", "9999-12-31"]), junk)
message = st.fixed_dictionaries({}, optional={"role": st.one_of(st.sampled_from(["user", "assistant", "robot"]), junk),
                                              "content": st.one_of(weird_text, junk), "name": junk,
                                              "created_at": dates, "extra": junk})
by_name: dict[str, st.SearchStrategy[Any]] = {
    "memory_id": ids, "messages": st.one_of(st.lists(message, max_size=4), junk),
    "start_date": dates, "end_date": dates, "tags": st.one_of(st.lists(weird_text, max_size=5), junk),
    "roles": st.one_of(st.lists(st.sampled_from(["user", "assistant", "x"]), max_size=3), junk),
    "limit": st.one_of(st.integers(-5, 2000), junk), "page": st.one_of(st.integers(-5, 10**12), junk),
    "page_size": st.one_of(st.integers(-5, 5000), junk), "expected_version": st.one_of(st.integers(-5, 99), junk),
    "label": st.one_of(st.sampled_from(["human", "persona", "Bad Label", "a" * 65, "x-1"]), weird_text, junk),
    "metadata": st.one_of(st.dictionaries(st.text(max_size=10), junk, max_size=5), junk),
    "filters": st.one_of(st.dictionaries(st.text(max_size=10), junk, max_size=3), junk),
    "max_tokens": st.one_of(st.integers(-5, 200_000), junk), "job_id": ids,
    "depth": st.one_of(st.integers(-2, 9), junk), "as_of": dates,
    "relations": st.one_of(st.lists(st.fixed_dictionaries({}, optional={
        k: st.one_of(weird_text, junk) for k in ("source", "relation", "target", "source_type", "target_type")}
        | {"valid_from": dates, "exclusive": junk}), max_size=4), junk),
}


def arguments(props: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    optional = {name: by_name.get(name, st.one_of(weird_text, junk)) for name in props}
    known = st.fixed_dictionaries({}, optional=optional)
    extra = st.dictionaries(st.text(max_size=12), junk, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, known, extra)


TOOLS = ["add_memory", "search_memory", "list_memories", "get_memory", "update_memory", "delete_memory",
         "memory_history", "delete_all_memories", "core_memory_read", "core_memory_append", "core_memory_replace",
         "core_memory_rethink", "core_memory_create_block", "archival_memory_insert", "archival_search",
         "log_messages", "recall", "memory_context", "memory_jobs", "search_graph", "get_entity", "add_relations"]


@pytest.mark.parametrize("tool", TOOLS)
def test_generated_arguments_get_clean_answers(tool: str, peer: StdioPeer, schemas: dict[str, dict[str, Any]]):
    assert tool in schemas, f"{tool} is not served"
    seen = {"errors": 0, "ok": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(args=arguments(schemas[tool]))
    def check(args: dict[str, Any]) -> None:
        reply = peer.request("tools/call", {"name": tool, "arguments": args})
        assert "result" in reply, reply
        result = reply["result"]
        if result.get("isError"):
            text = result["content"][0]["text"]
            assert "\n" not in text and "Traceback" not in text and len(text) < 2000, text
            assert "internal error" not in text, f"{tool}({args!r}) crashed inside: {text}"
            seen["errors"] += 1
        else:
            assert isinstance(result.get("structuredContent"), dict)
            seen["ok"] += 1

    check()
    assert seen["errors"] + seen["ok"] >= EXAMPLES
    assert peer.proc.poll() is None, "the server died"
