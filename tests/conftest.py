from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from mcp_memory.config import Settings
from mcp_memory.service import MemoryService
from tests.fake_openai import FakeOpenAI


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test may touch the user's home or pick up their configuration."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    for key in list(os.environ):
        if key.startswith("MCP_MEMORY_") or key == "OPENAI_API_KEY":
            monkeypatch.delenv(key)
    return home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_service(data_dir: Path) -> Iterator[Any]:
    services: list[MemoryService] = []

    def make(**overrides: Any) -> MemoryService:
        settings = Settings.from_env({}, data_dir=overrides.pop("data_dir", data_dir), **overrides)
        svc = MemoryService(settings)
        services.append(svc)
        return svc

    yield make
    for svc in services:
        svc.close()


@pytest.fixture
def service(make_service: Any) -> MemoryService:
    return make_service()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.close()


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")}
    env["MCP_MEMORY_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


@asynccontextmanager
async def stdio_client(data_dir: Path, *, mode: str = "auto", sampling_callback: Any = None,
                       args: tuple[str, ...] = (), **env: str) -> AsyncIterator[Any]:
    """Spawn `python -m mcp_memory serve` and connect the mcp SDK's client to it over stdio."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_memory", *args, "serve"],
                                   env=server_env(data_dir, **env))
    async with Client(params, mode=mode, sampling_callback=sampling_callback, read_timeout_seconds=60) as client:
        yield client


async def call(client: Any, tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured result."""
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Any, tool: str, **args: Any) -> str:
    """Call a tool that must fail cleanly; return its one-line error."""
    result = await client.call_tool(tool, args)
    assert result.is_error, result
    text = result.content[0].text
    assert "\n" not in text and "Traceback" not in text, text
    return text
