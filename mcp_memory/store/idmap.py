"""The vector matrix's slot <-> memory id map, in ~45 bytes a row instead of ~170.

A list of str ids and a dict back to their slots cost ~170 bytes a row (17 MB at 100k
memories, 170 MB at 1M: more than a third of the matrix). Here the ids are one fixed-width
bytes array (32 bytes for the uuid4 hex ids the server makes) and the way back is a sorted
array of the ids' hashes with their slots, plus a small dict of the ids put since the last
merge. Ids the array cannot hold as they are (empty, longer than ``WIDE``, with a NUL, or not
ASCII) are kept in a dict of their own; there are normally none.

Lookups compare the id itself after a hash match, so a hash collision costs a probe, never a
wrong answer. The hashes are computed from the ids' bytes by numpy (`keys_of`, `_fold`), a
million of them in a few ms without making a Python string of each: a process that reads the
matrix's file copy builds the map from the array of ids as stored (`from_array`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

WIDE = 48                # longest id kept in the array; longer ones go to the side dict
MERGE_FROM = 4096        # ids put since the last merge before they are folded into the sorted arrays
_GONE = -1               # slot of a removed entry in the sorted arrays
_GOLDEN = 0x9E3779B97F4A7C15
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def _width8(n: int) -> int:
    """A width for ``n``-byte ids: a whole number of 8-byte words (at least one)."""
    return max(8, -(-n // 8) * 8)


_MULTS = np.zeros(0, np.uint64)


def _mults(w: int) -> np.ndarray:
    """An odd constant for each of ``w`` words."""
    global _MULTS
    if len(_MULTS) < w:
        _MULTS = np.array([(_GOLDEN * (2 * i + 1)) % 2**64 for i in range(max(w, 8))], np.uint64)
    return _MULTS


def _fold(arr: np.ndarray) -> np.ndarray:
    """int64 hashes of fixed-width byte strings (NUL-padded, width a multiple of 8): each 8-byte
    word times its own odd constant, summed, then mixed. NUL words add nothing, so an id hashes
    alike at any width."""
    w = arr.dtype.itemsize // 8
    words = np.ascontiguousarray(arr).view("<u8").reshape(len(arr), w)
    k = _mults(w)
    h = words[:, 0] * k[0]
    for i in range(1, w):
        h += words[:, i] * k[i]
    h ^= h >> np.uint64(31)
    h *= _MIX
    h ^= h >> np.uint64(29)
    return h.view(np.int64)


def keys_of(ids: Sequence[str]) -> np.ndarray:
    """The hashes of any ids (the map's lookup keys)."""
    raw = [mid.encode("utf-8") for mid in ids]
    return _fold(np.array(raw, dtype=f"S{_width8(max(map(len, raw), default=0))}"))


class IdMap:
    def __init__(self, capacity: int = 0, width: int = 32) -> None:
        self._width = _width8(width)
        self._ids = np.zeros(capacity, f"S{self._width}")  # slot -> id (b"" for a free slot or an odd id)
        self._odd: dict[int, str] = {}                # slot -> id, for ids the array cannot hold
        self._keys = np.zeros(0, np.int64)            # sorted hashes of the merged ids
        self._vals = np.zeros(0, np.int32)            # their slots (_GONE once removed)
        self._recent: dict[str, int] = {}             # id -> slot, put since the last merge

    @classmethod
    def build(cls, ids: Sequence[str | None], capacity: int) -> IdMap:
        """A map of slots 0..len(ids)-1 (None: a free slot)."""
        m = cls(0)
        if None in ids:
            slots = [j for j, mid in enumerate(ids) if mid is not None]
            live = [ids[j] for j in slots]
        else:  # the usual case: no Python loop over a million ids
            slots, live = np.arange(len(ids), dtype=np.int32), list(ids)  # type: ignore[assignment]
        m._ids = m._pack(live, slots, capacity)  # type: ignore[arg-type]
        m._index(np.asarray(slots, np.int32))
        return m

    @classmethod
    def from_array(cls, ids: np.ndarray, n: int, odd: dict[int, str]) -> IdMap:
        """A map over ``ids`` itself (taken, not copied: its length is the capacity), whose slots
        0..n-1 hold what `frozen` gave (b"" for a free slot or an id kept in ``odd``)."""
        m = cls(0, ids.dtype.itemsize)
        m._ids = ids if ids.dtype.itemsize == m._width else ids.astype(f"S{m._width}")
        m._odd = dict(odd)
        m._index(np.concatenate([np.flatnonzero(m._ids[:n] != b""), np.fromiter(odd, np.int64, len(odd))]).astype(np.int32))
        return m

    def _index(self, slots: np.ndarray) -> None:
        """The sorted hashes of the ids at ``slots`` (those of the array hashed in one pass)."""
        if not len(slots):
            return
        if self._odd:
            plain = self._ids[slots] != b""
            keys = np.empty(len(slots), np.int64)
            keys[plain] = _fold(self._ids[slots[plain]])
            keys[~plain] = keys_of([self._odd[int(s)] for s in slots[~plain]])
        else:  # the usual case
            keys = _fold(self._ids[slots])
        order = np.argsort(keys)
        self._keys, self._vals = keys[order], slots[order]

    def _pack(self, ids: list[str], slots: Sequence[int] | np.ndarray, capacity: int) -> np.ndarray:
        """The fixed-width array holding ``ids`` at ``slots``; the odd ones go to the side dict."""
        joined = "".join(ids)
        longest, shortest = max(map(len, ids), default=0), min(map(len, ids), default=1)
        if joined.isascii() and "\x00" not in joined and 0 < shortest and longest <= WIDE:  # the usual case
            self._width = max(self._width, _width8(longest))
            arr = np.zeros(capacity, f"S{self._width}")
            if ids:
                arr[slots] = np.array(ids, dtype=f"S{self._width}")
            return arr
        arr = np.zeros(capacity, f"S{self._width}")
        for slot, mid in zip(slots, ids):
            arr = self._put_bytes(arr, slot, mid)
        return arr

    def _put_bytes(self, arr: np.ndarray, slot: int, mid: str) -> np.ndarray:
        raw = mid.encode("utf-8")
        if not raw or not mid.isascii() or b"\x00" in raw or len(raw) > WIDE:  # b"" marks a free slot
            self._odd[slot] = mid
            arr[slot] = b""
            return arr
        if len(raw) > self._width:  # a longer id than any so far: widen the array once
            self._width = _width8(len(raw))
            arr = arr.astype(f"S{self._width}")
        arr[slot] = raw
        return arr

    @property
    def capacity(self) -> int:
        return len(self._ids)

    def resize(self, capacity: int) -> None:
        bigger = np.zeros(capacity, f"S{self._width}")
        n = min(capacity, len(self._ids))
        bigger[:n] = self._ids[:n]
        self._ids = bigger

    def id_of(self, slot: int) -> str | None:
        raw = self._ids[slot]
        if raw:
            return raw.decode("ascii")
        return self._odd.get(slot)

    def ids(self, n: int) -> list[str | None]:
        """The ids of slots 0..n-1 (None for free slots)."""
        return ids_of(*self.frozen(n))

    def slot(self, mid: str) -> int | None:
        found = self._recent.get(mid)
        if found is not None:
            return found
        h = keys_of([mid])[0]
        i = int(np.searchsorted(self._keys, h))
        while i < len(self._keys) and self._keys[i] == h:
            s = int(self._vals[i])
            if s != _GONE and self.id_of(s) == mid:
                return s
            i += 1
        return None

    def slots(self, ids: Iterable[str]) -> dict[str, int]:
        """Slot of each of ``ids`` held by the map (one vectorised probe for all of them)."""
        out: dict[str, int] = {}
        rest: list[str] = []
        for mid in ids:
            found = self._recent.get(mid)
            if found is not None:
                out[mid] = found
            else:
                rest.append(mid)
        if not rest or not len(self._keys):
            return out
        hashes = keys_of(rest)
        pos = np.minimum(np.searchsorted(self._keys, hashes), len(self._keys) - 1)
        hit = (self._keys[pos] == hashes).tolist()
        for mid, ok, s in zip(rest, hit, self._vals[pos].tolist()):
            if not ok:
                continue
            if s != _GONE and self.id_of(s) == mid:
                out[mid] = s
            elif (found := self.slot(mid)) is not None:  # a collision or a removed twin: probe on
                out[mid] = found
        return out

    def frozen(self, n: int) -> tuple[np.ndarray, dict[int, str]]:
        """A copy of slots 0..n-1, for `ids_of` outside the caller's lock."""
        return self._ids[:n].copy(), {s: mid for s, mid in self._odd.items() if s < n}

    def put(self, mid: str, slot: int) -> None:
        """Map ``mid`` (not in the map) to ``slot`` (free)."""
        self._ids = self._put_bytes(self._ids, slot, mid)
        self._recent[mid] = slot
        if len(self._recent) >= max(MERGE_FROM, len(self._keys) // 64):
            self._merge()

    def remove(self, mid: str) -> int | None:
        """Forget ``mid``; returns the slot it had."""
        slot = self._recent.pop(mid, None)
        if slot is None:
            h = keys_of([mid])[0]
            i = int(np.searchsorted(self._keys, h))
            while i < len(self._keys) and self._keys[i] == h:
                s = int(self._vals[i])
                if s != _GONE and self.id_of(s) == mid:
                    self._vals[i] = _GONE
                    slot = s
                    break
                i += 1
        if slot is not None:
            self._ids[slot] = b""
            self._odd.pop(slot, None)
        return slot

    def _merge(self) -> None:
        keep = self._vals != _GONE
        keys = np.concatenate([self._keys[keep], keys_of(list(self._recent))])
        vals = np.concatenate([self._vals[keep], np.fromiter(self._recent.values(), np.int32, len(self._recent))])
        order = np.argsort(keys)
        self._keys, self._vals = keys[order], vals[order]
        self._recent = {}

    def __len__(self) -> int:
        return int(np.count_nonzero(self._vals != _GONE)) + len(self._recent)


def ids_of(arr: np.ndarray, odd: dict[int, str]) -> list[str | None]:
    out: list[str | None] = [b.decode("ascii") if b else None for b in arr.tolist()]
    for slot, mid in odd.items():
        out[slot] = mid
    return out
