"""Embedding providers. The contract is one method, `embed_batch`, returning unit-length
float32 rows; a new provider is a small class. `identity()` names the vectors a
provider makes, so a store never mixes two embedders' vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcp_memory.config import Settings
from mcp_memory.errors import ConfigError, ProviderError
from mcp_memory.llm import describe_openai_error, openai_client

log = logging.getLogger(__name__)

WORDLLAMA_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
WORDLLAMA_WEIGHTS = "weights/l2_supercat_256.safetensors"
PROBE = "mcp-memory embedder fingerprint probe: the quick brown fox remembers."


@dataclass(frozen=True)
class EmbedderIdentity:
    name: str
    dim: int
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.name} ({self.dim}-d, fingerprint {self.fingerprint})"


class Embedder(ABC):
    name: str
    dim: int

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a (len(texts), dim) float32 array of unit-length rows."""

    def embed(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]

    def identity(self) -> EmbedderIdentity:
        probe = np.round(self.embed(PROBE).astype(np.float64), 3)
        digest = hashlib.sha256(probe.tobytes()).hexdigest()[:16]
        return EmbedderIdentity(self.name, self.dim, digest)


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class WordLlamaEmbedder(Embedder):
    """WordLlama l2_supercat, 256-d, from the tokenizer and token table inside its wheel; never
    downloads. A text's vector is the mean of its tokens' rows, as WordLlama computes it
    (tokenized the same way, pooled by the same float32 operations in the same batches of 64),
    so the vectors are bit-identical to WordLlama's (tests/test_service.py). The `wordllama`
    package itself is not imported: its import (pydantic config models, requests for
    downloads) and load (a float32 copy of the float16 table) cost ~0.27 s of CPU on every
    server's start-up, against ~0.06 s for the tokenizer and the mapped table here."""

    name = "wordllama-l2_supercat-256"
    dim = 256
    batch = 64  # WordLlama's own batch: the rows of one batch are padded to its longest text

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(wordllama_file(WORDLLAMA_TOKENIZER)))
            self._table, self._pages = _float16_tensor(wordllama_file(WORDLLAMA_WEIGHTS), "embedding.weight", self.dim)
        except Exception as exc:  # the wheel should always carry both files
            raise ConfigError(f"WordLlama's tokenizer or weights are missing from the installed wheel ({exc}); "
                              "reinstall with: pip install --force-reinstall wordllama") from None
        self._tokenizer.enable_padding()
        self._tokenizer.no_truncation()
        self._lock = threading.Lock()

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        last = self._table.shape[0] - 1
        for i in range(0, len(texts), self.batch):
            with self._lock:  # the tokenizer is not documented as thread-safe
                tokens = self._tokenizer.encode_batch(list(texts[i:i + self.batch]), add_special_tokens=False)
            ids = np.array([t.ids for t in tokens], dtype=np.int32)
            mask = np.array([t.attention_mask for t in tokens], dtype=np.float32)
            np.clip(ids, 0, last, out=ids)
            # float16 rows times a float32 mask: float32 sums, exactly WordLlama's float32 table's
            rows = self._table[ids] * mask[..., np.newaxis]
            count = np.maximum(mask.sum(axis=1, keepdims=True), 1.0).astype(np.float32)
            out[i:i + len(tokens)] = np.sum(rows, axis=1, dtype=np.float32) / count
        return normalize(out)


def wordllama_file(relative: str) -> Path:
    """A file of the installed wordllama wheel, found without running the package's ``__init__``."""
    import importlib.util

    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the wordllama package is not installed; reinstall mcp-memory")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _float16_tensor(path: Path, name: str, dim: int) -> tuple[np.ndarray, mmap.mmap]:
    """A read-only view of one (rows, dim) float16 tensor of a safetensors file, mapped from it:
    only the pages of rows in use are resident, shared by every process that maps the file."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(size))[name]
        shape = tuple(meta["shape"])
        if meta["dtype"] != "F16" or len(shape) != 2 or shape[1] != dim:
            raise ValueError(f"{name} is {meta['dtype']} {meta['shape']}")
        start, end = meta["data_offsets"]
        count = shape[0] * shape[1]
        if end - start != count * 2:
            raise ValueError(f"{name} has {end - start} bytes")
        pages = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = np.frombuffer(pages, np.dtype("<f2"), count=count, offset=8 + size + start).reshape(shape)
    return view, pages


class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible /embeddings endpoint: OpenAI, Ollama, LM Studio, vLLM."""

    batch_size = 128

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = openai_client(settings.embed_base_url, settings.embed_api_key, settings.embed_timeout,
                                     settings.max_retries)
        self._model = settings.embed_model
        self._dimensions = settings.embed_dimensions
        self.name = f"openai:{self._model}" + (f"@{self._dimensions}" if self._dimensions else "")
        self.dim = self._dimensions or 0  # learnt from the first reply when not configured
        self._down_until, self._down_reason, self._backoff = 0.0, "", 2.0

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch_size):
            out.append(self._call(list(texts[i:i + self.batch_size])))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out)

    def _call(self, batch: list[str]) -> np.ndarray:
        # A circuit breaker: after a failure, fail fast for a while instead of making every call
        # wait out the timeout again; the back-off doubles (2 s .. 60 s) while failures go on.
        now = time.monotonic()
        if now < self._down_until:
            raise ProviderError(f"{self._down_reason} (not retried for another {self._down_until - now:.0f}s)")
        try:
            vectors = self._request(batch)
        except ProviderError as exc:
            self._down_reason = str(exc)
            self._down_until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, 60.0)
            raise
        self._backoff = 2.0
        return vectors

    def _request(self, batch: list[str]) -> np.ndarray:
        kwargs = {"dimensions": self._dimensions} if self._dimensions else {}
        try:
            reply = self._client.embeddings.create(model=self._model, input=batch, **kwargs)
        except Exception as exc:
            raise ProviderError(f"embedding endpoint failed: {describe_openai_error(exc, self._settings)}") from None
        try:
            data = sorted(reply.data, key=lambda d: d.index)
            vectors = np.array([d.embedding for d in data], dtype=np.float32)
        except Exception:
            raise ProviderError("embedding endpoint returned a malformed reply") from None
        if vectors.ndim != 2 or vectors.shape[0] != len(batch) or not np.isfinite(vectors).all():
            raise ProviderError(f"embedding endpoint returned {vectors.shape[0] if vectors.ndim else 0} "
                                f"vectors for {len(batch)} texts")
        if self.dim == 0:
            self.dim = int(vectors.shape[1])
        elif vectors.shape[1] != self.dim:
            raise ProviderError(f"embedding endpoint returned {vectors.shape[1]}-d vectors, expected {self.dim}")
        return normalize(vectors)


def try_embed(embedder: Embedder, texts: Sequence[str]) -> tuple[list[np.ndarray | None], str | None]:
    """Embed for a write: on failure return no vectors and the reason, so the text is stored
    anyway (the index worker embeds it when the endpoint answers again)."""
    if not texts:
        return [], None
    try:
        return list(embedder.embed_batch(texts)), None
    except ProviderError as exc:
        log.warning("%s", exc)
        return [None] * len(texts), (f"{exc}; stored without a vector: searchable by words now, by meaning once "
                                     "the embedding endpoint answers again")


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        if not settings.embed_base_url and not settings.embed_api_key:
            raise ConfigError("MCP_MEMORY_EMBEDDER=openai needs MCP_MEMORY_EMBED_BASE_URL (local server) "
                              "or an API key (MCP_MEMORY_EMBED_API_KEY / OPENAI_API_KEY)")
        return OpenAIEmbedder(settings)
    return WordLlamaEmbedder()
