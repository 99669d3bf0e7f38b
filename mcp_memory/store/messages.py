"""SQL of the recall log: the look-ups `mcp_memory.recall_rank` ranks messages with.

Messages are append-only rows of ``messages``; ``messages_search`` (FTS5, porter) indexes
their speaker name, content and date words (migration 0003); ``vector`` is a float16
embedding of the same text, filled in by the index worker (NULL until then).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mcp_memory import dates
from mcp_memory.store.schema import MONTH_NAMES

COLUMNS = "m.id, m.role, m.name, m.content, m.created_at, m.run_id"
VECTOR_DTYPE = np.float16  # half the bytes of float32; far more precision than ranking needs


@dataclass(frozen=True)
class Filters:
    """What a caller restricts recall to. Neighbouring turns outside them still lend context."""

    user_id: str
    roles: Sequence[str] | None = None
    start: str | None = None
    end: str | None = None
    run_id: str | None = None

    def sql(self, start: str | None = None, end: str | None = None) -> tuple[str, list[object]]:
        where, params = ["m.user_id = ?"], [self.user_id]
        if self.roles:
            where.append(f"m.role IN ({','.join('?' * len(self.roles))})")
            params.extend(self.roles)
        for op, value in ((">=", _later(self.start, start)), ("<=", _earlier(self.end, end))):
            if value:
                where.append(f"m.created_at {op} ?")
                params.append(value)
        if self.run_id:
            where.append("m.run_id = ?")
            params.append(self.run_id)
        return " AND ".join(where), params

    def admits(self, row: sqlite3.Row) -> bool:
        return ((not self.roles or row["role"] in self.roles)
                and (not self.start or row["created_at"] >= self.start)
                and (not self.end or row["created_at"] <= self.end)
                and (not self.run_id or row["run_id"] == self.run_id))


def date_words(timestamp: str) -> str:
    """The date words the full-text index holds for a message (the SQL of migration 0003)."""
    day = dates.day_of(timestamp)
    return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}" if day else ""


def message_text(name: str | None, content: str, created_at: str) -> str:
    """What a message's vector embeds: the words the full-text index holds for it."""
    who = f"{name}: " if name else ""
    return f"[{date_words(created_at)}] {who}{content}"


def _later(a: str | None, b: str | None) -> str | None:
    return max(a, b) if a and b else a or b


def _earlier(a: str | None, b: str | None) -> str | None:
    return min(a, b) if a and b else a or b


def _bm25(weights: Sequence[float]) -> str:
    return f"bm25(messages_search, {', '.join(f'{float(w)!r}' for w in weights)})"


def newest(conn: sqlite3.Connection, f: Filters, limit: int, offset: int) -> list[sqlite3.Row]:
    where, params = f.sql()
    return conn.execute(f"SELECT {COLUMNS} FROM messages m WHERE {where} "
                        "ORDER BY m.created_at DESC, m.id DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()


def best_matches(conn: sqlite3.Connection, match: str, f: Filters, limit: int, weights: Sequence[float],
                 start: str | None = None, end: str | None = None) -> dict[int, float]:
    """Id -> BM25 (higher is better) of the ``limit`` best full-text matches that pass the filters
    (and, if given, fall between ``start`` and ``end``)."""
    where, params = f.sql(start, end)
    rows = conn.execute(
        f"SELECT m.id, -{_bm25(weights)} FROM messages_search JOIN messages m ON m.id = messages_search.rowid "
        f"WHERE messages_search MATCH ? AND {where} ORDER BY {_bm25(weights)} LIMIT ?", [match, *params, limit])
    return {r[0]: r[1] for r in rows}


def scores(conn: sqlite3.Connection, match: str, ids: Sequence[int], weights: Sequence[float]) -> dict[int, float]:
    """BM25 of particular messages (0 for those that do not match)."""
    out: dict[int, float] = {}
    for chunk in _chunks(list(ids), 500):
        rows = conn.execute(f"SELECT rowid, -{_bm25(weights)} FROM messages_search WHERE messages_search MATCH ? "
                            f"AND rowid IN ({','.join('?' * len(chunk))})", [match, *chunk])
        out.update((r[0], r[1]) for r in rows)
    return out


def rows(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, sqlite3.Row]:
    out: dict[int, sqlite3.Row] = {}
    for chunk in _chunks(list(ids), 500):
        out.update((r["id"], r) for r in conn.execute(
            f"SELECT {COLUMNS}, m.user_id, m.vector FROM messages m WHERE m.id IN ({','.join('?' * len(chunk))})",
            chunk))
    return out


def neighbours(conn: sqlite3.Connection, row: sqlite3.Row, user_id: str, n: int) -> tuple[list[int], list[int]]:
    """Ids of up to ``n`` messages before and after ``row`` in its conversation (same user and run,
    ordered by time then id), nearest first."""
    key = (user_id, row["run_id"], row["created_at"], row["id"])
    before = conn.execute("SELECT id FROM messages WHERE user_id = ? AND run_id IS ? AND (created_at, id) < (?, ?) "
                          "ORDER BY created_at DESC, id DESC LIMIT ?", [*key, n]).fetchall()
    after = conn.execute("SELECT id FROM messages WHERE user_id = ? AND run_id IS ? AND (created_at, id) > (?, ?) "
                         "ORDER BY created_at, id LIMIT ?", [*key, n]).fetchall()
    return [r[0] for r in before], [r[0] for r in after]


def participants(conn: sqlite3.Connection, user_id: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` (any case) are speaker names in this user's log; returned case-folded."""
    names = list(dict.fromkeys(n for n in names if n))
    found: set[str] = set()
    for chunk in _chunks(names, 200):
        found.update(r[0].casefold() for r in conn.execute(
            f"SELECT DISTINCT name FROM messages WHERE user_id = ? AND name COLLATE NOCASE IN "
            f"({','.join('?' * len(chunk))})", [user_id, *chunk]))
    return found


def unembedded(conn: sqlite3.Connection, limit: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT id, name, content, created_at FROM messages WHERE vector IS NULL ORDER BY id LIMIT ?",
                        (limit,)).fetchall()


def batches(conn: sqlite3.Connection, size: int) -> Iterable[list[sqlite3.Row]]:
    """Every message (id, name, content, created_at), in id order, ``size`` at a time."""
    last = 0
    while True:
        rows = conn.execute("SELECT id, name, content, created_at FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                            (last, size)).fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def set_vectors(conn: sqlite3.Connection, pairs: Iterable[tuple[int, np.ndarray]], overwrite: bool = False) -> None:
    cond = "" if overwrite else " AND vector IS NULL"
    conn.executemany(f"UPDATE messages SET vector = ? WHERE id = ?{cond}",
                     [(np.asarray(v, dtype=VECTOR_DTYPE).tobytes(), i) for i, v in pairs])


def vector_of(blob: bytes | None, dim: int) -> np.ndarray | None:
    if blob is None or len(blob) != dim * np.dtype(VECTOR_DTYPE).itemsize:
        return None  # not embedded yet (or by another embedder: `mcp-memory reindex` redoes it)
    return np.frombuffer(blob, dtype=VECTOR_DTYPE).astype(np.float32)


def _chunks(items: list, size: int) -> Iterable[list]:  # type: ignore[type-arg]
    for i in range(0, len(items), size):
        yield items[i:i + size]
