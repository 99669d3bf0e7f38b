"""Hybrid retrieval: vector and full-text candidates, fused, then checked against SQLite
(the authority on what is active and in scope).

Vector candidates come from the in-memory matrix (`mcp_memory.store.matrix`, exact, kept
current from SQLite) when it is loaded, else from LanceDB; full-text candidates from LanceDB.
When the scope holds most of the store, the full-text query runs without LanceDB's prefilter
(3 ms instead of 9 ms at 100k rows) and the matrix drops what is out of scope; if that leaves
too few, it runs again with the prefilter, so the result is the same either way.

Fusion is a weighted sum of the cosine similarity and the BM25 score scaled by the
best BM25 score of the candidate set. Rank fusion (RRF) throws the score gaps away,
which hurts when one signal (a small static embedder) is much weaker than the other.

Rows still waiting in the index outbox (written a moment ago, by this process or
another) are scored straight from SQLite and merged in, so a search never misses an
acknowledged write and never waits for the index writer. If the query cannot be
embedded (embedding endpoint down), the search runs on full text alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcp_memory import text as textlib
from mcp_memory.embeddings import Embedder
from mcp_memory.errors import StoreError
from mcp_memory.models import Scope
from mcp_memory.store.matrix import VectorMatrix
from mcp_memory.store.sql import MemoryRow, SQLStore
from mcp_memory.store.sync import IndexSync
from mcp_memory.store.vectors import VectorIndex, where_clause

log = logging.getLogger(__name__)

MIN_CANDIDATES = 100     # vector and full-text candidates each; with the matrix, extra ones cost little
CANDIDATES_PER_HIT = 4
DUPLICATE_CANDIDATES = 16  # vector_only (the add path): each one's words are compared in Python
W_VECTOR = 0.5
W_TEXT = 0.5
OVERLAY_MAX = 1000  # beyond this many queued rows, wait for the index instead of scoring them one by one
QUEUE_WAIT_SECONDS = 0.25
BACKLOG_WAIT_SECONDS = 5.0
UNFILTERED_SHARE = 0.25  # full text without the scope prefilter when the scope holds this share of rows
UNFILTERED_MAX = 1000    # ... and at most this many rows are fetched that way
MATRIX_WAIT_SECONDS = 30.0  # a search right after start-up waits for the matrix (~0.5 s per 100k rows)
FETCH_MARGIN = 10        # candidates read from SQLite beyond the limit (some may have changed meanwhile)


@dataclass
class Scored:
    row: MemoryRow
    score: float
    cosine: float


class Retriever:
    def __init__(self, sql: SQLStore, index: VectorIndex, sync: IndexSync, embedder: Embedder,
                 matrix: VectorMatrix | None = None) -> None:
        self.sql = sql
        self.index = index
        self.sync = sync
        self.embedder = embedder
        self.matrix = matrix
        self._executor: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def search(self, query: str, scope: Scope, *, kinds: Sequence[str] = ("fact",), limit: int = 10,
               filters: Mapping[str, Any] | None = None, threshold: float | None = None,
               vector: np.ndarray | None = None, text_only: bool = False,
               predicate: Callable[[MemoryRow], bool] | None = None, wait_index: bool = True,
               vector_only: bool = False) -> list[Scored]:
        """``wait_index=False``: score rows still queued for the index from SQLite at once instead of
        first giving the index writer a moment. ``vector_only``: candidates by meaning alone, their
        text scored by the share of query words they hold (the add path's duplicate checks)."""
        self.sync.wait_ready()
        qvec = None if text_only else (self.embedder.embed(query) if vector is None else vector)
        floor = DUPLICATE_CANDIDATES if vector_only else MIN_CANDIDATES
        k = max(limit * CANDIDATES_PER_HIT, floor) * (4 if filters or predicate else 1)
        where = where_clause(scope, kinds)
        matrix = self._matrix()
        # The matrix is current with SQLite, so candidates by meaning alone need no overlay of the
        # rows queued for LanceDB; otherwise the overlay is read first: what the index writer
        # applies meanwhile is then in the index.
        overlay = set() if vector_only and matrix is not None else self._queued(wait_index)
        cos, bm25, via_matrix = self._candidates(query, qvec, scope, kinds, where, k, vector_only, matrix)
        if vector_only and matrix is not None and not via_matrix:  # the store outgrew the matrix just now
            overlay = self._queued(wait_index)
            cos, bm25 = self._lance_candidates(query, qvec, where, k, vector_only)
        if not cos and not bm25 and not overlay:
            return []
        top_bm25 = max(bm25.values(), default=0.0) or 1.0
        if overlay or filters or predicate or vector_only:
            rows = self.sql.get_memories([*cos, *bm25, *overlay], with_vector=bool(overlay))
        else:
            rows = self._best_rows(cos, bm25, top_bm25, limit,
                                   lambda r: r.state == "active" and r.kind in kinds and _in_scope(r, scope))
        return self._rank(rows, query, qvec, cos, bm25, overlay, scope, kinds, limit, filters=filters,
                          threshold=threshold, predicate=predicate, vector_only=vector_only)

    def similar(self, queries: Sequence[str], vectors: Sequence[np.ndarray], scope: Scope, *, limit: int,
                kinds: Sequence[str] = ("fact",)) -> list[list[Scored]]:
        """`search(vector_only=True, wait_index=False)` for several queries with their vectors, in one
        pass over the matrix and one read of the rows (the add path's duplicate checks)."""
        self.sync.wait_ready()
        matrix = self._matrix()
        found = None if matrix is None else matrix.nearest_many(
            vectors, scope, kinds, max(limit * CANDIDATES_PER_HIT, DUPLICATE_CANDIDATES), quick=True)
        if found is None:
            return [self.search(q, scope, kinds=kinds, limit=limit, vector=v, wait_index=False, vector_only=True)
                    for q, v in zip(queries, vectors)]
        rows = self.sql.get_memories([m for cos in found[0] for m in cos])
        return [self._rank(rows, q, v, cos, {}, set(), scope, kinds, limit, vector_only=True)
                for q, v, cos in zip(queries, vectors, found[0])]

    def _rank(self, rows: Mapping[str, MemoryRow], query: str, qvec: np.ndarray | None, cos: dict[str, float],
              bm25: dict[str, float], overlay: set[str], scope: Scope, kinds: Sequence[str], limit: int, *,
              filters: Mapping[str, Any] | None = None, threshold: float | None = None,
              predicate: Callable[[MemoryRow], bool] | None = None, vector_only: bool = False) -> list[Scored]:
        """The fused scores of the candidates ``rows`` (those of ``cos``, ``bm25`` and ``overlay``
        among them) still active and in scope, best first."""
        top_bm25 = max(bm25.values(), default=0.0) or 1.0
        qstems = textlib.content_stems(query)
        out = []
        for mid in dict.fromkeys([*cos, *bm25, *overlay]):
            row = rows.get(mid)
            if row is None or row.state != "active" or row.kind not in kinds or not _in_scope(row, scope):
                continue
            if filters and not _matches(row.metadata or {}, filters):
                continue
            if predicate is not None and not predicate(row):
                continue
            if mid in overlay:  # the index may not hold this text yet: score it here
                c = float(np.dot(row.vector, qvec)) if row.vector is not None and qvec is not None else 0.0
                t = _overlap(qstems, row.text)
            elif vector_only:
                c, t = cos.get(mid, 0.0), _overlap(qstems, row.text)
            else:
                c, t = cos.get(mid, 0.0), bm25.get(mid, 0.0) / top_bm25
            score = W_VECTOR * max(c, 0.0) + W_TEXT * t
            if score <= 0 or (threshold is not None and score < threshold):
                continue
            out.append(Scored(row, round(score, 4), c))
        out.sort(key=lambda s: (s.score, s.row.updated_at), reverse=True)
        return out[:limit]

    def _best_rows(self, cos: dict[str, float], bm25: dict[str, float], top_bm25: float, limit: int,
                   valid: Callable[[MemoryRow], bool]) -> dict[str, MemoryRow]:
        """Rows of the candidates that can make the top ``limit`` (all those scoring at least the
        (limit + FETCH_MARGIN)-th best), and of the rest only if too few of those are still valid."""
        pre = {m: W_VECTOR * max(cos.get(m, 0.0), 0.0) + W_TEXT * bm25.get(m, 0.0) / top_bm25
               for m in dict.fromkeys([*cos, *bm25])}
        ranked = sorted(pre, key=pre.__getitem__, reverse=True)
        if len(ranked) <= limit + FETCH_MARGIN:
            return self.sql.get_memories(ranked)
        cut = pre[ranked[limit + FETCH_MARGIN - 1]] - 1e-4  # ties (rounded scores) included
        first = [m for m in ranked if pre[m] >= cut]
        rows = self.sql.get_memories(first)
        if len(first) < len(ranked) and sum(map(valid, rows.values())) < limit:
            rows.update(self.sql.get_memories(ranked[len(first):]))
        return rows

    def _matrix(self) -> VectorMatrix | None:
        """The vector matrix, once loaded; None if it is not kept (too big, or it failed to load)."""
        matrix = self.matrix
        if matrix is None or not matrix.wait_loaded(MATRIX_WAIT_SECONDS) or not matrix.ready:
            return None
        return matrix

    def _candidates(self, query: str, qvec: np.ndarray | None, scope: Scope, kinds: Sequence[str], where: str,
                    k: int, vector_only: bool, matrix: VectorMatrix | None
                    ) -> tuple[dict[str, float], dict[str, float], bool]:
        """(cosines, BM25 scores, whether the matrix answered)."""
        if matrix is None:
            return *self._lance_candidates(query, qvec, where, k, vector_only), False
        counts = None if vector_only else matrix.counts(scope, kinds)  # what the text query needs
        text = None
        if counts is not None and counts[0] and query.strip():  # the full-text query runs meanwhile
            share = counts[0] / max(counts[1], 1)
            text = self._pool().submit(self._retrying, lambda: self._text(query, scope, kinds, where, k, share))
        near = matrix.nearest(qvec, scope, kinds, k, quick=vector_only)
        bm25 = text.result() if text is not None else {}
        if near is None:  # the store outgrew the matrix just now
            return *self._lance_candidates(query, qvec, where, k, vector_only), False
        cos = dict(near.cosines)
        if qvec is not None and bm25:
            cos.update(matrix.score([m for m in bm25 if m not in cos], qvec, scope, kinds))
        return cos, bm25, True

    def close(self) -> None:
        """Let the full-text threads go (a search started meanwhile makes new ones)."""
        with self._pool_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._pool_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(2, thread_name_prefix="mcp-memory-search")
        return self._executor

    def _text(self, query: str, scope: Scope, kinds: Sequence[str], where: str, k: int,
              share: float) -> dict[str, float]:
        assert self.matrix is not None
        if share >= UNFILTERED_SHARE:
            fetch = min(int(k * 1.5 / share) + 1, UNFILTERED_MAX)
            hits = self.index.text_scores(query, None, fetch)
            keep = self.matrix.score([m for m, _ in hits], None, scope, kinds)
            found = [(m, s) for m, s in hits if m in keep]
            if len(found) >= k or len(hits) < fetch:  # the scope's best k, or all it has
                return dict(found[:k])
        return dict(self.index.text_scores(query, where, k))

    def _retrying(self, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
        try:
            return fn()
        except Exception:  # a version cleaned up under us: re-open on the latest and retry once
            log.debug("search index read failed; refreshing", exc_info=True)
            self.index.refresh()
            return fn()

    def _lance_candidates(self, query: str, qvec: np.ndarray | None, where: str, k: int,
                          vector_only: bool) -> tuple[dict[str, float], dict[str, float]]:
        cos: dict[str, float] = {}
        bm25: dict[str, float] = {}
        for attempt in range(2):
            try:
                if qvec is not None:
                    for mid, vec in self.index.vector_search(qvec, where, k):
                        cos[mid] = float(np.dot(vec, qvec))
                if vector_only:
                    break
                for mid, score, vec in self.index.text_search(query, where, k):
                    bm25[mid] = float(score)
                    if qvec is not None:
                        cos.setdefault(mid, float(np.dot(vec, qvec)))
                break
            except Exception:  # a version cleaned up under us: re-open on the latest and retry once
                if attempt:
                    raise
                log.debug("search index read failed; refreshing", exc_info=True)
                self.index.refresh()
                cos.clear()
                bm25.clear()
        return cos, bm25

    def _queued(self, wait: bool = True) -> set[str]:
        """Ids still in the outbox after giving the index writer a moment to apply them."""
        if not self.sql.has_pending_index():
            return set()
        if not wait:
            return {mid for _, mid in self.sql.pending_index(OVERLAY_MAX, newest=True)}
        try:  # usually the worker is mid-write: waiting briefly keeps ranking on one scale
            self.sync.drain(wait=True, timeout=QUEUE_WAIT_SECONDS)
        except StoreError:
            pass  # the writer is busy (compacting): score the queued rows here instead
        if self.sql.pending_count() > OVERLAY_MAX:  # a bulk write is being indexed: give it a moment
            try:
                self.sync.drain(wait=True, timeout=BACKLOG_WAIT_SECONDS)
            except StoreError:
                log.info("search proceeds while a large index backlog is applied")
        return {mid for _, mid in self.sql.pending_index(OVERLAY_MAX, newest=True)}


def _overlap(qstems: frozenset[str], text: str) -> float:
    """Share of the query's content words (their stems) in a text: a stand-in for scaled BM25."""
    if not qstems:
        return 0.0
    return len(qstems & textlib.content_stems(text)) / len(qstems)


def _in_scope(row: MemoryRow, scope: Scope) -> bool:
    return all(getattr(scope, f) is None or getattr(row, f) == getattr(scope, f)
               for f in ("user_id", "agent_id", "run_id"))


def _matches(metadata: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Equality on metadata keys; a list value means "any of"."""
    for key, want in filters.items():
        have = metadata.get(key)
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True
