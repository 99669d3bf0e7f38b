"""A small OpenAI-compatible ``/v1/embeddings`` endpoint on loopback serving WordLlama vectors
(256-d, unit length), so mcp-memory and Mem0 embed with exactly the same model in peers.py.

    .venv/bin/python bench/embed_server.py [--port 0]

Prints ``listening on http://127.0.0.1:PORT/v1`` once ready. Answers both encodings the
OpenAI clients ask for (``float``, and ``base64`` of little-endian float32, the openai-python
default). ``GET /stats`` returns how many requests and texts it served.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from mcp_memory.embeddings import WordLlamaEmbedder  # noqa: E402

MODEL = "wordllama-l2_supercat-256"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    embedder = WordLlamaEmbedder()
    counts = {"requests": 0, "texts": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection, as with a real server
        disable_nagle_algorithm = True  # else headers and body in two writes meet delayed ACKs: +40 ms a call

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/").endswith("/stats"):
                self._send(200, counts)
            elif self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if not self.path.rstrip("/").endswith("/embeddings"):
                self._send(404, {"error": {"message": "only /v1/embeddings is served"}})
                return
            texts = body.get("input")
            if isinstance(texts, str):
                texts = [texts]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                self._send(400, {"error": {"message": "input must be a string or a list of strings"}})
                return
            vectors = embedder.embed_batch(texts) if texts else np.zeros((0, 256), dtype=np.float32)
            with lock:
                counts["requests"] += 1
                counts["texts"] += len(texts)
            b64 = body.get("encoding_format") == "base64"
            data = [{"object": "embedding", "index": i,
                     "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if b64 else v.tolist()}
                    for i, v in enumerate(vectors)]
            self._send(200, {"object": "list", "data": data, "model": body.get("model") or MODEL,
                             "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
