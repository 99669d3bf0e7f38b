"""LoCoMo retrieval: evidence recall of `recall`, `archival_search` and `search_memory`, driven
over MCP stdio against a real `mcp-memory serve`, next to a BM25 floor computed in the same run.

    python bench/locomo.py [--data ../shared/data/locomo-dev.json] [--no-memory] [--no-write]

Each conversation gets a fresh server and data directory (one person's whole history, as a
single user's store holds it; --shared-store puts them all in one store as one user each) and
its own user_id: every turn is logged with `log_messages` (one run_id
per session, speaker in `name`, the session's date and time as `created_at`, turns 5 s apart),
inserted with `archival_memory_insert` (user `<conv>-archival`) and with `add_memory(infer=false)`
(user `<conv>-facts`) as "[8 May 2023] Caroline: text"; an image a turn shares is added to its
text as "[image: <caption>]". Each question is asked once per tool (limit 10) and scored on its
evidence turns: any@k (at least one in the top k), all@k, frac@k (mean share in the top k),
k = 5, 10, per category; "overall" is categories 1-4 (5, adversarial, is shown apart). Splits, by
sample id: dev = conv-26, -30, -41 (where the method was developed), validation = conv-42, -43 (the
rest of the dev file), unseen = any other conversation (e.g. the rest of LoCoMo's locomo10.json,
passed with --data), all.
Prints the figures, writes the section "LoCoMo retrieval" of bench/RESULTS.md, and exits 1 if
recall misses the target (categories 1-4, all conversations: any@10 >= 80%, frac@10 >= 75%).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.locomo_data import CATEGORIES, DATA, call, doc_text, ingest, load, splits  # noqa: E402
from bench.machine import machine_line, write_section  # noqa: E402
from mcp_memory.text import STOPWORDS, normalize  # noqa: E402

KS = (5, 10)
TARGET = {"any@10": 80.0, "frac@10": 75.0}
FLOOR_QUOTED = "BM25 floor quoted in issue 6: any@10 66.8%, frac@10 60.8%; DRAGON (LoCoMo paper) frac@10 66.2%"


# -- the BM25 floor: plain BM25 over single turns, speaker and date in the text, stopwords removed --
def tokens(text: str) -> list[str]:
    return [w for w in re.findall(r"[\w']+", text.lower()) if w not in STOPWORDS]


class BM25:
    """Okapi BM25 with Anserini's defaults (k1 0.9, b 0.4); no stemming."""

    def __init__(self, docs: list[str], k1: float = 0.9, b: float = 0.4) -> None:
        self.k1, self.b = k1, b
        self.tf = [Counter(tokens(d)) for d in docs]
        self.len = [sum(tf.values()) for tf in self.tf]
        self.avg = sum(self.len) / max(len(docs), 1)
        df = Counter(w for tf in self.tf for w in tf)
        n = len(docs)
        self.idf = {w: math.log(1 + (n - d + 0.5) / (d + 0.5)) for w, d in df.items()}

    def rank(self, query: str) -> list[int]:
        q = set(tokens(query))
        scores = []
        for i, tf in enumerate(self.tf):
            s = 0.0
            for w in q & tf.keys():
                f = tf[w]
                s += self.idf[w] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.len[i] / self.avg))
            scores.append(s)
        return sorted(range(len(scores)), key=lambda i: -scores[i])


# -- scoring ------------------------------------------------------------------------------------
def score(ranked: list[list[str]], evidence: list[str]) -> dict[str, float]:
    """ranked: the top hits, each the turn ids it stands for (a merged memory may stand for several)."""
    out = {}
    for k in KS:
        seen = {d for hit in ranked[:k] for d in hit}
        n = sum(e in seen for e in evidence)
        out[f"any@{k}"] = float(n > 0)
        out[f"all@{k}"] = float(n == len(evidence))
        out[f"frac@{k}"] = n / len(evidence)
    return out


METRICS = [f"{m}@{k}" for m in ("any", "all", "frac") for k in KS]


def aggregate(rows: list[dict[str, Any]], convs: set[int], cats: set[int]) -> dict[str, float]:
    rs = [r for r in rows if r["conv"] in convs and r["cat"] in cats]
    out = {m: 100 * statistics.fmean(r[m] for r in rs) if rs else float("nan") for m in METRICS}
    out["n"] = len(rs)
    return out


# -- driving the server over MCP stdio -----------------------------------------------------------
async def run_server(convs: list[dict[str, Any]], data_dir: Path, memory: bool,
                     ranked: dict[str, list[list[list[str]]]], latency: dict[str, list[float]],
                     counts: dict[str, Counter[str]]) -> float:
    """One server on ``data_dir`` for ``convs``: ingest, then ask every question. Returns ingest seconds."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")}
    env["MCP_MEMORY_DATA_DIR"] = str(data_dir)
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_memory", "serve"], env=env)
    t_ingest = time.perf_counter()
    async with Client(params, read_timeout_seconds=120) as client:
        by_msg: dict[int, dict[int, str]] = {}
        by_mem: dict[int, dict[str, dict[str, set[str]]]] = {}
        for c in convs:
            user = f"locomo-{c['id']}"
            maps = await ingest(client, c, user, facts_user=f"{user}-facts" if memory else None,
                                archival_user=f"{user}-archival" if memory else None, latency=latency,
                                events=counts["events"])
            by_msg[c["id"]] = maps["messages"]
            by_mem[c["id"]] = maps
        ingest_s = time.perf_counter() - t_ingest
        for c in convs:
            user = f"locomo-{c['id']}"
            for q in c["questions"]:
                out, ms = await call(client, "recall", query=q["q"], limit=10, user_id=user)
                latency["recall"].append(ms)
                ranked["recall"].append([[by_msg[c["id"]][m["id"]]] for m in out["messages"]])
                if memory:
                    out, ms = await call(client, "archival_search", query=q["q"], limit=10, user_id=f"{user}-archival")
                    latency["archival_search"].append(ms)
                    archival = by_mem[c["id"]]["archival"]
                    keys = [normalize(h["text"]) for h in out["hits"]]
                    counts["unmapped"]["archival_search"] += sum(k not in archival for k in keys)
                    ranked["archival_search"].append([sorted(archival.get(k, ())) for k in keys])
                    out, ms = await call(client, "search_memory", query=q["q"], limit=10, user_id=f"{user}-facts")
                    latency["search_memory"].append(ms)
                    facts = by_mem[c["id"]]["facts"]
                    counts["unmapped"]["search_memory"] += sum(h["id"] not in facts for h in out["hits"])
                    ranked["search_memory"].append([sorted(facts.get(h["id"], ())) for h in out["hits"]])
    return ingest_s


async def run_all(convs: list[dict[str, Any]], tmp: Path, memory: bool, shared: bool) -> dict[str, Any]:
    """A fresh server and data directory per conversation (one person's whole history, as a single
    user's store holds it), or one for all (``shared``: one user each in one store)."""
    ranked: dict[str, list[list[list[str]]]] = defaultdict(list)
    latency: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, Counter[str]] = {"events": Counter(), "unmapped": Counter()}
    groups = [convs] if shared else [[c] for c in convs]
    ingest_s = 0.0
    for k, group in enumerate(groups):
        ingest_s += await run_server(group, tmp / f"data{k}", memory, ranked, latency, counts)
    return {"ranked": ranked, "latency": latency, "ingest_s": ingest_s, **counts}


# -- report -------------------------------------------------------------------------------------
def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def table(title: str, rows: list[tuple[str, dict[str, float]]]) -> list[str]:
    out = [f"**{title}**", "", "| | n | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 2) + "|"]
    for name, a in rows:
        out.append(f"| {name} | {a['n']} | " + " | ".join(f"{a[m]:.1f}" for m in METRICS) + " |")
    return out + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--no-memory", action="store_true", help="score recall only (skip archival / search_memory)")
    ap.add_argument("--shared-store", action="store_true",
                    help="one server and store for all conversations (one user each) instead of one each")
    ap.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    args = ap.parse_args()
    convs = load(args.data)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        res = asyncio.run(run_all(convs, Path(tmp), not args.no_memory, args.shared_store))
    took = time.perf_counter() - started

    questions = [(c["id"], q) for c in convs for q in c["questions"]]
    floors = {c["id"]: (BM25([doc_text(t) for t in c["turns"]]), [t["dia"] for t in c["turns"]]) for c in convs}
    systems: dict[str, list[list[list[str]]]] = dict(res["ranked"])
    systems["BM25 floor"] = [[[floors[ci][1][i]] for i in floors[ci][0].rank(q["q"])[:10]] for ci, q in questions]
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, ranked in systems.items():
        rows[name] = [{"conv": ci, "cat": q["cat"], **score(r, q["ev"])} for (ci, q), r in zip(questions, ranked)]

    lines = [machine_line() + f"; load average {load_before:.2f} at start", "",
             f"`{args.data.name}`: {len(convs)} conversations, {sum(len(c['turns']) for c in convs)} turns, "
             f"{len(questions)} questions "
             f"with evidence ({sum(q['cat'] != 5 for _, q in questions)} in categories 1-4); "
             f"{sum(c['dropped_ids'] for c in convs)} malformed or unknown evidence ids dropped. "
             + ("One server and store for all conversations (one user each); " if args.shared_store else
                "A fresh server and store per conversation; ") +
             f"run took {took:.0f} s (ingest over MCP {res['ingest_s']:.0f} s). {FLOOR_QUOTED}.", ""]
    main_cats = {1, 2, 3, 4}
    groups = splits(convs)
    for split, ids in groups.items():
        lines += table(f"{split}, categories 1-4", [(n, aggregate(rows[n], ids, main_cats)) for n in systems])
    per_cat = []
    for name in ("recall", "BM25 floor"):
        per_cat += [(f"{name}: {cat} {CATEGORIES[cat]}", aggregate(rows[name], groups["all"], {cat}))
                    for cat in (1, 2, 3, 4, 5)]
    lines += table("per category, all conversations (category 5 is not in the overall figures)", per_cat)
    rec, floor = (aggregate(rows[name], groups["all"], main_cats) for name in ("recall", "BM25 floor"))
    lines.append("recall / BM25 floor (all, categories 1-4): " + ", ".join(
        f"{m} {rec[m] / floor[m]:.2f}x" for m in ("any@10", "frac@10", "all@10")))
    lat = res["latency"]
    lines.append("")
    lines.append("Latency over MCP stdio (client wall time per call; the first call to each server also waits "
                 "for it to open its store): " + "; ".join(
        f"{tool} p50 {pct(xs, 50):.1f} ms, p95 {pct(xs, 95):.1f} ms (n={len(xs)})" for tool, xs in lat.items()))
    if res["events"]:
        lines.append(f"add_memory events: {dict(res['events'])}" + (
            " (a NONE is an exact duplicate merged into the memory of the turn that said it first, which then "
            "stands for both turns)" if res["events"].get("NONE") else ""))
    if sum(res["unmapped"].values()):
        lines.append(f"hits that map to no turn (counted as misses): {dict(res['unmapped'])}")
    ok = all(rec[m] >= v for m, v in TARGET.items())
    lines.append("")
    lines.append(f"result: {'OK' if ok else 'TARGET MISSED'} (target for recall, categories 1-4: "
                 + ", ".join(f"{m} >= {v:.0f}%" for m, v in TARGET.items()) + ")")
    print("\n".join(lines))
    if not args.no_write:
        write_section("LoCoMo retrieval" + (", one shared store" if args.shared_store else "")
                      + ("" if args.data.resolve() == DATA.resolve() else f", {args.data.name}"), lines)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
