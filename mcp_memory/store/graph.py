"""SQL of the entity graph: entities, aliases and time-ranged relations (migration 0004)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass
class EntityRow:
    id: str
    user_id: str
    name: str
    type: str | None
    created_at: str
    updated_at: str


@dataclass
class RelationRow:
    id: str
    user_id: str
    source_id: str
    relation: str
    target_id: str
    valid_from: str
    valid_to: str | None
    ended_reason: str | None

    @classmethod
    def from_sql(cls, r: sqlite3.Row) -> RelationRow:
        return cls(r["id"], r["user_id"], r["source_id"], r["relation"], r["target_id"], r["valid_from"],
                   r["valid_to"], r["ended_reason"])


def entity(conn: sqlite3.Connection, entity_id: str) -> EntityRow | None:
    r = conn.execute("SELECT id, user_id, name, type, created_at, updated_at FROM entities WHERE id = ?",
                     (entity_id,)).fetchone()
    return EntityRow(*r) if r else None


def entities(conn: sqlite3.Connection, ids: Iterable[str]) -> dict[str, EntityRow]:
    ids = list(dict.fromkeys(ids))
    out: dict[str, EntityRow] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for r in conn.execute("SELECT id, user_id, name, type, created_at, updated_at FROM entities WHERE id IN "
                              f"({','.join('?' * len(chunk))})", chunk):
            out[r[0]] = EntityRow(*r)
    return out


def by_alias(conn: sqlite3.Connection, user_id: str, alias_norm: str) -> list[EntityRow]:
    rows = conn.execute(
        "SELECT e.id, e.user_id, e.name, e.type, e.created_at, e.updated_at FROM entity_aliases a "
        "JOIN entities e ON e.id = a.entity_id WHERE a.user_id = ? AND a.alias_norm = ? ORDER BY e.updated_at DESC",
        (user_id, alias_norm)).fetchall()
    return [EntityRow(*r) for r in rows]


def like(conn: sqlite3.Connection, user_id: str, pattern: str, limit: int = 10) -> list[EntityRow]:
    rows = conn.execute(
        "SELECT DISTINCT e.id, e.user_id, e.name, e.type, e.created_at, e.updated_at FROM entity_aliases a "
        "JOIN entities e ON e.id = a.entity_id WHERE a.user_id = ? AND a.alias_norm LIKE ? ESCAPE '\\\\' "
        "ORDER BY e.updated_at DESC LIMIT ?", (user_id, pattern, limit)).fetchall()
    return [EntityRow(*r) for r in rows]


def all_entities(conn: sqlite3.Connection, user_id: str) -> list[EntityRow]:
    rows = conn.execute("SELECT id, user_id, name, type, created_at, updated_at FROM entities WHERE user_id = ? "
                        "ORDER BY updated_at DESC", (user_id,)).fetchall()
    return [EntityRow(*r) for r in rows]


def aliases(conn: sqlite3.Connection, entity_id: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT alias FROM entity_aliases WHERE entity_id = ? ORDER BY alias",
                                       (entity_id,))]


def insert_entity(conn: sqlite3.Connection, e: EntityRow) -> None:
    conn.execute("INSERT INTO entities (id, user_id, name, type, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                 (e.id, e.user_id, e.name, e.type, e.created_at, e.updated_at))


def touch_entity(conn: sqlite3.Connection, entity_id: str, type_: str | None, now: str) -> None:
    conn.execute("UPDATE entities SET type = COALESCE(type, ?), updated_at = ? WHERE id = ?", (type_, now, entity_id))


def add_alias(conn: sqlite3.Connection, user_id: str, alias_norm: str, alias: str, entity_id: str) -> None:
    conn.execute("INSERT OR IGNORE INTO entity_aliases (user_id, alias_norm, alias, entity_id) VALUES (?,?,?,?)",
                 (user_id, alias_norm, alias, entity_id))


_REL = "id, user_id, source_id, relation, target_id, valid_from, valid_to, ended_reason"


def relations_of(conn: sqlite3.Connection, user_id: str, entity_ids: Sequence[str]) -> list[RelationRow]:
    out: list[RelationRow] = []
    ids = list(entity_ids)
    for i in range(0, len(ids), 400):
        chunk = ids[i:i + 400]
        marks = ",".join("?" * len(chunk))
        out.extend(RelationRow.from_sql(r) for r in conn.execute(
            f"SELECT {_REL} FROM relations WHERE user_id = ? AND (source_id IN ({marks}) OR target_id IN ({marks}))",
            [user_id, *chunk, *chunk]))
    return list({r.id: r for r in out}.values())


def current(conn: sqlite3.Connection, user_id: str, source_id: str, relation: str) -> list[RelationRow]:
    return [RelationRow.from_sql(r) for r in conn.execute(
        f"SELECT {_REL} FROM relations WHERE user_id = ? AND source_id = ? AND relation = ? AND valid_to IS NULL",
        (user_id, source_id, relation))]


def supported_by(conn: sqlite3.Connection, memory_id: str) -> list[RelationRow]:
    return [RelationRow.from_sql(r) for r in conn.execute(
        f"SELECT {', '.join('r.' + c for c in _REL.split(', '))} FROM relation_support s "
        "JOIN relations r ON r.id = s.relation_id WHERE s.memory_id = ?", (memory_id,))]


def support(conn: sqlite3.Connection, relation_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    ids = list(relation_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for rid, mid in conn.execute(f"SELECT relation_id, memory_id FROM relation_support WHERE relation_id IN "
                                     f"({','.join('?' * len(chunk))})", chunk):
            out.setdefault(rid, []).append(mid)
    return out


def add_support(conn: sqlite3.Connection, relation_id: str, memory_ids: Iterable[str]) -> None:
    conn.executemany("INSERT OR IGNORE INTO relation_support (relation_id, memory_id) VALUES (?, ?)",
                     [(relation_id, m) for m in memory_ids])


def drop_support(conn: sqlite3.Connection, relation_id: str, memory_id: str) -> int:
    conn.execute("DELETE FROM relation_support WHERE relation_id = ? AND memory_id = ?", (relation_id, memory_id))
    return conn.execute("SELECT count(*) FROM relation_support WHERE relation_id = ?", (relation_id,)).fetchone()[0]


def all_relations(conn: sqlite3.Connection, user_id: str) -> list[RelationRow]:
    return [RelationRow.from_sql(r) for r in conn.execute(
        f"SELECT {_REL} FROM relations WHERE user_id = ? ORDER BY valid_from", (user_id,))]


def insert_relation(conn: sqlite3.Connection, r: RelationRow, now: str) -> None:
    conn.execute(f"INSERT INTO relations ({_REL}, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                 (r.id, r.user_id, r.source_id, r.relation, r.target_id, r.valid_from, r.valid_to, r.ended_reason,
                  now))


def end(conn: sqlite3.Connection, relation_id: str, when: str, reason: str) -> None:
    conn.execute("UPDATE relations SET valid_to = ?, ended_reason = ? WHERE id = ? AND valid_to IS NULL",
                 (when, reason, relation_id))


def erase_user(conn: sqlite3.Connection, user_id: str) -> None:
    conn.execute("DELETE FROM relation_support WHERE relation_id IN (SELECT id FROM relations WHERE user_id = ?)",
                 (user_id,))
    for table in ("relations", "entity_aliases", "entities"):
        conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))


def erase_unsupported(conn: sqlite3.Connection) -> None:
    """Drop support rows pointing at memories that no longer exist (after a purge or erase)."""
    conn.execute("DELETE FROM relation_support WHERE memory_id NOT IN (SELECT id FROM memories)")


def erase_ended(conn: sqlite3.Connection, user_id: str | None) -> int:
    """Erase ended relations, and entities no relation mentions any more."""
    where, params = ("AND user_id = ?", [user_id]) if user_id else ("", [])
    conn.execute(f"DELETE FROM relation_support WHERE relation_id IN (SELECT id FROM relations "
                 f"WHERE valid_to IS NOT NULL {where})", params)
    n = conn.execute(f"DELETE FROM relations WHERE valid_to IS NOT NULL {where}", params).rowcount
    orphan = "NOT IN (SELECT source_id FROM relations UNION SELECT target_id FROM relations)"
    conn.execute(f"DELETE FROM entity_aliases WHERE entity_id {orphan} {where}", params)
    conn.execute(f"DELETE FROM entities WHERE id {orphan} {where}", params)
    return n
