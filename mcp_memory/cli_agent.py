"""Commands for Letta-style memory: core blocks, archival memory, the message log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mcp_memory.cli_common import _emit, _service, handle_errors

# -- Letta-style memory ---------------------------------------------------------------------
@click.group()
def blocks() -> None:
    """Show and edit core memory blocks (what the assistant keeps in context)."""


def _print_block(b: Any) -> None:
    flags = " read-only" if b.read_only else ""
    click.echo(f"[{b.label}] v{b.version} {b.chars_current}/{b.chars_limit} chars{flags}")
    if b.description:
        click.echo(f"  ({b.description})")
    for line in b.value.splitlines() or [""]:
        click.echo(f"  {line}")


@blocks.command(name="show")
@click.argument("label", required=False)
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def blocks_show(ctx: click.Context, label: str | None, user_id: str | None) -> None:
    """Show all blocks, or the block LABEL."""
    result = _service(ctx).agent.core_read(label, user_id)
    _emit(ctx, result, lambda r: [_print_block(b) for b in r.blocks])


@blocks.command(name="create")
@click.argument("label")
@click.option("--description")
@click.option("--limit", default=5000, show_default=True, type=int, help="Character limit.")
@click.option("--value", default="", help="Initial content.")
@click.option("--read-only", is_flag=True)
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def blocks_create(ctx: click.Context, label: str, description: str | None, limit: int, value: str, read_only: bool,
                  user_id: str | None) -> None:
    """Create the block LABEL."""
    b = _service(ctx).agent.core_create(label, description, limit, value, read_only, user_id, actor="cli")
    _emit(ctx, b, _print_block)


@blocks.command(name="set")
@click.argument("label")
@click.argument("value")
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def blocks_set(ctx: click.Context, label: str, value: str, user_id: str | None) -> None:
    """Replace the whole value of block LABEL."""
    agent = _service(ctx).agent
    current = agent.core_read(label, user_id).blocks[0]
    b = agent.core_rethink(label, value, current.version, user_id)
    _emit(ctx, b, _print_block)


@blocks.command(name="configure")
@click.argument("label")
@click.option("--description")
@click.option("--limit", type=int, help="New character limit.")
@click.option("--read-only/--writable", default=None, help="Refuse or allow the assistant's edits.")
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def blocks_configure(ctx: click.Context, label: str, description: str | None, limit: int | None,
                     read_only: bool | None, user_id: str | None) -> None:
    """Change the description, limit or read-only flag of block LABEL."""
    b = _service(ctx).agent.core_configure(label, description, limit, read_only, user_id)
    _emit(ctx, b, _print_block)


@blocks.command(name="history")
@click.argument("label")
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def blocks_history(ctx: click.Context, label: str, user_id: str | None) -> None:
    """Every version of block LABEL."""
    h = _service(ctx).agent.core_history(label, user_id)
    _emit(ctx, h, lambda h: [click.echo(f"v{v.version} {v.at} {v.event:<8} {v.value!r}") for v in h.versions])


@blocks.command(name="rollback")
@click.argument("label")
@click.argument("version", type=int)
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def blocks_rollback(ctx: click.Context, label: str, version: int, user_id: str | None) -> None:
    """Restore block LABEL to the value it had at VERSION (as a new version)."""
    b = _service(ctx).agent.core_rollback(label, version, user_id)
    _emit(ctx, b, _print_block)


@click.command(name="import-archival")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tag", "tags", multiple=True, help="Tag every passage (repeatable).")
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def import_archival(ctx: click.Context, files: tuple[Path, ...], tags: tuple[str, ...], user_id: str | None) -> None:
    """Load text/markdown FILES into archival memory, chunked by section and paragraph."""
    agent = _service(ctx).agent
    total = {"files": 0, "passages": 0, "duplicates": 0}
    with click.progressbar(files, label="importing", file=sys.stderr, show_pos=True,
                           item_show_func=lambda p: p.name if p else "") as bar:
        for path in bar:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise click.FileError(str(path), hint=f"not readable as UTF-8 text ({exc})") from None
            if not text.strip():
                continue
            r = agent.archival_insert(text, [*tags, f"file:{path.name}"], user_id, {"source": str(path)})
            total["files"] += 1
            total["passages"] += len(r.ids)
            total["duplicates"] += r.duplicates
    _emit(ctx, total, lambda t: click.echo(f"imported {t['passages']} passages from {t['files']} files "
                                            f"({t['duplicates']} duplicate passages skipped)"))


@click.command(name="archival-search")
@click.argument("query")
@click.option("--tag", "tags", multiple=True)
@click.option("--limit", default=10, show_default=True, type=int)
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def archival_search(ctx: click.Context, query: str, tags: tuple[str, ...], limit: int, user_id: str | None) -> None:
    """Search archival memory (and stored facts) for QUERY."""
    r = _service(ctx).agent.archival_search(query, list(tags) or None, limit=limit, user_id=user_id)
    _emit(ctx, r, lambda r: [click.echo(f"{h.score:.3f}  {h.created_at}  {h.text}") for h in r.hits]
          or click.echo("nothing found"))


@click.command(name="recall")
@click.argument("query", required=False)
@click.option("--role", "roles", multiple=True, type=click.Choice(["user", "assistant", "system", "tool"]))
@click.option("--since", help="ISO date or datetime.")
@click.option("--until", help="ISO date or datetime (a date includes that whole day).")
@click.option("--run", "run_id")
@click.option("--limit", default=20, show_default=True, type=int)
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def recall_(ctx: click.Context, query: str | None, roles: tuple[str, ...], since: str | None, until: str | None,
            run_id: str | None, limit: int, user_id: str | None) -> None:
    """Search the message log for QUERY, or show the newest messages."""
    r = _service(ctx).agent.recall(query, list(roles) or None, since, until, run_id, limit, 1, user_id)
    _emit(ctx, r, lambda r: [click.echo(f"#{m.id} {m.created_at} {m.name or m.role}: {m.content}")
                             for m in r.messages] or click.echo("no messages"))
