"""An in-memory matrix of every active memory's vector: exact vector search in a few ms.

LanceDB's flat vector search with a scope prefilter took ~57 ms at 100k rows; one
matrix-vector product over the same rows takes a few ms (bench/RESULTS.md, prototypes). The
matrix is derived data, like the LanceDB index: loaded from SQLite, then kept current from
SQLite's change log (`memory_changes`, filled by triggers on `memories`, so no write path can
miss it). Every search first applies what changed since the previous one (one indexed query
when nothing did), so a write by any process is seen by the next search in every process.

Vectors are kept as int8 with one float32 scale per row (the row's largest component maps to
127): a quarter of float32's memory, and cosines within 0.003 of the float32 ones (p99 0.001, and
the same top 10 for 99% of queries, at 100k rows; tests/test_matrix.py). Scans convert a block of rows at
a time back to float32 and multiply there, as fast as a float32 scan.

Beyond ``COARSE_FROM`` rows the scan is two-stage: the first half of every vector (WordLlama
and OpenAI's text-embedding-3 are trained so that a prefix is itself an embedding) picks at least
the ``COARSE_KEEP`` best rows, which are then scored on the whole vector: half the work, and the
same top 10 as the one-stage scan for 99.9% of queries at 100k rows (top 40: 99.3%). Beyond
``SIGNS_FROM`` rows a first stage keeps the ``SIGNS_SHARE`` of rows sharing the most sign bits with
the query (`mcp_memory.store.signs`, 32 bytes a row): at 1M rows ~11 ms against ~26 ms for the two
stages alone, 99.98% of the exact 100 nearest found (bench/scans.py). Several query vectors share one pass over the rows
(`nearest_many`: the statements of one add) where the first stage is a product.
The add path's duplicate checks look for close rows only and scan ``quick``: from ``QUICK_FROM``
rows the ``QUICK_SIGNS_KEEP`` rows sharing the most sign bits with the statement are scored on the
first half of their vector, and the ``QUICK_KEEP`` best of those on all of it.

It costs ``row_bytes(dim)`` per row (~350 bytes with WordLlama's 256 dimensions, the row's id
included); beyond ``max_rows`` active rows it is not kept and search uses LanceDB alone
(`mcp_memory.search`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcp_memory.models import Scope
from mcp_memory.store import matrix_file, signs
from mcp_memory.store.idmap import IdMap
from mcp_memory.store.sql import SQLStore

log = logging.getLogger(__name__)

CHANGES_BATCH = 20_000   # more changes than this since the previous search: reload everything
COARSE_FROM = 20_000     # rows in scope from which the scan is two-stage
COARSE_KEEP = 1000       # rows the first stage keeps (at least 25 x k)
SIGNS_FROM = 50_000      # rows in scope from which a search's first stage is on the sign bits
SIGNS_SHARE = 0.02       # ... and keeps this share of them (at least 4 x the next stage's)
QUICK_FROM = 4000        # rows in scope from which a quick scan starts from the sign bits
QUICK_SIGNS_KEEP = 1000  # rows the sign bits keep in a quick scan (at least 5 x the next stage's)
QUICK_KEEP = 200         # rows the first half of the vectors keeps in a quick scan (at least 12 x k)
LOAD_BATCH = 5000
SCAN_BYTES = 2 << 20     # float32 converted at a time: stays in cache (8192 rows of 64 dimensions)
FILE_MIN_ROWS = 20_000   # smaller stores load from SQLite in well under 0.1 s: no file copy
FILE_STALE_AFTER = 5000  # changes applied on top of the file copy before it is written again
ID_BYTES = 45            # an id in the id map (`mcp_memory.store.idmap`): 32 bytes, its hash, its slot
_FIELDS = ("kind", "user_id", "agent_id", "run_id")


@dataclass
class Nearest:
    cosines: dict[str, float]  # id -> cosine of the k nearest rows in scope, best first
    in_scope: int              # rows the scope holds
    total: int                 # rows in the matrix


class VectorMatrix:
    def __init__(self, sql: SQLStore, dim: int, max_rows: int, *, coarse_from: int = COARSE_FROM,
                 coarse_keep: int = COARSE_KEEP, signs_from: int = SIGNS_FROM, quick_from: int = QUICK_FROM,
                 file: Path | None = None, file_min_rows: int = FILE_MIN_ROWS) -> None:
        self.sql = sql
        self.file = file  # a copy of the matrix to start from (`mcp_memory.store.matrix_file`)
        self.file_min_rows = file_min_rows
        self.source = ""  # where the last load came from: "file" or "sqlite"
        self._replayed = 0  # changes applied on top of the file copy
        self._file_outdated = False  # the file copy lacked something this version keeps (sign bits)
        self.dim = dim
        self.coarse_from = coarse_from
        self.coarse_keep = coarse_keep
        self.signs_from = signs_from
        self.quick_from = quick_from
        # the vectors are kept in three parts, each contiguous: the first quarter of the dimensions,
        # the second quarter (with the first: the half that staged scans read first), the second
        # half; a short vector is kept whole. (The quarters are a layout of the file copy too.)
        self.bounds = (0, dim // 4, dim // 2, dim) if dim >= 64 else (0, dim)
        self.max_rows = max_rows
        self._mu = threading.Lock()
        self._loaded = False
        self._done = threading.Event()  # load() finished, loaded or not
        self._too_big = False
        self._reset(0)

    @staticmethod
    def row_bytes(dim: int) -> int:
        """Memory one row takes: its int8 vector, sign bits, scale, flags and codes, and its id."""
        return dim + 8 * signs.words(dim) + 4 + 1 + 4 * len(_FIELDS) + ID_BYTES

    def _reset(self, capacity: int) -> None:
        self._seq = 0
        self._n = 0  # slots used, alive or free
        self._count = 0
        b = self.bounds
        self._parts = [np.zeros((capacity, hi - lo), np.int8) for lo, hi in zip(b, b[1:])]
        self._s = np.zeros(capacity, np.float32)  # each row's scale: vector ~= scale * int8 row
        self._signs = np.zeros((signs.words(self.dim), capacity), np.uint64)  # each row's sign bits
        self._buf = np.empty(SCAN_BYTES // 4, np.float32)
        self._alive = np.zeros(capacity, bool)
        self._codes = [np.zeros(capacity, np.int32) for _ in _FIELDS]
        self._idmap = IdMap(capacity)  # slot <-> id
        self._free: list[int] = []
        self._code: dict[str | None, int] = {None: 0}

    @property
    def ready(self) -> bool:
        return self._loaded and not self._too_big

    @property
    def rows(self) -> int:
        return self._count

    # -- loading and keeping current ----------------------------------------------------------
    def load(self) -> None:
        """Read every active row from the file copy and the changes since, else from SQLite
        (~0.4 s per 100k rows); searches wait for it (`wait_loaded`)."""
        try:
            with self._mu:
                if not self._load_file():
                    self._load_locked()
        finally:
            self._done.set()

    def _load_file(self) -> bool:
        if self.file is None:
            return False
        conn = self.sql.conn
        with _snapshot(conn):  # the position read and the checks agree
            ok = matrix_file.read(self, self.file, conn)
        if not ok:
            return False
        self._too_big, self._loaded, self.source = False, True, "file"
        start = self._seq
        self._refresh_locked()  # the changes since it was written (or a reload if the log moved on)
        if self.source == "file" and not self._too_big:
            self._replayed = self._seq - start
            if not matrix_file.verify(self, conn):
                log.info("the vector matrix file does not match the database; loading from SQLite")
                self._load_locked()
        return True

    @property
    def needs_saving(self) -> bool:
        """Whether a file copy would spare the next process a load from SQLite."""
        if self.file is None or not self.ready or self._count < self.file_min_rows:
            return False
        return self.source == "sqlite" or self._replayed > FILE_STALE_AFTER or self._file_outdated

    def save(self) -> bool:
        """Write the file copy (current as of every change committed so far)."""
        if self.file is None:
            return False
        with self._mu:
            if self.ready:
                self._refresh_locked()
            snap = matrix_file.snapshot(self)
            if snap is not None:
                self.source, self._replayed, self._file_outdated = "file", 0, False
        return snap is not None and matrix_file.write(snap, self.file)

    @property
    def load_finished(self) -> bool:
        """`load` has finished, loaded or not."""
        return self._done.is_set()

    def wait_loaded(self, timeout: float) -> bool:
        """Wait for `load` to finish; whether the matrix can serve searches."""
        self._done.wait(timeout)
        return self.ready

    def _load_locked(self) -> None:
        conn = self.sql.conn
        with _snapshot(conn):  # the rows and the change-log position agree
            seq = conn.execute("SELECT coalesce(max(seq), 0) FROM memory_changes").fetchone()[0]
            n = conn.execute("SELECT count(*) FROM memories WHERE state = 'active'").fetchone()[0]
            self._reset(0)
            self._too_big = n > self.max_rows
            if self._too_big:
                log.info("%d memories: more than the vector matrix keeps (%d); searching with LanceDB",
                         n, self.max_rows)
            else:
                self._fill(conn.execute("SELECT id, kind, user_id, agent_id, run_id, vector FROM memories "
                                        "WHERE state = 'active'"), n)
        self._seq = seq
        self._loaded = True
        self.source, self._replayed = "sqlite", 0

    def _fill(self, cursor: sqlite3.Cursor, n: int) -> None:
        """Stream the rows in batches into arrays sized once (no copy of the whole store in between)."""
        self._reset(n + headroom(n))
        width = self.dim * 4
        zero = bytes(width)
        i = 0
        combos: dict[tuple[str | None, ...], int] = {}  # (kind, user, agent, run) -> number: few
        combo = np.zeros(len(self._alive), np.int32)
        ids: list[str] = []
        while rows := cursor.fetchmany(LOAD_BATCH):
            rows = rows[:len(self._alive) - i]  # rows committed after the count cannot be in this snapshot
            m = len(rows)
            blob = b"".join(r[5] if r[5] is not None and len(r[5]) == width else zero for r in rows)
            self._set(slice(i, i + m), np.frombuffer(blob, np.float32).reshape(m, self.dim))
            combo[i:i + m] = [combos.setdefault(tuple(r[1:5]), len(combos)) for r in rows]
            ids.extend(r[0] for r in rows)
            i += m
        if combos:
            codes = np.array([[self._code_of(v) for v in c] for c in combos], np.int32)
            for f in range(len(_FIELDS)):
                self._codes[f][:i] = codes[combo[:i], f]
        self._alive[:i] = True
        self._idmap = IdMap.build(ids, len(self._alive))
        self._n = self._count = i

    def _set(self, rows: slice, vecs: np.ndarray) -> None:
        """Store float32 vectors as int8 rows and their scales."""
        peak = np.abs(vecs).max(axis=1)
        scale = peak / 127
        q = np.rint(vecs * np.divide(1.0, scale, out=np.zeros_like(scale), where=peak > 0)[:, None])
        for part, lo, hi in zip(self._parts, self.bounds, self.bounds[1:]):
            part[rows] = q[:, lo:hi]
        self._s[rows] = scale
        self._signs[:, rows] = signs.pack(q)

    def _sign_rows(self, n: int) -> None:
        """Sign bits of the first ``n`` rows from their int8 components (a file without them)."""
        for i in range(0, n, signs.BLOCK):
            j = min(n, i + signs.BLOCK)
            self._signs[:, i:j] = signs.pack(np.concatenate([p[i:j] for p in self._parts], axis=1))

    def _code_of(self, value: str | None) -> int:
        code = self._code.get(value)
        if code is None:
            code = self._code[value] = len(self._code)
        return code

    def _refresh_locked(self) -> None:
        conn = self.sql.conn
        changes = conn.execute("SELECT seq, memory_id FROM memory_changes WHERE seq > ? ORDER BY seq LIMIT ?",
                               (self._seq, CHANGES_BATCH + 1)).fetchall()
        if not changes:
            return
        if changes[0][0] != self._seq + 1 or len(changes) > CHANGES_BATCH:
            self._load_locked()  # the log was trimmed past us, or a bulk write: start over
            return
        ids = list(dict.fromkeys(c[1] for c in changes))
        rows: dict[str, sqlite3.Row] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for r in conn.execute("SELECT id, kind, user_id, agent_id, run_id, vector, state FROM memories "
                                  f"WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                rows[r[0]] = r
        for mid in ids:
            r = rows.get(mid)
            if r is None or r[6] != "active":
                self._remove(mid)
            else:
                self._put(r)
        self._seq = changes[-1][0]
        if self._count > self.max_rows:
            log.info("more memories than the vector matrix keeps (%d); searching with LanceDB", self.max_rows)
            self._reset(0)
            self._too_big = True

    def _put(self, r: sqlite3.Row) -> None:
        slot = self._idmap.slot(r[0])
        if slot is None:
            if self._free:
                slot = self._free.pop()
            else:
                if self._n == len(self._alive):
                    self._grow()
                slot = self._n
                self._n += 1
            self._idmap.put(r[0], slot)
            self._alive[slot] = True
            self._count += 1
        vec = r[5]
        if vec is not None and len(vec) == self.dim * 4:
            self._set(slice(slot, slot + 1), np.frombuffer(vec, np.float32).reshape(1, self.dim))
        else:
            self._clear(slot)
        for f in range(len(_FIELDS)):
            self._codes[f][slot] = self._code_of(r[1 + f])

    def _remove(self, mid: str) -> None:
        slot = self._idmap.remove(mid)
        if slot is None:
            return
        self._alive[slot] = False
        self._clear(slot)
        self._free.append(slot)
        self._count -= 1

    def _clear(self, slot: int) -> None:
        for part in self._parts:
            part[slot] = 0
        self._s[slot] = 0.0
        self._signs[:, slot] = 0

    def _grow(self) -> None:
        cap = len(self._alive) + headroom(len(self._alive))
        self._idmap.resize(cap)
        for i, part in enumerate(self._parts):
            bigger = np.zeros((cap, part.shape[1]), np.int8)
            bigger[:self._n] = part[:self._n]
            self._parts[i] = bigger
        self._s = np.concatenate([self._s, np.zeros(cap - len(self._s), np.float32)])
        self._signs = np.concatenate([self._signs, np.zeros((len(self._signs), cap - self._signs.shape[1]),
                                                            np.uint64)], axis=1)
        self._alive = np.concatenate([self._alive, np.zeros(cap - len(self._alive), bool)])
        self._codes = [np.concatenate([c, np.zeros(cap - len(c), np.int32)]) for c in self._codes]

    # -- queries -----------------------------------------------------------------------------
    def _wanted(self, scope: Scope, kinds: Sequence[str]) -> tuple[list[int], list[tuple[int, int]]] | None:
        """(kind codes, [(field, code)]) of a scope; None if no row can match."""
        kind_codes = [self._code[k] for k in kinds if k in self._code]
        if not kind_codes:
            return None
        fields = []
        for f, name in enumerate(_FIELDS[1:], start=1):
            value = getattr(scope, name)
            if value is not None:
                if value not in self._code:
                    return None
                fields.append((f, self._code[value]))
        return kind_codes, fields

    def counts(self, scope: Scope, kinds: Sequence[str]) -> tuple[int, int] | None:
        """(rows in scope, rows in the matrix) after applying every change committed so far;
        None if the matrix is not available."""
        if not self._loaded:
            return None
        with self._mu:
            if not self._too_big:
                self._refresh_locked()
            if self._too_big:
                return None
            mask = self._mask(scope, kinds)
            return (0 if mask is None else int(np.count_nonzero(mask))), self._count

    def _mask(self, scope: Scope, kinds: Sequence[str]) -> np.ndarray | None:
        n = self._n
        want = self._wanted(scope, kinds)
        if want is None or n == 0:
            return None
        kind_codes, fields = want
        kc = self._codes[0][:n]
        mask = self._alive[:n] & (kc == kind_codes[0] if len(kind_codes) == 1 else np.isin(kc, kind_codes))
        for f, code in fields:
            mask &= self._codes[f][:n] == code
        return mask

    def nearest(self, vector: np.ndarray | None, scope: Scope, kinds: Sequence[str], k: int, *,
                quick: bool = False) -> Nearest | None:
        """The k rows of the scope closest to ``vector`` (exact), after applying every change
        committed so far. None if the matrix is not available (still loading, or too big).
        ``quick``: from ``quick_from`` rows, a first stage on the rows' sign bits and fewer rows
        kept (the add path's duplicate checks: at 100k rows ~0.8 ms against ~3 ms for a search's
        scan, the same top 4 and every row at cosine >= 0.8 found, bench/scans.py)."""
        many = self.nearest_many(None if vector is None else [vector], scope, kinds, k, quick=quick)
        return None if many is None else Nearest(many[0][0], many[1], many[2])

    def nearest_many(self, vectors: Sequence[np.ndarray] | None, scope: Scope, kinds: Sequence[str],
                     k: int, *, quick: bool = False) -> tuple[list[dict[str, float]], int, int] | None:
        """`nearest` for several vectors at once, in one pass over the rows: ([id -> cosine of the
        k nearest, best first] per vector, rows in scope, rows in the matrix)."""
        if not self._loaded:
            return None
        with self._mu:
            if self._too_big:
                return None
            self._refresh_locked()
            if self._too_big:
                return None
            found: list[dict[str, float]] = [{} for _ in vectors or [None]]
            mask = self._mask(scope, kinds)
            if mask is None:
                return found, 0, self._count
            in_scope = int(np.count_nonzero(mask))
            if vectors is not None and len(vectors) and in_scope and k > 0:
                q = np.ascontiguousarray(np.stack(vectors, axis=1), dtype=np.float32)  # dim x vectors
                for cosines, (slots, scores) in zip(found, self._scan(q, mask, in_scope, k, quick)):
                    kk = min(k, len(slots))
                    top = np.argpartition(-scores, kk - 1)[:kk]
                    for p in top[np.argsort(-scores[top], kind="stable")]:
                        mid = self._idmap.id_of(int(slots[p]))
                        if mid is not None:
                            cosines[mid] = float(scores[p])
            return found, in_scope, self._count

    def _scan(self, q: np.ndarray, mask: np.ndarray, in_scope: int, k: int,
              quick: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """(slots, cosines) of the rows that can be among the k best of the scope, per column of
        ``q``; the first stage (the costly one) is one pass over the rows for every column."""
        n = len(mask)
        small = in_scope * 4 < n
        keep = max(QUICK_KEEP, 12 * k) if quick else max(self.coarse_keep, 25 * k)
        if quick:
            by_signs, signs_from = max(QUICK_SIGNS_KEEP, 5 * keep), self.quick_from
        else:
            by_signs, signs_from = max(int(in_scope * SIGNS_SHARE), 4 * keep), self.signs_from
        if in_scope >= signs_from and in_scope > 2 * by_signs and len(self._parts) >= 3:  # three stages
            some = np.flatnonzero(mask) if small else None
            return [self._by_signs(q[:, j:j + 1], mask, some, by_signs, keep) for j in range(q.shape[1])]
        slots = np.flatnonzero(mask) if small else np.arange(n)
        one_stage = in_scope < self.coarse_from or in_scope <= keep or len(self._parts) < 3
        scores = self._partial(slots if small else None, q, len(self._parts) if one_stage else 2, n)
        if not small:
            scores[~mask] = -np.inf
        out = []
        for j in range(q.shape[1]):
            col, qj = scores[:, j], q[:, j:j + 1]
            if one_stage:
                out.append((slots, col))
                continue
            mine = slots[_top(col, keep)]  # the first half of each vector picked `keep`
            out.append((mine, self._cosines(mine, qj)[:, 0]))
        return out

    def _by_signs(self, q: np.ndarray, mask: np.ndarray, slots: np.ndarray | None, by_signs: int,
                  keep: int) -> tuple[np.ndarray, np.ndarray]:
        """(slots, cosines) of the rows that can be close to ``q`` (one column): the ``by_signs``
        rows of the scope (``slots``, or every row in ``mask``) sharing the most sign bits with
        it, then the ``keep`` best of those on the first half of the vector."""
        same = signs.shared(self._signs, signs.pack(q.T), len(mask), slots, self._buf)
        if slots is None:
            same[~mask] = 0
        best = _top(same, by_signs)
        if len(best) > by_signs:  # counts of bits tie often: not many more rows than asked for
            best = best[np.argpartition(same[best], len(best) - by_signs)[len(best) - by_signs:]]
        if slots is None:
            mine = np.sort(best[mask[best]])  # in order: the reads of the rows that follow are cheaper
        else:
            mine = slots[np.sort(best)]
        if len(mine) > keep:
            mine = mine[_top(self._partial(mine, q, 2)[:, 0], keep)]
        return mine, self._cosines(mine, q)[:, 0]

    def _cosines(self, slots: np.ndarray, q: np.ndarray) -> np.ndarray:
        return self._partial(slots, q, len(self._parts))

    def _partial(self, slots: np.ndarray | None, q: np.ndarray, parts: int, n: int = 0) -> np.ndarray:
        """Scaled dot products (rows x columns of ``q``) over the first ``parts`` parts of the
        vectors: of ``slots``, or of the first ``n`` rows when ``slots`` is None."""
        out: np.ndarray | None = None
        for part, lo, hi in zip(self._parts[:parts], self.bounds, self.bounds[1:]):
            d = self._dot(part[:n] if slots is None else part[slots], q[lo:hi])
            out = d if out is None else out + d
        assert out is not None
        return out * (self._s[:n] if slots is None else self._s[slots])[:, None]

    def _dot(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """int8 rows @ float32 q (dimensions x columns), a block at a time through a float32
        buffer that stays in cache. BLAS: single-threaded in the server (`mcp_memory.process`)."""
        width = rows.shape[1]
        block = max(1, len(self._buf) // width)
        out = np.empty((len(rows), q.shape[1]), np.float32)
        for i in range(0, len(rows), block):
            part = rows[i:i + block]
            buf = self._buf[:len(part) * width].reshape(len(part), width)
            np.copyto(buf, part, casting="unsafe")
            np.dot(buf, q, out=out[i:i + len(part)])
        return out

    def score(self, ids: Iterable[str], vector: np.ndarray | None, scope: Scope,
              kinds: Sequence[str]) -> dict[str, float]:
        """Cosine (0.0 without a vector) of each of ``ids`` the matrix holds within the scope;
        ids outside it, or not active, are left out."""
        with self._mu:
            want = self._wanted(scope, kinds)
            if want is None:
                return {}
            kind_codes, fields = want
            out: dict[str, float] = {}
            q = None if vector is None else np.ascontiguousarray(vector, dtype=np.float32)
            found = self._idmap.slots(ids)
            for mid, slot in found.items():
                if int(self._codes[0][slot]) not in kind_codes:
                    continue
                if any(self._codes[f][slot] != code for f, code in fields):
                    continue
                out[mid] = 0.0
            if q is not None and out:
                slots = np.fromiter((found[m] for m in out), np.int64, len(out))
                out = dict(zip(out, self._cosines(slots, q[:, None])[:, 0].tolist()))
            return out


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction, unless the caller is already in one."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        yield
    finally:
        if own:
            conn.execute("COMMIT")


def headroom(n: int) -> int:
    """Free rows kept beyond ``n`` (adds fill them; the arrays grow by as many again when full)."""
    return max(1024, n // 32)


def _top(scores: np.ndarray, want: int) -> np.ndarray:
    """Positions of at least the ``want`` best finite scores (out-of-scope rows are -inf): those
    above a cut read off an evenly spaced sample (8k-64k scores), a fraction of the time of an
    exact partition from ~100k rows; the exact partition when the sample cannot tell."""
    n = len(scores)
    step = n // max(8192, min(65536, n // 16))
    if step > 1 and want < n // 2:
        expect = want / step  # sampled scores above the cut, on average
        extra = int(expect * (1 + 3 / np.sqrt(expect))) + 1  # three standard deviations of margin
        sample = scores[::step]
        if extra < len(sample):
            cut = np.partition(sample, len(sample) - extra)[len(sample) - extra]
            if np.isfinite(cut):
                found = np.flatnonzero(scores >= cut)
                if len(found) >= want:
                    return found
    return np.argpartition(scores, n - want)[n - want:]
