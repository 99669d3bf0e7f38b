from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
from click.testing import CliRunner

from mcp_memory.cli import cli
from mcp_memory.server import build_server
from mcp_memory.config import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def run(data_dir: Path, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_cli_round_trip(tmp_path: Path):
    out = run(tmp_path, "add", "I am planning a trip to Tokyo", "--metadata", '{"topic": "travel"}')
    assert out.startswith("ADD ")
    mid = out.split()[1]
    out = run(tmp_path, "add", "Actually, scratch that, I'm going to Paris instead")
    assert out.startswith(f"UPDATE {mid}") and "(was: I am planning a trip to Tokyo)" in out
    out = run(tmp_path, "--json", "search", "where is the user travelling?")
    assert json.loads(out)["hits"][0]["memory"] == "I'm going to Paris instead"
    out = run(tmp_path, "show", mid)
    assert "UPDATE 'I am planning a trip to Tokyo' -> \"I'm going to Paris instead\"" in out
    assert '"topic": "travel"' in out
    assert "1 of 1" in run(tmp_path, "list")
    assert "UPDATE" in run(tmp_path, "update", mid, "User is going to Paris in May")
    stats = json.loads(run(tmp_path, "--json", "stats"))
    assert stats["memories_active"] == 1 and stats["index_rows"] == 1 and stats["index_pending"] == 0
    assert "re-embedded and indexed 1 memories" in run(tmp_path, "reindex")
    assert "DELETE" in run(tmp_path, "delete", mid)
    assert "erased 1 memories" in run(tmp_path, "forget", "--user", "default", "--yes")  # the deleted one too


def test_cli_errors_are_one_line_with_exit_code(tmp_path: Path):
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "show", "bogus"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: memory_id must be")
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "add", "x", "--metadata", "{oops"])
    assert result.exit_code == 2 and "--metadata" in result.output
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "forget"])
    assert result.exit_code == 2 and "name --user" in result.output


def test_every_command_and_tool_is_documented_in_the_readme(tmp_path: Path):
    for name in cli.commands:
        assert re.search(rf"mcp-memory {name}\b", README), f"CLI command {name!r} is missing from README.md"

    async def tools() -> list[str]:
        return [t.name for t in await build_server(Settings.from_env({}, data_dir=tmp_path)).list_tools()]

    for name in anyio.run(tools):
        assert f"`{name}`" in README, f"tool {name!r} is missing from README.md"
