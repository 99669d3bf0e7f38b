"""The matrix's compact slot <-> id map: the same answers as a dict, whatever the ids."""

from __future__ import annotations

import random
import uuid

import numpy as np

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
    real = idmap._fold
    monkeypatch.setattr(idmap, "_fold", lambda arr: real(arr) * 0 + 42)  # every id hashes alike
    m2 = IdMap.build(["p", "q", "r"], 8)
    assert [m2.slot(x) for x in "pqr"] == [0, 1, 2]
    assert m2.slots(["q", "r", "s"]) == {"q": 1, "r": 2}
    assert m2.remove("p") == 0 and m2.slot("q") == 1 and m2.slot("p") is None
    m2.put("s", 0)
    assert m2.slot("s") == 0 and m2.slots(["s", "q"]) == {"s": 0, "q": 1}
    monkeypatch.setattr(idmap, "_fold", real)
    assert m.slots(["c3", "a1"]) == {"c3": 2, "a1": 0}


def test_hashes_do_not_depend_on_the_width_the_ids_are_held_at():
    ids = ["a", "abcdefgh", "abcdefghi", uuid.uuid4().hex, "x" * 40]
    assert (idmap.keys_of(ids) == np.concatenate([idmap.keys_of([i]) for i in ids])).all()
    wide = np.array([i.encode() for i in ids], dtype="S48")
    assert (idmap._fold(wide) == idmap.keys_of(ids)).all()
    assert len(set(idmap.keys_of([uuid.uuid4().hex for _ in range(20000)]).tolist())) == 20000


def test_a_map_rebuilt_from_its_frozen_array_answers_alike():
    ids = [uuid.uuid4().hex for _ in range(300)] + ["café", "", "y" * 60, "plain-id"]
    m = IdMap.build([*ids[:150], None, *ids[150:]], 400)
    m.remove(ids[3])
    n = len(ids) + 1
    arr, odd = m.frozen(n)
    full = np.zeros(500, arr.dtype)
    full[:n] = arr
    again = IdMap.from_array(full, n, odd)
    assert again.ids(n) == m.ids(n) and again.capacity == 500 and len(again) == len(m)
    live = [i for i in ids if i != ids[3]]
    assert again.slots(live) == m.slots(live) and again.slot(ids[3]) is None
    again.put("new-one", 150)
    assert again.slot("new-one") == 150 and again.id_of(150) == "new-one"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=70), unique=True, max_size=40))
def test_any_ids_round_trip(ids):
    m = IdMap.build(ids, len(ids) + 4)
    assert m.ids(len(ids)) == ids
    assert m.slots(ids) == {mid: j for j, mid in enumerate(ids)}
