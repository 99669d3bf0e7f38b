"""Bulk import (`MemoryService.import_memories`) on the embedded defaults."""

from __future__ import annotations

import pytest

from mcp_memory.errors import InvalidInput
from mcp_memory.service import MemoryService

CITIES = ["Lisbon", "Porto", "Madrid", "Paris", "Berlin", "Vienna", "Rome", "Oslo", "Dublin", "Prague"]
PEOPLE = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Isabel", "Jonas"]


def corpus() -> list[str]:
    return [f"{p}'s cousin moved to {c} in {1990 + i} and works there as a {job}."
            for i, (p, c, job) in enumerate((p, c, job) for p in PEOPLE for c in CITIES
                                            for job in ("nurse", "pilot", "baker"))]


def test_import_stores_rows_history_and_index(service: MemoryService):
    texts = corpus()
    result = service.import_memories(texts + [texts[0].upper(), texts[1] + "!"], batch_size=64)
    assert (result.imported, result.skipped) == (len(texts), 2)  # repeats in the input are skipped
    assert result.rate > 0 and result.seconds >= result.embed_seconds

    stats = service.stats()
    assert stats["memories_active"] == stats["index_rows"] == len(texts)
    assert stats["history_entries"] == len(texts) and stats["index_pending"] == 0

    hits = service.search("Where did Grace's cousin move, the one who is a pilot in Oslo?").hits
    assert "Grace's cousin moved to Oslo" in hits[0].memory and "pilot" in " ".join(h.memory for h in hits[:3])
    first = service.list(page_size=1).memories[0]
    assert [e.event for e in service.history(first.id).entries] == ["ADD"]
    assert service.history(first.id).entries[0].reason == "imported"

    again = service.import_memories(texts[:10] + ["A fact that is new."])
    assert (again.imported, again.skipped) == (1, 10)  # already stored in this scope
    # the per-call path sees imported rows as stored, too
    assert service.add(texts[5]).events[0].event == "NONE"


def test_import_keeps_scope_metadata_kind_and_dates(service: MemoryService):
    rows = [
        {"text": "Bob's cat is called Pixel", "user_id": "bob", "metadata": {"topic": "pets"},
         "created_at": "2023-05-08T13:56:00Z"},
        {"text": "Bob's cat is called Pixel", "user_id": "alice"},  # same text, other user: kept
        {"text": "The release checklist lives in the wiki", "user_id": "bob", "kind": "archival",
         "tags": ["Work", "docs"]},
        "Text rows take the keyword scope",
    ]
    result = service.import_memories(rows, user_id="carol")
    assert (result.imported, result.skipped) == (4, 0)
    bob = service.search("what is the cat called", user_id="bob", filters={"topic": "pets"}).hits
    assert [h.memory for h in bob] == ["Bob's cat is called Pixel"] and bob[0].created_at == "2023-05-08T13:56:00Z"
    assert service.list(user_id="alice").total == 1 and service.list(user_id="carol").total == 1
    archival = service.agent.archival_search("release checklist", tags=["work"], user_id="bob")
    assert [h.text for h in archival.hits][:1] == ["The release checklist lives in the wiki"]


@pytest.mark.parametrize("bad, match", [
    ({"text": 3}, r"rows\[1\].text must be a string"),
    ({"text": "ok", "colour": "red"}, r"rows\[1\] has unknown fields: colour"),
    ({"text": "ok", "kind": "block"}, r"rows\[1\].kind must be one of"),
    ({"text": "ok", "created_at": "yesterday"}, r"rows\[1\].created_at must be an ISO 8601"),
    ({"text": "   "}, r"rows\[1\].text is empty"),
])
def test_a_bad_row_fails_the_whole_import_before_anything_is_written(service: MemoryService, bad, match):
    with pytest.raises(InvalidInput, match=match):
        service.import_memories(["A good first row", bad, "A good last row"])
    assert service.list().total == 0 and service.stats()["index_rows"] == 0
