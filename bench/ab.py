"""A/B: servers from two (or more) checkouts of mcp-memory, spawned in turn on copies of one store.

On a shared, noisy machine two benchmark runs minutes apart differ by as much as the changes being
measured; sessions of each version interleaved in one run compare them fairly. Each session copies
the store (so no version sees what another wrote), spawns `python -m mcp_memory serve` with the
checkout's package first on the path, and measures: spawn -> first search answered, 200
search_memory calls, RSS 3 s after them, 60 add_memory calls with the rules and 60 with
infer=false (new texts each session). Prints p50 per version; writes nothing.

    git worktree add /tmp/old <commit>
    .venv/bin/python bench/ab.py --size 100000 /tmp/old .        # builds the store once, in a temp dir
    .venv/bin/python bench/ab.py --store /tmp/s100k --sessions 5 /tmp/old .
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import corpus  # noqa: E402
from _common import StdioMCP, rss_mb, server_argv, server_env, settle, summary, timed  # noqa: E402


def build(size: int, store: Path) -> None:
    from mcp_memory.config import Settings
    from mcp_memory.service import MemoryService

    svc = MemoryService(Settings.from_env({}, data_dir=store))
    svc.open()
    svc.import_memories(corpus.memories(size))
    settle(svc)
    svc.close()


def session(code: Path, store: Path, work: Path, queries: list[str], adds: list[str]) -> dict[str, Any]:
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(store, run)
    env = server_env(run)
    env["PYTHONPATH"] = str(code)
    out: dict[str, Any] = {}
    # the child runs in the temp dir: `python -m` puts its working directory on the path before
    # PYTHONPATH, so a server started from a checkout would import that checkout's package
    with StdioMCP(server_argv(), env, stderr_path=work / "server-stderr.log", cwd=str(work)) as c:
        c.initialize()
        c.call_tool("search_memory", {"query": queries[0]})
        out["first search"] = [(time.perf_counter() - c.spawned_at) * 1000]
        for q in queries[1:11]:
            c.call_tool("search_memory", {"query": q})
        out["search"] = [timed(lambda q=q: c.call_tool("search_memory", {"query": q})) for q in queries[11:211]]
        time.sleep(3)
        out["RSS idle"] = [rss_mb(c.pid)[0]]
        out["add (rules)"] = [timed(lambda t=t: c.call_tool("add_memory", {"text": t})) for t in adds[:60]]
        out["add (infer=false)"] = [timed(lambda t=t: c.call_tool("add_memory", {"text": t, "infer": False}))
                                    for t in adds[60:120]]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkouts", nargs="+", type=Path, help="directories holding an mcp_memory package")
    ap.add_argument("--store", type=Path, help="store to copy for each session (built if missing)")
    ap.add_argument("--size", type=int, default=100_000, help="memories of a store built here")
    ap.add_argument("--sessions", type=int, default=3, help="sessions per checkout")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mcp-memory-ab-"))
    try:
        store = args.store or work / "store"
        if not (store / "memory.sqlite3").exists():
            print(f"building a {args.size:,}-memory store in {store} ...", flush=True)
            build(args.size, store)
        queries = corpus.queries(220)
        fresh = corpus.memories(args.size + 120 * args.sessions * len(args.checkouts) + 200_000)[args.size + 200_000:]
        results: dict[Path, dict[str, list[float]]] = {c: {} for c in args.checkouts}
        k = 0
        for _ in range(args.sessions):
            for code in args.checkouts:
                for name, values in session(code.resolve(), store, work, queries, fresh[k:k + 120]).items():
                    results[code].setdefault(name, []).extend(values)
                k += 120
        for code, measures in results.items():
            shown = ", ".join(f"{name} {summary(v)['p50']:.1f}" for name, v in measures.items())
            print(f"{code}: {shown}  (p50; ms, RSS in MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
