"""Argument checks shared by every API: each failure is an `InvalidInput` with one line
that names the argument and what a valid value looks like."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from mcp_memory import text as textlib
from mcp_memory.config import Settings
from mcp_memory.errors import InvalidInput
from mcp_memory.models import Scope, utcnow

ROLES = ("user", "assistant", "system", "tool")
MAX_ID_CHARS = 200
MAX_METADATA_BYTES = 16_384
MAX_MESSAGES = 500
MAX_TAGS = 20
_HEX_ID = re.compile(r"^[0-9a-f]{32}$")
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def scope(settings: Settings, user_id: str | None = None, agent_id: str | None = None,
          run_id: str | None = None) -> Scope:
    for name, value in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)):
        if value is not None and (not value.strip() or len(value) > MAX_ID_CHARS
                                  or any(ord(c) < 32 for c in value)):
            raise InvalidInput(f"{name} must be 1-{MAX_ID_CHARS} printable characters")
    return Scope(user_id=user_id or settings.default_user_id, agent_id=agent_id, run_id=run_id)


def text(value: str, max_chars: int, name: str = "text", allow_empty: bool = False) -> str:
    if len(value) > 2 * max_chars:  # refuse before scanning a huge string
        raise InvalidInput(f"{name} has {len(value)} characters; the limit is {max_chars}")
    cleaned = textlib.clean(value)
    if not cleaned and not allow_empty:
        raise InvalidInput(f"{name} is empty")
    if len(cleaned) > max_chars:
        raise InvalidInput(f"{name} has {len(cleaned)} characters; the limit is {max_chars} "
                           "(split it, or store long documents in archival memory)")
    return cleaned


def memory_id(value: str) -> str:
    mid = value.strip().lower().replace("-", "")
    if not _HEX_ID.match(mid):
        raise InvalidInput("memory_id must be the 32-character hex id returned by add_memory or search_memory")
    return mid


def label(value: str) -> str:
    lab = value.strip().lower()
    if not _LABEL.match(lab):
        raise InvalidInput("label must be 1-64 characters: a lowercase letter, then letters, digits, '_' or '-' "
                           "(e.g. 'human', 'persona', 'project_notes')")
    return lab


def metadata(value: dict[str, Any] | None, name: str = "metadata") -> dict[str, Any] | None:
    if not value:
        return None
    try:
        size = len(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a JSON object of strings, numbers, booleans and lists") from None
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(f"{name} is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return value


def tags(value: Sequence[str] | None) -> list[str] | None:
    if not value:
        return None
    out = []
    for t in value:
        if not isinstance(t, str) or not t.strip() or len(t) > 64:
            raise InvalidInput("each tag must be a non-empty string of at most 64 characters")
        out.append(textlib.clean(t).lower())
    if len(out) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags")
    return sorted(set(out))


def messages(value: Sequence[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    if not value:
        raise InvalidInput("messages is empty")
    if len(value) > MAX_MESSAGES:
        raise InvalidInput(f"{len(value)} messages in one call; the limit is {MAX_MESSAGES}")
    out = []
    now = utcnow()
    for i, m in enumerate(value):
        role = str(m.get("role", "")).lower()
        if role not in ROLES:
            raise InvalidInput(f"messages[{i}].role must be one of {', '.join(ROLES)}")
        content = m.get("content")
        if not isinstance(content, str):
            raise InvalidInput(f"messages[{i}].content must be a string")
        name = m.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_ID_CHARS):
            raise InvalidInput(f"messages[{i}].name must be a string of at most {MAX_ID_CHARS} characters")
        out.append({"role": role, "content": text(content, max_chars, f"messages[{i}].content"),
                    "name": textlib.clean(name) or None if name else None,
                    "created_at": timestamp(m.get("created_at"), f"messages[{i}].created_at") or now})
    return out


def timestamp(value: Any, name: str, end_of_day: bool = False) -> str | None:
    """Accept an ISO 8601 date or datetime (naive means UTC) and return the stored form.
    With ``end_of_day``, a bare date means the end of that day (for inclusive end dates)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be an ISO 8601 date or datetime string")
    raw = value.strip()
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date or datetime, like 2024-05-01 or "
                           "2024-05-01T13:56:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    if end_of_day and len(raw) == 10:
        dt = dt.replace(hour=23, minute=59, second=59, microsecond=999999)
    try:
        dt = dt.astimezone(timezone.utc)
    except OverflowError:  # an offset pushing the year past 1..9999
        raise InvalidInput(f"{name} is out of range") from None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


MAX_RANKED_DEPTH = 1000  # ranked results: page x limit may reach this deep


def page(page_: int, limit: int, max_limit: int = 100, ranked: bool = True,
         name: str = "limit") -> tuple[int, int]:
    """Ranked searches rank page x limit candidates, so their depth is bounded; a newest-first
    listing is an offset and may go as deep as the data."""
    if page_ < 1:
        raise InvalidInput("page must be >= 1")
    if not 1 <= limit <= max_limit:
        raise InvalidInput(f"{name} must be between 1 and {max_limit}")
    if ranked and page_ * limit > MAX_RANKED_DEPTH:
        raise InvalidInput(f"ranked results go {MAX_RANKED_DEPTH} deep (page x limit); refine the query or "
                           "narrow it with dates or tags instead of paging further")
    if page_ * limit > 2**40:
        raise InvalidInput("page is out of range")
    return page_, limit
