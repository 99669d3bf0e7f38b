from pathlib import Path

import pytest

from mcp_memory.config import Settings, default_data_dir
from mcp_memory.errors import ConfigError


def test_default_data_dir_per_platform():
    assert default_data_dir({"HOME": "/h"}, "linux") == Path("/h/.local/share/mcp-memory")
    assert default_data_dir({"HOME": "/h", "XDG_DATA_HOME": "/x"}, "linux") == Path("/x/mcp-memory")
    assert default_data_dir({"HOME": "/h"}, "darwin") == Path("/h/Library/Application Support/mcp-memory")
    assert default_data_dir({"HOME": "/h", "LOCALAPPDATA": "C:/L"}, "win32") == Path("C:/L/mcp-memory")


def test_env_then_flags():
    env = {"MCP_MEMORY_DATA_DIR": "/tmp/a", "MCP_MEMORY_LLM_MODEL": "gpt-x", "MCP_MEMORY_LLM_TIMEOUT": "5",
           "OPENAI_API_KEY": "sk-secret"}
    s = Settings.from_env(env)
    assert s.data_dir == Path("/tmp/a") and s.llm_enabled and s.llm_timeout == 5.0
    assert s.llm_api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(s)
    s = Settings.from_env(env, data_dir=Path("/tmp/b"), llm_model=None)
    assert s.data_dir == Path("/tmp/b") and s.llm_model == "gpt-x"  # None flags do not mask the env


def test_invalid_setting_is_one_clear_line():
    with pytest.raises(ConfigError, match=r"invalid setting llm_timeout \(MCP_MEMORY_LLM_TIMEOUT\)"):
        Settings.from_env({"MCP_MEMORY_LLM_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="MCP_MEMORY_EMBEDDER"):
        Settings.from_env({"MCP_MEMORY_EMBEDDER": "bert"})
