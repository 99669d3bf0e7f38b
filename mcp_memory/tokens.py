"""Token counting for budgets, offline.

Uses the Llama-2 BPE tokenizer that ships inside the wordllama wheel (a real tokenizer,
no download). On English text it counts somewhat more tokens than the GPT-4 and Claude
tokenizers do, so a budget measured with it is conservative: a block that fits here fits
there. If the tokenizer cannot be loaded, a documented approximation stands in: one token
per 3.5 characters, rounded up (also on the high side for English prose).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 3.5
_lock = threading.Lock()
_tokenizer: Any = None
_loaded = False


def _get() -> Any:
    global _tokenizer, _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            try:
                from tokenizers import Tokenizer

                from mcp_memory.embeddings import WORDLLAMA_TOKENIZER, wordllama_file

                _tokenizer = Tokenizer.from_file(str(wordllama_file(WORDLLAMA_TOKENIZER)))
            except Exception as exc:  # the approximation is documented and tested
                log.warning("token counting falls back to %s characters per token (%s)", CHARS_PER_TOKEN, exc)
        return _tokenizer


def approx(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def count(text: str) -> int:
    return count_many([text])[0]


def count_many(texts: Sequence[str]) -> list[int]:
    tok = _get()
    if tok is None:
        return [approx(t) for t in texts]
    # no special tokens: we count what is injected into a context, not a standalone sequence
    return [len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False)]
