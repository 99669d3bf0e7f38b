"""Background extraction over MCP stdio (issue 8): `add_memory(wait=false)` latency, search latency
idle and during a burst of background extractions, and that every job finishes with its events.

    python bench/background.py [--seed 500] [--burst 30] [--searches 100] [--delay 2] [--no-write] [--no-wait]

A real `mcp-memory serve` is spawned and driven with raw JSON-RPC over its stdin/stdout
(bench/_common.py StdioMCP: one write and one read per call). Its LLM is an OpenAI-compatible
chat endpoint on loopback (tests/fake_openai.py, real HTTP) that answers every request after
`--delay` seconds with valid JSON: the extraction step gets one fact per input line
("User mentioned: ..."), the reconciliation step an ADD per new fact. Embeddings are the
default WordLlama, in the server.

1. Seed: `--seed` memories with add_memory(infer=false) (no model involved); `--settle` seconds for
   the index to take them in, then 20 warm-up searches.
2. Idle: `--searches` search_memory calls (corpus questions), no job in the queue.
3. Burst: `--burst` add_memory(wait=false) calls back to back (conversation turns as `messages`),
   each timed; every one must come back `queued` with a job id.
4. During the burst: search_memory calls, the same questions, back to back, for as long as jobs
   are pending or running (memory_jobs is asked between searches, not timed with them).
5. Drain: wait for every job; each must be `done` with at least one event whose memory is the
   extracted fact, and the fact must be found by search_memory.
6. Idle again: the same searches once the queue is empty (a check on drift of the machine).

Targets: add_memory(wait=false) p95 <= 50 ms; search p50 during the burst <= 2 x idle p50 (the
faster of the two idle phases, so a machine that got busier or quieter cannot flatter the ratio).
Writes the section "background" of bench/RESULTS.md (machine and load); exits 1 on a missed target.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import corpus  # noqa: E402
from bench._common import (  # noqa: E402
    LoadMonitor, StdioMCP, fmt_ms, loadavg, machine, machine_md, server_argv, server_env, summary, timed,
    wait_quiet, write_section,
)
from tests.fake_openai import FakeOpenAI, Fault, is_extraction, new_facts  # noqa: E402

ADD_P95_MS = 50.0
SEARCH_RATIO = 2.0
USER = "bench"


def scripted_model(delay: float):  # noqa: ANN201
    """The two LLM steps of add_memory, each answered after ``delay`` seconds."""

    def reply(system: str, user: str) -> Fault:
        if is_extraction(system):
            body = user.split("<input>", 1)[1].split("</input>", 1)[0].strip()
            lines = [ln.split(": ", 1)[1] if ": " in ln else ln for ln in body.splitlines() if ln.strip()]
            out: dict[str, Any] = {"facts": [f"User mentioned: {ln.strip()}" for ln in lines]}
        else:
            out = {"actions": [{"event": "ADD", "text": f, "reason": "new"} for f in new_facts(user)]}
        return Fault("sleep", seconds=delay, body=json.dumps(out))

    return reply


def search(c: StdioMCP, q: str) -> float:
    return timed(lambda: c.call_tool("search_memory", {"query": q, "limit": 10, "user_id": USER}))


def job_counts(c: StdioMCP) -> dict[str, int]:
    return c.call_tool("memory_jobs", {"user_id": USER})["counts"]


def run(args: argparse.Namespace, data_dir: Path, fake: FakeOpenAI) -> dict[str, Any]:
    env = server_env(data_dir, MCP_MEMORY_LLM_BASE_URL=fake.url, MCP_MEMORY_LLM_MODEL="scripted",
                     MCP_MEMORY_LLM_TIMEOUT=str(max(10.0, 5 * args.delay)))
    seed = corpus.memories(args.seed, seed=3)
    burst = corpus.memories(args.seed + args.burst, seed=4)[-args.burst:]
    questions = corpus.queries(args.searches, seed=5)
    out: dict[str, Any] = {}
    with StdioMCP(server_argv(), env, stderr_path=data_dir.parent / "server.log") as c:
        c.initialize()
        for text in seed:
            r = c.call_tool("add_memory", {"text": text, "infer": False, "user_id": USER})
            assert r["extraction"] == "skipped", r
        # let the index take in the seed and compact (it does once the store is quiet for 6 s), then warm up
        time.sleep(args.settle)
        for q in questions[:20]:
            search(c, q)
        out["idle"] = [search(c, q) for q in questions]

        adds, jobs = [], []
        for i, text in enumerate(burst):
            result: dict[str, Any] = {}

            def add(text: str = text, i: int = i) -> None:
                result.update(c.call_tool("add_memory", {"messages": [
                    {"role": "user", "content": text, "created_at": f"2024-05-{1 + i % 28:02d}T10:00:00Z"}],
                    "user_id": USER, "wait": False}))

            adds.append(timed(add))
            assert result["extraction"] == "queued" and result["job_id"], result
            jobs.append(result["job_id"])
        out["adds"] = adds
        burst_started = time.perf_counter()

        during, counts_seen, i = [], [], 0
        while True:
            counts = job_counts(c)
            counts_seen.append(counts)
            if not counts.get("pending") and not counts.get("running"):
                break
            during += [search(c, questions[(i + k) % len(questions)]) for k in range(5)]
            i += 5
        out["drain_s"] = time.perf_counter() - burst_started
        out["during"] = during
        out["running_max"] = max(cs.get("running", 0) for cs in counts_seen)

        states, bad = {}, []
        for jid, text in zip(jobs, burst):
            job = c.call_tool("memory_jobs", {"job_id": jid})["jobs"][0]
            states[job["state"]] = states.get(job["state"], 0) + 1
            want = f"User mentioned: {text.strip()}"
            if job["state"] != "done" or not job.get("events") or not any(
                    e["event"] == "ADD" and e["memory"] == want for e in job["events"]):
                bad.append((jid, job))
        out["states"], out["bad_jobs"] = states, bad
        found = 0
        for text in burst:
            hits = c.call_tool("search_memory", {"query": text, "limit": 5, "user_id": USER})["hits"]
            found += any(h["memory"] == f"User mentioned: {text.strip()}" for h in hits)
        out["found"] = found
        out["idle_after"] = [search(c, q) for q in questions]
    out["llm_requests"] = len(fake.chat_requests())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=500, help="memories stored before (infer=false)")
    ap.add_argument("--burst", type=int, default=30, help="add_memory(wait=false) calls in the burst")
    ap.add_argument("--searches", type=int, default=100, help="searches per idle phase")
    ap.add_argument("--delay", type=float, default=2.0, help="seconds the scripted model takes per request")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to let the index settle after seeding")
    ap.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    ap.add_argument("--no-wait", action="store_true", help="start even if the machine is busy")
    args = ap.parse_args()

    load_start = loadavg() if args.no_wait else wait_quiet()
    fake = FakeOpenAI()
    fake.script = scripted_model(args.delay)
    try:
        with tempfile.TemporaryDirectory() as tmp, LoadMonitor() as monitor:
            (Path(tmp) / "data").mkdir()
            res = run(args, Path(tmp) / "data", fake)
    finally:
        fake.close()

    add, idle, during, after = (summary(res[k]) for k in ("adds", "idle", "during", "idle_after"))
    # the baseline is the faster of the two idle phases, so drift of the shared machine cannot flatter the ratio
    base = min(idle["p50"], after["p50"])
    ratio = during["p50"] / base
    jobs_ok = not res["bad_jobs"] and res["found"] == args.burst
    checks = [
        (f"add_memory(wait=false) p95 {fmt_ms(add['p95'])} <= {ADD_P95_MS:.0f} ms", add["p95"] <= ADD_P95_MS),
        (f"search p50 during the burst {fmt_ms(during['p50'])} <= {SEARCH_RATIO:.0f} x idle p50 "
         f"{fmt_ms(base)} (the faster idle phase; ratio {ratio:.2f})", ratio <= SEARCH_RATIO),
        (f"all {args.burst} jobs done with their events ({res['states']}), every extracted fact found by "
         f"search ({res['found']}/{args.burst})", jobs_ok),
    ]
    ok = all(passed for _, passed in checks)

    def row(name: str, s: dict[str, float]) -> str:
        return f"| {name} | {s['n']} | {fmt_ms(s['p50'])} | {fmt_ms(s['p95'])} | {fmt_ms(s['max'])} |"

    lines = [
        "## Background extraction (`bench/background.py`)", "",
        f"`python bench/background.py --seed {args.seed} --burst {args.burst} --searches {args.searches} "
        f"--delay {args.delay:g}`; load at start {load_start:.2f}, during the run {monitor.describe()}", "",
        machine_md(machine()), "",
        f"A real `mcp-memory serve` over stdio (raw JSON-RPC, client wall time per call) with an OpenAI-compatible "
        f"chat endpoint on loopback that answers each request after {args.delay:g} s (extraction, then "
        f"reconciliation: two requests per job; {res['llm_requests']} in all). Store seeded with {args.seed} "
        f"memories (infer=false). The burst: {args.burst} add_memory(wait=false) calls back to back; the "
        f"server's worker ran up to {res['running_max']} jobs at once and the queue drained "
        f"{res['drain_s']:.1f} s after the last add; searches ran back to back all that time.", "",
        "| call | n | p50 | p95 | max |", "|---|---|---|---|---|",
        row("add_memory(wait=false), during the burst", add),
        row("search_memory, idle (before the burst)", idle),
        row("search_memory, during the burst", during),
        row("search_memory, idle again (after)", after), "",
    ]
    lines += [f"- {'ok' if passed else 'MISSED'}: {text}" for text, passed in checks]
    if res["bad_jobs"]:
        lines.append(f"- jobs without the expected event: {len(res['bad_jobs'])}, e.g. {res['bad_jobs'][0]}")
    lines += ["", f"result: {'OK' if ok else 'TARGET MISSED'}"]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("background", body)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
