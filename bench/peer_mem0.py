"""Mem0 OSS side of bench/peers.py. Runs under bench/.peers-venv (``pip install mem0ai``), never
under the package's venv: ``bench/.peers-venv/bin/python bench/peer_mem0.py JOB.json``.

In process, local Qdrant (embedded, on disk under the job's directory), embeddings from the
loopback WordLlama endpoint (bench/embed_server.py) through Mem0's OpenAI embedder, ``infer=False``
(no LLM is ever called; the LLM config only points at the same loopback endpoint). Prints one JSON
object with the figures.

Loading: the store is filled through Mem0's own vector store (``memory.vector_store.insert``) in
batches, with the payload ``Memory._create_memory`` writes (data, hash, dates, user_id, role,
text_lemmatized), so a 100k store does not take hours; the per-call ``Memory.add`` path is what
the add figures time.

With ``"mode": "locomo"`` (bench/peers_locomo.py) the job holds conversations instead: every turn
is added through ``Memory.add(infer=False)`` for one user per conversation, each question is
asked with ``search(top_k=10)``, and the worker prints the turn indexes each search returned.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024  # type: ignore[union-attr]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def make(job: dict[str, Any]) -> Any:
    from mem0 import Memory

    d = Path(job["dir"])
    config = {
        "vector_store": {"provider": "qdrant", "config": {
            "collection_name": "bench", "path": str(d / "qdrant"), "embedding_model_dims": 256, "on_disk": True}},
        "embedder": {"provider": "openai", "config": {
            "model": "wordllama-l2_supercat-256", "api_key": "sk-local", "openai_base_url": job["url"]}},
        "llm": {"provider": "openai", "config": {"model": "unused", "api_key": "sk-local",
                                                 "openai_base_url": job["url"]}},
        "history_db_path": str(d / "history.db"),
    }
    return Memory.from_config(config)


def bulk_load(m: Any, texts: list[str], user_id: str) -> None:
    from mem0.utils.lemmatization import lemmatize_for_bm25

    for i in range(0, len(texts), 1000):
        chunk = texts[i:i + 1000]
        vectors = m.embedding_model.embed_batch(chunk, "add")
        now = datetime.now(timezone.utc).isoformat()
        payloads = [{"data": t, "hash": hashlib.md5(t.encode()).hexdigest(), "created_at": now, "updated_at": now,
                     "user_id": user_id, "role": "user", "text_lemmatized": lemmatize_for_bm25(t)} for t in chunk]
        m.vector_store.insert(vectors=vectors, payloads=payloads, ids=[str(uuid.uuid4()) for _ in chunk])


def locomo(job: dict[str, Any]) -> dict[str, Any]:
    """Per conversation: add every turn (per-call path, infer=False), then ask every question."""
    m = make(job)
    out: dict[str, Any] = {"ranked": [], "add_ms": [], "search_ms": []}
    for conv in job["conversations"]:
        user = conv["user"]
        for i, text in enumerate(conv["texts"]):
            t = time.perf_counter()
            m.add(text, user_id=user, infer=False, metadata={"turn": i})
            out["add_ms"].append((time.perf_counter() - t) * 1000)
        ranked = []
        for q in conv["questions"]:
            t = time.perf_counter()
            res = m.search(q, filters={"user_id": user}, top_k=job.get("top_k", 10))
            out["search_ms"].append((time.perf_counter() - t) * 1000)
            ranked.append([(r.get("metadata") or {}).get("turn") for r in res.get("results", [])])
        out["ranked"].append(ranked)
    out["rss_mb"] = rss_mb()
    m.vector_store.client.close()
    return out


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    if job.get("mode") == "locomo":
        import mem0

        print(json.dumps({"version": getattr(mem0, "__version__", "?"), **locomo(job)}))
        return
    texts: list[str] = job["memories"]
    queries: list[str] = job["queries"]
    adds: list[str] = job["adds"]
    user = "default"
    out: dict[str, Any] = {}
    import mem0

    out["version"] = getattr(mem0, "__version__", "?")
    t = time.perf_counter()
    m = make(job)
    out["create_s"] = time.perf_counter() - t
    t = time.perf_counter()
    bulk_load(m, texts, user)
    out["load_s"] = time.perf_counter() - t
    out["count"] = m.vector_store.client.count("bench").count
    # reopen, as a new session would: local Qdrant reads every point back into memory
    m.vector_store.client.close()
    del m
    gc.collect()
    t = time.perf_counter()
    m = make(job)
    out["reopen_s"] = time.perf_counter() - t
    out["bm25_enabled"] = bool(getattr(m.vector_store, "_has_bm25_slot", False))
    for q in queries[:10]:
        m.search(q, filters={"user_id": user}, top_k=10)
    search = []
    hits = 0
    for q in queries[:job["search_reps"]]:
        t = time.perf_counter()
        res = m.search(q, filters={"user_id": user}, top_k=10)
        search.append((time.perf_counter() - t) * 1000)
        hits += bool(res.get("results"))
    out["search_ms"] = search
    out["hit_rate"] = hits / max(1, len(search))
    out["rss_after_search_mb"] = rss_mb()
    add = []
    for text in adds[:job["add_reps"]]:
        t = time.perf_counter()
        m.add(text, user_id=user, infer=False)
        add.append((time.perf_counter() - t) * 1000)
    out["add_ms"] = add
    out["rss_mb"] = rss_mb()
    m.vector_store.client.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
