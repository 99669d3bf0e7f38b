from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import click
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


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out += _commands(command, (*prefix, name))
    return out


def test_help_everywhere():
    for path in [(), *_commands(cli)]:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0 and result.output.startswith("Usage: "), path
        short = CliRunner().invoke(cli, [*path, "-h"])
        assert short.output == result.output, path


def test_exit_codes_and_one_line_errors(tmp_path: Path):
    def invoke(*args: str, **env: str) -> Any:
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], env=env)

    bad_setting = invoke("stats", MCP_MEMORY_LLM_TIMEOUT="soon")
    assert bad_setting.exit_code == 2 and bad_setting.output.count("\n") == 1
    assert "MCP_MEMORY_LLM_TIMEOUT" in bad_setting.output
    incomplete = invoke("search", "x", MCP_MEMORY_EMBEDDER="openai")  # a setting that is missing a partner
    assert incomplete.exit_code == 2 and incomplete.output.count("\n") == 1
    assert "MCP_MEMORY_EMBED_BASE_URL" in incomplete.output
    assert invoke("no-such-command").exit_code == 2
    assert invoke("search").exit_code == 2  # missing argument
    missing = invoke("delete", "0" * 32)
    assert missing.exit_code == 1 and missing.output == f"Error: no active memory with id {'0' * 32}\n"
    file_as_dir = tmp_path / "a-file"
    file_as_dir.write_text("")
    broken = CliRunner().invoke(cli, ["--data-dir", str(file_as_dir), "stats"])
    assert broken.exit_code == 1 and broken.output.count("\n") == 1 and "Traceback" not in broken.output


def test_json_output_for_scripting(tmp_path: Path):
    run(tmp_path, "add", "--no-infer", "User likes tea")
    for args in (["stats"], ["list"], ["search", "tea"], ["blocks", "show"], ["recall"], ["doctor"],
                 ["install", "cursor", "--print"]):
        out = run(tmp_path, "--json", *args)
        json.loads(out)
