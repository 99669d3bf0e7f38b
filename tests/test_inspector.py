"""Interoperability with a client nobody here wrote: the MCP Inspector's command-line mode
(npm package @modelcontextprotocol/inspector), over stdio and over streamable HTTP.

`.ci/run` installs the pinned Inspector into .ci/node; on a developer machine this test
installs it there itself. It skips only when node or npm are missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import server_env
from tests.test_http import TOKEN, http_server

ROOT = Path(__file__).resolve().parent.parent
PREFIX = ROOT / ".ci" / "node"
BIN = PREFIX / "node_modules" / ".bin" / "mcp-inspector"
PACKAGE = re.search(r"(@modelcontextprotocol/inspector@[\d.]+)", (ROOT / ".ci" / "run").read_text()).group(1)


@pytest.fixture(scope="module")
def inspector() -> Path:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed to run the MCP Inspector (CI has them)")
    version = PACKAGE.rsplit("@", 1)[1]
    manifest = PREFIX / "node_modules" / "@modelcontextprotocol" / "inspector" / "package.json"
    if not manifest.exists() or json.loads(manifest.read_text())["version"] != version:
        done = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(PREFIX),
                               PACKAGE], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"could not install {PACKAGE}: {done.stderr[-2000:]}"
    return BIN


def run_inspector(inspector: Path, target: list[str], *args: str, env: dict[str, str] | None = None,
                  ok: bool = True) -> Any:
    done = subprocess.run([str(inspector), "--cli", *target, *args], capture_output=True, text=True, timeout=120,
                          env=env)
    assert (done.returncode == 0) == ok, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout[done.stdout.index("{"):]) if ok else done


def test_the_inspector_drives_the_server_over_stdio(inspector: Path, tmp_path: Path):
    env = server_env(tmp_path / "data")
    server = [sys.executable, "-m", "mcp_memory", "serve"]

    def call(*args: str, ok: bool = True) -> Any:
        return run_inspector(inspector, server, *args, env=env, ok=ok)

    tools = {t["name"]: t for t in call("--method", "tools/list")["tools"]}
    assert {"add_memory", "search_memory", "core_memory_append", "archival_search", "recall"} <= set(tools)
    assert tools["search_memory"]["annotations"]["readOnlyHint"] is True
    added = call("--method", "tools/call", "--tool-name", "add_memory",
                 "--tool-arg", "text=I keep three beehives in the garden")
    assert added["isError"] is False and added["structuredContent"]["events"][0]["event"] == "ADD"
    found = call("--method", "tools/call", "--tool-name", "search_memory",
                 "--tool-arg", "query=what does the user keep in the garden?", "--tool-arg", "limit=3")
    assert found["structuredContent"]["hits"][0]["memory"] == "I keep three beehives in the garden"
    call("--method", "tools/call", "--tool-name", "core_memory_append", "--tool-arg", "label=human",
         "--tool-arg", "text=Keeps bees.")
    core = call("--method", "resources/read", "--uri", "memory://core")["contents"][0]
    assert core["uri"] == "memory://core" and "<memory_blocks>" in core["text"] and "Keeps bees." in core["text"]
    prompt = call("--method", "prompts/get", "--prompt-name", "memory_agent")
    assert "Keeps bees." in prompt["messages"][0]["content"]["text"]
    bad = call("--method", "tools/call", "--tool-name", "get_memory", "--tool-arg", "memory_id=nope", ok=False)
    assert "memory_id must be the 32-character hex id" in bad.stdout


def test_the_inspector_over_streamable_http_with_a_token(inspector: Path, tmp_path: Path):
    with http_server(tmp_path / "data", "--transport", "http", MCP_MEMORY_HTTP_TOKEN=TOKEN) as server:
        target = [server.url, "--transport", "http"]
        refused = run_inspector(inspector, target, "--method", "tools/list", ok=False)
        assert '"auth_required"' in refused.stderr  # it saw the 401 and its bearer challenge
        auth = ["--header", f"Authorization: Bearer {TOKEN}"]
        run_inspector(inspector, target, *auth, "--method", "tools/call", "--tool-name", "add_memory",
                      "--tool-arg", "text=User's favourite tea is genmaicha")
        found = run_inspector(inspector, target, *auth, "--method", "tools/call", "--tool-name", "search_memory",
                              "--tool-arg", "query=tea")
        assert found["structuredContent"]["hits"][0]["memory"] == "User's favourite tea is genmaicha"
