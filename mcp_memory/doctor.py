"""`mcp-memory doctor`: is this installation healthy? One line per check: ok, warn or fail.

It changes nothing: the store is read without being opened (opening migrates the schema
and repairs the index), and endpoints get one short request each.
"""

from __future__ import annotations

import os
import platform
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from mcp_memory import __version__
from mcp_memory.config import Settings
from mcp_memory.errors import MemoryServiceError

Status = Literal["ok", "warn", "fail"]
ENDPOINT_TIMEOUT = 3.0


@dataclass
class Check:
    name: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_versions() -> Check:
    from importlib.metadata import version

    return Check("versions", "ok", f"mcp-memory {__version__}, mcp {version('mcp')}, lancedb {version('lancedb')}, "
                                   f"Python {platform.python_version()}")


def check_data_dir(settings: Settings) -> Check:
    path = Path(settings.data_dir)
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and os.access(parent, os.W_OK | os.X_OK):
            return Check("data dir", "warn", f"{path} does not exist yet; it is created on first use")
        return Check("data dir", "fail", f"{path} does not exist and cannot be created ({parent} is not writable); "
                                         "set MCP_MEMORY_DATA_DIR or --data-dir to a writable place")
    if not path.is_dir():
        return Check("data dir", "fail", f"{path} is not a directory; point MCP_MEMORY_DATA_DIR elsewhere")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return Check("data dir", "fail", f"{path} is not writable ({exc.strerror}); fix its permissions")
    return Check("data dir", "ok", f"{path} (writable)")


def check_store(settings: Settings, health: dict[str, Any]) -> list[Check]:
    if "migrations_applied" not in health:
        return [Check("schema", "ok", "no database yet; it is created on first use")]
    applied, pending = health["migrations_applied"], health["migrations_pending"]
    if pending:
        return [Check("schema", "warn", f"{len(applied)} migrations applied, {len(pending)} pending "
                                        f"({', '.join(pending)}); they are applied when the server next starts")]
    checks = [Check("schema", "ok", f"{len(applied)} migrations applied (latest {applied[-1]}), none pending")]
    active, rows, pending_rows = health["rows_active"], health.get("index_rows", 0), health["index_pending"]
    detail = f"{active} active rows in SQLite, {rows} in the search index, {pending_rows} index updates pending"
    if active == rows and not pending_rows:
        checks.append(Check("index", "ok", detail + f" ({health.get('index_versions', 0)} index versions)"))
    else:
        checks.append(Check("index", "warn", detail + "; the next start or write repairs it "
                                                      "(or run `mcp-memory reindex`)"))
    return checks


def check_embedder(settings: Settings, health: dict[str, Any]) -> Check:
    from mcp_memory.embeddings import make_embedder

    quick = settings.model_copy(update={"embed_timeout": min(settings.embed_timeout, ENDPOINT_TIMEOUT),
                                        "max_retries": 0})
    try:
        current = str(make_embedder(quick).identity())
    except MemoryServiceError as exc:
        return Check("embedder", "fail", str(exc))
    stored = health.get("embedder_stored")
    if stored is None or stored == current:
        return Check("embedder", "ok", current + (" (matches the store)" if stored else ""))
    if not health.get("rows_active"):
        return Check("embedder", "warn", f"{current}; the empty store was indexed with {stored} and will switch")
    return Check("embedder", "fail", f"the store was indexed with {stored}, but the configured embedder is "
                                     f"{current}; configure the original one again, or run `mcp-memory reindex`")


def check_llm(settings: Settings) -> Check:
    if not settings.llm_enabled:
        return Check("llm", "warn", "none configured: add_memory stores text as given unless the client offers "
                                    "sampling; set MCP_MEMORY_LLM_MODEL (and _LLM_BASE_URL) for fact extraction")
    import openai

    from mcp_memory.llm import describe_openai_error, openai_client

    where = settings.llm_base_url or "OpenAI"
    client = openai_client(settings.llm_base_url, settings.llm_api_key, min(settings.llm_timeout, ENDPOINT_TIMEOUT),
                           max_retries=0)
    try:
        models = [m.id for m in client.models.list()]
    except openai.NotFoundError:
        return Check("llm", "warn", f"{where} answers but does not list models (/models: HTTP 404); "
                                    f"assuming it serves {settings.llm_model}")
    except Exception as exc:
        return Check("llm", "fail", f"{settings.llm_model} at {where}: {describe_openai_error(exc, settings)}; "
                                    "check MCP_MEMORY_LLM_BASE_URL, the key, and that the server is running")
    if models and settings.llm_model not in models:
        return Check("llm", "warn", f"{where} is reachable but does not list {settings.llm_model} "
                                    f"(it has: {', '.join(models[:5])}{' ...' if len(models) > 5 else ''})")
    return Check("llm", "ok", f"{settings.llm_model} at {where} is reachable")


def run_checks(settings: Settings) -> list[Check]:
    from mcp_memory.service import MemoryService

    checks = [check_versions(), check_data_dir(settings)]
    try:
        health = MemoryService(settings).health()
    except MemoryServiceError as exc:
        return [*checks, Check("store", "fail", str(exc))]
    checks += check_store(settings, health)
    checks.append(check_embedder(settings, health))
    checks.append(check_llm(settings))
    return checks
