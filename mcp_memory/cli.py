"""The `mcp-memory` command: a thin shell over `MemoryService` (and the MCP server for `serve`)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import BaseModel

from mcp_memory import __version__
from mcp_memory.cli_install import install
from mcp_memory.config import Settings
from mcp_memory.errors import ConfigError, MemoryServiceError

EXIT_USAGE = 2
EXIT_ERROR = 1


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _service(ctx: click.Context) -> Any:
    from mcp_memory.service import MemoryService

    if "service" not in ctx.obj:
        ctx.obj["service"] = MemoryService(_settings(ctx))
    return ctx.obj["service"]


def _emit(ctx: click.Context, value: Any, human: Callable[[Any], None]) -> None:
    if ctx.obj["json"]:
        data = value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else value
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        human(value)


def fail(exc: MemoryServiceError) -> NoReturn:
    """One line on stderr; exit 2 for a bad setting or flag, 1 for anything else."""
    click.echo(f"Error: {exc}", err=True)
    sys.exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors become one line on stderr: ours with their fix (exit 1, or 2 for a setting), anything
    unexpected as a bug to report (exit 1; --log-level DEBUG shows the traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MemoryServiceError as exc:
            fail(exc)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            logging.getLogger("mcp_memory.cli").debug("unexpected error", exc_info=True)
            click.echo(f"Error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                       "this is a bug: rerun with --log-level DEBUG for the traceback and report it", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcp-memory")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory (env MCP_MEMORY_DATA_DIR).")
@click.option("--user-id", "default_user_id", help="Default user id (env MCP_MEMORY_DEFAULT_USER_ID).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), help="Log level on stderr.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, default_user_id: str | None, as_json: bool,
        log_level: str | None) -> None:
    """Long-term memory for MCP assistants, on a local store."""
    overrides = {"data_dir": data_dir, "default_user_id": default_user_id, "log_level": log_level}
    try:
        settings = Settings.from_env(**overrides)
    except MemoryServiceError as exc:
        fail(exc)
    os.environ.setdefault("LANCE_LOG", "error")  # LanceDB's Rust logger: warnings only when asked
    from mcp_memory.lazy_imports import defer_lance_rest_client

    defer_lance_rest_client()  # ~0.5 s off every command that opens the store (see lazy_imports)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="mcp-memory %(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj.update(settings=settings, json=as_json, overrides=overrides)
    ctx.call_on_close(lambda: ctx.obj["service"].close() if "service" in ctx.obj else None)


@cli.command()
@click.option("--transport", type=click.Choice(["stdio", "sse", "http"]), default="stdio", show_default=True,
              help="stdio: launched by an MCP client (the usual way); http: streamable HTTP at /mcp; "
                   "sse: the older HTTP+SSE transport at /sse.")
@click.option("--host", help="Address for sse/http [default: 127.0.0.1; env MCP_MEMORY_HTTP_HOST]. "
                             "Anything but loopback needs a token.")
@click.option("--port", type=int, help="Port for sse/http [default: 8765; 0 picks a free one; env MCP_MEMORY_HTTP_PORT].")
@click.option("--token", help="Bearer token HTTP requests must carry [env MCP_MEMORY_HTTP_TOKEN, which "
                              "is safer: a command line is visible to other users].")
@click.option("--profile", type=click.Choice(["all", "passive", "agent"]),
              help="Tools to expose: passive (Mem0-style), agent (Letta-style), all (default; env MCP_MEMORY_PROFILE).")
@click.pass_context
def serve(ctx: click.Context, transport: str, host: str | None, port: int | None, token: str | None,
          profile: str | None) -> None:
    """Run the MCP server (stdio by default: this is what MCP clients launch).

    \b
    stdio: stdout carries only JSON-RPC, logs go to stderr, the server exits when stdin closes.
    http/sse: listens on 127.0.0.1:8765 and checks Host and Origin; listening on another
    address needs a bearer token (MCP_MEMORY_HTTP_TOKEN), which every request must then carry.
    """
    from mcp_memory.process import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts
    try:
        settings = Settings.from_env(**ctx.obj["overrides"], profile=profile, http_host=host, http_port=port,
                                     http_token=token)
        if transport == "stdio":
            from mcp_memory.serve_stdio import serve as serve_stdio

            serve_stdio(settings)
        else:
            from mcp_memory.serve_http import serve as serve_http

            serve_http(settings, transport, ready=lambda line: click.echo(line, err=True))
    except MemoryServiceError as exc:
        fail(exc)
    except KeyboardInterrupt:
        sys.exit(130)
    # Everything acknowledged is committed and the store is closed. Exit now rather than through
    # interpreter finalization, which can abort a native (LanceDB) call still running in a daemon thread.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the throwaway data directory and print its path.")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Start a real server on a throwaway data dir, talk to it as an MCP client, show what happens."""
    from mcp_memory.demo import run_demo

    sys.exit(run_demo(keep=keep))


@cli.command()
@click.argument("text")
@click.option("--user", "user_id")
@click.option("--agent", "agent_id")
@click.option("--run", "run_id")
@click.option("--metadata", help="JSON object stored with the memory.")
@click.option("--no-infer", is_flag=True, help="Store the text exactly as given.")
@click.pass_context
@handle_errors
def add(ctx: click.Context, text: str, user_id: str | None, agent_id: str | None, run_id: str | None,
        metadata: str | None, no_infer: bool) -> None:
    """Remember TEXT (facts are extracted and reconciled when an LLM is configured)."""
    try:
        meta = json.loads(metadata) if metadata else None
    except json.JSONDecodeError:
        raise click.BadParameter("must be a JSON object", param_hint="--metadata") from None
    result = _service(ctx).add(text, user_id=user_id, agent_id=agent_id, run_id=run_id, metadata=meta,
                               infer=not no_infer)

    def human(r: Any) -> None:
        for e in r.events:
            line = f"{e.event:<6} {e.id}  {e.memory}"
            click.echo(line + (f"   (was: {e.previous})" if e.previous else ""))
        if r.note:
            click.echo(f"note: {r.note}")
        for h in r.related or ():
            click.echo(f"related {h.id}  {h.memory}")

    _emit(ctx, result, human)


@cli.command()
@click.argument("query")
@click.option("--user", "user_id")
@click.option("--agent", "agent_id")
@click.option("--run", "run_id")
@click.option("--limit", default=10, show_default=True, type=int)
@click.pass_context
@handle_errors
def search(ctx: click.Context, query: str, user_id: str | None, agent_id: str | None, run_id: str | None,
           limit: int) -> None:
    """Find the memories most relevant to QUERY."""
    result = _service(ctx).search(query, user_id=user_id, agent_id=agent_id, run_id=run_id, limit=limit)
    _emit(ctx, result, lambda r: [click.echo(f"{h.score:.3f}  {h.id}  {h.memory}") for h in r.hits]
          or click.echo("no matching memories"))


@cli.command(name="list")
@click.option("--user", "user_id")
@click.option("--agent", "agent_id")
@click.option("--run", "run_id")
@click.option("--page", default=1, show_default=True, type=int)
@click.option("--page-size", default=100, show_default=True, type=int)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, user_id: str | None, agent_id: str | None, run_id: str | None, page: int,
          page_size: int) -> None:
    """List active memories, newest first."""
    result = _service(ctx).list(user_id=user_id, agent_id=agent_id, run_id=run_id, page=page, page_size=page_size)

    def human(r: Any) -> None:
        for m in r.memories:
            click.echo(f"{m.id}  {m.updated_at}  {m.memory}")
        click.echo(f"({len(r.memories)} of {r.total}, page {r.page})")

    _emit(ctx, result, human)


@cli.command()
@click.argument("memory_id")
@click.pass_context
@handle_errors
def show(ctx: click.Context, memory_id: str) -> None:
    """Show one memory, its source messages and its history."""
    svc = _service(ctx)
    memory, history = svc.get(memory_id), svc.history(memory_id)
    if ctx.obj["json"]:
        click.echo(json.dumps({"memory": memory.model_dump(mode="json", exclude_none=True),
                               "history": history.model_dump(mode="json", exclude_none=True)["entries"]},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"{memory.id} [{memory.state}] {memory.memory}")
    click.echo(f"user={memory.user_id} agent={memory.agent_id} run={memory.run_id} "
               f"created={memory.created_at} updated={memory.updated_at}")
    if memory.metadata:
        click.echo(f"metadata: {json.dumps(memory.metadata, ensure_ascii=False)}")
    for m in memory.source or ():
        click.echo(f"source #{m.id} {m.created_at} {m.role}: {m.content}")
    for h in history.entries:
        change = f"{h.old!r} -> {h.new!r}" if h.event == "UPDATE" else repr(h.new if h.event == "ADD" else h.old)
        click.echo(f"{h.at} {h.event:<6} {change}" + (f"  ({h.reason})" if h.reason else ""))


@cli.command()
@click.argument("memory_id")
@click.argument("text")
@click.pass_context
@handle_errors
def update(ctx: click.Context, memory_id: str, text: str) -> None:
    """Replace the text of memory MEMORY_ID (the old text stays in its history)."""
    e = _service(ctx).update(memory_id, text)
    _emit(ctx, e, lambda e: click.echo(f"{e.event} {e.id}  {e.memory}"))


@cli.command()
@click.argument("memory_id")
@click.pass_context
@handle_errors
def delete(ctx: click.Context, memory_id: str) -> None:
    """Delete memory MEMORY_ID (its history keeps a DELETE entry)."""
    e = _service(ctx).delete(memory_id)
    _emit(ctx, e, lambda e: click.echo(f"{e.event} {e.id}  {e.memory}"))


@cli.command()
@click.option("--user", "user_id")
@click.option("--agent", "agent_id")
@click.option("--run", "run_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@handle_errors
def forget(ctx: click.Context, user_id: str | None, agent_id: str | None, run_id: str | None, yes: bool) -> None:
    """Erase for good everything of a user, agent or run, from every file on disk."""
    if not (user_id or agent_id or run_id):
        raise click.UsageError("name --user, --agent or --run")
    if not yes:
        click.confirm("Erase these memories, their history and messages for good?", abort=True)
    r = _service(ctx).delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id)
    _emit(ctx, r, lambda r: click.echo(f"erased {r.deleted} memories; {r.note}"))


@cli.command()
@click.option("--user", "user_id", help="Only this user's data.")
@click.option("--all-history", is_flag=True, help="Also erase superseded texts and old core-memory versions.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@handle_errors
def purge(ctx: click.Context, user_id: str | None, all_history: bool, yes: bool) -> None:
    """Erase deleted memories for good, from every file on disk (history, index versions, free pages)."""
    if not yes:
        click.confirm("Erase deleted memories (and their history) for good?", abort=True)
    r = _service(ctx).purge(user_id=user_id, all_history=all_history)
    _emit(ctx, r, lambda r: click.echo(f"erased {r.deleted} deleted memories; {r.note}"))


@cli.command()
@click.pass_context
@handle_errors
def stats(ctx: click.Context) -> None:
    """Counts, index health and the embedder of the store."""
    s = _service(ctx).stats()
    _emit(ctx, s, lambda s: [click.echo(f"{k}: {v}") for k, v in s.items()])


@cli.command()
@click.pass_context
@handle_errors
def doctor(ctx: click.Context) -> None:
    """Check the installation: data dir, schema, embedder, LLM endpoint, index health.

    One line per check (ok, warn or fail); exit code 1 if any check fails. Changes nothing.
    """
    from mcp_memory.doctor import run_checks

    checks = run_checks(_settings(ctx))
    _emit(ctx, [c.as_dict() for c in checks],
          lambda cs: [click.echo(f"{c['status']:<5} {c['name']:<9} {c['detail']}") for c in cs])
    if any(c.status == "fail" for c in checks):
        sys.exit(EXIT_ERROR)


@cli.command()
@click.pass_context
@handle_errors
def reindex(ctx: click.Context) -> None:
    """Re-embed every memory with the configured embedder and rebuild the search index."""
    n = _service(ctx).reindex()
    _emit(ctx, {"reindexed": n}, lambda _: click.echo(f"re-embedded and indexed {n} memories"))


@cli.command()
@click.argument("query")
@click.option("--max-tokens", default=1500, show_default=True, type=int)
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def context(ctx: click.Context, query: str, max_tokens: int, user_id: str | None) -> None:
    """Print the memory block for QUERY (core memory, facts, messages) within a token budget."""
    block = _service(ctx).context(query, max_tokens=max_tokens, user_id=user_id)
    _emit(ctx, block, lambda b: click.echo(f"{b.context}\n\n({b.tokens}/{b.max_tokens} tokens, {b.omitted} "
                                           "relevant items left out)"))


@cli.command()
@click.argument("job_id", required=False)
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def jobs(ctx: click.Context, job_id: str | None, user_id: str | None) -> None:
    """Background extraction jobs (add_memory with wait=false), or the job JOB_ID."""
    r = _service(ctx).job_status(job_id, user_id)

    def human(r: Any) -> None:
        for j in r.jobs:
            events = ", ".join(f"{e['event']} {e['memory']!r}" for e in j.events or [])
            click.echo(f"{j.id} {j.state:<7} {j.updated_at} {events or j.error or ''}")
        click.echo(" ".join(f"{k}={v}" for k, v in sorted(r.counts.items())) or "no jobs")

    _emit(ctx, r, human)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot"]), default="text", show_default=True,
              help="dot is Graphviz: mcp-memory graph --format dot | dot -Tsvg > graph.svg")
@click.option("--as-of", help="ISO date: the graph as it was then.")
@click.option("--all", "include_ended", is_flag=True, help="Include relations that have ended.")
@click.option("--user", "user_id")
@click.pass_context
@handle_errors
def graph(ctx: click.Context, fmt: str, as_of: str | None, include_ended: bool, user_id: str | None) -> None:
    """Export the entity graph (current relations, or as of a date)."""
    from mcp_memory.graph import render, to_dot

    rels = _service(ctx).graph.export(user_id, as_of, include_ended)
    if fmt == "json" or ctx.obj["json"]:
        click.echo(json.dumps([r.model_dump(mode="json", exclude_none=True) for r in rels], ensure_ascii=False,
                              indent=2))
    else:
        click.echo(to_dot(rels) if fmt == "dot" else render(rels))


# -- Letta-style memory ---------------------------------------------------------------------
@cli.group()
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


@cli.command(name="import-archival")
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


@cli.command(name="archival-search")
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


@cli.command(name="recall")
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


cli.add_command(install)


def main() -> None:
    cli(prog_name="mcp-memory")


if __name__ == "__main__":
    main()
