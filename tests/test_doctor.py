"""`mcp-memory doctor` against real stores and a real HTTP endpoint on loopback."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from mcp_memory.cli import cli
from tests.fake_openai import FakeOpenAI


def doctor(data_dir: Path, code: int = 0, **env: str) -> dict[str, dict[str, str]]:
    result = CliRunner().invoke(cli, ["--json", "--data-dir", str(data_dir), "doctor"], env=env)
    assert result.exit_code == code, result.output
    return {c["name"]: c for c in json.loads(result.stdout)}


def statuses(checks: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: c["status"] for name, c in checks.items()}


def add(data_dir: Path, *texts: str, **env: str) -> None:
    for text in texts:
        result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "add", "--no-infer", text], env=env)
        assert result.exit_code == 0, result.output


def test_a_new_installation(tmp_path: Path):
    checks = doctor(tmp_path / "data")
    assert statuses(checks) == {"versions": "ok", "data dir": "warn", "schema": "ok", "embedder": "ok", "llm": "warn"}
    assert "created on first use" in checks["data dir"]["detail"]
    assert not (tmp_path / "data").exists()  # looking created nothing


def test_a_healthy_store_and_the_human_output(tmp_path: Path):
    data = tmp_path / "data"
    add(data, "User likes tea", "User lives in Porto")
    checks = doctor(data)
    assert statuses(checks)["index"] == "ok" and statuses(checks)["embedder"] == "ok"
    assert checks["index"]["detail"].startswith("2 active rows in SQLite, 2 in the search index, 0 index updates")
    assert "matches the store" in checks["embedder"]["detail"]
    out = CliRunner().invoke(cli, ["--data-dir", str(data), "doctor"]).output
    lines = out.splitlines()
    assert len(lines) == 6 and all(line.split()[0] in ("ok", "warn", "fail") for line in lines)


def test_index_out_of_step_and_pending_migrations_are_reported_not_repaired(tmp_path: Path):
    data = tmp_path / "data"
    add(data, "User likes tea", "User lives in Porto")
    shutil.rmtree(data / "lancedb")
    checks = doctor(data)
    assert checks["index"]["status"] == "warn" and "0 in the search index" in checks["index"]["detail"]
    assert not (data / "lancedb").exists()  # doctor does not rebuild it; the next start does
    with sqlite3.connect(data / "memory.sqlite3") as conn:
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0002_core_memory_blocks'")
    checks = doctor(data)
    assert checks["schema"]["status"] == "warn" and "1 pending (0002_core_memory_blocks)" in checks["schema"]["detail"]


def test_an_embedder_mismatch_fails(tmp_path: Path, fake_openai: FakeOpenAI):
    data = tmp_path / "data"
    openai_env = {"MCP_MEMORY_EMBEDDER": "openai", "MCP_MEMORY_EMBED_BASE_URL": fake_openai.url,
                  "MCP_MEMORY_EMBED_MODEL": "toy", "MCP_MEMORY_EMBED_DIMENSIONS": "32"}
    add(data, "User likes tea", **openai_env)
    assert doctor(data, **openai_env)["embedder"]["status"] == "ok"
    checks = doctor(data, code=1)  # the default embedder on a store made with another one
    assert checks["embedder"]["status"] == "fail"
    assert "openai:toy@32" in checks["embedder"]["detail"] and "mcp-memory reindex" in checks["embedder"]["detail"]
    fake_openai.close()  # the embedding endpoint goes away
    checks = doctor(data, code=1, **openai_env)
    assert checks["embedder"]["status"] == "fail" and "could not connect" in checks["embedder"]["detail"]


def test_llm_endpoint_reachability(tmp_path: Path, fake_openai: FakeOpenAI):
    data = tmp_path / "data"
    env = {"MCP_MEMORY_LLM_BASE_URL": fake_openai.url, "MCP_MEMORY_LLM_MODEL": "scripted",
           "MCP_MEMORY_LLM_API_KEY": "sk-doctor-secret"}
    checks = doctor(data, **env)
    assert checks["llm"]["status"] == "ok" and "reachable" in checks["llm"]["detail"]
    assert fake_openai.requests[-1]["auth"] == "Bearer sk-doctor-secret"
    assert doctor(data, **{**env, "MCP_MEMORY_LLM_MODEL": "llama3.1"})["llm"]["status"] == "warn"
    fake_openai.models = None
    assert "does not list models" in doctor(data, **env)["llm"]["detail"]
    checks = doctor(data, code=1, **{**env, "MCP_MEMORY_LLM_BASE_URL": "http://127.0.0.1:9/v1"})
    assert checks["llm"]["status"] == "fail" and "could not connect" in checks["llm"]["detail"]
    assert "sk-doctor-secret" not in json.dumps(checks)


def test_a_data_dir_that_is_a_file_fails(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    checks = doctor(tmp_path / "file", code=1)
    assert checks["data dir"]["status"] == "fail" and "not a directory" in checks["data dir"]["detail"]


