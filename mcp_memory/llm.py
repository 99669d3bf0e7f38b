"""LLM providers for fact extraction and reconciliation. The contract is one method,
`complete`, returning the model's text; `complete_json` parses it into an object.

`OpenAIChatLLM` speaks to any OpenAI-compatible chat endpoint (OpenAI, Ollama, LM
Studio, vLLM). The MCP-sampling provider lives in `mcp_memory.sampling`, so that this
module never imports the MCP layer.
"""

from __future__ import annotations

import json
import re
import time
from abc import ABC, abstractmethod
from typing import Any

from pydantic import SecretStr

from mcp_memory.config import Settings
from mcp_memory.errors import ProviderError


class LLM(ABC):
    name: str
    kind: str = "llm"  # how results are labelled: "llm" or "sampling"

    @abstractmethod
    def complete(self, system: str, user: str, max_tokens: int, timeout: float) -> str:
        """Return the model's reply to ``user`` under ``system`` within ``timeout`` seconds;
        raise ProviderError on failure."""

    def complete_json(self, system: str, user: str, timeout: float, max_tokens: int = 2000) -> dict[str, Any]:
        return parse_json_object(self.complete(system, user, max_tokens, timeout))


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a JSON object from a model reply, tolerating code fences and chatter around it."""
    text = _FENCE.sub("", (text or "").strip())
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise ProviderError("the model's reply contained no JSON object") from None
        try:
            value = json.loads(text[start:end + 1])
        except json.JSONDecodeError as exc:
            raise ProviderError(f"the model's reply was malformed JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, dict):
        raise ProviderError(f"the model replied with a JSON {type(value).__name__}, expected an object")
    return value


def openai_client(base_url: str | None, api_key: SecretStr | None, timeout: float, max_retries: int) -> Any:
    import openai

    return openai.OpenAI(
        base_url=base_url or None,
        # Local servers ignore the key, but the client insists on one.
        api_key=api_key.get_secret_value() if api_key else "not-needed",
        timeout=timeout,
        max_retries=max_retries,
    )


def describe_openai_error(exc: BaseException, settings: Settings) -> str:
    """One line saying what went wrong, built from the error's type and status, never its body."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        text = "timed out"
    elif isinstance(exc, openai.APIConnectionError):
        text = "could not connect"
    elif isinstance(exc, openai.AuthenticationError):
        text = "authentication failed (HTTP 401): check the API key"
    elif isinstance(exc, openai.RateLimitError):
        text = "rate limited (HTTP 429)"
    elif isinstance(exc, openai.APIStatusError):
        text = f"HTTP {exc.status_code}"
    elif isinstance(exc, ValueError):  # a body that is not JSON, cut short or of the wrong shape
        text = "returned a malformed reply"
    else:
        text = type(exc).__name__
    return scrub(text, settings)


def scrub(text: str, settings: Settings) -> str:
    """Remove configured secrets from text that may be shown."""
    for secret in (settings.llm_api_key, settings.embed_api_key):
        if secret is not None and len(secret.get_secret_value()) >= 4:
            text = text.replace(secret.get_secret_value(), "***")
    return text


class OpenAIChatLLM(LLM):
    def __init__(self, settings: Settings) -> None:
        assert settings.llm_model
        self._settings = settings
        self._model = settings.llm_model
        self.name = f"openai:{self._model}"
        # retries are ours, inside the caller's deadline
        self._client = openai_client(settings.llm_base_url, settings.llm_api_key, settings.llm_timeout, 0)

    def complete(self, system: str, user: str, max_tokens: int, timeout: float) -> str:
        import openai

        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                reply = self._client.chat.completions.create(
                    model=self._model,
                    messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                    temperature=0,
                    max_tokens=max_tokens,
                    response_format={"type": "json_object"},
                    timeout=max(remaining, 0.1),
                )
                break
            except Exception as exc:
                retryable = isinstance(exc, (openai.APIConnectionError, openai.RateLimitError)) or (
                    isinstance(exc, openai.APIStatusError) and exc.status_code >= 500)
                attempt += 1
                if (not retryable or isinstance(exc, openai.APITimeoutError) or attempt > self._settings.max_retries
                        or deadline - time.monotonic() < 1.5):
                    raise ProviderError(f"LLM endpoint failed: {describe_openai_error(exc, self._settings)}") from None
                time.sleep(0.5 * attempt)
        try:
            content = reply.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise ProviderError("LLM endpoint returned a reply without a message") from None
        if not content:
            raise ProviderError("LLM endpoint returned an empty message")
        return str(content)


def make_llm(settings: Settings) -> LLM | None:
    return OpenAIChatLLM(settings) if settings.llm_enabled else None
