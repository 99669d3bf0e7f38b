"""Hybrid retrieval: vector and full-text candidates from LanceDB, fused, then checked
against SQLite (the authority on what is active and in scope).

Fusion is a weighted sum of the cosine similarity and the BM25 score scaled by the
best BM25 score of the candidate set. Rank fusion (RRF) throws the score gaps away,
which hurts when one signal (a small static embedder) is much weaker than the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcp_memory.embeddings import Embedder
from mcp_memory.models import Scope
from mcp_memory.store.sql import MemoryRow, SQLStore
from mcp_memory.store.sync import IndexSync
from mcp_memory.store.vectors import VectorIndex, where_clause

log = logging.getLogger(__name__)

W_VECTOR = 0.5
W_TEXT = 0.5


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
               vector: np.ndarray | None = None, predicate: Callable[[MemoryRow], bool] | None = None,
               ) -> list[Scored]:
        self.sync.drain(wait=False)
        qvec = self.embedder.embed(query) if vector is None else vector
        k = max(limit * 4, 40) * (4 if filters or predicate else 1)
        where = where_clause(scope, kinds)
        cos: dict[str, float] = {}
        bm25: dict[str, float] = {}
        for attempt in range(2):
            try:
                for mid, vec in self.index.vector_search(qvec, where, k):
                    cos[mid] = float(np.dot(vec, qvec))
                for mid, score, vec in self.index.text_search(query, where, k):
                    bm25[mid] = float(score)
                    cos.setdefault(mid, float(np.dot(vec, qvec)))
                break
            except Exception:  # a version cleaned up under us: re-open on the latest and retry once
                if attempt:
                    raise
                log.debug("search index read failed; refreshing", exc_info=True)
                self.index.open()
                cos.clear()
                bm25.clear()
        if not cos:
            return []
        top_bm25 = max(bm25.values(), default=0.0) or 1.0
        rows = self.sql.get_memories(list(cos))
        out = []
        for mid, c in cos.items():
            row = rows.get(mid)
            if row is None or row.state != "active" or row.kind not in kinds or not _in_scope(row, scope):
                continue
            if filters and not _matches(row.metadata or {}, filters):
                continue
            if predicate is not None and not predicate(row):
                continue
            score = W_VECTOR * max(c, 0.0) + W_TEXT * bm25.get(mid, 0.0) / top_bm25
            if score <= 0 or (threshold is not None and score < threshold):
                continue
            out.append(Scored(row, round(score, 4), c))
        out.sort(key=lambda s: (s.score, s.row.updated_at), reverse=True)
        return out[:limit]


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
