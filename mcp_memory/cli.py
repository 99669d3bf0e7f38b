"""The `mcp-memory` command: a thin shell over `MemoryService` (and the MCP server for `serve`)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from mcp_memory import __version__
from mcp_memory.cli_install import install
from mcp_memory.config import Settings
from mcp_memory.cli_common import EXIT_ERROR, _emit, _progress, _service, _settings, fail, handle_errors
from mcp_memory.errors import MemoryServiceError


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
    from mcp_memory.process import limit_malloc_arenas, single_threaded_blas

    limit_malloc_arenas()  # before any thread starts
    single_threaded_blas()  # before numpy loads
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
    with _progress("erasing") as update:
        r = _service(ctx).delete_all(user_id=user_id, agent_id=agent_id, run_id=run_id, progress=update)
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
    with _progress("purging") as update:
        r = _service(ctx).purge(user_id=user_id, all_history=all_history, progress=update)
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
    with _progress("re-embedding") as update:
        n = _service(ctx).reindex(progress=update)
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


@cli.command(name="export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--user", "user_id", help="Only this user's data (default: everything).")
@click.pass_context
@handle_errors
def export_(ctx: click.Context, file: Path | None, user_id: str | None) -> None:
    """Export everything (memories with their history, messages, core blocks with their versions,
    the graph) as JSON lines to FILE, or to standard output. A consistent snapshot, streamed."""
    from mcp_memory.portability import export

    svc = _service(ctx)
    if file is None:
        counts = export(svc, sys.stdout, user_id)
    else:
        part = file.with_name(file.name + ".part")  # FILE appears whole or not at all
        try:
            with part.open("w", encoding="utf-8") as out, _progress("exporting") as update:
                counts = export(svc, out, user_id, progress=update)
            os.replace(part, file)
        finally:
            part.unlink(missing_ok=True)
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if k != "meta") or "nothing"
    click.echo(f"exported {summary}", err=True)


@cli.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "user_id", help="Owner of what a Mem0 dump, a graph or a text file imports (an mcp-memory "
                                         "export keeps its own users).")
@click.pass_context
@handle_errors
def import_(ctx: click.Context, files: tuple[Path, ...], user_id: str | None) -> None:
    """Import FILES: an mcp-memory export (ids, history and dates kept; importing twice adds nothing),
    a Mem0 export or get_all() dump, the reference MCP memory server's JSONL graph, or plain
    text/markdown (into archival memory). The format is detected."""
    from mcp_memory.portability import load

    svc = _service(ctx)
    results = []
    for path in files:
        with _progress(f"importing {path.name}") as update:
            results.append({"file": str(path), **load(svc, path, user_id, progress=update)})
    _emit(ctx, results, lambda rs: [click.echo(f"{r['file']}: " + ", ".join(
        f"{k} {v}" for k, v in r.items() if k != "file")) for r in rs])


from mcp_memory.cli_agent import archival_search, blocks, import_archival, recall_  # noqa: E402

for command in (blocks, import_archival, archival_search, recall_, install):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="mcp-memory")


if __name__ == "__main__":
    main()
