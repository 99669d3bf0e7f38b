"""Keeps the LanceDB index in step with SQLite through an outbox.

Every SQLite write that changes a memory also appends its id to ``index_queue`` in
the same transaction, and returns: the tool call does not wait for LanceDB. A worker
thread per process (`IndexSync.start`) then applies the queue to LanceDB under the
inter-process writer lock, reading each row's *current* state from SQLite (so replays
are idempotent and order does not matter), and removes what it applied. Bursts of
writes coalesce into one LanceDB version. A crash anywhere leaves the queue for the
next drain; searches meanwhile score queued rows straight from SQLite
(`mcp_memory.search`), so nothing acknowledged is ever invisible.

Rows whose vector could not be computed (embedding endpoint down) are stored with no
vector; the worker embeds them when the endpoint answers again, indexing them for
full-text search in the meantime.

Compaction (merging small fragments, folding new rows into indices, dropping old
versions) runs in the same worker, so version and file counts stay bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import numpy as np

from mcp_memory.errors import MemoryServiceError, StoreError
from mcp_memory.store import messages as msgsql
from mcp_memory.store.lock import InterProcessLock
from mcp_memory.store.sql import MemoryRow, SQLStore
from mcp_memory.store.vectors import VectorIndex

log = logging.getLogger(__name__)

BATCH = 2000
POLL_SECONDS = 1.0               # also picks up work left by other (or crashed) processes
COMPACT_EVERY_WRITES = 50        # LanceDB versions between compactions during a burst
KEEP_VERSIONS_FOR = timedelta(seconds=3)  # readers check for the latest version on every query
FRAGMENTS_AT_START = 8           # more data files than this at start: compact first (3x slower searches seen)
COMPACT_WHEN_IDLE_FOR = 6.0      # after a burst, once quiet: fold everything and drop old versions
QUIET_SECONDS = 0.02             # after a write, the worker waits until no write came for this long
DEFER_MAX_SECONDS = 1.0          # ... but not longer than this after the first (searches apply it at once)
MESSAGE_BATCH = 512              # logged messages embedded per write

Embed = Callable[[Sequence[str]], np.ndarray]


class IndexSync:
    def __init__(self, sql: SQLStore, index: VectorIndex, lock: InterProcessLock, embed: Embed | None = None) -> None:
        self.sql = sql
        self.index = index
        self.lock = lock
        self.embed = embed
        self._writes = 0
        self._last_write = 0.0
        self._last_compact = 0.0
        self._deferred: dict[str, str] = {}  # id -> text hash indexed without a vector, awaiting embedding
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._ready = threading.Event()
        self._startup_error: str | None = None
        self._thread: threading.Thread | None = None

    # -- start-up and the worker --------------------------------------------------------
    def startup(self) -> None:
        """Open the index, apply what a crashed or stopped process left in the outbox, repair
        any drift from SQLite, then start the worker. Searches wait for this (`wait_ready`)."""
        try:
            self.index.open()
            self.drain()
            if drifted(*self.sql.count_active_and_queued(), self.index.count()):
                self.reconcile()
            if self.index.fragment_count() > FRAGMENTS_AT_START:
                # earlier processes stopped before folding their last writes (a client that closes
                # the server right after some adds): every search reads every small fragment
                self._writes = COMPACT_EVERY_WRITES  # the worker compacts on its first round
            self.start()
        except Exception as exc:
            self._startup_error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._ready.set()

    def wait_ready(self, timeout: float = 120.0) -> None:
        if not self._ready.wait(timeout):
            raise StoreError(f"the search index was not ready within {timeout:.0f}s")
        if self._startup_error:
            raise StoreError(f"the search index could not be opened ({self._startup_error}); "
                             "`mcp-memory reindex` rebuilds it from the database")

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and not self._startup_error

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mcp-memory-index", daemon=True)
            self._thread.start()

    def notify(self) -> None:
        """Tell the worker there is new work (call after a committed write). Before the worker
        starts, nothing to do: it drains the whole outbox when it starts."""
        if self._thread is not None:
            self._idle.clear()
            self._wake.set()

    def stop(self, flush: bool = True, timeout: float = 1.5) -> None:
        """Stop the worker and apply what is left, within about ``timeout`` seconds (clients
        give a server ~2 s to exit). What does not fit stays in the outbox for the next process."""
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=timeout / 2)
            self._thread = None
        if flush:
            try:
                self.drain(wait=True, timeout=timeout / 2)
            except Exception:  # the next process to start will finish the job
                log.info("left index work in the outbox at shutdown", exc_info=True)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until this process's worker has applied everything it was told about."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._wake.wait(POLL_SECONDS):
                self._wake.clear()
                self._settle()
            if self._stop.is_set():
                break
            try:
                self.drain(wait=True)
                self._maybe_compact()
                self.embed_messages()
            except Exception:
                log.exception("updating the search index failed; will retry")
                self._stop.wait(1.0)
            finally:
                if not self._wake.is_set():
                    self._idle.set()

    def _settle(self) -> None:
        """After a write, wait for the writes that follow it: until none came for
        ``QUIET_SECONDS``, at most ``DEFER_MAX_SECONDS`` in all. A LanceDB write keeps both cores
        busy for ~20 ms; during a burst of tool calls it would delay them (adds over MCP at 10k
        rows: ~7 ms instead of ~5 ms, bench/RESULTS.md), so the burst's rows go in one write after
        it. Searches meanwhile apply what is queued themselves (`mcp_memory.search`)."""
        until = time.monotonic() + DEFER_MAX_SECONDS
        while not self._stop.is_set():
            left = until - time.monotonic()
            if left <= 0 or not self._wake.wait(min(QUIET_SECONDS, left)):
                return
            self._wake.clear()

    # -- applying the outbox ---------------------------------------------------------------
    def drain(self, wait: bool = True, timeout: float = 60.0, upto: int | None = None) -> int:
        """Apply pending index work up to outbox position ``upto`` (default: what is queued now;
        not what is queued meanwhile, or a drain during a stream of writes would follow it, one
        small LanceDB version for every few rows). With ``wait=False`` return at once if another
        process or thread is applying it already (it will finish the job)."""
        if not self.sql.has_pending_index():
            return 0
        if upto is None:
            upto = self.sql.last_pending_seq()
        self.index.wait_open()  # never hold the writer lock while the index is still opening
        if not self.lock.acquire(timeout if wait else 0.0):
            if wait:
                raise StoreError("timed out waiting for the search index writer lock")
            return 0
        try:
            return self._drain_locked(upto)
        finally:
            self.lock.release()

    def _drain_locked(self, upto: int) -> int:
        applied, seen_seq = 0, 0
        while True:
            pending = [(seq, mid) for seq, mid in self.sql.pending_index(BATCH, after=seen_seq)
                       if seq <= upto]
            if not pending:
                return applied
            seen_seq = pending[-1][0]
            ids = list(dict.fromkeys(mid for _, mid in pending))
            rows = self.sql.get_memories(ids, with_vector=True)
            missing_vec = [r for r in rows.values() if r.state == "active" and r.vector is None]
            unembedded = self._embed_missing(missing_vec)
            upserts, deletes = [], []
            for mid in ids:
                r = rows.get(mid)
                if r is None or r.state != "active":
                    deletes.append(mid)
                elif r.id in unembedded and self._deferred.get(r.id) == r.hash:
                    continue  # already searchable by text; waiting for the embedder
                else:
                    upserts.append(_index_row(r, self.index.dim))
            if deletes:
                self.index.delete(deletes)
                self._writes += 1
            if upserts:
                self.index.upsert(upserts)
                self._writes += 1
            if deletes or upserts:
                self._last_write = time.monotonic()
            for r in missing_vec:
                if r.id in unembedded:
                    self._deferred[r.id] = r.hash
                else:
                    self._deferred.pop(r.id, None)
            done = [seq for seq, mid in pending if mid not in unembedded]
            if done:
                self.sql.ack_index(done)
            applied += len(done)

    def _embed_missing(self, rows: list[MemoryRow]) -> set[str]:
        """Embed rows stored without a vector; return the ids still without one."""
        if not rows:
            return set()
        if self.embed is None:
            return {r.id for r in rows}
        try:  # a failing endpoint fails fast here: the embedder backs off by itself
            vectors = self.embed([r.text for r in rows])
        except MemoryServiceError as exc:
            log.info("embedding %d stored memories failed (%s); will retry", len(rows), exc)
            return {r.id for r in rows}
        with self.sql.write() as conn:
            for r, v in zip(rows, vectors):
                # only if the text is still the one embedded
                conn.execute("UPDATE memories SET vector = ? WHERE id = ? AND hash = ? AND vector IS NULL",
                             (np.asarray(v, dtype=np.float32).tobytes(), r.id, r.hash))
        for r, v in zip(rows, vectors):
            r.vector = np.asarray(v, dtype=np.float32)
        return set()

    def embed_messages(self) -> int:
        """Give logged messages their vectors (recall ranks by meaning too). Off the request path,
        so logging never waits for an embedding endpoint; no lock: the update only fills empty
        vectors, so two processes doing the same batch at once is merely wasted work."""
        if self.embed is None:
            return 0
        done = 0
        while not self._stop.is_set():
            rows = msgsql.unembedded(self.sql.conn, MESSAGE_BATCH)
            if not rows:
                break
            try:
                vectors = self.embed([msgsql.message_text(r["name"], r["content"], r["created_at"]) for r in rows])
            except MemoryServiceError as exc:
                log.info("embedding %d logged messages failed (%s); will retry", len(rows), exc)
                break
            with self.sql.write() as conn:
                msgsql.set_vectors(conn, zip((r["id"] for r in rows), vectors))
            done += len(rows)
            if len(rows) < MESSAGE_BATCH:
                break
        return done

    # -- maintenance ---------------------------------------------------------------------------
    def rebuild(self) -> int:
        """Drop the index and re-create it from every active row in SQLite."""
        with self.lock.hold():
            with self.sql.write() as conn:
                conn.execute("DELETE FROM index_queue")
            self.index.drop()
            self.index.ensure_table()
            n = 0
            for batch in self.sql.iter_active(BATCH):
                rows = [_index_row(r, self.index.dim) for r in batch]
                self.index.upsert(rows)
                n += len(rows)
                missing = [r.id for r in batch if r.vector is None]
                if missing:
                    with self.sql.write() as conn:
                        SQLStore.enqueue_index(conn, missing)
            self.index.compact(timedelta(0))
            return n

    def reconcile(self) -> tuple[int, int]:
        """Compare SQLite's active ids with the index's and queue every difference.
        Returns (missing from index, stale in index)."""
        with self.lock.hold():
            active = self.sql.active_ids()
            indexed = self.index.ids()
            missing, stale = active - indexed, indexed - active
            if missing or stale:
                with self.sql.write() as conn:
                    SQLStore.enqueue_index(conn, sorted(missing | stale))
        if missing or stale:
            log.warning("search index out of step with SQLite: %d missing, %d stale; repairing",
                        len(missing), len(stale))
            self.drain()
        return len(missing), len(stale)

    def compact_now(self, older_than: timedelta = KEEP_VERSIONS_FOR) -> None:
        with self.lock.hold():
            self.index.compact(older_than)
            self._writes = 0
            self._last_compact = time.monotonic()
        self.sql.trim_changes()

    def _maybe_compact(self) -> None:
        now = time.monotonic()
        # versions written shortly before the last compaction survived it: fold them once quiet
        leftovers = self._last_write > self._last_compact - KEEP_VERSIONS_FOR.total_seconds()
        quiet = now - self._last_write >= COMPACT_WHEN_IDLE_FOR
        if self._writes >= COMPACT_EVERY_WRITES or (leftovers and quiet and self._last_write):
            self.compact_now()


def drifted(active: int, queued: int, indexed: int) -> bool:
    """Whether the index may have drifted from SQLite (``active`` rows and ``queued`` outbox
    entries read in one snapshot, then ``indexed`` rows counted): each queued entry can account
    for one row of difference (a write not applied yet, such as the adds a client sends while the
    server is still opening its store), so only a larger gap needs the full comparison of ids."""
    return abs(active - indexed) > queued


def _index_row(r: MemoryRow, dim: int) -> dict[str, object]:
    vector = r.vector if r.vector is not None else np.zeros(dim, dtype=np.float32)
    return {"id": r.id, "kind": r.kind, "user_id": r.user_id, "agent_id": r.agent_id, "run_id": r.run_id,
            "text": r.text, "vector": vector}
