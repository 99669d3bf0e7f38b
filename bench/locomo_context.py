"""LoCoMo coverage of `memory_context`: how often the evidence of a question is inside the block
the server builds for it, within 500, 1,000 and 1,500 tokens, beside the tokens of the whole
conversation.

    python bench/locomo_context.py [--data ../shared/data/locomo-dev.json] [--budgets 500,1000,1500]
                                   [--no-write] [--ablation]

Each conversation gets a fresh `mcp-memory serve` and data directory, driven over MCP stdio. Every
turn is logged with `log_messages` (one run_id per session, speaker in `name`, the session's date as
`created_at`) and stored as a fact with `add_memory(infer=false)` ("[8 May 2023] Caroline: text"),
both as the one user the block is built for (bench/locomo_data.py). Every question then gets
`memory_context(query=question, max_tokens=B)` for each budget B.

When a turn counts as inside the block (both must hold):
1. the block says it used the turn: the turn's message id is in `message_ids`, or a memory made
   from the turn (the id `add_memory` returned for it) is in `fact_ids`; and
2. the turn's whole text (whitespace collapsed) is in the block's text: an item is never counted
   when its line was cut or lost on the way.
A question is covered at budget B when at least one of its evidence turns is inside ("any"); "frac"
is the mean share of its evidence turns inside. Categories 1-4 make the overall figure; category 5
(adversarial) is shown apart. Full-conversation tokens count every turn as "[8 May 2023] Caroline:
text", one per line, with the tokenizer of mcp_memory/tokens.py (the one the budgets use).

Prints the figures, writes the section "LoCoMo memory_context coverage" of bench/RESULTS.md and
exits 1 if fewer than 80% of category 1-4 questions have an evidence turn inside a 1,500-token
block. --ablation then reopens the stores in process and rebuilds every block with each of the
context builder's ideas taken out in turn (mcp_memory/context.py `Options`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import LoadMonitor, loadavg, machine, machine_md, pct, wait_quiet, write_section  # noqa: E402
from bench.locomo_data import CATEGORIES, DATA, call, doc_text, ingest, load  # noqa: E402
from mcp_memory import tokens  # noqa: E402

BUDGETS = (500, 1000, 1500)
TARGET = 80.0  # % of category 1-4 questions with >= 1 evidence turn inside a 1,500-token block
SECTION = "locomo-context"


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def inside(block: dict[str, Any], maps: dict[str, Any], by_dia: dict[str, dict[str, Any]]) -> set[str]:
    """The turns (dia ids) inside a block, by the two-part rule of the module docstring."""
    claimed = {maps["messages"][m] for m in block["message_ids"] if m in maps["messages"]}
    claimed |= {d for f in block["fact_ids"] for d in maps["facts"].get(f, ())}
    text = _squash(block["context"])
    return {d for d in claimed if _squash(by_dia[d]["content"]) in text}


def score(rows: list[dict[str, Any]], cats: set[int], budget: int) -> dict[str, float]:
    rs = [r for r in rows if r["cat"] in cats]
    if not rs:
        return {"n": 0, "any": float("nan"), "frac": float("nan")}
    return {"n": len(rs), "any": 100 * statistics.fmean(bool(r["in"][budget] & set(r["ev"])) for r in rs),
            "frac": 100 * statistics.fmean(len(r["in"][budget] & set(r["ev"])) / len(r["ev"]) for r in rs)}


# -- over MCP stdio ---------------------------------------------------------------------------------
async def run_conversation(conv: dict[str, Any], data_dir: Path, budgets: tuple[int, ...],
                           latency: dict[str, list[float]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")}
    env["MCP_MEMORY_DATA_DIR"] = str(data_dir)
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_memory", "serve"], env=env)
    user = f"locomo-{conv['id']}"
    by_dia = {t["dia"]: t for t in conv["turns"]}
    rows = []
    async with Client(params, read_timeout_seconds=120) as client:
        maps = await ingest(client, conv, user, facts_user=user, latency=latency)
        for q in conv["questions"]:
            row: dict[str, Any] = {"conv": conv["id"], "cat": q["cat"], "ev": q["ev"], "q": q["q"],
                                   "in": {}, "used": {}}
            for b in budgets:
                out, ms = await call(client, "memory_context", query=q["q"], max_tokens=b, user_id=user)
                latency[f"memory_context ({b})"].append(ms)
                assert out["tokens"] <= b, (out["tokens"], b)
                row["in"][b] = inside(out, maps, by_dia)
                row["used"][b] = out["tokens"]
            rows.append(row)
    return rows, maps


# -- in process, for the ablation ---------------------------------------------------------------------
def ablation(convs: list[dict[str, Any]], stores: dict[int, tuple[Path, dict[str, Any]]],
             budgets: tuple[int, ...]) -> list[str]:
    from mcp_memory import context
    from mcp_memory.config import Settings
    from mcp_memory.service import MemoryService

    variants = context.ablation_variants()
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for conv in convs:
        data_dir, maps = stores[conv["id"]]
        by_dia = {t["dia"]: t for t in conv["turns"]}
        svc = MemoryService(Settings.from_env({}, data_dir=data_dir))
        try:
            for name, opts in variants.items():
                for q in conv["questions"]:
                    row = {"cat": q["cat"], "ev": q["ev"], "in": {}, "used": {}}
                    for b in budgets:
                        block = context.build(svc, q["q"], b, f"locomo-{conv['id']}", options=opts)
                        row["in"][b] = inside(block.model_dump(), maps, by_dia)
                        row["used"][b] = block.tokens
                    results[name].append(row)
        finally:
            svc.close()
    main = {1, 2, 3, 4}
    head = " | ".join(f"any@{b} | frac@{b}" for b in budgets)
    lines = ["**What each idea of the builder is worth** (in process on the same stores, categories 1-4, "
             "all conversations; each row takes one idea out of the shipped builder, or adds one)", "",
             f"| builder | {head} | mean tokens @{budgets[-1]} |", "|---" * (2 * len(budgets) + 2) + "|"]
    for name, rows in results.items():
        cells = []
        for b in budgets:
            s = score(rows, main, b)
            cells += [f"{s['any']:.1f}", f"{s['frac']:.1f}"]
        used = statistics.fmean(r["used"][budgets[-1]] for r in rows if r["cat"] in main)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {used:.0f} |")
    return lines + [""]


def conversation_tokens(conv: dict[str, Any]) -> int:
    return tokens.count("\n".join(doc_text(t) for t in conv["turns"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    ap.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    ap.add_argument("--no-wait", action="store_true", help="start even if the machine is busy")
    ap.add_argument("--ablation", action="store_true", help="also rebuild every block in process with each "
                    "idea of the builder taken out")
    args = ap.parse_args()
    budgets = tuple(int(b) for b in args.budgets.split(","))
    convs = load(args.data)
    load_start = loadavg() if args.no_wait else wait_quiet()
    latency: dict[str, list[float]] = defaultdict(list)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, LoadMonitor() as monitor:
        stores = {}
        for conv in convs:
            data_dir = Path(tmp) / f"data{conv['id']}"
            conv_rows, maps = asyncio.run(run_conversation(conv, data_dir, budgets, latency))
            rows += conv_rows
            stores[conv["id"]] = (data_dir, maps)
        took = time.perf_counter() - started
        extra = ablation(convs, stores, budgets) if args.ablation else []

    main_cats = {1, 2, 3, 4}
    full = {c["id"]: conversation_tokens(c) for c in convs}
    lines = [f"`python bench/locomo_context.py{' --ablation' if args.ablation else ''}`; "
             f"load at start {load_start:.2f}, during the run {monitor.describe()}", "", machine_md(machine()), "",
             f"{len(convs)} conversations, {sum(len(c['turns']) for c in convs)} turns, {len(rows)} questions with "
             f"evidence ({sum(r['cat'] in main_cats for r in rows)} in categories 1-4); a fresh server and store "
             f"per conversation, every turn logged and stored as a fact (infer=false) for one user; run took "
             f"{took:.0f} s over MCP stdio.", "",
             "Whole conversation, every turn as one line `[8 May 2023] Caroline: text` (tokens counted like the "
             "budgets, mcp_memory/tokens.py): " + ", ".join(f"conv {i} {n:,}" for i, n in full.items())
             + f"; mean {statistics.fmean(full.values()):,.0f} tokens.", "",
             "A turn is inside a block when the block lists it (its message id, or the id of the memory made "
             "from it) and its whole text is in the block's text. any = at least one evidence turn inside; "
             "frac = mean share of the evidence turns inside.", ""]
    head = " | ".join(f"any@{b} | frac@{b}" for b in budgets)
    lines += [f"| questions | n | {head} |", "|---" * (2 * len(budgets) + 2) + "|"]
    groups = [(f"{c} {CATEGORIES[c]}", {c}) for c in (1, 2, 3, 4)] + [("**categories 1-4**", main_cats),
                                                                         ("5 adversarial (apart)", {5})]
    for name, cats in groups:
        cells = []
        for b in budgets:
            s = score(rows, cats, b)
            cells += [f"{s['any']:.1f}", f"{s['frac']:.1f}"]
        lines.append(f"| {name} | {score(rows, cats, budgets[0])['n']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Tokens the block used (mean over all questions; p95): " + "; ".join(
        f"budget {b}: {statistics.fmean(r['used'][b] for r in rows):.0f} ({pct([r['used'][b] for r in rows], 95):.0f})"
        f", {100 * statistics.fmean(r['used'][b] for r in rows) / statistics.fmean(full.values()):.1f}% of a "
        "whole conversation" for b in budgets))
    lines.append("")
    lines.append("Latency over MCP stdio (client wall time per call): " + "; ".join(
        f"{tool} p50 {pct(xs, 50):.1f} ms, p95 {pct(xs, 95):.1f} ms (n={len(xs)})" for tool, xs in latency.items()))
    lines.append("")
    lines += extra
    top = max(budgets)
    got = score(rows, main_cats, top)["any"] if 1500 in budgets else float("nan")
    ok = got >= TARGET
    lines.append(f"result: {'OK' if ok else 'TARGET MISSED'}: {got:.1f}% of category 1-4 questions have an "
                 f"evidence turn inside a 1,500-token block (target >= {TARGET:.0f}%)" if 1500 in budgets else
                 f"result: not checked (budget 1500 not run; largest {top})")
    body = "## LoCoMo `memory_context` coverage (`bench/locomo_context.py`)\n\n" + "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(SECTION, body)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
