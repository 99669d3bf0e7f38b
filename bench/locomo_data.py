"""LoCoMo for the benchmarks: load the conversations (evidence ids normalised) and ingest a
conversation into a running `mcp-memory serve` over MCP stdio. Shared by locomo.py,
locomo_context.py, locomo_ablation.py and recall_scale.py."""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mcp_memory.text import normalize

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
# The method was developed on the first three conversations of the dev file and checked on its
# last two; the rest of LoCoMo's locomo10.json was first used as a blind check (its misses then led
# to the when-question boost: bench/RESULTS.md says which figures are blind).
DEVELOPMENT = ("conv-26", "conv-30", "conv-41")
VALIDATION = ("conv-42", "conv-43")


def splits(convs: list[dict[str, Any]]) -> dict[str, set[int]]:
    """The conversations of ``convs`` by how they were used, by sample id: development, validation,
    unseen (any other); only those that are neither empty nor the whole file, then "all"."""
    groups = {"dev": {c["id"] for c in convs if c["sample"] in DEVELOPMENT},
              "validation": {c["id"] for c in convs if c["sample"] in VALIDATION}}
    groups["unseen"] = {c["id"] for c in convs} - groups["dev"] - groups["validation"]
    out = {f"{name} ({', '.join(c['sample'] for c in convs if c['id'] in ids)})": ids
           for name, ids in groups.items() if ids and len(ids) < len(convs)}
    out["all"] = {c["id"] for c in convs}
    return out


def load(path: Path) -> list[dict[str, Any]]:
    """Conversations as {turns: [...], questions: [...]}; evidence ids normalised ("D8:6; D9:17" ->
    two ids, "D30:05" -> "D30:5", "D:11:26" -> "D11:26") and dropped when no such turn exists."""
    convs = []
    for ci, item in enumerate(json.loads(path.read_text())):
        c = item["conversation"]
        sessions = sorted(int(k.split("_")[1]) for k in c if re.fullmatch(r"session_\d+", k))
        turns = []
        for s in sessions:
            when = datetime.strptime(c[f"session_{s}_date_time"].strip(), "%I:%M %p on %d %B, %Y")
            for j, t in enumerate(c[f"session_{s}"]):
                content = t["text"] + (f" [image: {t['blip_caption']}]" if t.get("blip_caption") else "")
                turns.append({"dia": t["dia_id"], "session": s, "speaker": t["speaker"], "content": content,
                              "at": when + timedelta(seconds=5 * j)})
        valid = {t["dia"] for t in turns}
        questions, dropped = [], 0
        for q in item["qa"]:
            ev = []
            for raw in q.get("evidence", []):
                for part in re.split(r"[;,\s]+", raw):
                    m = re.fullmatch(r"D:?(\d+):0*(\d+)", part.strip())
                    did = f"D{int(m[1])}:{int(m[2])}" if m else None
                    if did in valid and did not in ev:
                        ev.append(did)
                    elif part.strip():
                        dropped += did not in valid
            if ev:
                questions.append({"q": q["question"], "cat": q["category"], "ev": ev})
        convs.append({"id": ci, "sample": item.get("sample_id", f"#{ci}"), "turns": turns, "questions": questions,
                      "dropped_ids": dropped})
    return convs


def doc_text(t: dict[str, Any]) -> str:
    """A turn as one self-contained passage (archival, facts, and the BM25 floor)."""
    return f"[{t['at'].day} {t['at']:%B %Y}] {t['speaker']}: {t['content']}"


async def call(client: Any, tool: str, **args: Any) -> tuple[dict[str, Any], float]:
    """Call a tool that must succeed over the mcp SDK's client: (structured result, wall ms)."""
    t0 = time.perf_counter()
    result = await client.call_tool(tool, args)
    ms = (time.perf_counter() - t0) * 1000
    if result.is_error:
        raise RuntimeError(f"{tool}: {result.content[0].text}")
    return result.structured_content, ms


async def ingest(client: Any, conv: dict[str, Any], user: str, *, facts_user: str | None = None,
                 archival_user: str | None = None, latency: dict[str, list[float]] | None = None,
                 events: Counter[str] | None = None) -> dict[str, Any]:
    """Log every turn of ``conv`` as ``user`` (`log_messages`, one run_id per session, speaker in
    `name`, the session's date and time as `created_at`, turns 5 s apart); with ``facts_user``
    also store each turn as a fact (`add_memory(infer=false)`, text `doc_text`), with
    ``archival_user`` as an archival passage. Returns the maps from what the server returns to
    turn ids: "messages" {message id: dia}, "facts" {memory id: {dia, ...}} (an exact duplicate
    merged into an earlier memory stands for both turns), "archival" {normalised text: {dia, ...}}."""
    latency = latency if latency is not None else defaultdict(list)
    events = events if events is not None else Counter()
    messages: dict[int, str] = {}
    for s in sorted({t["session"] for t in conv["turns"]}):
        turns = [t for t in conv["turns"] if t["session"] == s]
        out, ms = await call(client, "log_messages", user_id=user, run_id=f"session-{s}", messages=[
            {"role": "user", "name": t["speaker"], "content": t["content"],
             "created_at": t["at"].strftime("%Y-%m-%dT%H:%M:%SZ")} for t in turns])
        latency["log_messages (one session)"].append(ms)
        assert out["last_id"] - out["first_id"] + 1 == len(turns), "message ids are not consecutive"
        messages.update({out["first_id"] + j: t["dia"] for j, t in enumerate(turns)})
    facts: dict[str, set[str]] = defaultdict(set)
    archival: dict[str, set[str]] = defaultdict(set)
    for t in conv["turns"] if facts_user or archival_user else ():
        if archival_user:
            out, ms = await call(client, "archival_memory_insert", text=doc_text(t), user_id=archival_user)
            latency["archival_memory_insert"].append(ms)
            # by normalised text: stored chunks are stripped; a duplicate stands for every turn saying it
            archival[normalize(doc_text(t))].add(t["dia"])
        if facts_user:
            out, ms = await call(client, "add_memory", text=doc_text(t), infer=False, user_id=facts_user)
            latency["add_memory (infer=false)"].append(ms)
            for ev in out["events"]:
                facts[ev["id"]].add(t["dia"])
                events[ev["event"]] += 1
    return {"messages": messages, "facts": facts, "archival": archival}
