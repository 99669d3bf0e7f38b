"""mcp-memory side by side with its peers, same machine, one run, same embeddings.

- Mem0 OSS (`mem0ai`, installed in bench/.peers-venv, never in the package's venv), in process
  with local Qdrant (embedded, on disk), ``infer=False``; run by bench/peer_mem0.py.
- The reference MCP memory server (`@modelcontextprotocol/server-memory`, npm, in
  bench/.peers-node), spawned with node and driven over stdio.
- mcp-memory, in process (`MemoryService`) and over MCP stdio (`mcp-memory serve`).

Both embedding users (mcp-memory and Mem0) get their vectors from one loopback OpenAI-compatible
endpoint serving WordLlama (bench/embed_server.py), so neither has an embedding advantage; the
reference server has no embeddings (substring match). For each size (1k, 10k, 100k) every
system holds the same corpus (bench/corpus.py) in one user scope, answers the same questions
and stores the same new texts. Ratios are ours / theirs: below 1 means mcp-memory is faster.

    bench/setup_peers.sh                   # once: the Mem0 venv and the npm package
    .venv/bin/python bench/peers.py        # 1k, 10k, 100k (~45 min, most of it loading Mem0)
    .venv/bin/python bench/peers.py --sizes 1000,10000 --quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import corpus  # noqa: E402
from _common import (  # noqa: E402
    BENCH, LoadMonitor, StdioMCP, fmt_ms, machine, machine_md, pct, rss_mb, server_argv, server_env,
    settle, summary, timed, wait_quiet, write_section,
)

from mcp_memory.config import Settings  # noqa: E402
from mcp_memory.service import MemoryService  # noqa: E402

PEERS_PY = BENCH / ".peers-venv" / "bin" / "python"
REF_JS = BENCH / ".peers-node" / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
EMBED_MODEL = "wordllama-l2_supercat-256"


def label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 else str(n)


def reps_for(size: int, quick: bool) -> dict[str, int]:
    if quick:
        return {"search": 20, "add": 10}
    if size >= 100_000:
        return {"search": 60, "add": 40}
    return {"search": 150, "add": 60}


class EmbedServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "embed_server.py")], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"(http://\S+)", line)
        if not m:
            raise RuntimeError(f"embedding endpoint did not start: {line!r}")
        self.url = m.group(1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def peers_installed() -> bool:
    """Whether bench/setup_peers.sh has run (and node is there); says what is missing if not."""
    missing = [str(p) for p in (PEERS_PY, REF_JS) if not p.exists()] + ([] if shutil.which("node") else ["node"])
    if missing:
        print(f"peers are not installed ({', '.join(missing)}): run bench/setup_peers.sh", file=sys.stderr)
    return not missing


def keyword(query: str) -> str:
    """What one would type into a substring search: a name in the question, else its longest word."""
    words = re.findall(r"[A-Za-z][\w'-]+", query)
    names = [w for w in words[1:] if w[0].isupper()]
    if names:
        return names[0].removesuffix("'s")
    return max(words, key=len) if words else query


# -- mcp-memory ------------------------------------------------------------------------------------
def ours(size: int, root: Path, url: str, texts: list[str], queries: list[str], adds: list[str],
         reps: dict[str, int], log: Path) -> dict[str, Any]:
    data = root / "ours"
    shutil.rmtree(data, ignore_errors=True)
    env_embed = {"MCP_MEMORY_EMBEDDER": "openai", "MCP_MEMORY_EMBED_BASE_URL": url,
                 "MCP_MEMORY_EMBED_MODEL": EMBED_MODEL}
    settings = Settings.from_env(env_embed, data_dir=data)
    svc = MemoryService(settings)
    svc.open()
    res = svc.import_memories(texts)
    out: dict[str, Any] = {"load_s": res.seconds}
    for q in queries[:10]:
        svc.search(q)
    out["search"] = summary([timed(lambda q=q: svc.search(q)) for q in queries[:reps["search"]]])
    n = reps["add"]
    out["add_infer_false"] = summary([timed(lambda t=t: svc.add(t, infer=False)) for t in adds[:n]])
    out["add_rules"] = summary([timed(lambda t=t: svc.add(t)) for t in adds[n:2 * n]])
    settle(svc)
    svc.close()
    env = server_env(data, **env_embed)
    init = []
    for _ in range(3):
        with StdioMCP(server_argv(), env, stderr_path=log) as c:
            c.initialize()
            init.append((time.perf_counter() - c.spawned_at) * 1000)
    with StdioMCP(server_argv(), env, stderr_path=log) as c:
        c.initialize()
        for q in queries[:10]:
            c.call_tool("search_memory", {"query": q})
        out["mcp_search"] = summary([timed(lambda q=q: c.call_tool("search_memory", {"query": q}))
                                     for q in queries[:reps["search"]]])
        out["rss_mb"] = rss_mb(c.pid)[0]
        out["mcp_add_infer_false"] = summary([timed(lambda t=t: c.call_tool("add_memory", {"text": t, "infer": False}))
                                              for t in adds[2 * n:3 * n]])
        out["mcp_add_rules"] = summary([timed(lambda t=t: c.call_tool("add_memory", {"text": t}))
                                        for t in adds[3 * n:4 * n]])
    out["init"] = summary(init)
    shutil.rmtree(data, ignore_errors=True)
    return out


# -- Mem0 ---------------------------------------------------------------------------------------------
def mem0(size: int, root: Path, url: str, texts: list[str], queries: list[str], adds: list[str],
         reps: dict[str, int]) -> dict[str, Any]:
    d = root / "mem0"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    job = d / "job.json"
    job.write_text(json.dumps({"dir": str(d), "url": url, "memories": texts, "queries": queries, "adds": adds,
                               "search_reps": reps["search"], "add_reps": reps["add"]}))
    env = {**os.environ, "MEM0_TELEMETRY": "False", "MEM0_DIR": str(d / "home"), "OPENAI_API_KEY": "sk-local"}
    t = time.perf_counter()
    res = subprocess.run([str(PEERS_PY), str(BENCH / "peer_mem0.py"), str(job)], capture_output=True, text=True,
                         env=env)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"Mem0 worker failed:\n{res.stderr[-3000:]}")
    r = json.loads(res.stdout.strip().splitlines()[-1])
    shutil.rmtree(d, ignore_errors=True)
    return {"version": r["version"], "load_s": r["load_s"], "reopen_s": r["reopen_s"], "count": r["count"],
            "search": summary(r["search_ms"]), "add_infer_false": summary(r["add_ms"]), "rss_mb": r["rss_mb"],
            "hit_rate": r["hit_rate"], "bm25": r["bm25_enabled"], "wall_s": wall,
            "notes": sorted({ln.strip() for ln in res.stderr.splitlines() if "not installed" in ln})}


# -- the reference server ---------------------------------------------------------------------------------
def reference(size: int, root: Path, texts: list[str], queries: list[str], adds: list[str],
              reps: dict[str, int], log: Path) -> dict[str, Any]:
    d = root / "reference"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    path = d / "memory.jsonl"
    t = time.perf_counter()
    # the file its create_entities would have written: one entity per memory, the text as its observation
    path.write_text("\n".join(json.dumps({"type": "entity", "name": f"memory-{i}", "entityType": "memory",
                                          "observations": [text]}) for i, text in enumerate(texts)))
    load_s = time.perf_counter() - t
    env = {**os.environ, "MEMORY_FILE_PATH": str(path)}
    argv = ["node", str(REF_JS)]
    init = []
    for _ in range(3):
        with StdioMCP(argv, env, stderr_path=log) as c:
            c.initialize()
            init.append((time.perf_counter() - c.spawned_at) * 1000)
    out: dict[str, Any] = {"load_s": load_s, "init": summary(init)}
    with StdioMCP(argv, env, stderr_path=log) as c:
        info = c.initialize()
        out["version"] = info.get("serverInfo", {}).get("version", "?")
        for q in queries[:5]:
            c.call_tool("search_nodes", {"query": q})
        out["search"] = summary([timed(lambda q=q: c.call_tool("search_nodes", {"query": q}))
                                 for q in queries[:reps["search"]]])
        kw = [keyword(q) for q in queries[:reps["search"]]]
        hits = []

        def kw_search(k: str) -> None:
            hits.append(len(c.call_tool("search_nodes", {"query": k}).get("entities", [])))

        out["search_keyword"] = summary([timed(lambda k=k: kw_search(k)) for k in kw])
        out["keyword_hits_median"] = pct(hits, 50)
        out["rss_mb"] = rss_mb(c.pid)[0]
        out["add"] = summary([timed(lambda i=i, t=t: c.call_tool(
            "create_entities", {"entities": [{"name": f"new-{i}", "entityType": "memory", "observations": [t]}]}))
            for i, t in enumerate(adds[:reps["add"]])])
    shutil.rmtree(d, ignore_errors=True)
    return out


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def render(runs: list[dict[str, Any]]) -> str:
    cols = [label(r["size"]) for r in runs]
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, fn: Any) -> None:
        vals = []
        for r in runs:
            try:
                vals.append(fn(r))
            except (KeyError, TypeError):
                vals.append("-")
        rows.append((name, vals))

    p50 = lambda d: d["p50"]  # noqa: E731
    row("**in process: mcp-memory vs Mem0 OSS (same WordLlama vectors over HTTP)**", lambda r: "")
    row("search p50: mcp-memory", lambda r: fmt_ms(p50(r["ours"]["search"])))
    row("search p50: Mem0", lambda r: fmt_ms(p50(r["mem0"]["search"])))
    row("search p95: mcp-memory / Mem0", lambda r: f"{fmt_ms(r['ours']['search']['p95'])} / "
                                                  f"{fmt_ms(r['mem0']['search']['p95'])}")
    row("**ratio search p50, ours/Mem0**", lambda r: ratio(p50(r["ours"]["search"]), p50(r["mem0"]["search"])))
    row("add p50 infer=false: mcp-memory", lambda r: fmt_ms(p50(r["ours"]["add_infer_false"])))
    row("add p50 infer=False: Mem0", lambda r: fmt_ms(p50(r["mem0"]["add_infer_false"])))
    row("**ratio add p50 (infer=false), ours/Mem0**",
        lambda r: ratio(p50(r["ours"]["add_infer_false"]), p50(r["mem0"]["add_infer_false"])))
    row("add p50, mcp-memory default no-LLM path (rules: dedupe, related)", lambda r: fmt_ms(p50(r["ours"]["add_rules"])))
    row("load the corpus: mcp-memory import_memories / Mem0 batched vector_store.insert",
        lambda r: f"{r['ours']['load_s']:.1f} s / {r['mem0']['load_s']:.1f} s")
    row("process RSS after load + searches: mcp-memory server / Mem0 process",
        lambda r: f"{r['ours']['rss_mb']:.0f} / {r['mem0']['rss_mb']:.0f} MB")
    row("**over MCP stdio: mcp-memory vs the reference server**", lambda r: "")
    row("search p50: mcp-memory search_memory", lambda r: fmt_ms(p50(r["ours"]["mcp_search"])))
    row("search p50: reference search_nodes, same question", lambda r: fmt_ms(p50(r["reference"]["search"])))
    row("**ratio search p50, ours/reference**",
        lambda r: ratio(p50(r["ours"]["mcp_search"]), p50(r["reference"]["search"])))
    row("search p50: reference search_nodes, one keyword (median hits)",
        lambda r: f"{fmt_ms(p50(r['reference']['search_keyword']))} ({r['reference']['keyword_hits_median']:.0f})")
    row("add p50: mcp-memory add_memory infer=false", lambda r: fmt_ms(p50(r["ours"]["mcp_add_infer_false"])))
    row("add p50: mcp-memory add_memory (no LLM, rules)", lambda r: fmt_ms(p50(r["ours"]["mcp_add_rules"])))
    row("add p50: reference create_entities", lambda r: fmt_ms(p50(r["reference"]["add"])))
    row("**ratio add p50 (infer=false), ours/reference**",
        lambda r: ratio(p50(r["ours"]["mcp_add_infer_false"]), p50(r["reference"]["add"])))
    row("**ratio add p50 (rules), ours/reference**",
        lambda r: ratio(p50(r["ours"]["mcp_add_rules"]), p50(r["reference"]["add"])))
    row("spawn -> initialize p50: mcp-memory / reference",
        lambda r: f"{fmt_ms(p50(r['ours']['init']))} / {fmt_ms(p50(r['reference']['init']))}")
    row("server RSS after searches: mcp-memory / reference",
        lambda r: f"{r['ours']['rss_mb']:.0f} / {r['reference']['rss_mb']:.0f} MB")
    row("repetitions (search / add per path)", lambda r: f"{r['reps']['search']} / {r['reps']['add']}")
    row("wall time of this size (Mem0 worker alone)", lambda r: f"{r['wall_s']:.0f} s ({r['mem0']['wall_s']:.0f} s)")
    out = ["| | " + " | ".join(cols) + " |", "| --- | " + " | ".join("---:" for _ in cols) + " |"]
    out += [f"| {n} | " + " | ".join(v) + " |" for n, v in rows]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not peers_installed():
        return 2
    sizes = [int(s) for s in args.sizes.split(",") if s]
    root = Path(tempfile.mkdtemp(prefix="mcp-memory-peers-"))
    log = root / "servers-stderr.log"
    m = machine()
    print(machine_md(m), flush=True)
    print(f"load at start: {wait_quiet():.1f}", flush=True)
    mon = LoadMonitor().__enter__()
    embed = EmbedServer()
    runs: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        for size in sizes:
            t = time.perf_counter()
            reps = reps_for(size, args.quick)
            texts = corpus.memories(size)
            adds = corpus.memories(size + 4 * reps["add"])[size:]
            queries = corpus.queries(reps["search"] + 10)
            print(f"\n== {label(size)} ==", flush=True)
            run: dict[str, Any] = {"size": size, "reps": reps}
            run["ours"] = ours(size, root, embed.url, texts, queries, adds, reps, log)
            o = run["ours"]
            print(f"mcp-memory: search p50 {fmt_ms(o['search']['p50'])}, add p50 {fmt_ms(o['add_infer_false']['p50'])} "
                  f"(infer=false); MCP search {fmt_ms(o['mcp_search']['p50'])}, MCP add "
                  f"{fmt_ms(o['mcp_add_infer_false']['p50'])}", flush=True)
            run["reference"] = reference(size, root, texts, queries, adds, reps, log)
            r = run["reference"]
            print(f"reference server: search p50 {fmt_ms(r['search']['p50'])} (keyword "
                  f"{fmt_ms(r['search_keyword']['p50'])}), add p50 {fmt_ms(r['add']['p50'])}", flush=True)
            run["mem0"] = mem0(size, root, embed.url, texts, queries, adds, reps)
            r = run["mem0"]
            print(f"Mem0: load {r['load_s']:.0f} s, search p50 {fmt_ms(r['search']['p50'])}, add p50 "
                  f"{fmt_ms(r['add_infer_false']['p50'])}", flush=True)
            run["wall_s"] = time.perf_counter() - t
            runs.append(run)
    finally:
        embed.close()
        shutil.rmtree(root, ignore_errors=True)
        mon.__exit__(None, None, None)
    m["load during the run"] = mon.describe()
    total = time.perf_counter() - t0
    tab = render(runs)
    print("\n" + tab + f"\n\ntotal wall time {total / 60:.1f} min", flush=True)
    if not args.no_write and runs:
        mem0_v = runs[0]["mem0"]["version"]
        ref_v = runs[0]["reference"]["version"]
        notes = "; ".join(runs[0]["mem0"]["notes"]) or "none"
        body = (f"## Side by side with the peers (`bench/peers.py{' --quick' if args.quick else ''}`)\n\n"
                f"{machine_md(m)}\n- peers: mem0ai {mem0_v} (qdrant-client local mode, on disk), "
                f"@modelcontextprotocol/server-memory (serverInfo version {ref_v}), node {_node()}\n"
                f"- total wall time: {total / 60:.1f} min\n\n{tab}\n\n"
                "Ratios are ours / theirs (below 1: mcp-memory is faster). Same corpus, questions and new texts "
                "for every system, one user scope. mcp-memory and Mem0 embed through the same loopback "
                "OpenAI-compatible endpoint serving WordLlama (bench/embed_server.py), so each search and add "
                "pays one HTTP embedding call in both. Mem0 runs `infer=False` with a plain `pip install mem0ai`: "
                f"its optional parts were absent ({notes}), so its search is vector-only. The Mem0 and reference "
                "stores are loaded in bulk (Mem0's own vector_store.insert in batches of 1,000; the reference "
                "server's JSONL file written directly, in the format its create_entities writes); the add "
                "figures time each system's per-call add path. The reference server has no ranking and no "
                "embeddings: search_nodes is a case-insensitive substring scan that returns every match, so a "
                "whole question rarely matches (cheap, useless answers) and a keyword returns hundreds of "
                "entities at 100k; both are shown.\n")
        write_section("peers", body)
        out = BENCH / "results"
        out.mkdir(exist_ok=True)
        (out / "peers.json").write_text(json.dumps({"machine": m, "runs": runs, "total_s": total}, indent=1))
    return 0


def _node() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
