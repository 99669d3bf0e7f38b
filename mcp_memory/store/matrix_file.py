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

The file is a JSON header (the matrix's metadata, and where each array lies) followed by the
arrays' raw bytes, each at a 64-byte boundary. Reading it is a read straight into each of the
matrix's arrays, and the id map is rebuilt from the stored array of ids without making a Python
string of each (`IdMap.from_array`): at 1M rows, 0.3 s instead of 1.5 s for format 1 (an .npz
whose ids were one text), and the reads release the GIL that start-up's imports need. The rows'
sign bits (`mcp_memory.store.signs`) were added without a new format number: a file without them
is used, the bits are derived, and the file is written again.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from mcp_memory.store.idmap import IdMap

if TYPE_CHECKING:
    from mcp_memory.store.matrix import VectorMatrix

log = logging.getLogger(__name__)

FILE = "vector-matrix.bin"
LEGACY_FILE = "vector-matrix.npz"  # format 1 (an .npz whose ids were text): removed when a new file is written
FORMAT = 2
MAGIC = b"mcp-memory vector matrix\n"
ALIGN = 64
SAMPLE = 32  # ids checked against SQLite after a load from the file


def path_in(data_dir: Path) -> Path:
    return data_dir / FILE


def remove(data_dir: Path) -> None:
    for name in (FILE, LEGACY_FILE):
        (data_dir / name).unlink(missing_ok=True)


def snapshot(m: VectorMatrix) -> dict[str, Any] | None:
    """What `write` needs, copied from the matrix (the caller holds its lock: a few ms)."""
    if not m.ready:
        return None
    n = m._n
    row = m.sql.conn.execute("SELECT memory_id FROM memory_changes WHERE seq = ?", (m._seq,)).fetchone()
    values: list[str | None] = [None] * len(m._code)
    for value, code in m._code.items():
        values[code] = value
    return {"parts": [p[:n].copy() for p in m._parts], "s": m._s[:n].copy(), "signs": m._signs[:, :n].copy(),
            "codes": np.stack([c[:n] for c in m._codes]), "alive": m._alive[:n].copy(), "ids": m._idmap.frozen(n),
            "meta": {"format": FORMAT, "dim": m.dim, "bounds": list(m.bounds), "seq": m._seq, "count": m._count,
                     "seq_id": row[0] if row else None, "values": values}}


def write(snap: dict[str, Any], path: Path) -> bool:
    """Write a snapshot next to the database, atomically; False if it cannot be written."""
    ids, odd = snap["ids"]
    arrays = {**{f"part{i}": p for i, p in enumerate(snap["parts"])}, "s": snap["s"], "signs": snap["signs"],
              "codes": snap["codes"], "alive": snap["alive"], "ids": ids}
    layout, at = {}, 0
    for name, a in arrays.items():
        layout[name] = [a.dtype.str, list(a.shape), at]
        at = _aligned(at + a.nbytes)
    header = json.dumps({"meta": snap["meta"], "arrays": layout, "odd": {str(k): v for k, v in odd.items()}}).encode()
    fd, tmp = tempfile.mkstemp(prefix=".matrix-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            base = _aligned(f.tell())
            for name, a in arrays.items():
                f.seek(base + layout[name][2])
                f.write(_bytes(np.ascontiguousarray(a)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    (path.parent / LEGACY_FILE).unlink(missing_ok=True)  # format 1's file, never read again
    return True


def read(m: VectorMatrix, path: Path, conn: sqlite3.Connection) -> bool:
    """Fill the matrix from the file if it fits the store at the change-log position it was
    written at (the caller then applies the changes since and calls `verify`). Arrays are read
    straight into the matrix's own (no copy, and the reads release the GIL)."""
    try:
        with open(path, "rb", buffering=0) as f:
            if f.read(len(MAGIC)) != MAGIC:
                return False
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
            meta, layout = header["meta"], header["arrays"]
            if (meta.get("format"), meta.get("dim"), meta.get("bounds")) != (FORMAT, m.dim, list(m.bounds)):
                return False
            seq, high = meta["seq"], conn.execute("SELECT max(seq) FROM memory_changes").fetchone()[0] or 0
            row = conn.execute("SELECT memory_id FROM memory_changes WHERE seq = ?", (seq,)).fetchone()
            if seq > high or (row is not None and row[0] != meta["seq_id"]) or meta["count"] > m.max_rows:
                return False
            return _fill(m, f, _aligned(f.tell()), meta, layout, {int(k): v for k, v in header["odd"].items()})
    except FileNotFoundError:
        return False
    except Exception as exc:  # torn or foreign file: load from SQLite instead
        log.info("vector matrix file %s not used: %s", path, exc)
        return False


def _fill(m: VectorMatrix, f: BinaryIO, base: int, meta: dict[str, Any], layout: dict[str, Any],
          odd: dict[int, str]) -> bool:
    from mcp_memory.store.matrix import headroom

    n = layout["s"][1][0]
    cap = n + headroom(n)
    m._reset(cap)
    ids = np.zeros(cap, np.dtype(layout["ids"][0]))
    if ids.dtype.kind != "S":
        return False
    targets = {**{f"part{i}": p[:n] for i, p in enumerate(m._parts)}, "s": m._s[:n], "alive": m._alive[:n],
               "ids": ids[:n]}
    for name, target in targets.items():
        _read_into(f, base, layout[name], target)
    if "signs" in layout:  # one word of every row at a time: the matrix's rows of words are contiguous
        dtype, shape, at = layout["signs"]
        if list(shape) != [len(m._signs), n]:
            raise ValueError(f"the sign bits are {shape}, expected {[len(m._signs), n]}")
        for w, target in enumerate(m._signs):
            _read_into(f, base, [dtype, [n], at + w * n * target.itemsize], target[:n])
    else:  # a file written before they were kept: derived from the rows (~0.3 s at 1M), and written next time
        m._sign_rows(n)
        m._file_outdated = True
    codes = np.empty((len(m._codes), n), m._codes[0].dtype)
    _read_into(f, base, layout["codes"], codes)
    for mine, c in zip(m._codes, codes):
        mine[:n] = c
    alive = m._alive[:n]
    if not alive.all():  # a free slot holds no id
        ids[:n][~alive] = b""
        odd = {slot: mid for slot, mid in odd.items() if alive[slot]}
    m._idmap = IdMap.from_array(ids, n, odd)
    m._free = np.flatnonzero(~alive).tolist()
    m._code = {value: code for code, value in enumerate(meta["values"])}
    m._n, m._count, m._seq = n, int(alive.sum()), meta["seq"]
    return True


def _read_into(f: BinaryIO, base: int, spec: list[Any], target: np.ndarray) -> None:
    dtype, shape, at = spec
    if np.dtype(dtype) != target.dtype or tuple(shape) != target.shape:
        raise ValueError(f"an array is {dtype} {shape}, expected {target.dtype.str} {list(target.shape)}")
    assert target.flags.c_contiguous  # read in place, not into a copy
    f.seek(base + at)
    view, got = _bytes(target), 0
    while got < len(view):  # one read returns at most ~2 GB, and may return less
        more = f.readinto(view[got:])
        if not more:
            raise ValueError(f"the file ends early ({got} of {len(view)} bytes)")
        got += more


def _bytes(a: np.ndarray) -> memoryview:
    return memoryview(a.reshape(-1).view(np.uint8))


def _aligned(at: int) -> int:
    return -(-at // ALIGN) * ALIGN


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
