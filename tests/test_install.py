"""`mcp-memory install CLIENT`: real files under a temporary HOME, and the entry it writes
actually starts a server that answers over stdio."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mcp_memory.cli import cli
from mcp_memory.cli_install import config_path

HOME_PATHS = {
    "claude-desktop": ".config/Claude/claude_desktop_config.json",
    "cursor": ".cursor/mcp.json",
    "vscode": ".config/Code/User/mcp.json",
    "claude-code": ".claude.json",
}


def install(data_dir: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "install", *args])
    assert result.exit_code == code, result.output
    return result.output


def entry_of(client: str, home: Path, name: str = "memory") -> dict[str, Any]:
    data = json.loads((home / HOME_PATHS[client]).read_text())
    return data["servers" if client == "vscode" else "mcpServers"][name]


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak-*"))


@pytest.fixture
def no_claude_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_config_paths_per_platform():
    env = {"HOME": "/h", "APPDATA": "C:/Users/u/AppData/Roaming"}
    assert config_path("claude-desktop", env, "darwin") == \
        Path("/h/Library/Application Support/Claude/claude_desktop_config.json")
    assert config_path("claude-desktop", env, "win32") == Path("C:/Users/u/AppData/Roaming/Claude/claude_desktop_config.json")
    assert config_path("claude-desktop", env, "linux") == Path("/h/.config/Claude/claude_desktop_config.json")
    assert config_path("vscode", env, "darwin") == Path("/h/Library/Application Support/Code/User/mcp.json")
    assert config_path("vscode", env, "win32") == Path("C:/Users/u/AppData/Roaming/Code/User/mcp.json")
    assert config_path("vscode", {**env, "XDG_CONFIG_HOME": "/x"}, "linux") == Path("/x/Code/User/mcp.json")
    assert config_path("cursor", env, "win32") == Path("/h/.cursor/mcp.json")
    assert config_path("claude-code", env, "linux") == Path("/h/.claude.json")


@pytest.mark.parametrize("client", ["claude-desktop", "cursor", "vscode", "claude-code"])
def test_install_into_a_new_file(client: str, isolated_home: Path, tmp_path: Path, no_claude_binary: None):
    out = install(tmp_path / "data", client)
    assert "added 'memory'" in out and "restart" in out
    entry = entry_of(client, isolated_home)
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
    assert entry["args"][-1] == "serve"
    assert entry["env"] == {"MCP_MEMORY_DATA_DIR": str((tmp_path / "data").absolute())}
    assert entry.get("type") == ("stdio" if client in ("vscode", "claude-code") else None)
    assert backups(isolated_home / HOME_PATHS[client]) == []  # there was nothing to back up


@pytest.mark.parametrize("client", ["claude-desktop", "cursor", "vscode"])
def test_install_keeps_everything_else_backs_up_and_is_idempotent(client: str, isolated_home: Path, tmp_path: Path):
    path = isolated_home / HOME_PATHS[client]
    path.parent.mkdir(parents=True)
    key = "servers" if client == "vscode" else "mcpServers"
    before = {key: {"github": {"command": "npx", "args": ["-y", "gh-mcp"], "env": {"TOKEN": "t"}},
                    "memory": {"command": "old-memory-server"}},
              "inputs": [], "someSetting": {"nested": True}}
    path.write_text(json.dumps(before))
    os.chmod(path, 0o600)
    out = install(tmp_path / "data", client, "--profile", "agent", "--env", "MCP_MEMORY_LLM_MODEL=llama3.1")
    assert "updated 'memory'" in out and "previous file kept as" in out
    after = json.loads(path.read_text())
    assert after[key]["github"] == before[key]["github"]
    assert after["inputs"] == [] and after["someSetting"] == {"nested": True}
    assert after[key]["memory"]["args"][-2:] == ["--profile", "agent"]
    assert after[key]["memory"]["env"]["MCP_MEMORY_LLM_MODEL"] == "llama3.1"
    [backup] = backups(path)
    assert json.loads(backup.read_text()) == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a file that may hold secrets stays private
    again = install(tmp_path / "data", client, "--profile", "agent", "--env", "MCP_MEMORY_LLM_MODEL=llama3.1")
    assert "nothing changed" in again
    assert backups(path) == [backup] and json.loads(path.read_text()) == after


def test_install_refuses_broken_or_foreign_files(isolated_home: Path, tmp_path: Path):
    path = isolated_home / HOME_PATHS["cursor"]
    path.parent.mkdir(parents=True)
    for text, message in [("{\"mcpServers\": {", "is not valid JSON (line 1"),
                          ("[1, 2]", "does not hold a JSON object"),
                          ('{"mcpServers": ["x"]}', "'mcpServers' in")]:
        path.write_text(text)
        out = install(tmp_path / "data", "cursor", code=1)
        assert message in out and "nothing was changed" in out and out.count("\n") == 1
        assert path.read_text() == text and backups(path) == []


def test_vscode_comments_are_kept_unless_forced(isolated_home: Path, tmp_path: Path):
    path = isolated_home / HOME_PATHS["vscode"]
    path.parent.mkdir(parents=True)
    text = '{\n  // my servers\n  "servers": {"a": {"type": "stdio", "command": "a://b"},},\n}\n'
    path.write_text(text)
    out = install(tmp_path / "data", "vscode", code=1)
    assert "has comments" in out and "--force" in out and path.read_text() == text
    install(tmp_path / "data", "vscode", "--force")
    data = json.loads(path.read_text())
    assert data["servers"]["a"] == {"type": "stdio", "command": "a://b"} and "memory" in data["servers"]
    assert backups(path)[0].read_text() == text


def test_print_writes_nothing(isolated_home: Path, tmp_path: Path, no_claude_binary: None):
    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "install", "vscode", "--print"])
    assert out.exit_code == 0
    snippet = json.loads(out.stdout)
    assert snippet["servers"]["memory"]["type"] == "stdio"
    assert "merge it into" in out.stderr and str(isolated_home / HOME_PATHS["vscode"]) in out.stderr
    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "install", "claude-code", "--print"])
    assert out.stdout.startswith("claude mcp add --scope user memory -e MCP_MEMORY_DATA_DIR=")
    assert out.stdout.strip().endswith(" serve") and " -- " in out.stdout
    out = CliRunner().invoke(cli, ["--json", "--data-dir", str(tmp_path / "data"), "install", "cursor", "--print"])
    assert json.loads(out.stdout)["snippet"]["mcpServers"]["memory"]["args"][-1] == "serve"
    assert not any(isolated_home.rglob("*.json"))


def test_bad_env_is_a_usage_error(tmp_path: Path):
    out = install(tmp_path / "data", "cursor", "--env", "NOEQUALS", code=2)
    assert "--env" in out
    assert "Invalid value" in install(tmp_path / "data", "emacs", code=2)


def test_claude_code_goes_through_the_claude_cli(isolated_home: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    """A stand-in `claude` that records its arguments and, like the real one, writes ~/.claude.json."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "claude-calls.jsonl"
    fake = bin_dir / "claude"
    fake.write_text(f"""#!{sys.executable}
import json, sys
from pathlib import Path
args = sys.argv[1:]
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
path = Path.home() / ".claude.json"
data = json.loads(path.read_text()) if path.exists() else {{}}
servers = data.setdefault("mcpServers", {{}})
if args[:2] == ["mcp", "add"]:
    name, options = args[4], args[5:args.index("--")]
    command, *argv = args[args.index("--") + 1:]
    assert options[::2] == ["-e"] * (len(options) // 2), options
    env = dict(pair.split("=", 1) for pair in options[1::2])
    if name in servers:
        sys.exit("MCP server " + name + " already exists in user config")
    servers[name] = {{"type": "stdio", "command": command, "args": argv, "env": env}}
elif args[:2] == ["mcp", "remove"]:
    servers.pop(args[-1], None)
path.write_text(json.dumps(data))
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out = install(tmp_path / "data", "claude-code")
    assert "added 'memory' with `claude mcp add --scope user`" in out
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0][:5] == ["mcp", "add", "--scope", "user", "memory"] and calls[0][-1] == "serve"
    assert calls[0][5:7] == ["-e", f"MCP_MEMORY_DATA_DIR={(tmp_path / 'data').absolute()}"]
    assert install(tmp_path / "data", "claude-code").count("nothing changed") == 1
    assert len(log.read_text().splitlines()) == 1  # the second run did not call it again
    out = install(tmp_path / "data", "claude-code", "--profile", "passive")
    assert "updated 'memory'" in out
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[1] == ["mcp", "remove", "--scope", "user", "memory"] and calls[2][-2:] == ["--profile", "passive"]
    assert entry_of("claude-code", isolated_home)["args"][-2:] == ["--profile", "passive"]


def test_the_installed_entry_starts_a_working_server(isolated_home: Path, tmp_path: Path):
    """What Claude Desktop would launch: the entry's command, args and env, over stdio."""
    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from tests.conftest import call

    install(tmp_path / "data", "claude-desktop")
    entry = entry_of("claude-desktop", isolated_home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")} | entry["env"]

    async def session() -> None:
        params = StdioServerParameters(command=entry["command"], args=entry["args"], env=env, cwd="/")
        async with Client(params, read_timeout_seconds=60) as client:
            await call(client, "add_memory", text="User's cat is called Miso")

    anyio.run(session)
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "search", "cat"])
    assert "Miso" in result.output


def test_the_example_claude_desktop_config_works_as_is(isolated_home: Path, tmp_path: Path):
    """examples/claude_desktop_config.json, launched as Claude Desktop would with `mcp-memory` on its PATH
    (e.g. after `pipx install .`); the data lands in the default data directory of that HOME."""
    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from tests.conftest import call

    example = json.loads((Path(__file__).parent.parent / "examples" / "claude_desktop_config.json").read_text())
    [(name, entry)] = example["mcpServers"].items()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")} | entry.get("env", {})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"

    async def session() -> str:
        params = StdioServerParameters(command=entry["command"], args=entry["args"], env=env, cwd="/")
        async with Client(params, read_timeout_seconds=60) as client:
            added = await call(client, "add_memory", text="User's dog is called Pixel")
            return added["events"][0]["id"]

    memory_id = anyio.run(session)
    default_dir = isolated_home / ".local" / "share" / "mcp-memory"
    result = CliRunner().invoke(cli, ["--data-dir", str(default_dir), "--json", "show", memory_id])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["memory"]["user_id"] == entry["env"]["MCP_MEMORY_DEFAULT_USER_ID"]
