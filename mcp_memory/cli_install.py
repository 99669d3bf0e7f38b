"""`mcp-memory install CLIENT`: put our server into an MCP client's configuration.

Each client keeps its servers in a JSON file: Claude Desktop, Cursor and Claude Code
under ``mcpServers``, VS Code under ``servers`` (with ``"type": "stdio"``). The entry is
merged into that file: other servers and settings are kept as they are, the old file
is kept as a timestamped backup, and running it again changes nothing. Claude Code is
configured through its own CLI (``claude mcp add --scope user``) when it is installed.
The command is the absolute path of this installation, so the client finds it whatever
its PATH.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from mcp_memory.errors import ConfigError, MemoryServiceError

CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")
NAMES = {"claude-desktop": "Claude Desktop", "claude-code": "Claude Code", "cursor": "Cursor", "vscode": "VS Code"}


class InstallError(MemoryServiceError):
    """A client's configuration file could not be read or written safely."""


def config_path(client: str, env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """Where ``client`` keeps its user-level MCP servers on ``platform``."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if client in ("cursor", "claude-code"):
        return home / (".cursor/mcp.json" if client == "cursor" else ".claude.json")
    app = "Claude" if client == "claude-desktop" else "Code/User"
    name = "claude_desktop_config.json" if client == "claude-desktop" else "mcp.json"
    if platform == "darwin":
        base = home / "Library" / "Application Support"
    elif platform.startswith("win"):
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return base / app / name


def server_command() -> list[str]:
    """The absolute command line of this installation's server."""
    exe = Path(sys.executable)
    script = exe.parent / ("mcp-memory.exe" if sys.platform.startswith("win") else "mcp-memory")
    if script.is_file():
        return [str(script.absolute()), "serve"]
    return [str(exe.absolute()), "-m", "mcp_memory", "serve"]


@dataclass
class Plan:
    client: str
    path: Path
    key: str
    name: str
    entry: dict[str, Any]

    def snippet(self) -> dict[str, Any]:
        return {self.key: {self.name: self.entry}}

    def claude_command(self) -> list[str]:
        """As Claude Code's docs write it: claude mcp add NAME -e KEY=VALUE ... -- COMMAND ARGS."""
        env = [a for k, v in self.entry.get("env", {}).items() for a in ("-e", f"{k}={v}")]
        return ["claude", "mcp", "add", "--scope", "user", self.name, *env, "--", self.entry["command"],
                *self.entry["args"]]


def plan(client: str, name: str, env: dict[str, str], profile: str | None) -> Plan:
    command, *args = server_command()
    if profile:
        args += ["--profile", profile]
    entry: dict[str, Any] = {"command": command, "args": args}
    if client in ("vscode", "claude-code"):
        entry = {"type": "stdio", **entry}
    if env:
        entry["env"] = dict(env)
    return Plan(client, config_path(client), "servers" if client == "vscode" else "mcpServers", name, entry)


_STRING = r'"(?:\\.|[^"\\])*"'
_COMMENT = re.compile(_STRING + r"|//[^\n]*|/\*.*?\*/", re.S)
_TRAILING_COMMA = re.compile(_STRING + r"|,(?=\s*[}\]])")


def strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas (VS Code's JSONC) -> JSON; strings are left alone."""
    keep = lambda m: m.group(0) if m.group(0).startswith('"') else ""  # noqa: E731
    return _TRAILING_COMMA.sub(keep, _COMMENT.sub(keep, text))


def read_config(path: Path, allow_comments: bool) -> tuple[dict[str, Any], str | None]:
    """The file's JSON object (empty if the file is missing) and its text."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return {}, text
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = json.loads(strip_jsonc(text))
        except json.JSONDecodeError as exc:
            raise InstallError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                               "fix it or move it away, then run install again; nothing was changed") from None
        if not allow_comments:
            raise InstallError(f"{path} has comments or trailing commas, which rewriting it would drop; "
                               "add the entry by hand (see --print) or pass --force (the backup keeps them)")
    if not isinstance(data, dict):
        raise InstallError(f"{path} does not hold a JSON object; nothing was changed")
    return data, text


def write_config(path: Path, data: dict[str, Any], old_text: str | None) -> Path | None:
    """Write ``data`` atomically; returns the backup of the previous file, if there was one."""
    backup = None
    path.parent.mkdir(parents=True, exist_ok=True)
    if old_text is not None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.bak-{stamp}")
        n = 1
        while backup.exists():
            n += 1
            backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        shutil.copy2(path, backup)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
        if old_text is not None:
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InstallError(f"cannot write {path}: {exc.strerror}; nothing was changed") from None
    return backup


def merge(p: Plan, force: bool) -> tuple[str, Path | None]:
    """Merge the entry into the client's file: ("unchanged" | "added" | "updated", backup)."""
    data, text = read_config(p.path, allow_comments=force)
    servers = data.setdefault(p.key, {})
    if not isinstance(servers, dict):
        raise InstallError(f"'{p.key}' in {p.path} is not a JSON object; nothing was changed")
    if servers.get(p.name) == p.entry:
        return "unchanged", None
    outcome = "updated" if p.name in servers else "added"
    servers[p.name] = p.entry
    return outcome, write_config(p.path, data, text)


def install_claude_code(p: Plan, claude: str) -> str:
    """Through Claude Code's own CLI, which owns ~/.claude.json (it rewrites it while running)."""
    current = read_config(p.path, allow_comments=True)[0].get(p.key, {})
    if isinstance(current, dict) and current.get(p.name) == p.entry:
        return "unchanged"
    outcome = "added"
    if isinstance(current, dict) and p.name in current:
        outcome = "updated"
        subprocess.run([claude, "mcp", "remove", "--scope", "user", p.name], capture_output=True, text=True,
                       timeout=60)
    cmd = [claude, *p.claude_command()[1:]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise InstallError(f"`claude mcp add` failed ({reason[-1] if reason else f'exit {done.returncode}'}); "
                           f"run it yourself: {shlex.join(p.claude_command())}")
    return outcome


def parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--env")
        env[key] = value
    return env


@click.command()
@click.argument("client", type=click.Choice(CLIENTS))
@click.option("--name", default="memory", show_default=True, help="Name of the server entry.")
@click.option("--profile", type=click.Choice(["all", "passive", "agent"]), help="Tools the client sees.")
@click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE",
              help="Environment for the server, e.g. MCP_MEMORY_LLM_MODEL=llama3.1 (repeatable).")
@click.option("--print", "print_only", is_flag=True, help="Print the exact snippet (or command); write nothing.")
@click.option("--force", is_flag=True, help="Rewrite a file that has comments (they are lost; the backup keeps them).")
@click.pass_context
def install(ctx: click.Context, client: str, name: str, profile: str | None, env_pairs: tuple[str, ...],
            print_only: bool, force: bool) -> None:
    """Add this server to CLIENT's configuration: claude-desktop, claude-code, cursor or vscode.

    \b
    The entry runs this installation's `mcp-memory serve` by absolute path, with
    MCP_MEMORY_DATA_DIR set to the data directory (--data-dir), so every client shares one
    store. Other entries are kept, the old file is backed up (FILE.bak-YYYYmmdd-HHMMSS),
    and running it again changes nothing.
    """
    settings = ctx.obj["settings"]
    env = {"MCP_MEMORY_DATA_DIR": str(Path(settings.data_dir).absolute())}
    if ctx.obj["overrides"].get("default_user_id"):
        env["MCP_MEMORY_DEFAULT_USER_ID"] = settings.default_user_id
    env.update(parse_env(env_pairs))
    p = plan(client, name, env, profile)
    claude = shutil.which("claude") if client == "claude-code" else None
    as_json = ctx.obj["json"]
    if print_only:
        if client == "claude-code":
            snippet = shlex.join(p.claude_command())
            where = f"run it, or add the entry under \"mcpServers\" in {p.path}"
        else:
            snippet = json.dumps(p.snippet(), indent=2, ensure_ascii=False)
            where = f"merge it into {p.path}"
        if as_json:
            click.echo(json.dumps({"client": client, "path": str(p.path), "snippet": p.snippet(),
                                   "command": p.claude_command() if client == "claude-code" else None}, indent=2))
        else:
            click.echo(snippet)
            click.echo(f"({where})", err=True)
        return
    try:
        if claude:
            outcome, backup = install_claude_code(p, claude), None
        else:
            outcome, backup = merge(p, force)
    except MemoryServiceError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    if as_json:
        click.echo(json.dumps({"client": client, "path": str(p.path), "outcome": outcome,
                               "backup": str(backup) if backup else None, "via": "claude CLI" if claude else "file",
                               "entry": p.entry}, indent=2))
        return
    if outcome == "unchanged":
        click.echo(f"{NAMES[client]} already has '{name}' as it should be ({p.path}); nothing changed")
        return
    how = "with `claude mcp add --scope user`" if claude else f"in {p.path}"
    click.echo(f"{outcome} '{name}' {how}" + (f" (previous file kept as {backup})" if backup else ""))
    click.echo(f"restart {NAMES[client]} to load it")
