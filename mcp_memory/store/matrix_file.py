"""A file copy of the vector matrix: a new process starts searching without reading every
vector from SQLite (~0.4 s per 100k rows, most of it holding the GIL that the lancedb import
needs at the same moment of start-up).

Derived data, like the matrix itself: written by a process that had to load from SQLite (a
temporary file renamed over the old one), read by the next one, then brought up to date from
SQLite's change log as every search does. A copy is used only if it fits the store: the same
dimensions, a change-log position SQLite still holds with the same row there, and, once the
changes since are applied, as many rows as SQLite holds active with a sample of its ids among
them; otherwise the matrix loads from SQLite as before. Erasing for good (`purge`, `forget`)
removes it, since it may still hold vectors of deleted memories.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcp_memory.store.idmap import IdMap, ids_of

if TYPE_CHECKING:
    from mcp_memory.store.matrix import VectorMatrix

log = logging.getLogger(__name__)

FILE = "vector-matrix.npz"
FORMAT = 1
SAMPLE = 32  # ids checked against SQLite after a load from the file


def path_in(data_dir: Path) -> Path:
    return data_dir / FILE


def remove(data_dir: Path) -> None:
    try:
        path_in(data_dir).unlink()
    except FileNotFoundError:
        pass


def snapshot(m: VectorMatrix) -> dict[str, Any] | None:
    """What `write` needs, copied from the matrix (the caller holds its lock: a few ms)."""
    if not m.ready:
        return None
    n = m._n
    row = m.sql.conn.execute("SELECT memory_id FROM memory_changes WHERE seq = ?", (m._seq,)).fetchone()
    values: list[str | None] = [None] * len(m._code)
    for value, code in m._code.items():
        values[code] = value
    return {"parts": [p[:n].copy() for p in m._parts], "s": m._s[:n].copy(),
            "codes": np.stack([c[:n] for c in m._codes]), "alive": m._alive[:n].copy(), "ids": m._idmap.frozen(n),
            "meta": {"format": FORMAT, "dim": m.dim, "bounds": list(m.bounds), "seq": m._seq, "count": m._count,
                     "seq_id": row[0] if row else None, "values": values}}


def write(snap: dict[str, Any], path: Path) -> bool:
    """Write a snapshot next to the database, atomically; False if it cannot be written."""
    ids = ids_of(*snap["ids"])
    text = "\n".join(i if i is not None else "" for i in ids)
    if text.count("\n") != max(len(ids) - 1, 0):  # an id with a line break: no copy (never seen)
        return False
    blob = np.frombuffer(text.encode(), np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=".matrix-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            parts = {f"part{i}": p for i, p in enumerate(snap["parts"])}
            np.savez(f, s=snap["s"], codes=snap["codes"], alive=snap["alive"], ids=blob,
                     meta=np.array(json.dumps(snap["meta"])), **parts)
        os.replace(tmp, path)
        return True
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(m: VectorMatrix, path: Path, conn: sqlite3.Connection) -> bool:
    """Fill the matrix from the file if it fits the store at the change-log position it was
    written at (the caller then applies the changes since and calls `verify`)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if (meta.get("format"), meta.get("dim"), meta.get("bounds")) != (FORMAT, m.dim, list(m.bounds)):
                return False
            seq, high = meta["seq"], conn.execute("SELECT max(seq) FROM memory_changes").fetchone()[0] or 0
            row = conn.execute("SELECT memory_id FROM memory_changes WHERE seq = ?", (seq,)).fetchone()
            if seq > high or (row is not None and row[0] != meta["seq_id"]) or meta["count"] > m.max_rows:
                return False
            parts = [z[f"part{i}"] for i in range(len(m.bounds) - 1)]
            s, codes, alive = z["s"], z["codes"], z["alive"]
            ids = z["ids"].tobytes().decode().split("\n") if len(s) else []
    except FileNotFoundError:
        return False
    except Exception as exc:  # torn or foreign file: load from SQLite instead
        log.info("vector matrix file %s not used: %s", path, exc)
        return False
    n = len(ids)
    if any(len(p) != n for p in parts) or not (len(s) == len(alive) == codes.shape[1] == n):
        return False
    from mcp_memory.store.matrix import headroom

    m._reset(n + headroom(n))
    for mine, p in zip(m._parts, parts):
        mine[:n] = p
    m._s[:n], m._alive[:n] = s, alive
    for f, c in enumerate(codes):
        m._codes[f][:n] = c
    if not alive.all():
        ids = [mid if live else None for mid, live in zip(ids, alive.tolist())]
    m._idmap = IdMap.build(ids, len(m._alive))
    m._free = np.flatnonzero(~alive).tolist()
    m._code = {value: code for code, value in enumerate(meta["values"])}
    m._n, m._count, m._seq = n, int(alive.sum()), seq
    return True


def verify(m: VectorMatrix, conn: sqlite3.Connection) -> bool:
    """After the changes since the file were applied: SQLite holds as many active rows, and a
    sample of the matrix's ids is among them."""
    if m._count != conn.execute("SELECT count(*) FROM memories WHERE state = 'active'").fetchone()[0]:
        return False
    step = max(1, m._n // SAMPLE)
    live = [mid for mid in map(m._idmap.id_of, range(0, m._n, step)) if mid is not None][:SAMPLE]
    if not live:
        return True
    found = conn.execute(f"SELECT count(*) FROM memories WHERE state = 'active' AND id IN ({','.join('?' * len(live))})",
                         live).fetchone()[0]
    return found == len(live)
