"""LoCoMo evidence recall of the peers next to mcp-memory's: one run, same machine, same vectors.

    bench/setup_peers.sh                                  # once: Mem0's venv and the npm package
    .venv/bin/python bench/peers_locomo.py [--data ../shared/data/locomo-dev.json] [--no-write]

Every system holds the turns of all the conversations in one store, one user per conversation
(the reference server, which has no users, a file per conversation), each turn as
"[8 May 2023] Caroline: text", and answers every question once (10 results):

- mcp-memory, in process, with its embedded WordLlama (the same vectors the endpoint below serves):
  `recall` over the message log (turns logged as bench/locomo.py logs them: speaker, session date,
  one run per session) and `search_memory` over the turns stored as memories (`add_memory`,
  infer=false).
- Mem0 OSS (bench/.peers-venv, bench/peer_mem0.py): `Memory.add(infer=False)` per turn and
  `search(top_k=10)`, its defaults otherwise, embeddings from the loopback WordLlama endpoint
  (bench/embed_server.py).
- The reference MCP memory server (npm, over stdio, a fresh file per conversation): one entity per
  turn through `create_entities`, `search_nodes` with the question as given, and with one keyword
  of it (a name in the question, else its longest word). It returns every match, unranked, in file
  order; the first 10 are scored.

Scored as bench/locomo.py scores (any@k, all@k, frac@k, k = 5, 10; categories 1-4); ratios are
ours / theirs (above 1: mcp-memory finds more). Writes the section "LoCoMo recall side by side
with the peers" of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import BENCH, StdioMCP, machine, machine_md, pct, write_section  # noqa: E402
from bench.locomo import aggregate, score  # noqa: E402
from bench.locomo_ablation import ingest  # noqa: E402
from bench.locomo_data import DATA, doc_text, load  # noqa: E402
from peers import PEERS_PY, REF_JS, EmbedServer, _node, keyword, peers_installed  # noqa: E402

from mcp_memory.config import Settings  # noqa: E402
from mcp_memory.service import MemoryService  # noqa: E402

CATS = {1, 2, 3, 4}


def ours(convs: list[dict[str, Any]], root: Path) -> dict[str, Any]:
    """{system: [[turn ids of each hit] per question, in ``questions`` order], "..._ms": [...]}"""
    svc = MemoryService(Settings.from_env({}, data_dir=root / "ours"))
    svc.open()
    out: dict[str, Any] = {"recall": [], "search_memory": [], "recall_ms": [], "search_memory_ms": []}
    try:
        msg_ids = ingest(svc, convs)
        for c in convs:
            facts: dict[str, set[str]] = {}
            for t in c["turns"]:
                for ev in svc.add(doc_text(t), infer=False, user_id=f"locomo-{c['id']}-facts").events:
                    facts.setdefault(ev.id, set()).add(t["dia"])
            for q in questions(c):
                t0 = time.perf_counter()
                got = svc.agent.recall(q["q"], user_id=f"locomo-{c['id']}", limit=10).messages
                out["recall_ms"].append((time.perf_counter() - t0) * 1000)
                out["recall"].append([[msg_ids[c["id"]][m.id]] for m in got])
                t0 = time.perf_counter()
                hits = svc.search(q["q"], user_id=f"locomo-{c['id']}-facts", limit=10).hits
                out["search_memory_ms"].append((time.perf_counter() - t0) * 1000)
                out["search_memory"].append([sorted(facts.get(h.id, ())) for h in hits])
    finally:
        svc.close()
    return out


def mem0(convs: list[dict[str, Any]], root: Path, url: str) -> dict[str, Any]:
    d = root / "mem0"
    d.mkdir(parents=True)
    job = d / "job.json"
    job.write_text(json.dumps({"mode": "locomo", "dir": str(d), "url": url, "top_k": 10, "conversations": [
        {"user": f"locomo-{c['id']}", "texts": [doc_text(t) for t in c["turns"]],
         "questions": [q["q"] for q in questions(c)]} for c in convs]}))
    env = {**os.environ, "MEM0_TELEMETRY": "False", "MEM0_DIR": str(d / "home"), "OPENAI_API_KEY": "sk-local"}
    res = subprocess.run([str(PEERS_PY), str(BENCH / "peer_mem0.py"), str(job)], capture_output=True, text=True,
                         env=env)
    if res.returncode != 0:
        raise RuntimeError(f"Mem0 worker failed:\n{res.stderr[-3000:]}")
    r = json.loads(res.stdout.strip().splitlines()[-1])
    ranked = [[[c["turns"][i]["dia"]] if i is not None else [] for i in hits]
              for c, per_conv in zip(convs, r["ranked"]) for hits in per_conv]
    return {"mem0_version": r["version"], "mem0": ranked, "mem0_ms": r["search_ms"], "add_ms": r["add_ms"],
            "notes": sorted({ln.strip() for ln in res.stderr.splitlines() if "not installed" in ln})}


def reference(convs: list[dict[str, Any]], root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"ref_version": "?", "question": [], "keyword": [], "question_ms": [], "keyword_ms": [],
                           "question_matches": [], "keyword_matches": []}
    for c in convs:
        d = root / f"reference-{c['id']}"
        d.mkdir(parents=True)
        env = {**os.environ, "MEMORY_FILE_PATH": str(d / "memory.jsonl")}
        with StdioMCP(["node", str(REF_JS)], env, stderr_path=root / "reference-stderr.log") as client:
            out["ref_version"] = client.initialize().get("serverInfo", {}).get("version", "?")
            for s in sorted({t["session"] for t in c["turns"]}):
                client.call_tool("create_entities", {"entities": [
                    {"name": t["dia"], "entityType": "turn", "observations": [doc_text(t)]}
                    for t in c["turns"] if t["session"] == s]})
            for q in questions(c):
                for kind, query in (("question", q["q"]), ("keyword", keyword(q["q"]))):
                    t0 = time.perf_counter()
                    found = client.call_tool("search_nodes", {"query": query}).get("entities", [])
                    out[f"{kind}_ms"].append((time.perf_counter() - t0) * 1000)
                    out[f"{kind}_matches"].append(len(found))
                    out[kind].append([[e["name"]] for e in found[:10]])
    return out


def questions(c: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for q in c["questions"] if q["cat"] in CATS]


SYSTEMS = [("recall", "mcp-memory `recall` (message log)"),
           ("search_memory", "mcp-memory `search_memory` (each turn a memory)"),
           ("mem0", "Mem0 OSS `search` (each turn a memory, infer=False)"),
           ("question", "reference `search_nodes`, the question as given"),
           ("keyword", "reference `search_nodes`, one keyword of it")]
METRICS = ("any@5", "any@10", "all@10", "frac@5", "frac@10")


def render(convs: list[dict[str, Any]], ranked: dict[str, list[list[list[str]]]],
           ms: dict[str, list[float]]) -> tuple[str, dict[str, dict[str, float]]]:
    qs = [(c["id"], q) for c in convs for q in questions(c)]
    ids = {c["id"] for c in convs}
    table = ["| | " + " | ".join(METRICS) + " | frac@10 by category 1 / 2 / 3 / 4 | results per question (mean) "
             "| search p50 |", "|---|" + "---|" * (len(METRICS) + 3)]
    overall: dict[str, dict[str, float]] = {}
    for key, name in SYSTEMS:
        rows = [{"conv": ci, "cat": q["cat"], **score(hits, q["ev"])} for (ci, q), hits in zip(qs, ranked[key])]
        a = aggregate(rows, ids, CATS)
        overall[key] = a
        cats = " / ".join(f"{aggregate(rows, ids, {k})['frac@10']:.1f}" for k in sorted(CATS))
        table.append(f"| {name} | " + " | ".join(f"{a[m]:.1f}" for m in METRICS)
                     + f" | {cats} | {statistics.fmean(len(h) for h in ranked[key]):.1f} | {pct(ms[key], 50):.1f} ms |")
    for key, name in SYSTEMS[2:]:
        table.append(f"| **ratio any@10 / frac@10, ours (`recall`) / {name}** | "
                     + " | ".join(_ratio(overall["recall"][m], overall[key][m]) if m in ("any@10", "frac@10") else ""
                                  for m in METRICS) + " | | | |")
    return "\n".join(table), overall


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "inf (theirs 0)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not peers_installed():
        return 2
    convs = load(args.data)
    m = machine()
    print(machine_md(m), flush=True)
    root = Path(tempfile.mkdtemp(prefix="mcp-memory-peers-locomo-"))
    embed = EmbedServer()
    t0 = time.perf_counter()
    try:
        ranked: dict[str, Any] = {}
        ranked.update(ours(convs, root))
        print(f"mcp-memory done ({time.perf_counter() - t0:.0f} s)", flush=True)
        ranked.update(reference(convs, root))
        print(f"reference server done ({time.perf_counter() - t0:.0f} s)", flush=True)
        ranked.update(mem0(convs, root, embed.url))
        print(f"Mem0 done ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        embed.close()
        shutil.rmtree(root, ignore_errors=True)
    total = time.perf_counter() - t0
    ms = {k: ranked[f"{k}_ms"] for k, _ in SYSTEMS}
    table, overall = render(convs, ranked, ms)
    n_q = sum(len(questions(c)) for c in convs)
    never = statistics.fmean(n == 0 for n in ranked["question_matches"]) * 100
    kw_hits = pct(ranked["keyword_matches"], 50)
    notes = "; ".join(ranked["notes"]) or "none"
    body = (f"## LoCoMo recall side by side with the peers (`bench/peers_locomo.py`)\n\n{machine_md(m)}\n"
            f"- peers: mem0ai {ranked['mem0_version']} (qdrant-client local mode, on disk), "
            f"@modelcontextprotocol/server-memory (serverInfo version {ranked['ref_version']}), node {_node()}\n"
            f"- data: `{args.data.name}`, {len(convs)} conversations, "
            f"{sum(len(c['turns']) for c in convs)} turns, {n_q} questions of categories 1-4; "
            f"run took {total:.0f} s\n\n"
            f"{table}\n\n"
            "Same turns and questions for every system, 10 results asked for; one store holds all the "
            "conversations, one user each (mcp-memory's `recall` therefore scores as in `bench/locomo.py "
            "--shared-store`); search p50 is the in-process call for "
            "mcp-memory and Mem0 (Mem0 pays an HTTP embedding call to the loopback endpoint, mcp-memory embeds in "
            "process with the same model) and the stdio round trip for the reference server. "
            f"Mem0 ran with a plain `pip install mem0ai` ({notes}), so its search is vector-only. The "
            f"reference server has no ranking: the question as given matched nothing for {never:.0f}% of the "
            f"questions (it looks for the whole question as a substring); one keyword matched a median of "
            f"{kw_hits:.0f} turns, of which the first 10 in file order are scored. Mem0's add (infer=False, "
            f"per call) took p50 {pct(ranked['add_ms'], 50):.1f} ms here.\n")
    print("\n" + body, flush=True)
    if not args.no_write:
        write_section("peers-locomo", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
