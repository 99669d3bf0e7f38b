"""Letta-style memory in process: core blocks, archival memory, recall log."""

from __future__ import annotations

import pytest

from mcp_memory.errors import Conflict, InvalidInput, NotFound
from mcp_memory.service import MemoryService
from mcp_memory.text import chunk_document


def test_fresh_store_has_persona_and_human(service: MemoryService):
    blocks = service.agent.core_read().blocks
    assert [b.label for b in blocks] == ["persona", "human"]
    assert blocks[1].value == "" and blocks[1].chars_limit == 5000 and blocks[0].chars_current > 0


def test_append_replace_rethink_and_history(service: MemoryService):
    a = service.agent
    a.core_rethink("human", "Name: Alex.")
    b = a.core_append("human", "Prefers Kubernetes for orchestration.")
    assert b.value == "Name: Alex.\nPrefers Kubernetes for orchestration." and b.version == 3
    b = a.core_replace("human", "Prefers Kubernetes for orchestration.", "Migrating from Kubernetes to AWS ECS.")
    assert b.value == "Name: Alex.\nMigrating from Kubernetes to AWS ECS."
    b = a.core_replace("human", "Migrating from Kubernetes to AWS ECS.", "")
    assert b.value == "Name: Alex."  # deleting a line takes its line break
    events = [(v.version, v.event) for v in a.core_history("human").versions]
    assert events == [(1, "create"), (2, "rethink"), (3, "append"), (4, "replace"), (5, "replace")]
    assert a.core_rollback("human", 3).value == "Name: Alex.\nPrefers Kubernetes for orchestration."


def test_replace_needs_exactly_one_match(service: MemoryService):
    a = service.agent
    a.core_rethink("human", "likes tea. likes tea.")
    with pytest.raises(InvalidInput, match="occurs 2 times"):
        a.core_replace("human", "likes tea", "likes coffee")
    with pytest.raises(InvalidInput, match="does not occur"):
        a.core_replace("human", "likes cocoa", "likes coffee")
    with pytest.raises(InvalidInput, match="old_text is empty"):
        a.core_replace("human", "", "x")
    assert a.core_read("human").blocks[0].value == "likes tea. likes tea."


def test_limits_read_only_unicode_and_labels(service: MemoryService):
    a = service.agent
    a.core_create("project", "current project", limit=40, value="Ship v2 🚀")
    with pytest.raises(InvalidInput, match=r"would have 51 characters; its limit is 40 and it holds 9 now.*archival"):
        a.core_append("project", "x" * 41)
    assert a.core_append("project", "naïve café 日本語 👩‍💻").value == "Ship v2 🚀\nnaïve café 日本語 👩‍💻"
    a.core_configure("project", read_only=True)
    with pytest.raises(InvalidInput, match="read-only"):
        a.core_rethink("project", "gone")
    with pytest.raises(InvalidInput, match="label must be"):
        a.core_append("Bad Label!", "x")
    with pytest.raises(NotFound, match="existing blocks: persona, human, project"):
        a.core_read("nope")
    with pytest.raises(InvalidInput, match="text is empty"):
        a.core_append("human", "  \u200b ")
    with pytest.raises(InvalidInput, match="already exists"):
        a.core_create("human")


def test_rethink_never_overwrites_an_edit_it_has_not_seen(make_service):
    first, second = make_service(), make_service()  # two processes' services on one data dir
    v = first.agent.core_read("human").blocks[0].version
    second.agent.core_append("human", "Has a dog named Rex.")
    with pytest.raises(Conflict, match="Has a dog named Rex"):
        first.agent.core_rethink("human", "Name: Sam.")
    with pytest.raises(Conflict):
        first.agent.core_rethink("human", "Name: Sam.", expected_version=v)
    current = first.agent.core_read("human").blocks[0]
    assert first.agent.core_rethink("human", current.value + "\nName: Sam.").value == "Has a dog named Rex.\nName: Sam."


def test_chunking_keeps_sections_and_limits():
    doc = "# Guide\nIntro.\n\n## Setup\n" + ("Install it now. " * 300) + "\n\n### Linux\nUse apt.\n\n## Usage\nRun."
    chunks = chunk_document(doc, 500)
    assert all(len(c) <= 500 for c in chunks)
    assert chunks[0] == "Guide\nIntro." and chunks[-1] == "Guide > Usage\nRun."
    assert "Guide > Setup > Linux\nUse apt." in chunks
    assert sum(c.count("Install it now.") for c in chunks) == 300  # nothing lost


def test_archival_insert_and_search(service: MemoryService):
    a = service.agent
    doc = "# Runbook\n\n## Deploys\nWe deploy with ECS in eu-west-1.\n\n## Secrets\nThe deploy key lives in Vault."
    r = a.archival_insert(doc, tags=["infra", "Ops"])
    assert r.chunks == 2 and len(r.ids) == 2
    assert a.archival_insert(doc).duplicates == 2
    a.archival_insert("Lunch at the Thai place was great", tags=["food"])
    service.add("User prefers ECS over Kubernetes")
    hits = a.archival_search("where are deploy keys stored?").hits
    assert hits[0].text == "Runbook > Secrets\nThe deploy key lives in Vault." and hits[0].tags == ["infra", "ops"]
    kinds = {h.kind for h in a.archival_search("ECS").hits}
    assert kinds == {"archival", "fact"}  # facts from add_memory are reachable here too
    assert [h.text for h in a.archival_search("Thai lunch deploy", tags=["food"]).hits] == [
        "Lunch at the Thai place was great"]
    assert len(a.archival_search("deploy", tags=["infra", "food"], tag_match="all").hits) == 0
    assert len(a.archival_search("deploy", tags=["infra", "food"], tag_match="any").hits) >= 2
    assert a.archival_search("deploy", end_date="2000-01-01").hits == []
    page1 = a.archival_search("deploy ECS Vault Thai", limit=1)
    page2 = a.archival_search("deploy ECS Vault Thai", limit=1, page=2)
    assert page1.has_more and page1.hits[0].id != page2.hits[0].id


def test_recall_by_text_date_role_and_run(service: MemoryService):
    a = service.agent
    a.log_messages([
        {"role": "user", "content": "I adopted a puppy named Biscuit", "created_at": "2024-03-01T09:00:00Z"},
        {"role": "assistant", "content": "Congratulations on Biscuit!", "created_at": "2024-03-01T09:00:05Z"},
    ], run_id="s1")
    a.log_messages([
        {"role": "user", "content": "Biscuit chewed my running shoes", "created_at": "2024-04-10T18:30:00Z"},
        {"role": "assistant", "content": "Puppies do that; try chew toys.", "created_at": "2024-04-10T18:30:09Z"},
        {"role": "user", "content": "Booked the vet for Friday", "created_at": "2024-04-12"},
    ], run_id="s2")
    # the messages with the word first, then the turns around them (context), never the reverse
    biscuit = [m.content for m in a.recall("Biscuit").messages]
    assert set(biscuit[:3]) == {
        "I adopted a puppy named Biscuit", "Congratulations on Biscuit!", "Biscuit chewed my running shoes"}
    assert set(biscuit[3:]) <= {"Puppies do that; try chew toys.", "Booked the vet for Friday"}
    assert a.recall("shoes chewed").messages[0].created_at == "2024-04-10T18:30:00Z"
    assert {m.content for m in a.recall("biscuit", roles=["assistant"]).messages} == {"Congratulations on Biscuit!"}
    april = a.recall(start_date="2024-04-01", end_date="2024-04-10").messages
    assert [m.content for m in april] == ["Puppies do that; try chew toys.", "Biscuit chewed my running shoes"]
    assert [m.content for m in a.recall(limit=1).messages] == ["Booked the vet for Friday"]
    assert a.recall(limit=1).has_more
    in_s1 = a.recall("puppy", run_id="s1").messages
    assert in_s1[0].content == "I adopted a puppy named Biscuit" and {m.run_id for m in in_s1} == {"s1"}
    assert a.recall('"); DROP TABLE messages; --').messages == []  # no match, no error
    note = a.recall("?! ...")
    assert note.note and len(note.messages) == 5
    with pytest.raises(InvalidInput, match="end_date"):
        a.recall("x", end_date="last week")


def test_add_memory_messages_are_in_recall(service: MemoryService):
    service.add(None, [{"role": "user", "content": "My favourite band is Khruangbin"}])
    assert service.agent.recall("Khruangbin").messages[0].role == "user"
    assert service.agent.counts() == {"archival": 0, "facts": 1, "recall": 1}


def test_paging_depth_is_bounded_with_a_clear_error(service):
    import pytest

    from mcp_memory.errors import InvalidInput

    service.agent.archival_insert("Casa Azul, room 12")
    service.agent.log_messages([{"role": "user", "content": "hello there"}])
    for call in (lambda: service.agent.archival_search("hotel", page=26843546),
                 lambda: service.agent.recall("hello", page=101, limit=10)):
        with pytest.raises(InvalidInput, match="ranked results go 1000 deep"):
            call()
    assert service.agent.recall(None, page=10**6).messages == []  # newest-first: an offset, no bound
    assert service.agent.recall("hello", page=100, limit=10).messages == []
    with pytest.raises(InvalidInput, match="out of range"):
        service.list(page=2**62)
