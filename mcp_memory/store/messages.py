"""SQL of the recall log: the look-ups `mcp_memory.recall_rank` ranks messages with.

Messages are append-only rows of ``messages``; ``messages_fts`` (FTS5, porter) indexes
their content; ``vector`` (migration 0003) is a float16 embedding of "[date] name:
content", filled in by the index worker (NULL until then).
"""

from __future__ import annotations

import calendar
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mcp_memory import dates

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
    """A message's day in words ("8 May 2023"), as people write it in questions."""
    day = dates.day_of(timestamp)
    return f"{day.day} {calendar.month_name[day.month]} {day.year}" if day else ""


def message_text(name: str | None, content: str, created_at: str) -> str:
    """What a message's vector embeds: when, who and what."""
    who = f"{name}: " if name else ""
    return f"[{date_words(created_at)}] {who}{content}"


def _later(a: str | None, b: str | None) -> str | None:
    return max(a, b) if a and b else a or b


def _earlier(a: str | None, b: str | None) -> str | None:
    return min(a, b) if a and b else a or b


def newest(conn: sqlite3.Connection, f: Filters, limit: int, offset: int = 0,
           start: str | None = None, end: str | None = None) -> list[sqlite3.Row]:
    """Newest first (optionally only between ``start`` and ``end``)."""
    where, params = f.sql(start, end)
    return conn.execute(f"SELECT {COLUMNS} FROM messages m WHERE {where} "
                        "ORDER BY m.created_at DESC, m.id DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()


def best_matches(conn: sqlite3.Connection, match: str, f: Filters, limit: int,
                 start: str | None = None, end: str | None = None) -> dict[int, float]:
    """Id -> BM25 (higher is better) of the ``limit`` best full-text matches that pass the filters
    (and, if given, fall between ``start`` and ``end``), best first."""
    where, params = f.sql(start, end)
    # FTS5's rank column is bm25() computed once per row (ordering by bm25() itself costs ~60% more)
    rows = conn.execute(
        f"SELECT m.id, -messages_fts.rank FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
        f"WHERE messages_fts MATCH ? AND {where} ORDER BY messages_fts.rank LIMIT ?", [match, *params, limit])
    return {r[0]: r[1] for r in rows}


def spoken_by(conn: sqlite3.Connection, f: Filters, names: Iterable[str], limit: int) -> list[int]:
    """Ids of the newest messages of these speakers (any case)."""
    names = list(names)
    if not names:
        return []
    where, params = f.sql()
    return [r[0] for r in conn.execute(
        f"SELECT m.id FROM messages m WHERE {where} AND m.name COLLATE NOCASE IN ({','.join('?' * len(names))}) "
        "ORDER BY m.created_at DESC, m.id DESC LIMIT ?", [*params, *names, limit])]


def rows(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, sqlite3.Row]:
    out: dict[int, sqlite3.Row] = {}
    for chunk in _chunks(list(ids), 500):
        out.update((r["id"], r) for r in conn.execute(
            f"SELECT {COLUMNS}, m.user_id, m.vector FROM messages m WHERE m.id IN ({','.join('?' * len(chunk))})",
            chunk))
    return out


def neighbours(conn: sqlite3.Connection, anchors: Sequence[sqlite3.Row], user_id: str, n: int) -> dict[int, list[int]]:
    """Ids of up to ``n`` messages before and up to ``n`` after each anchor row in its
    conversation (same user and run, in time then id order). One statement for all anchors."""
    out: dict[int, list[int]] = {}
    for chunk in _chunks(list(anchors), 100):  # two SELECTs each, under SQLite's 500-term limit
        parts, params = [], []
        for row in chunk:
            key = [row["id"], user_id, row["run_id"], row["created_at"], row["id"], n]
            for op, order in (("<", "DESC"), (">", "ASC")):
                parts.append(f"SELECT * FROM (SELECT ?, id FROM messages WHERE user_id = ? AND run_id IS ? AND "
                             f"(created_at, id) {op} (?, ?) ORDER BY created_at {order}, id {order} LIMIT ?)")
                params.extend(key)
        for anchor, other in conn.execute(" UNION ALL ".join(parts), params):
            out.setdefault(anchor, []).append(other)
    return out


def participants(conn: sqlite3.Connection, user_id: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` (any case) are speaker names in this user's log; returned case-folded."""
    found: set[str] = set()
    for name in dict.fromkeys(n.casefold() for n in names if n):
        if conn.execute("SELECT 1 FROM messages WHERE user_id = ? AND name = ? COLLATE NOCASE LIMIT 1",
                        (user_id, name)).fetchone():
            found.add(name)
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
