"""A real OpenAI-compatible HTTP server on loopback with scripted replies.

Tests point the server under test at it with MCP_MEMORY_LLM_BASE_URL / _EMBED_BASE_URL,
so the `openai` client, HTTP and JSON parsing all run for real. A script is a function
of the request's (system, user) text that returns the reply content (str or dict) or a
`Fault`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


@dataclass
class Fault:
    kind: str  # "status", "sleep", "raw", "close"
    status: int = 500
    seconds: float = 0.0
    body: str = ""


Reply = str | dict | Fault
Script = Callable[[str, str], Reply]


@dataclass
class FakeOpenAI:
    script: Script | None = None
    embed_dim: int = 64
    embed_fault: Fault | None = None
    models: list[str] | None = field(default_factory=lambda: ["scripted"])  # None: /models is not served
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("authorization")})
                if self.path.endswith("/chat/completions"):
                    fake._chat(self, body)
                elif self.path.endswith("/embeddings"):
                    fake._embeddings(self, body)
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append({"path": self.path, "body": None, "auth": self.headers.get("authorization")})
                if self.path.endswith("/models") and fake.models is not None:
                    self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in fake.models]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def _send(self, status: int, payload: Any) -> None:
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a scripted slow reply): that is the point

        self._handler = Handler
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    # -- endpoints ------------------------------------------------------------------
    def _chat(self, h: Any, body: dict[str, Any]) -> None:
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        user = next((m["content"] for m in messages if m["role"] == "user"), "")
        reply = self.script(system, user) if self.script else {"facts": []}
        if isinstance(reply, Fault):
            if reply.kind == "sleep":
                time.sleep(reply.seconds)
                reply = reply.body or {"facts": []}
            elif reply.kind == "status":
                h._send(reply.status, {"error": {"message": f"scripted {reply.status}", "type": "server_error"}})
                return
            elif reply.kind == "raw":
                h._send(200, reply.body)
                return
        content = reply if isinstance(reply, str) else json.dumps(reply)
        h._send(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    def _embeddings(self, h: Any, body: dict[str, Any]) -> None:
        fault = self.embed_fault
        if fault is not None:
            if fault.kind == "sleep":
                time.sleep(fault.seconds)
            elif fault.kind == "status":
                h._send(fault.status, {"error": {"message": f"scripted {fault.status}"}})
                return
            elif fault.kind == "raw":
                h._send(200, fault.body)
                return
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        dim = body.get("dimensions") or self.embed_dim
        h._send(200, {
            "object": "list", "model": body.get("model"),
            "data": [{"object": "embedding", "index": i, "embedding": bag_of_words(t, dim).tolist()}
                     for i, t in enumerate(inputs)],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        })


def bag_of_words(text: str, dim: int) -> np.ndarray:
    """A deterministic toy embedding: hashed word counts."""
    v = np.zeros(dim, dtype=np.float32)
    for w in re.findall(r"\w+", text.lower()):
        v[int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    return v


# -- helpers for scripts that play the two LLM steps of add_memory ------------------------
def is_extraction(system: str) -> bool:
    return "extract durable facts" in system


def existing_memories(user: str) -> dict[str, str]:
    """The `[id] text` lines of a reconciliation request."""
    block = user.split("<memories>")[1].split("</memories>")[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\[(\w+)\] (.*)$", block, re.M)}


def new_facts(user: str) -> list[str]:
    block = user.split("<facts>")[1].split("</facts>")[0]
    return [line[2:] for line in block.strip().splitlines() if line.startswith("- ")]
