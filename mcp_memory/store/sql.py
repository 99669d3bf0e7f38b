"""SQLite, the system of record: memory rows, their history, the message log, metadata.

Safe for several processes on one file: WAL journal, a long busy timeout, and every
write unit in one ``BEGIN IMMEDIATE`` transaction (`SQLStore.write`), so writers queue
instead of failing with "database is locked" and a reader never sees half a write.
Each thread gets its own connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database

from mcp_memory.errors import StoreError
from mcp_memory.models import Scope, utcnow
from mcp_memory.store.lock import InterProcessLock
from mcp_memory.store.schema import migrations

BUSY_TIMEOUT_S = 30.0
KEEP_CHANGES = 200_000  # rows of the memories change log kept by `trim_changes`


@dataclass
class MemoryRow:
    id: str
    kind: str
    text: str
    hash: str
    user_id: str | None
    agent_id: str | None
    run_id: str | None
    metadata: dict[str, Any] | None
    tags: list[str] | None
    state: str
    vector: np.ndarray | None
    source: list[int] | None
    created_at: str
    updated_at: str

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> MemoryRow:
        keys = row.keys()
        vec = row["vector"] if "vector" in keys else None
        return cls(
            id=row["id"], kind=row["kind"], text=row["text"], hash=row["hash"],
            user_id=row["user_id"], agent_id=row["agent_id"], run_id=row["run_id"],
            metadata=json.loads(row["metadata"]) if row["metadata"] else None,
            tags=json.loads(row["tags"]) if row["tags"] else None,
            state=row["state"],
            vector=np.frombuffer(vec, dtype=np.float32) if vec is not None else None,
            source=json.loads(row["source"]) if row["source"] else None,
            created_at=row["created_at"], updated_at=row["updated_at"],
        )


def _json(value: Any) -> str | None:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else None


def scope_sql(scope: Scope, prefix: str = "") -> tuple[str, list[Any]]:
    """WHERE fragment matching every set scope field."""
    clauses, params = [], []
    for field in ("user_id", "agent_id", "run_id"):
        value = getattr(scope, field)
        if value is not None:
            clauses.append(f"{prefix}{field} = ?")
            params.append(value)
    return (" AND ".join(clauses) or "1"), params


_COLUMNS_NO_VECTOR = ("id, kind, text, hash, user_id, agent_id, run_id, metadata, tags, state, source, "
                      "created_at, updated_at")


class SQLStore:
    def __init__(self, path: Path, lock_dir: Path) -> None:
        self.path = path
        self._migrate_lock = InterProcessLock(lock_dir / "migrate.lock")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    # -- connections ---------------------------------------------------------
    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._migrate_lock.hold():
                db = self.db
                db.execute("PRAGMA journal_mode=WAL")
                migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create data directory {self.path.parent}: {exc.strerror}") from None

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives power loss
            conn.execute("PRAGMA secure_delete=ON")  # deleted text is overwritten, not left in free pages
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @property
    def db(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = Database(self.conn, execute_plugins=False)
            self._local.db = db
        return db

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:  # pragma: no cover
                    pass
            self._all.clear()
        self._local = threading.local()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One atomic write unit. BEGIN IMMEDIATE takes the write lock up front, so two
        writers never deadlock on a lock upgrade; SQLite queues them for up to 30 s."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"the memory database stayed busy for {BUSY_TIMEOUT_S:.0f}s ({exc})") from None
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    # -- meta ----------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, value))

    # -- memories ------------------------------------------------------------
    @staticmethod
    def insert_memory(conn: sqlite3.Connection, row: MemoryRow) -> None:
        conn.execute(
            "INSERT INTO memories (id, kind, text, hash, user_id, agent_id, run_id, metadata, tags, state, "
            "vector, source, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (row.id, row.kind, row.text, row.hash, row.user_id, row.agent_id, row.run_id, _json(row.metadata),
             _json(row.tags), row.state, _vector_blob(row.vector), _json(row.source), row.created_at,
             row.updated_at),
        )
        SQLStore.enqueue_index(conn, [row.id])

    @staticmethod
    def update_memory_text(conn: sqlite3.Connection, memory_id: str, text: str, text_hash: str,
                           vector: np.ndarray | None, source: list[int] | None, now: str) -> None:
        conn.execute(
            "UPDATE memories SET text = ?, hash = ?, vector = ?, source = COALESCE(?, source), updated_at = ? "
            "WHERE id = ?",
            (text, text_hash, _vector_blob(vector), _json(source), now, memory_id),
        )
        SQLStore.enqueue_index(conn, [memory_id])

    @staticmethod
    def mark_deleted(conn: sqlite3.Connection, memory_id: str, now: str) -> None:
        conn.execute("UPDATE memories SET state = 'deleted', vector = NULL, updated_at = ? WHERE id = ?",
                     (now, memory_id))
        SQLStore.enqueue_index(conn, [memory_id])

    @staticmethod
    def add_history(conn: sqlite3.Connection, memory_id: str, event: str, old: str | None, new: str | None,
                    reason: str | None, actor: str | None, now: str | None = None) -> None:
        conn.execute(
            "INSERT INTO history (memory_id, event, old_value, new_value, reason, actor, created_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (memory_id, event, old, new, reason, actor, now or utcnow()),
        )

    def get_memory(self, memory_id: str, with_vector: bool = False) -> MemoryRow | None:
        cols = _COLUMNS_NO_VECTOR + (", vector" if with_vector else "")
        row = self.conn.execute(f"SELECT {cols} FROM memories WHERE id = ?", (memory_id,)).fetchone()
        return MemoryRow.from_sql(row) if row else None

    def get_memories(self, ids: Sequence[str], with_vector: bool = False) -> dict[str, MemoryRow]:
        out: dict[str, MemoryRow] = {}
        cols = _COLUMNS_NO_VECTOR + (", vector" if with_vector else "")
        for chunk in _chunks(list(dict.fromkeys(ids)), 500):
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {cols} FROM memories WHERE id IN ({marks})", chunk):
                out[row["id"]] = MemoryRow.from_sql(row)
        return out

    def find_active_by_hash(self, text_hash: str, scope: Scope, kind: str) -> MemoryRow | None:
        # INDEXED BY: without statistics SQLite prefers memories_scope (user, kind, state), which
        # scans every row of a user: 52 ms at 100k memories instead of 0.01 ms (bench/RESULTS.md)
        where, params = scope_sql(scope)
        row = self.conn.execute(
            f"SELECT {_COLUMNS_NO_VECTOR} FROM memories INDEXED BY memories_hash "
            f"WHERE hash = ? AND kind = ? AND state = 'active' "
            f"AND {where} LIMIT 1",
            [text_hash, kind, *params],
        ).fetchone()
        return MemoryRow.from_sql(row) if row else None

    def list_memories(self, scope: Scope, kind: str, limit: int, offset: int) -> tuple[list[MemoryRow], int]:
        where, params = scope_sql(scope)
        base = f"FROM memories WHERE kind = ? AND state = 'active' AND {where}"
        total = self.conn.execute(f"SELECT count(*) {base}", [kind, *params]).fetchone()[0]
        rows = self.conn.execute(
            f"SELECT {_COLUMNS_NO_VECTOR} {base} ORDER BY updated_at DESC, id LIMIT ? OFFSET ?",
            [kind, *params, limit, offset],
        ).fetchall()
        return [MemoryRow.from_sql(r) for r in rows], total

    def history(self, memory_id: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT event, old_value, new_value, reason, actor, created_at FROM history "
            "WHERE memory_id = ? ORDER BY id", (memory_id,)
        ).fetchall()

    def has_active(self) -> bool:
        """Whether any memory is active: the first row found, not a count (~60-110 ms at 1M rows)."""
        return self.conn.execute("SELECT 1 FROM memories WHERE state = 'active' LIMIT 1").fetchone() is not None

    def count_active(self, kind: str | None = None) -> int:
        if kind is None:
            return self.conn.execute("SELECT count(*) FROM memories WHERE state = 'active'").fetchone()[0]
        return self.conn.execute("SELECT count(*) FROM memories WHERE state = 'active' AND kind = ?",
                                 (kind,)).fetchone()[0]

    def count_active_and_queued(self) -> tuple[int, int]:
        """Active rows and index outbox entries, read in one statement (one snapshot)."""
        active, queued = self.conn.execute("SELECT (SELECT count(*) FROM memories WHERE state = 'active'), "
                                           "(SELECT count(*) FROM index_queue)").fetchone()
        return active, queued

    def active_ids(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT id FROM memories WHERE state = 'active'")}

    def iter_active(self, batch: int = 2000) -> Iterator[list[MemoryRow]]:
        last = ""
        while True:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS_NO_VECTOR}, vector FROM memories WHERE state = 'active' AND id > ? "
                "ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            yield [MemoryRow.from_sql(r) for r in rows]
            last = rows[-1]["id"]

    @staticmethod
    def erase_scope(conn: sqlite3.Connection, scope: Scope, kinds: Iterable[str]) -> list[str]:
        """Delete rows, history and logged messages of a scope for good. Returns the memory ids."""
        where, params = scope_sql(scope)
        kinds = list(kinds)
        marks = ",".join("?" * len(kinds))
        ids = [r[0] for r in conn.execute(f"SELECT id FROM memories WHERE kind IN ({marks}) AND {where}",
                                          [*kinds, *params])]
        for chunk in _chunks(ids, 500):
            m = ",".join("?" * len(chunk))
            conn.execute(f"DELETE FROM history WHERE memory_id IN ({m})", chunk)
            conn.execute(f"DELETE FROM memories WHERE id IN ({m})", chunk)
            conn.executemany("INSERT INTO index_queue (memory_id) VALUES (?)", [(i,) for i in chunk])
        conn.execute(f"DELETE FROM messages WHERE {where}", params)
        return ids

    # -- index outbox --------------------------------------------------------
    @staticmethod
    def enqueue_index(conn: sqlite3.Connection, ids: Iterable[str]) -> None:
        conn.executemany("INSERT INTO index_queue (memory_id) VALUES (?)", [(i,) for i in ids])

    def pending_index(self, limit: int = 5000, after: int = 0, newest: bool = False) -> list[tuple[int, str]]:
        order = "DESC" if newest else ""
        return [(r[0], r[1]) for r in self.conn.execute(
            f"SELECT seq, memory_id FROM index_queue WHERE seq > ? ORDER BY seq {order} LIMIT ?", (after, limit))]

    def last_pending_seq(self) -> int:
        return self.conn.execute("SELECT coalesce(max(seq), 0) FROM index_queue").fetchone()[0]

    def pending_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM index_queue").fetchone()[0]

    def has_pending_index(self) -> bool:
        return self.conn.execute("SELECT 1 FROM index_queue LIMIT 1").fetchone() is not None

    def ack_index(self, seqs: Sequence[int]) -> None:
        with self.write() as conn:
            for chunk in _chunks(list(seqs), 500):
                conn.execute(f"DELETE FROM index_queue WHERE seq IN ({','.join('?' * len(chunk))})", chunk)

    def trim_changes(self, keep: int = KEEP_CHANGES, chunk: int = 50_000) -> int:
        """Drop all but the newest ``keep`` rows of the change log (`mcp_memory.store.matrix`
        reads it; a process further behind reloads), in short transactions. Returns rows dropped."""
        low, high = self.conn.execute("SELECT min(seq), max(seq) FROM memory_changes").fetchone()
        if low is None or high - low < keep:
            return 0
        cutoff, dropped = high - keep, 0
        while low <= cutoff:
            upto = min(cutoff, low + chunk)
            with self.write() as conn:
                dropped += conn.execute("DELETE FROM memory_changes WHERE seq <= ?", (upto,)).rowcount
            low = upto + 1
        return dropped

    # -- messages ------------------------------------------------------------
    @staticmethod
    def insert_messages(conn: sqlite3.Connection, messages: Sequence[dict[str, Any]], scope: Scope) -> list[int]:
        ids = []
        for m in messages:
            cur = conn.execute(
                "INSERT INTO messages (role, name, content, created_at, user_id, agent_id, run_id) "
                "VALUES (?,?,?,?,?,?,?)",
                (m["role"], m.get("name"), m["content"], m["created_at"], scope.user_id, scope.agent_id,
                 scope.run_id),
            )
            ids.append(int(cur.lastrowid))
        return ids

    def get_messages(self, ids: Sequence[int]) -> list[sqlite3.Row]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self.conn.execute(
            f"SELECT id, role, name, content, created_at, run_id FROM messages WHERE id IN ({marks}) ORDER BY id",
            list(ids),
        ).fetchall()

    def count(self, sql_where: str, params: Sequence[Any], table: str = "memories") -> int:
        return self.conn.execute(f"SELECT count(*) FROM {table} WHERE {sql_where}", list(params)).fetchone()[0]

    # -- maintenance -----------------------------------------------------------
    def vacuum(self) -> None:
        """Rebuild the file so no deleted text survives in free pages, the WAL or FTS shadow tables."""
        conn = self.conn
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _vector_blob(vector: np.ndarray | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
