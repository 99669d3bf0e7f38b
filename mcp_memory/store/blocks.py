"""SQL of core-memory blocks and their version history (tables from migration 0002)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass
class BlockRow:
    user_id: str
    label: str
    value: str
    description: str | None
    char_limit: int
    read_only: bool
    version: int
    created_at: str
    updated_at: str

    @classmethod
    def from_sql(cls, r: sqlite3.Row) -> BlockRow:
        return cls(r["user_id"], r["label"], r["value"], r["description"], r["char_limit"], bool(r["read_only"]),
                   r["version"], r["created_at"], r["updated_at"])


_COLS = "user_id, label, value, description, char_limit, read_only, version, created_at, updated_at"


def get_blocks(conn: sqlite3.Connection, user_id: str) -> list[BlockRow]:
    rows = conn.execute(f"SELECT {_COLS} FROM blocks WHERE user_id = ? ORDER BY rowid",
                        (user_id,)).fetchall()
    return [BlockRow.from_sql(r) for r in rows]


def get_block(conn: sqlite3.Connection, user_id: str, label: str) -> BlockRow | None:
    r = conn.execute(f"SELECT {_COLS} FROM blocks WHERE user_id = ? AND label = ?", (user_id, label)).fetchone()
    return BlockRow.from_sql(r) if r else None


def insert_block(conn: sqlite3.Connection, b: BlockRow, actor: str) -> bool:
    """Create a block unless it exists; returns whether it was created."""
    cur = conn.execute(
        f"INSERT OR IGNORE INTO blocks ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
        (b.user_id, b.label, b.value, b.description, b.char_limit, int(b.read_only), b.version, b.created_at,
         b.updated_at),
    )
    if cur.rowcount:
        add_version(conn, b.user_id, b.label, b.version, "create", b.value, actor, b.created_at)
    return bool(cur.rowcount)


def set_value(conn: sqlite3.Connection, b: BlockRow, value: str, event: str, actor: str, now: str) -> int:
    """Write a new value over version ``b.version``; returns the new version (compare-and-set)."""
    cur = conn.execute(
        "UPDATE blocks SET value = ?, version = version + 1, updated_at = ? "
        "WHERE user_id = ? AND label = ? AND version = ?",
        (value, now, b.user_id, b.label, b.version),
    )
    if cur.rowcount != 1:  # cannot happen inside BEGIN IMMEDIATE; guards against misuse
        raise sqlite3.IntegrityError("block changed during the write")
    add_version(conn, b.user_id, b.label, b.version + 1, event, value, actor, now)
    return b.version + 1


def set_flags(conn: sqlite3.Connection, user_id: str, label: str, *, description: str | None,
              char_limit: int | None, read_only: bool | None, now: str) -> None:
    conn.execute(
        "UPDATE blocks SET description = COALESCE(?, description), char_limit = COALESCE(?, char_limit), "
        "read_only = COALESCE(?, read_only), updated_at = ? WHERE user_id = ? AND label = ?",
        (description, char_limit, None if read_only is None else int(read_only), now, user_id, label),
    )


def add_version(conn: sqlite3.Connection, user_id: str, label: str, version: int, event: str, value: str,
                actor: str, now: str) -> None:
    conn.execute(
        "INSERT INTO block_history (user_id, label, version, event, value, actor, created_at) "
        "VALUES (?,?,?,?,?,?,?)", (user_id, label, version, event, value, actor, now),
    )


def versions(conn: sqlite3.Connection, user_id: str, label: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT version, event, value, actor, created_at FROM block_history WHERE user_id = ? AND label = ? "
        "ORDER BY id", (user_id, label),
    ).fetchall()


def erase_user(conn: sqlite3.Connection, user_id: str) -> None:
    conn.execute("DELETE FROM block_history WHERE user_id = ?", (user_id,))
    conn.execute("DELETE FROM blocks WHERE user_id = ?", (user_id,))
