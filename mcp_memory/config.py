"""One Settings object, read from the environment (``MCP_MEMORY_*``) and CLI flags.

Nothing here touches the disk or the network: `Settings.from_env` only reads a
mapping, and the data directory is created by the store when it is opened.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from mcp_memory.errors import ConfigError

ENV_PREFIX = "MCP_MEMORY_"
Profile = Literal["all", "passive", "agent"]


def default_data_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The per-user data directory: XDG data home on Linux, the usual places elsewhere."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Application Support" / "mcp-memory"
    if platform.startswith("win"):
        base = env.get("LOCALAPPDATA") or env.get("APPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "mcp-memory"
    xdg = env.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else home / ".local" / "share") / "mcp-memory"


class Settings(BaseModel):
    """Every knob of the server. Environment variables are the field names upper-cased
    with the ``MCP_MEMORY_`` prefix (``MCP_MEMORY_DATA_DIR``, ``MCP_MEMORY_LLM_MODEL`` ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir, description="Where memories live.")
    default_user_id: str = Field("default", min_length=1, max_length=200,
                                 description="user_id used when a call names no scope.")
    profile: Profile = Field("all", description="Which tools to expose: passive (Mem0-style), agent (Letta-style), all.")

    embedder: Literal["wordllama", "openai"] = "wordllama"
    embed_base_url: str | None = None
    embed_api_key: SecretStr | None = None
    embed_model: str = "text-embedding-3-small"
    embed_dimensions: int | None = Field(None, ge=8, le=8192)
    embed_timeout: float = Field(15.0, gt=0, le=600)

    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = Field(None, description="Setting a model turns LLM fact extraction on.")
    llm_timeout: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(1, ge=0, le=5)
    sampling: bool = Field(True, description="Use the client's model through MCP sampling when no LLM is set.")
    add_wait: bool = Field(False, description="Default of add_memory's wait when an LLM endpoint is configured: "
                           "false returns at once and extracts in the background.")

    max_text_chars: int = Field(20_000, ge=100, le=10_000_000)
    vector_cache_mb: int = Field(512, ge=0, le=1_000_000,
                                 description="Memory for the in-memory vector matrix (search in a few ms; ~350 "
                                 "bytes per memory with WordLlama, so 512 MB holds ~1.5M); it takes only what the "
                                 "store needs. A store that needs more is searched with LanceDB alone. 0: off.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    http_host: str = Field("127.0.0.1", min_length=1, description="Address the sse/http transports listen on.")
    http_port: int = Field(8765, ge=0, le=65535, description="Port of the sse/http transports (0: any free port).")
    http_token: SecretStr | None = Field(None, description="Bearer token every HTTP request must carry; "
                                         "required to listen on a non-loopback address.")

    @field_validator("http_token")
    @classmethod
    def _strong_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters; make one with "
                             "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
        return v

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_model)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "memory.sqlite3"

    @property
    def lance_path(self) -> Path:
        return self.data_dir / "lancedb"

    @property
    def lock_dir(self) -> Path:
        return self.data_dir / "locks"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``env`` (default: the process environment), then ``overrides``
        (CLI flags; ``None`` values are ignored so unset flags do not mask the environment)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        # The OpenAI convention, so a configured OpenAI key is found without repeating it.
        for key_field in ("llm_api_key", "embed_api_key"):
            if key_field not in values and env.get("OPENAI_API_KEY"):
                values[key_field] = env["OPENAI_API_KEY"]
        if "data_dir" not in values:
            values["data_dir"] = default_data_dir(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "settings"
            msg = err["msg"].removeprefix("Value error, ")
            raise ConfigError(f"invalid setting {field} ({ENV_PREFIX}{field.upper()}): {msg}") from None
        return settings.model_copy(update={"data_dir": Path(settings.data_dir).expanduser()})
