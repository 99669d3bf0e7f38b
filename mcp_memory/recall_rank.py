"""How `recall` ranks the message log for a query.

A turn of a conversation rarely answers a question on its own words: "What did Caroline
research?" is answered by Caroline's "adoption agencies", right after Melanie asked "what
did you look into?". So a message is scored with what it says, what the turns around it
say, who said it and when (measured on LoCoMo, see bench/RESULTS.md):

1. Candidates: the best full-text matches of the content (FTS5 BM25, porter stemming,
   stopwords removed, terms OR-ed). If the query names a date, the best matches within it
   are added, so turns with more matching words at other times cannot crowd them out; if
   words alone find too little ("15 June 2024", "Kim"), the messages of that time and of
   the speakers it names are added.
2. Each candidate's own score: ``0.5 * bm25 / best_bm25 + 0.5 * cosine`` (the same
   weighted sum of normalised scores as memory search; rank fusion throws away how far
   apart scores are, which hurts when one signal is much weaker). The cosine uses the
   message's stored vector (embedded by the index worker, or here if not yet).
3. Context: the turns up to ``context`` (2) before and after the best candidates in
   their conversation (same user and run) join in, and every turn adds
   ``context_weight`` (0.5) x (the best own score among those neighbours + ``second``
   (0.5) x the second best): an answer is found through its question, a reply through
   what it replies to, and a turn inside an exchange that keeps to the subject (the
   question before it and the follow-up after it both match) more surely than a turn
   next to one match.
4. Session: every turn adds ``session`` (0.2) x the best own score in its session (same user,
   run and day, itself included; passage retrieval's "document score"): a conversation is
   mostly about a few subjects, so the turns of the exchange that matches best are likelier
   answers than a turn that shares a word with the question in a talk about something else.
5. Focus: x(1 - ``question_penalty``) (x0.8) for a turn that mostly asks ("Oh nice,
   which hobby did you pick?"): its words restate the subject but the answer is in the
   turns around it, which it still lifts as a neighbour (on LoCoMo's dev file such turns
   are 11% of all turns and 3% of the evidence); x(1 + ``name_boost``) for messages whose
   speaker is named in the query, x(1 + ``date_boost``) for messages about a date the
   query names (written that day, or naming it, or saying "yesterday", "last month"...
   that resolve to it), and, when the query asks when ("When did...", "How long
   has..."), x(1 + ``when_boost``) for messages that say when ("last week", "next
   month", "for a month now", a date): the answer to a when-question is a turn that
   tells a time, not the one that repeats its words.

Every step is a few indexed SQLite queries; nothing is held in memory between calls.
The constants are round, neutral values; bench/locomo_ablation.py shows the results are
flat around them. Putting the speaker's name and the date words into the full-text index
instead was measured too: no better than the boosts, worse when several users share a
store (a name's IDF then depends on the others' logs), and slow on long logs (a name or a
year matches most of them). A query that shares no word with the log, names no date and
no speaker finds nothing (as before): scanning every stored vector costs ~4 ms per 1,000
messages, too slow for long logs.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from mcp_memory import dates
from mcp_memory import text as textlib
from mcp_memory.embeddings import Embedder
from mcp_memory.errors import MemoryServiceError
from mcp_memory.store import messages as msgsql
from mcp_memory.store.messages import Filters, message_text
from mcp_memory.store.sql import SQLStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranking:
    vector_weight: float = 0.5             # cosine vs normalised BM25: equal say
    context: int = 2                       # turns each way: the exchange a turn belongs to
    context_weight: float = 0.5            # a neighbour's evidence counts half as much as a turn's own
    second: float = 0.5                    # the second-best neighbour, half as much as the best
    session: float = 0.2                   # x the best own score in the turn's session (run and day)
    question_penalty: float = 0.2          # x0.8 for a turn that mostly asks: the answer is around it
    name_boost: float = 0.5                # x1.5 for the speaker the question names
    date_boost: float = 0.5                # x1.5 for turns about the date the question names
    when_boost: float = 0.5                # x1.5 for turns that say when, if the question asks when
    candidates: int = 200                  # full-text matches considered
    expand: int = 50                       # best candidates whose neighbours are fetched


DEFAULT = Ranking()
MAX_EXPAND = 500  # deep pages: context for at most this many candidates
Fuse = Callable[[np.ndarray, np.ndarray, Ranking], np.ndarray]


def weighted_sum(bm25: np.ndarray, cosine: np.ndarray, r: Ranking) -> np.ndarray:
    top = bm25.max() if bm25.size and bm25.max() > 0 else 1.0
    return (1 - r.vector_weight) * bm25 / top + r.vector_weight * np.maximum(cosine, 0.0)


_NAME_WORD = re.compile(r"[^\W\d_][\w.'\u2019-]*")


def name_candidates(query: str) -> list[str]:
    """Word runs of the query that could be a speaker's name ("Caroline's" -> "Caroline")."""
    words = [re.sub(r"['\u2019]s$", "", w).strip(".'-\u2019") for w in _NAME_WORD.findall(query)]
    words = [w for w in words if w]
    return [" ".join(words[i:i + n]) for n in (1, 2, 3) for i in range(len(words) - n + 1)]


class RecallRanker:
    def __init__(self, sql: SQLStore, embedder: Embedder, ranking: Ranking = DEFAULT,
                 fuse: Fuse = weighted_sum) -> None:
        self.sql = sql
        self.embedder = embedder
        self.ranking = ranking
        self.fuse = fuse

    def rank(self, query: str, match: str, f: Filters, want: int) -> list[sqlite3.Row]:
        """The ``want`` best messages for ``query`` (``match``: its FTS5 form) that pass ``f``."""
        r, conn = self.ranking, self.sql.conn
        n = max(r.candidates, 2 * want)
        spans = [s for s in dates.mentioned(query) if r.date_boost]
        windows = [(s.start.isoformat(), f"{s.end.isoformat()}T23:59:59.999999Z") for s in spans if not s.any_year]
        named = msgsql.participants(conn, f.user_id, name_candidates(query)) if r.name_boost else set()
        bm25 = msgsql.best_matches(conn, match, f, n) if match else {}
        for start, end in windows:  # matches in the time asked about, however many match elsewhere
            bm25.update(msgsql.best_matches(conn, match, f, n, start, end) if match else {})
        if len(bm25) < want:  # few words to go on ("15 June 2024", "Kim"): the time and the people named
            for start, end in windows:
                bm25.update((row["id"], 0.0) for row in msgsql.newest(conn, f, n, 0, start, end)
                            if row["id"] not in bm25)
            bm25.update((m, 0.0) for m in msgsql.spoken_by(conn, f, named, n) if m not in bm25)
        if not bm25:
            return []
        rows = msgsql.rows(conn, bm25)
        qvec = self._query_vector(query)
        cosine = self._cosines(list(rows), rows, qvec)

        # context: the neighbours of the best candidates join in, scored the same way
        links: dict[int, set[int]] = {}
        if r.context > 0 and r.context_weight:
            first = self._fused(list(rows), bm25, cosine)
            best = sorted(first, key=first.__getitem__, reverse=True)[:max(r.expand, min(want, MAX_EXPAND))]
            for mid, others in msgsql.neighbours(conn, [rows[m] for m in best], f.user_id, r.context).items():
                for other in others:
                    links.setdefault(mid, set()).add(other)
                    links.setdefault(other, set()).add(mid)
            fresh = [m for m in links if m not in rows]
            if fresh:
                rows.update(msgsql.rows(conn, fresh))
                bm25.update((m, 0.0) for m in fresh if m not in bm25)  # not among the best matches: ~0
                cosine.update(self._cosines(fresh, rows, qvec))
        own = self._fused(list(rows), bm25, cosine)
        session_best: dict[tuple[str, str | None, str], float] = {}
        if r.session:
            for mid, row in rows.items():
                key = _session(row)
                session_best[key] = max(session_best.get(key, 0.0), own[mid])

        ranked = []
        for mid, row in rows.items():
            if not f.admits(row):
                continue
            s = own[mid]
            near = sorted((own[o] for o in links.get(mid, ()) if o in own), reverse=True)
            if near:
                s += r.context_weight * (near[0] + r.second * (near[1] if len(near) > 1 else 0.0))
            if session_best:
                s += r.session * session_best[_session(row)]
            if r.question_penalty and textlib.asks(row["content"]):
                s *= 1 - r.question_penalty
            if named and row["name"] and row["name"].casefold() in named:
                s *= 1 + r.name_boost
            ranked.append([s, row["created_at"], mid, row])
        if spans:
            _lift(ranked, want, r.date_boost, lambda row: _about(row, spans))
        if r.when_boost and dates.asks_when(query):
            _lift(ranked, want, r.when_boost, lambda row: dates.says_when(row["content"]))
        ranked.sort(key=lambda t: t[:3], reverse=True)
        return [t[3] for t in ranked[:want]]

    # -- signals -----------------------------------------------------------------------
    def _query_vector(self, query: str) -> np.ndarray | None:
        if not self.ranking.vector_weight:
            return None
        try:
            return np.asarray(self.embedder.embed(query), dtype=np.float32)
        except MemoryServiceError as exc:  # endpoint down: rank by words alone
            log.info("recall by words only: %s", exc)
            return None

    def _fused(self, ids: Sequence[int], bm25: dict[int, float], cosine: dict[int, float]) -> dict[int, float]:
        b = np.array([bm25.get(i, 0.0) for i in ids], dtype=np.float64)
        c = np.array([cosine.get(i, 0.0) for i in ids], dtype=np.float64)
        return dict(zip(ids, self.fuse(b, c, self.ranking).tolist()))

    def _cosines(self, ids: Sequence[int], rows: dict[int, sqlite3.Row],
                 qvec: np.ndarray | None) -> dict[int, float]:
        if qvec is None or not ids:
            return {}
        dim = qvec.shape[0]
        vecs = [msgsql.vector_of(rows[i]["vector"], dim) for i in ids]
        missing = [k for k, v in enumerate(vecs) if v is None]
        if missing:  # not embedded by the index worker yet: embed here (the worker stores them)
            texts = [message_text(rows[ids[k]]["name"], rows[ids[k]]["content"], rows[ids[k]]["created_at"])
                     for k in missing]
            try:
                for k, v in zip(missing, self.embedder.embed_batch(texts)):
                    vecs[k] = np.asarray(v, dtype=np.float32)
            except MemoryServiceError as exc:
                log.info("recall: %d messages ranked without a vector: %s", len(missing), exc)
        return {i: float(v @ qvec) for i, v in zip(ids, vecs) if v is not None and v.shape == (dim,)}


def _session(row: sqlite3.Row) -> tuple[str, str | None, str]:
    """The session a message belongs to: its user, its run and the day it was written (UTC)."""
    return row["user_id"], row["run_id"], row["created_at"][:10]


def _lift(ranked: list[list], want: int, boost: float, applies: Callable[[sqlite3.Row], bool]) -> None:
    """x(1 + ``boost``) for the entries of ``ranked`` ([score, ..., row]) that ``applies`` to; only
    those the boost could lift into the top ``want`` are tested (reading a message's dates costs)."""
    if not ranked:
        return
    floor = sorted((t[0] for t in ranked), reverse=True)[min(want, len(ranked)) - 1] / (1 + boost)
    for t in ranked:
        if t[0] >= floor and applies(t[3]):
            t[0] *= 1 + boost


def _about(row: sqlite3.Row, spans: Sequence[dates.Span]) -> bool:
    day: date | None = dates.day_of(row["created_at"])
    if day is None:
        return False
    told = dates.referred(row["content"], day)
    return any(q.overlaps(t) for q in spans for t in told)


def fts_match(query: str | None) -> str | None:
    return textlib.fts_query(query) if query and query.strip() else None
