"""Speed and footprint of mcp-memory at 1k, 10k, 100k (and 1M with --full) memories.

For each size, in one run on this machine:
1. bulk import of a realistic corpus (bench/corpus.py) into a fresh store: memories/s;
2. in process (`MemoryService`): search_memory p50/p95, add p50/p95 with no LLM (the default
   rules path, and infer=false);
3. over MCP stdio (a real `mcp-memory serve` process, raw JSON-RPC client): spawn -> initialize
   reply, spawn -> first search answered, then search and add latency on a warm server, and
   the server process's RSS after loading and searching. Adds with the rules path are timed in
   runs of 300 in a row (long enough to hold an index write) in three servers, pooled.
Prints a scaling table, writes it to bench/RESULTS.md (section "speed") and the raw figures to
bench/results/speed.json, and exits 1 when a target of issue 6 is missed.

    .venv/bin/python bench/speed.py            # 1k, 10k, 100k (~15 min)
    .venv/bin/python bench/speed.py --full     # + 1M (much longer; the run says how long)
    .venv/bin/python bench/speed.py --sizes 1000 --quick   # smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp_memory.process import single_threaded_blas  # noqa: E402

single_threaded_blas()  # in process as in the server: one BLAS thread (before numpy loads)

import corpus  # noqa: E402
from _common import (  # noqa: E402
    BENCH, LoadMonitor, StdioMCP, fmt_ms, machine, machine_md, proc_cpu_ms, rss_mb, server_argv, server_env,
    settle, summary, timed, timed_cpu, wait_quiet, write_section,
)

from mcp_memory.config import Settings  # noqa: E402
from mcp_memory.service import MemoryService  # noqa: E402
from mcp_memory.store.matrix_file import path_in  # noqa: E402

IDLE_S = 3.0  # RSS is read this long after the last search (the server gives freed heap back when idle)
INDEX_SETTLE_S = 1.5  # after the adds over MCP: the index writer waits up to 1 s for a burst to end, then writes
ADD_ROUNDS = 3  # servers the adds over MCP are timed in (pooled): one server's run varies by ~1 ms from the next
TARGETS = {  # issue 6, "Speed and footprint"
    "search_p50_100k": 10.0, "search_p95_100k": 25.0, "search_p50_1m": 30.0, "mcp_search_p50_100k": 15.0,
    "mcp_add_p50": 5.0, "import_rate": 2000.0, "init_ms": 400.0, "first_search_ms": 1500.0, "rss_mb_100k": 300.0,
}


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n >= 1000 else str(n)


def dir_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20 if path.exists() else 0.0


def reps_for(size: int, quick: bool) -> dict[str, int]:
    if quick:
        return {"search": 30, "add": 10, "mcp_search": 30, "mcp_add": 10, "startup": 2}
    if size >= 1_000_000:
        return {"search": 60, "add": 20, "mcp_search": 60, "mcp_add": 100, "startup": 3}
    # adds over MCP: a run of 1-2 s, long enough to hold an index write (`IndexSync._settle`)
    return {"search": 300, "add": 100, "mcp_search": 200, "mcp_add": 300, "startup": 7}


def build(size: int, data_dir: Path) -> dict[str, Any]:
    shutil.rmtree(data_dir, ignore_errors=True)
    t = time.perf_counter()
    texts = corpus.memories(size)
    gen_s = time.perf_counter() - t
    svc = MemoryService(Settings.from_env({}, data_dir=data_dir))
    t = time.perf_counter()
    svc.open()  # loads the embedder, and opens the search index in the background
    # start-up cost (measured by the start-up figures), not import cost: at 1k the import otherwise
    # raced this process's first `import lancedb` for the GIL (0.9-1.1k/s instead of 4.8-5.1k/s)
    svc.sync.wait_ready()
    open_s = time.perf_counter() - t
    res = svc.import_memories(texts)
    stats = svc.stats()
    svc.close()
    assert stats["memories_active"] == size == stats["index_rows"], stats
    return {"generate_s": gen_s, "open_s": open_s, "import_s": res.seconds, "rate": res.rate,
            "embed_s": res.embed_seconds, "write_s": res.write_seconds, "index_s": res.index_seconds,
            "sqlite_mb": dir_mb(data_dir / "memory.sqlite3") + dir_mb(data_dir / "memory.sqlite3-wal"),
            "lance_mb": dir_mb(data_dir / "lancedb")}


def in_process(data_dir: Path, queries: list[str], adds: list[str], reps: dict[str, int]) -> dict[str, Any]:
    svc = MemoryService(Settings.from_env({}, data_dir=data_dir))
    svc.open()
    for q in queries[:10]:  # warm caches (first LanceDB reads, index metadata)
        svc.search(q)
    search = [timed_cpu(lambda q=q: svc.search(q)) for q in queries[:reps["search"]]]
    hits = sum(1 for q in queries[:20] if svc.search(q).hits) / 20
    half = reps["add"]
    add_rules = [timed_cpu(lambda t=t: svc.add(t)) for t in adds[:half]]
    add_raw = [timed_cpu(lambda t=t: svc.add(t, infer=False)) for t in adds[half:2 * half]]
    settle(svc)
    if svc.matrix is not None and svc.matrix.rows >= svc.matrix.file_min_rows:
        # what a server does 5 s after loading from SQLite (its timer may be writing it right now:
        # write it here too, so that it is there before the next process is spawned)
        svc.matrix.save()
    svc.close()
    wall = lambda xs: summary([w for w, _ in xs])  # noqa: E731
    cpu = lambda xs: summary([c for _, c in xs])  # noqa: E731
    return {"search": wall(search), "search_cpu": cpu(search), "hit_rate": hits, "add_rules": wall(add_rules),
            "add_rules_cpu": cpu(add_rules), "add_infer_false": wall(add_raw), "add_infer_false_cpu": cpu(add_raw)}


def over_mcp(data_dir: Path, queries: list[str], adds: list[str], reps: dict[str, int],
             log: Path) -> dict[str, Any]:
    env = server_env(data_dir)
    init, first = [], []
    matrix_file = path_in(data_dir).exists()  # written by the in-process run before
    for _ in range(reps["startup"]):
        with StdioMCP(server_argv(), env, stderr_path=log) as c:
            c.initialize()
            init.append((time.perf_counter() - c.spawned_at) * 1000)
            c.call_tool("search_memory", {"query": queries[0]})
            first.append((time.perf_counter() - c.spawned_at) * 1000)
    with StdioMCP(server_argv(), env, stderr_path=log) as c:
        c.initialize()
        for q in queries[:10]:
            c.call_tool("search_memory", {"query": q})
        cpu0 = proc_cpu_ms(c.pid)
        search = [timed(lambda q=q: c.call_tool("search_memory", {"query": q}))
                  for q in queries[:reps["mcp_search"]]]
        search_cpu = (proc_cpu_ms(c.pid) - cpu0) / len(search)
        rss_busy, hwm = rss_mb(c.pid)
        time.sleep(IDLE_S)  # a server is idle most of its life: its footprint then
        rss, _ = rss_mb(c.pid)
        some_id = c.call_tool("search_memory", {"query": queries[0]})["hits"][0]["id"]
        floor = [timed(lambda: c.call_tool("get_memory", {"memory_id": some_id})) for _ in range(100)]
        half = reps["mcp_add"]
        cpu0 = proc_cpu_ms(c.pid)
        add_rules = [timed(lambda t=t: c.call_tool("add_memory", {"text": t})) for t in adds[:half]]
        time.sleep(INDEX_SETTLE_S)  # the CPU of the index write that follows the adds counts too
        add_cpu = (proc_cpu_ms(c.pid) - cpu0) / len(add_rules)
        add_raw = [timed(lambda t=t: c.call_tool("add_memory", {"text": t, "infer": False}))
                   for t in adds[half:2 * half]]
        rss_after_adds, hwm2 = rss_mb(c.pid)
    rounds = [summary(add_rules)["p50"]]
    for r in range(2, ADD_ROUNDS + 1):  # more servers, each with new texts, right after a first search
        with StdioMCP(server_argv(), env, stderr_path=log) as c:
            c.initialize()
            c.call_tool("search_memory", {"query": queries[0]})
            more = [timed(lambda t=t: c.call_tool("add_memory", {"text": t})) for t in adds[r * half:(r + 1) * half]]
        rounds.append(summary(more)["p50"])
        add_rules += more
    return {"init": summary(init), "first_search": summary(first), "matrix_file": matrix_file, "search": summary(search),
            "search_server_cpu_mean": search_cpu, "floor": summary(floor), "add_rules_server_cpu_mean": add_cpu,
            "add_rules": summary(add_rules), "add_rules_rounds": rounds, "add_infer_false": summary(add_raw), "rss_mb": rss,
            "rss_busy_mb": rss_busy,
            "peak_rss_mb": max(hwm, hwm2), "rss_after_adds_mb": rss_after_adds}


def run_size(size: int, root: Path, quick: bool, log: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    reps = reps_for(size, quick)
    data_dir = root / f"store-{label(size)}"
    print(f"\n== {label(size)} memories ==", flush=True)
    b = build(size, data_dir)
    print(f"bulk import: {b['rate']:,.0f} memories/s ({b['import_s']:.1f} s: embed {b['embed_s']:.1f}, "
          f"SQLite {b['write_s']:.1f}, index {b['index_s']:.1f}); store {b['sqlite_mb']:.0f} MB SQLite + "
          f"{b['lance_mb']:.0f} MB LanceDB", flush=True)
    extra = reps["add"] * 2 + reps["mcp_add"] * (ADD_ROUNDS + 1)
    adds = corpus.memories(size + extra)[size:]  # same generator, past the stored prefix: new texts
    queries = corpus.queries(max(reps["search"], reps["mcp_search"]) + 10)
    ip = in_process(data_dir, queries, adds[:reps["add"] * 2], reps)
    print(f"in process: search p50 {fmt_ms(ip['search']['p50'])} p95 {fmt_ms(ip['search']['p95'])}; "
          f"add p50 {fmt_ms(ip['add_rules']['p50'])} (rules), {fmt_ms(ip['add_infer_false']['p50'])} (infer=false)",
          flush=True)
    mcp = over_mcp(data_dir, queries, adds[reps["add"] * 2:], reps, log)
    print(f"over MCP: init {fmt_ms(mcp['init']['p50'])}, first search {fmt_ms(mcp['first_search']['p50'])}; "
          f"search p50 {fmt_ms(mcp['search']['p50'])} p95 {fmt_ms(mcp['search']['p95'])}; add p50 "
          f"{fmt_ms(mcp['add_rules']['p50'])} (rules), {fmt_ms(mcp['add_infer_false']['p50'])} (infer=false); "
          f"RSS {mcp['rss_mb']:.0f} MB idle, {mcp['rss_busy_mb']:.0f} MB right after the searches "
          f"(peak {mcp['peak_rss_mb']:.0f})", flush=True)
    wall = time.perf_counter() - t0
    print(f"({label(size)} took {wall:.0f} s)", flush=True)
    return {"size": size, "reps": reps, "build": b, "in_process": ip, "mcp": mcp, "wall_s": wall}


def table(runs: list[dict[str, Any]]) -> str:
    cols = [label(r["size"]) for r in runs]
    rows: list[tuple[str, str, list[str]]] = []

    def row(name: str, target: str, fn: Any) -> None:
        rows.append((name, target, [fn(r) for r in runs]))

    row("bulk import, memories/s", ">= 2,000", lambda r: f"{r['build']['rate']:,.0f}")
    row("search in process p50", "<= 10 ms @100k, <= 30 ms @1M", lambda r: fmt_ms(r["in_process"]["search"]["p50"]))
    row("search in process p95", "<= 25 ms @100k", lambda r: fmt_ms(r["in_process"]["search"]["p95"]))
    row("search in process, CPU ms p50 (all threads)", "",
        lambda r: fmt_ms(r["in_process"]["search_cpu"]["p50"]))
    row("search over MCP p50", "<= 15 ms @100k", lambda r: fmt_ms(r["mcp"]["search"]["p50"]))
    row("search over MCP p95", "", lambda r: fmt_ms(r["mcp"]["search"]["p95"]))
    row("server CPU per search over MCP (mean)", "", lambda r: fmt_ms(r["mcp"]["search_server_cpu_mean"]))
    row("MCP floor: get_memory over MCP p50 (one SQLite read)", "", lambda r: fmt_ms(r["mcp"]["floor"]["p50"]))
    row("add in process p50 (no LLM, rules)", "", lambda r: fmt_ms(r["in_process"]["add_rules"]["p50"]))
    row("add in process p50 (infer=false)", "", lambda r: fmt_ms(r["in_process"]["add_infer_false"]["p50"]))
    row("add over MCP p50 (no LLM, rules)", "<= 5 ms", lambda r: fmt_ms(r["mcp"]["add_rules"]["p50"]))
    row("add over MCP p95 (no LLM, rules)", "", lambda r: fmt_ms(r["mcp"]["add_rules"]["p95"]))
    row(f"... p50 in each of the {ADD_ROUNDS} servers", "",
        lambda r: " / ".join(fmt_ms(x) for x in r["mcp"].get("add_rules_rounds", [])))
    row("server CPU per add over MCP (rules, mean, incl. the index write after)", "", lambda r: fmt_ms(r["mcp"]["add_rules_server_cpu_mean"]))
    row("add over MCP p50 (infer=false)", "", lambda r: fmt_ms(r["mcp"]["add_infer_false"]["p50"]))
    row("spawn -> initialize reply p50", "<= 400 ms", lambda r: fmt_ms(r["mcp"]["init"]["p50"]))
    row("spawn -> first search answered p50", "<= 1.5 s", lambda r: fmt_ms(r["mcp"]["first_search"]["p50"]))
    row("... with the matrix's file copy there", "", lambda r: "yes" if r["mcp"].get("matrix_file") else "no")
    row(f"server RSS after load + searches, idle {IDLE_S:.0f} s", "<= 300 MB @100k",
        lambda r: f"{r['mcp']['rss_mb']:.0f} MB")
    row("server RSS right after the searches", "", lambda r: f"{r['mcp'].get('rss_busy_mb', 0):.0f} MB")
    row("server peak RSS (incl. adds)", "", lambda r: f"{r['mcp']['peak_rss_mb']:.0f} MB")
    row("disk: SQLite + LanceDB", "", lambda r: f"{r['build']['sqlite_mb']:.0f} + {r['build']['lance_mb']:.0f} MB")
    row("repetitions (search / add / MCP search / MCP add / spawns)", "",
        lambda r: "/".join(str(r["reps"][k]) for k in ("search", "add", "mcp_search", "mcp_add", "startup")))
    row("wall time of this size", "", lambda r: f"{r['wall_s']:.0f} s")
    out = ["| | target | " + " | ".join(cols) + " |", "| --- | --- | " + " | ".join("---:" for _ in cols) + " |"]
    out += [f"| {n} | {t} | " + " | ".join(v) + " |" for n, t, v in rows]
    return "\n".join(out)


def verdicts(runs: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    out: list[tuple[str, bool, str]] = []
    by = {r["size"]: r for r in runs}
    T = TARGETS

    def check(name: str, value: float, target: float, le: bool = True, unit: str = "ms") -> None:
        ok = value <= target if le else value >= target
        shown = f"{value:,.0f} {unit}" if unit != "ms" else fmt_ms(value)
        tshown = f"{target:,.0f} {unit}" if unit != "ms" else fmt_ms(target)
        out.append((name, ok, f"{shown} ({'<=' if le else '>='} {tshown})"))

    for r in runs:
        check(f"bulk import @{label(r['size'])}", r["build"]["rate"], T["import_rate"], le=False, unit="memories/s")
    for r in runs:
        if r["size"] <= 100_000:
            check(f"add over MCP p50, no LLM @{label(r['size'])}", r["mcp"]["add_rules"]["p50"], T["mcp_add_p50"])
    for r in runs:
        if r["size"] <= 100_000:
            check(f"spawn -> initialize p50 @{label(r['size'])}", r["mcp"]["init"]["p50"], T["init_ms"])
            check(f"spawn -> first search p50 @{label(r['size'])}", r["mcp"]["first_search"]["p50"],
                  T["first_search_ms"])
    if 100_000 in by:
        r = by[100_000]
        check("search in process p50 @100k", r["in_process"]["search"]["p50"], T["search_p50_100k"])
        check("search in process p95 @100k", r["in_process"]["search"]["p95"], T["search_p95_100k"])
        check("search over MCP p50 @100k", r["mcp"]["search"]["p50"], T["mcp_search_p50_100k"])
        check("server RSS @100k", r["mcp"]["rss_mb"], T["rss_mb_100k"], unit="MB")
    if 1_000_000 in by:
        check("search in process p50 @1M", by[1_000_000]["in_process"]["search"]["p50"], T["search_p50_1m"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated store sizes")
    ap.add_argument("--full", action="store_true", help="also 1,000,000 memories")
    ap.add_argument("--quick", action="store_true", help="few repetitions (a smoke run; figures are rough)")
    ap.add_argument("--work-dir", type=Path, default=None, help="where the stores are built (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the stores after the run")
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md / results/speed.json")
    ap.add_argument("--no-wait", action="store_true", help="start even if the machine is busy (load >= 1)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.full and 1_000_000 not in sizes:
        sizes.append(1_000_000)
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="mcp-memory-speed-"))
    root.mkdir(parents=True, exist_ok=True)
    log = root / "server-stderr.log"
    m = machine()
    print(machine_md(m), flush=True)
    if not args.no_wait:
        print(f"load at start: {wait_quiet():.1f}", flush=True)
    t0 = time.perf_counter()
    runs = []
    try:
        with LoadMonitor() as load:
            for size in sizes:
                runs.append(run_size(size, root, args.quick, log))
                if not args.keep:
                    shutil.rmtree(root / f"store-{label(size)}", ignore_errors=True)
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    m["load during the run"] = load.describe()
    total = time.perf_counter() - t0
    tab = table(runs)
    checks = verdicts(runs)
    lines = [f"- {'MET   ' if ok else 'MISSED'} {name}: {detail}" for name, ok, detail in checks]
    print("\n" + tab + "\n\n" + "\n".join(lines) + f"\n\ntotal wall time {total / 60:.1f} min", flush=True)
    if not args.no_write:
        body = (f"## Speed and footprint (`bench/speed.py{' --full' if args.full else ''}"
                f"{' --quick' if args.quick else ''}`)\n\n{machine_md(m)}\n- total wall time: {total / 60:.1f} min\n\n"
                f"{tab}\n\nTargets (issue 6):\n\n" + "\n".join(lines) + "\n\n"
                "Store: the default user's facts only (one scope holds every memory, the worst case for a "
                "scoped search). Corpus: bench/corpus.py (LoCoMo turns, varied, and templated personal facts); "
                "queries: LoCoMo questions and questions about the templated facts. Latencies are wall-clock "
                "per call; MCP figures use a raw JSON-RPC stdio client (one write, one read per call); "
                "start-up figures are with a warm page cache. \"rules\" is the default add path without an "
                "LLM (statement split, exact and near-duplicate checks, related memories); infer=false "
                f"stores as given. Rules-path adds over MCP: {ADD_ROUNDS} servers, each timing a run of adds "
                "in a row (each run long enough to hold an index write), pooled; each adds to the store, so "
                "the 1k store ends near 2k.\n")
        name = "speed-full" if args.full else "speed"  # a long --full run is not overwritten by a default one
        write_section(name, body)
        out = BENCH / "results"
        out.mkdir(exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps({"machine": m, "runs": runs, "checks": checks,
                                                    "total_s": total}, indent=1))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
