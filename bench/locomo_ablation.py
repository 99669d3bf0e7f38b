"""What each idea in recall's ranking is worth on LoCoMo: the product's own ranker
(`mcp_memory.recall_rank`), in process, with one idea changed at a time.

    python bench/locomo_ablation.py [--data ../shared/data/locomo-dev.json] [--no-write] [--only NAME,...]

Same ingest and scoring as bench/locomo.py (which measures the shipped configuration over MCP
stdio); here the conversations are logged once into an in-process store and each variant
re-ranks every question, so a whole table takes a minute or two. Rows: the shipped ranking,
each idea taken out, alternatives that were tried instead (rank fusion, z-score fusion,
BM25 alone, vectors alone, neighbours as a sum, one neighbour each way...), and a sensitivity
sweep of every constant. Splits as in locomo.py, by sample id: dev (conv-26, -30, -41),
validation (conv-42, -43), unseen (any other conversation), all.
Writes the section "LoCoMo ablation (recall ranking)" of bench/RESULTS.md (dev file only).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.locomo import aggregate, score  # noqa: E402
from bench.locomo_data import DATA, load, splits  # noqa: E402
from bench.machine import machine_line, write_section  # noqa: E402
from mcp_memory.config import Settings  # noqa: E402
from mcp_memory.recall_rank import DEFAULT, Ranking, RecallRanker, weighted_sum  # noqa: E402
from mcp_memory.service import MemoryService  # noqa: E402
from mcp_memory.store.messages import Filters  # noqa: E402
from mcp_memory.text import fts_query  # noqa: E402


def rrf(bm25: np.ndarray, cosine: np.ndarray, r: Ranking) -> np.ndarray:
    """Reciprocal rank fusion (k = 60), scaled to the weighted sum's range."""
    out = np.zeros(len(bm25))
    for s in (bm25, cosine):
        ranks = np.empty(len(s))
        ranks[np.argsort(-s, kind="stable")] = np.arange(len(s))
        out += 1 / (60 + ranks + 1)
    return out * 30


def zscore(bm25: np.ndarray, cosine: np.ndarray, r: Ranking) -> np.ndarray:
    z = [(s - s.mean()) / (s.std() or 1.0) for s in (bm25, cosine)]
    out = (1 - r.vector_weight) * z[0] + r.vector_weight * z[1]
    return out - out.min() + 1e-6  # positive, so context and boosts act as for the weighted sum


def minmax(bm25: np.ndarray, cosine: np.ndarray, r: Ranking) -> np.ndarray:
    n = [(s - s.min()) / ((s.max() - s.min()) or 1.0) for s in (bm25, cosine)]
    return (1 - r.vector_weight) * n[0] + r.vector_weight * n[1] + 1e-6


D = DEFAULT
VARIANTS: list[tuple[str, str, Ranking, Any]] = [
    ("shipped", "shipped: BM25 and vectors, weighted sum 0.5/0.5; +-2 neighbours x0.5 (best + 0.5 x second); "
     "+ 0.2 x the best turn of its session; turns that mostly ask x0.8; speaker named x1.5; date named x1.5; "
     "turns that say when x1.5 for when-questions", D, weighted_sum),
    ("bm25", "plain FTS5 BM25 over the content (recall before this change)",
     replace(D, vector_weight=0, context=0, question_penalty=0, session=0, name_boost=0, date_boost=0, when_boost=0),
     weighted_sum),
    ("+vec", "... + vectors, weighted sum 0.5/0.5",
     replace(D, context=0, question_penalty=0, session=0, name_boost=0, date_boost=0, when_boost=0), weighted_sum),
    ("+ctx", "... + neighbouring turns (+-2, x0.5 of the best + 0.5 x the second best)",
     replace(D, question_penalty=0, session=0, name_boost=0, date_boost=0, when_boost=0), weighted_sum),
    ("+ask", "... + turns that mostly ask x0.8", replace(D, session=0, name_boost=0, date_boost=0, when_boost=0),
     weighted_sum),
    ("+sess", "... + 0.2 x the best own score in the turn's session",
     replace(D, name_boost=0, date_boost=0, when_boost=0), weighted_sum),
    ("+name", "... + speaker named in the question x1.5", replace(D, date_boost=0, when_boost=0), weighted_sum),
    ("+date", "... + date named in the question x1.5 (+ the when-question boost = shipped)", replace(D, when_boost=0),
     weighted_sum),
    ("-vec", "shipped without vectors", replace(D, vector_weight=0), weighted_sum),
    ("-ctx", "shipped without neighbouring turns", replace(D, context=0), weighted_sum),
    ("-2nd", "shipped, the best neighbour only (no second-best neighbour)",
     replace(D, second=0.0), weighted_sum),
    ("-ask", "shipped, turns that mostly ask not lowered", replace(D, question_penalty=0.0), weighted_sum),
    ("-sess", "shipped without the session score", replace(D, session=0.0), weighted_sum),
    ("-name", "shipped without the name boost", replace(D, name_boost=0), weighted_sum),
    ("-when", "shipped without the when-question boost (turns that say when, x1.5)", replace(D, when_boost=0),
     weighted_sum),
    ("-date", "shipped without date handling (boost, matches within the date)", replace(D, date_boost=0),
     weighted_sum),
    ("rrf", "shipped, RRF (k=60) instead of the weighted sum", D, rrf),
    ("zscore", "shipped, z-score fusion instead", D, zscore),
    ("minmax", "shipped, min-max fusion instead", D, minmax),
    ("veconly", "shipped, vectors alone (no BM25 in the fusion)", replace(D, vector_weight=1.0), weighted_sum),
    ("ctx1", "neighbours: 1 each way", replace(D, context=1), weighted_sum),
    ("ctx3", "neighbours: 3 each way", replace(D, context=3), weighted_sum),
    ("ctx4", "neighbours: 4 each way", replace(D, context=4), weighted_sum),
    ("cw.3", "neighbour weight 0.3", replace(D, context_weight=0.3), weighted_sum),
    ("cw.7", "neighbour weight 0.7", replace(D, context_weight=0.7), weighted_sum),
    ("cw1", "neighbour weight 1.0", replace(D, context_weight=1.0), weighted_sum),
    ("2nd.25", "second-best neighbour x0.25 of the best's weight", replace(D, second=0.25), weighted_sum),
    ("2nd1", "second-best neighbour as much as the best (sum of the two best)", replace(D, second=1.0), weighted_sum),
    ("ask.1", "turns that mostly ask x0.9", replace(D, question_penalty=0.1), weighted_sum),
    ("ask.35", "turns that mostly ask x0.65", replace(D, question_penalty=0.35), weighted_sum),
    ("sess.1", "session score x0.1", replace(D, session=0.1), weighted_sum),
    ("sess.3", "session score x0.3", replace(D, session=0.3), weighted_sum),
    ("sess.5", "session score x0.5", replace(D, session=0.5), weighted_sum),
    ("vw.3", "vector weight 0.3", replace(D, vector_weight=0.3), weighted_sum),
    ("vw.4", "vector weight 0.4", replace(D, vector_weight=0.4), weighted_sum),
    ("vw.6", "vector weight 0.6", replace(D, vector_weight=0.6), weighted_sum),
    ("vw.7", "vector weight 0.7", replace(D, vector_weight=0.7), weighted_sum),
    ("nb.25", "name boost x1.25", replace(D, name_boost=0.25), weighted_sum),
    ("nb1", "name boost x2", replace(D, name_boost=1.0), weighted_sum),
    ("db.25", "date boost x1.25", replace(D, date_boost=0.25), weighted_sum),
    ("db1", "date boost x2", replace(D, date_boost=1.0), weighted_sum),
    ("wb.25", "when-question boost x1.25", replace(D, when_boost=0.25), weighted_sum),
    ("wb1", "when-question boost x2", replace(D, when_boost=1.0), weighted_sum),
    ("cand100", "candidates 100 / expand 25", replace(D, candidates=100, expand=25), weighted_sum),
    ("cand50", "candidates 50 / expand 25", replace(D, candidates=50, expand=25), weighted_sum),
    ("cand1000", "candidates 1000 / expand 200", replace(D, candidates=1000, expand=200), weighted_sum),
]


def ingest(svc: MemoryService, convs: list[dict[str, Any]]) -> dict[int, dict[int, str]]:
    """Log each conversation (one run per session) as bench/locomo.py does; message id -> turn id."""
    ids: dict[int, dict[int, str]] = {}
    for c in convs:
        ids[c["id"]] = {}
        for s in sorted({t["session"] for t in c["turns"]}):
            turns = [t for t in c["turns"] if t["session"] == s]
            out = svc.agent.log_messages([{"role": "user", "name": t["speaker"], "content": t["content"],
                                           "created_at": t["at"].strftime("%Y-%m-%dT%H:%M:%SZ")} for t in turns],
                                         run_id=f"session-{s}", user_id=f"locomo-{c['id']}")
            ids[c["id"]].update({out.first_id + j: t["dia"] for j, t in enumerate(turns)})
    svc.sync.embed_messages()
    return ids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--only", help="comma-separated variant keys")
    ap.add_argument("--shared-store", action="store_true", help="all conversations in one store (one user each)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    convs = load(args.data)
    variants = [v for v in VARIANTS if not args.only or v[0] in args.only.split(",")]
    questions = [(c["id"], q) for c in convs for q in c["questions"] if q["cat"] != 5]
    parts = splits(convs)
    short = {split: split.split(" (")[0] for split in parts}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        # one store per conversation (as bench/locomo.py), or all in one with --shared-store
        groups = [convs] if args.shared_store else [[c] for c in convs]
        stores, ids = {}, {}
        for k, group in enumerate(groups):
            svc = MemoryService(Settings.from_env({}, data_dir=Path(tmp) / f"data{k}"))
            svc.open()
            ids.update(ingest(svc, group))
            stores.update({c["id"]: svc for c in group})
        try:
            for key, label, ranking, fuse in variants:
                rankers = {ci: RecallRanker(svc.sql, svc.embedder, ranking, fuse) for ci, svc in stores.items()}
                t0 = time.perf_counter()
                rows = []
                for ci, q in questions:
                    hits = rankers[ci].rank(q["q"], fts_query(q["q"]) or "", Filters(f"locomo-{ci}"), 10)
                    rows.append({"conv": ci, "cat": q["cat"], **score([[ids[ci][h["id"]]] for h in hits], q["ev"])})
                ms = (time.perf_counter() - t0) * 1000 / len(questions)
                agg = {split: aggregate(rows, members, {1, 2, 3, 4}) for split, members in parts.items()}
                results.append((key, label, agg, ms))
                print(f"{key:9s} " + " | ".join(f"{short[g]} any@10 {a['any@10']:5.1f} frac@10 {a['frac@10']:5.1f}"
                                               for g, a in agg.items())
                      + f" all@10 {agg['all']['all@10']:5.1f} | {ms:.1f} ms  {label}", flush=True)
        finally:
            for svc in {id(s): s for s in stores.values()}.values():
                svc.close()
    lines = [machine_line(), "",
             "In process, the product's ranker with one change at a time, "
             + ("all conversations in one store (one user each)" if args.shared_store else
                "one store per conversation") + "; categories 1-4; any@10 / frac@10 "
             "(all@10 for all conversations); " + ", ".join(parts) + "; ms = mean rank time.", "",
             "| variant | " + " | ".join(f"{short[g]} any@10 | {short[g]} frac@10" for g in parts)
             + " | all all@10 | ms |", "|---" * (2 * len(parts) + 3) + "|"]
    for key, label, agg, ms in results:
        lines.append(f"| {label} | " + " | ".join(f"{a['any@10']:.1f} | {a['frac@10']:.1f}" for a in agg.values())
                     + f" | {agg['all']['all@10']:.1f} | {ms:.1f} |")
    if not args.no_write and not args.only and args.data.resolve() == DATA.resolve():
        write_section("LoCoMo ablation (recall ranking)" + (", one shared store" if args.shared_store else ""),
                      lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
