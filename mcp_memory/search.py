"""Hybrid retrieval: vector and full-text candidates from LanceDB, fused, then checked
against SQLite (the authority on what is active and in scope).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcp_memory import text as textlib
from mcp_memory.embeddings import Embedder
from mcp_memory.errors import StoreError
from mcp_memory.models import Scope
from mcp_memory.store.sql import MemoryRow, SQLStore
from mcp_memory.store.sync import IndexSync
from mcp_memory.store.vectors import VectorIndex, where_clause

log = logging.getLogger(__name__)

W_VECTOR = 0.5
W_TEXT = 0.5
OVERLAY_MAX = 1000  # beyond this many queued rows, wait for the index instead of scoring them one by one
QUEUE_WAIT_SECONDS = 0.25
BACKLOG_WAIT_SECONDS = 5.0


@dataclass
class Scored:
    row: MemoryRow
    score: float
    cosine: float


class Retriever:
    def __init__(self, sql: SQLStore, index: VectorIndex, sync: IndexSync, embedder: Embedder) -> None:
        self.sql = sql
        self.index = index
        self.sync = sync
        self.embedder = embedder

    def search(self, query: str, scope: Scope, *, kinds: Sequence[str] = ("fact",), limit: int = 10,
               filters: Mapping[str, Any] | None = None, threshold: float | None = None,
               vector: np.ndarray | None = None, text_only: bool = False,
               predicate: Callable[[MemoryRow], bool] | None = None) -> list[Scored]:
        self.sync.wait_ready()
        qvec = None if text_only else (self.embedder.embed(query) if vector is None else vector)
        k = max(limit * 4, 40) * (4 if filters or predicate else 1)
        where = where_clause(scope, kinds)
        overlay = self._queued()  # first: what it applies meanwhile is then in the index
        cos, bm25 = self._candidates(query, qvec, where, k)
        if not cos and not bm25 and not overlay:
            return []
        top_bm25 = max(bm25.values(), default=0.0) or 1.0
        qtokens = textlib.content_tokens(query)
        rows = self.sql.get_memories([*cos, *bm25, *overlay], with_vector=bool(overlay))
        out = []
        for mid, row in rows.items():
            if row.state != "active" or row.kind not in kinds or not _in_scope(row, scope):
                continue
            if filters and not _matches(row.metadata or {}, filters):
                continue
            if predicate is not None and not predicate(row):
                continue
            if mid in overlay:  # the index may not hold this text yet: score it here
                c = float(np.dot(row.vector, qvec)) if row.vector is not None and qvec is not None else 0.0
                t = _overlap(qtokens, row.text)
            else:
                c, t = cos.get(mid, 0.0), bm25.get(mid, 0.0) / top_bm25
            score = W_VECTOR * max(c, 0.0) + W_TEXT * t
            if score <= 0 or (threshold is not None and score < threshold):
                continue
            out.append(Scored(row, round(score, 4), c))
        out.sort(key=lambda s: (s.score, s.row.updated_at), reverse=True)
        return out[:limit]

    def _candidates(self, query: str, qvec: np.ndarray | None, where: str,
                    k: int) -> tuple[dict[str, float], dict[str, float]]:
        cos: dict[str, float] = {}
        bm25: dict[str, float] = {}
        for attempt in range(2):
            try:
                if qvec is not None:
                    for mid, vec in self.index.vector_search(qvec, where, k):
                        cos[mid] = float(np.dot(vec, qvec))
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

    def _queued(self) -> set[str]:
        """Ids still in the outbox after giving the index writer a moment to apply them."""
        if not self.sql.pending_count():
            return set()
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


def _overlap(qtokens: set[str], text: str) -> float:
    """Share of the query's content words in a text: a stand-in for scaled BM25."""
    if not qtokens:
        return 0.0
    stems = {textlib.stem(t) for t in textlib.content_tokens(text)}
    return sum(textlib.stem(t) in stems for t in qtokens) / len(qtokens)


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
