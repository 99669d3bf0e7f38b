"""Sign bits of the vector matrix's rows: the first stage of scans over many rows (the add path's
duplicate checks, and searches of large scopes).

A row's bit j is set when its component j is positive: 32 bytes for WordLlama's 256 dimensions.
Two vectors that point the same way share most of their signs, so counting the bits a row shares
with the query (an XOR and a popcount per 64 dimensions) picks the few rows worth scoring on
their int8 components, at a fraction of the cost of a product over every row: the add path's
whole scan takes 0.8-0.9 ms instead of 1.9-2.4 ms at 100k rows, 5-5.5 ms instead of 18-19.5 ms at
1M, with the same rows at cosine >= 0.8 found (bench/scans.py; bench/RESULTS.md, "Sixth speed
pass").

The bits are kept column-wise (one contiguous array of n words per 64 dimensions): each pass
reads one word per row.
"""

from __future__ import annotations

import numpy as np

BLOCK = 65536  # rows packed at a time (a bool array of BLOCK x dim bytes)
SCAN = 65536   # rows compared at a time
SCRATCH_BYTES = SCAN * 9  # an XOR word and a count per row


def words(dim: int) -> int:
    """64-bit words per row."""
    return -(-dim // 64)


def pack(rows: np.ndarray) -> np.ndarray:
    """(words, n) uint64: the sign bits of ``rows`` (n x dim, any numeric type)."""
    n, dim = rows.shape
    out = np.empty((words(dim), n), np.uint64)
    for i in range(0, n, BLOCK):
        packed = np.packbits(rows[i:i + BLOCK] > 0, axis=1)  # rows x ceil(dim / 8) bytes
        pad = words(dim) * 8 - packed.shape[1]
        if pad:
            packed = np.pad(packed, ((0, 0), (0, pad)))
        out[:, i:i + len(packed)] = packed.view(np.uint64).T
    return out


def shared(bits: np.ndarray, query: np.ndarray, n: int, slots: np.ndarray | None = None,
           scratch: np.ndarray | None = None) -> np.ndarray:
    """How alike each row's signs are to ``query``'s (``pack`` of one vector, shape (words, 1)),
    as uint8, higher for more bits in common: of the first ``n`` rows, or of ``slots``.

    It is 255 minus the bits that differ, the count wrapping round at 256 (every bit differs:
    an opposite vector, then scored 255 and dropped by the next stage's exact scores). Done
    ``SCAN`` rows at a time through buffers that stay in cache (``scratch``: at least
    ``SCRATCH_BYTES``, reused), so that the rows' bits are the only memory read."""
    rows = n if slots is None else len(slots)
    out = np.zeros(rows, np.uint8)
    if scratch is None or scratch.nbytes < SCRATCH_BYTES:
        scratch = np.empty(SCRATCH_BYTES, np.uint8)
    flat = scratch.reshape(-1).view(np.uint8)
    xor = flat[:SCAN * 8].view(np.uint64)
    count = flat[SCAN * 8:SCAN * 9]
    for i in range(0, rows, SCAN):
        j = min(rows, i + SCAN)
        x, c, o = xor[:j - i], count[:j - i], out[i:j]
        for w in range(len(bits)):
            if slots is None:
                np.bitwise_xor(bits[w, i:j], query[w, 0], out=x)
            else:
                np.take(bits[w], slots[i:j], out=x)
                np.bitwise_xor(x, query[w, 0], out=x)
            np.bitwise_count(x, out=c)
            np.add(o, c, out=o)
    return np.invert(out, out=out)
