"""Recall latency as the message log grows: the shipped ranking next to the full-text query recall
ran before the LoCoMo work, in process and over MCP stdio, at 1k, 10k and 100k messages.

    python bench/recall_scale.py [--sizes 1000,10000,100000] [--queries 200] [--no-write]

The log is one user's: LoCoMo turns (../shared/data/locomo-dev.json) replayed as sessions of
their conversations, each replay shifted by a year so dates do not repeat, until the size is
reached; queries are LoCoMo questions. Rows are written straight through the store (the
logging path is not what is measured), then embedded by the index worker's own method.
Writes the section "Recall latency by log size" of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.locomo import pct  # noqa: E402
from bench.locomo_data import DATA, load  # noqa: E402
from bench.machine import machine_line, write_section  # noqa: E402
from mcp_memory.config import Settings  # noqa: E402
from mcp_memory.models import Scope  # noqa: E402
from mcp_memory.recall_rank import RecallRanker  # noqa: E402
from mcp_memory.service import MemoryService  # noqa: E402
from mcp_memory.store.messages import Filters  # noqa: E402
from mcp_memory.store.sql import SQLStore  # noqa: E402
from mcp_memory.text import fts_query  # noqa: E402

BEFORE = ("SELECT m.id, m.role, m.name, m.content, m.created_at, m.run_id FROM messages_fts "
          "JOIN messages m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? AND m.user_id = ? "
          "ORDER BY bm25(messages_fts), m.created_at DESC LIMIT ? OFFSET ?")  # recall's query before


def timed(fn: Any, questions: list[str]) -> str:
    for q in questions[:20]:  # warm the page cache and the statement cache
        fn(q)
    times = []
    for q in questions:
        t0 = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t0) * 1000)
    return f"{statistics.median(times):.1f} / {pct(times, 95):.1f}"


def build(svc: MemoryService, convs: list[dict[str, Any]], size: int) -> None:
    turns = [(c["id"], t) for c in convs for t in c["turns"]]
    n, replay = 0, 0
    while n < size:
        with svc.sql.write() as conn:
            session: list[dict[str, Any]] = []
            key = None
            for ci, t in turns:
                if n >= size:
                    break
                if key != (ci, t["session"]) and session:
                    SQLStore.insert_messages(conn, session, Scope(user_id="me", run_id=f"{replay}-{key}"))
                    session = []
                key = (ci, t["session"])
                at = t["at"] + timedelta(days=366 * replay)
                session.append({"role": "user", "name": t["speaker"], "content": t["content"],
                                "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
                n += 1
            if session:
                SQLStore.insert_messages(conn, session, Scope(user_id="me", run_id=f"{replay}-{key}"))
        replay += 1
    while svc.sync.embed_messages():
        pass


async def over_mcp(data_dir: Path, questions: list[str]) -> list[float]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")}
    env["MCP_MEMORY_DATA_DIR"] = str(data_dir)
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_memory", "serve"], env=env)
    times = []
    async with Client(params, read_timeout_seconds=120) as client:
        for q in questions[:10]:  # the first calls also wait for the index and the embedder to load
            await client.call_tool("recall", {"query": q, "user_id": "me"})
        for q in questions:
            t0 = time.perf_counter()
            result = await client.call_tool("recall", {"query": q, "limit": 10, "user_id": "me"})
            times.append((time.perf_counter() - t0) * 1000)
            assert not result.is_error, result.content[0].text
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    convs = load(args.data)
    questions = [q["q"] for c in convs for q in c["questions"]][:: max(1, 999 // args.queries)][: args.queries]
    lines = [machine_line() + f"; load average {os.getloadavg()[0]:.2f} at start", "",
             f"One user's log; {len(questions)} LoCoMo questions, limit 10; p50 / p95 in ms. 'before' is the "
             "full-text query recall ran before the LoCoMo work, 'shipped' mcp_memory/recall_rank.py.", "",
             "| messages | before, in process | shipped, in process | shipped, MCP stdio | DB size |",
             "|---|---|---|---|---|"]
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            svc = MemoryService(Settings.from_env({}, data_dir=data_dir))
            svc.open()
            t0 = time.perf_counter()
            build(svc, convs, size)
            built = time.perf_counter() - t0
            conn, ranker = svc.sql.conn, RecallRanker(svc.sql, svc.embedder)
            cells = [timed(lambda q: conn.execute(BEFORE, [fts_query(q), "me", 11, 0]).fetchall(), questions),
                     timed(lambda q: ranker.rank(q, fts_query(q) or "", Filters("me"), 11), questions)]
            svc.close()
            mcp_times = asyncio.run(over_mcp(data_dir, questions))
            cells.append(f"{statistics.median(mcp_times):.1f} / {pct(mcp_times, 95):.1f}")
            mb = sum(p.stat().st_size for p in data_dir.glob("memory.sqlite3*")) / 1e6
            lines.append(f"| {size:,} | " + " | ".join(cells) + f" | {mb:.0f} MB |")
            print(lines[-1], f"(built and embedded in {built:.1f} s)", flush=True)
    print("\n".join(lines))
    if not args.no_write:
        write_section("Recall latency by log size", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
