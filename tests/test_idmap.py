"""The matrix's compact slot <-> id map: the same answers as a dict, whatever the ids."""

from __future__ import annotations

import random
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_memory.store import idmap
from mcp_memory.store.idmap import IdMap, ids_of


def test_build_put_remove_and_lookups_agree_with_a_dict(monkeypatch):
    monkeypatch.setattr(idmap, "MERGE_FROM", 50)  # merge often: both halves of the map are used
    rng = random.Random(7)
    ids = [uuid.uuid4().hex for _ in range(1000)]
    ids[10] = "imported-id-with-dashes-0001"
    ids[11] = "x" * (idmap.WIDE + 5)           # too long for the array
    ids[12] = "café"                             # not ASCII
    ids[13] = "nul\x00inside"
    m = IdMap.build([*ids, None], 1200)
    truth = {mid: j for j, mid in enumerate(ids)}
    free = [1000]
    n = 1001
    for step in range(3000):
        if rng.random() < 0.5 and truth:
            mid = rng.choice(list(truth))
            assert m.remove(mid) == truth[mid]
            free.append(truth.pop(mid))
        else:
            mid = rng.choice([uuid.uuid4().hex, f"odd-{step}-é", "z" * (50 + step), f"id-{step}"])
            slot = free.pop() if free else n
            if slot == n:
                n += 1
                if n > m.capacity:
                    m.resize(m.capacity * 2)
            m.put(mid, slot)
            truth[mid] = slot
        if step % 500 == 0:
            probe = rng.sample(list(truth), min(50, len(truth))) + ["never-stored", uuid.uuid4().hex]
            assert m.slots(probe) == {p: truth[p] for p in probe if p in truth}
    for mid, slot in truth.items():
        assert m.slot(mid) == slot and m.id_of(slot) == mid
    assert m.slot("never-stored") is None and m.remove("never-stored") is None
    listed = m.ids(n)
    assert {mid: j for j, mid in enumerate(listed) if mid is not None} == truth
    assert ids_of(*m.frozen(n)) == listed and len(m) == len(truth)


def test_hash_collisions_are_told_apart_by_the_id(monkeypatch):
    m = IdMap.build(["a1", "b2", "c3"], 8)

    class Same(str):  # every id hashes alike: lookups must compare the ids themselves
        def __hash__(self) -> int:
            return 42

    same = [Same("p"), Same("q"), Same("r")]
    m2 = IdMap.build(same, 8)
    assert [m2.slot(Same(x)) for x in "pqr"] == [0, 1, 2]
    assert sorted((str(k), v) for k, v in m2.slots([Same("q"), Same("r"), Same("s")]).items()) == [("q", 1), ("r", 2)]
    assert m2.remove(Same("p")) == 0 and m2.slot(Same("q")) == 1 and m2.slot(Same("p")) is None
    assert m.slots(["c3", "a1"]) == {"c3": 2, "a1": 0}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=70), unique=True, max_size=40))
def test_any_ids_round_trip(ids):
    m = IdMap.build(ids, len(ids) + 4)
    assert m.ids(len(ids)) == ids
    assert m.slots(ids) == {mid: j for j, mid in enumerate(ids)}
