"""The vector matrix's slot <-> memory id map, in ~45 bytes a row instead of ~170.

A list of str ids and a dict back to their slots cost ~170 bytes a row (17 MB at 100k
memories, 170 MB at 1M: more than a third of the matrix). Here the ids are one fixed-width
bytes array (32 bytes for the uuid4 hex ids the server makes) and the way back is a sorted
array of the ids' hashes with their slots, plus a small dict of the ids put since the last
merge. Ids the array cannot hold as they are (empty, longer than ``WIDE``, with a NUL, or not
ASCII) are kept in a dict of their own; there are normally none.

Lookups compare the id itself after a hash match, so a hash collision costs a probe, never a
wrong answer. Hashes are Python's own str hashes: never written anywhere, rebuilt per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

WIDE = 48                # longest id kept in the array; longer ones go to the side dict
MERGE_FROM = 4096        # ids put since the last merge before they are folded into the sorted arrays
_GONE = -1               # slot of a removed entry in the sorted arrays


class IdMap:
    def __init__(self, capacity: int = 0, width: int = 32) -> None:
        self._width = width
        self._ids = np.zeros(capacity, f"S{width}")  # slot -> id (b"" for a free slot or an odd id)
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
        if live:
            hashes = np.fromiter(map(hash, live), np.int64, len(live))
            order = np.argsort(hashes, kind="stable")
            m._keys, m._vals = hashes[order], np.asarray(slots, np.int32)[order]
        return m

    def _pack(self, ids: list[str], slots: Sequence[int] | np.ndarray, capacity: int) -> np.ndarray:
        """The fixed-width array holding ``ids`` at ``slots``; the odd ones go to the side dict."""
        joined = "".join(ids)
        longest, shortest = max(map(len, ids), default=0), min(map(len, ids), default=1)
        if joined.isascii() and "\x00" not in joined and 0 < shortest and longest <= WIDE:  # the usual case
            self._width = max(self._width, longest)
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
            self._width = len(raw)
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
        h = hash(mid)
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
        hashes = np.fromiter(map(hash, rest), np.int64, len(rest))
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
            h = hash(mid)
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
        keys = np.concatenate([self._keys[keep], np.fromiter(map(hash, self._recent), np.int64, len(self._recent))])
        vals = np.concatenate([self._vals[keep], np.fromiter(self._recent.values(), np.int32, len(self._recent))])
        order = np.argsort(keys, kind="stable")
        self._keys, self._vals = keys[order], vals[order]
        self._recent = {}

    def __len__(self) -> int:
        return int(np.count_nonzero(self._vals != _GONE)) + len(self._recent)


def ids_of(arr: np.ndarray, odd: dict[int, str]) -> list[str | None]:
    out: list[str | None] = [b.decode("ascii") if b else None for b in arr.tolist()]
    for slot, mid in odd.items():
        out[slot] = mid
    return out
