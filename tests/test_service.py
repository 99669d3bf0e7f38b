"""MemoryService in process, on the embedded defaults (WordLlama, no LLM)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
import sqlite3

import pytest

from mcp_memory.errors import EmbedderMismatch, InvalidInput, NotFound
from mcp_memory.service import MemoryService


def test_add_search_update_delete_history(service: MemoryService):
    added = service.add("I love drinking dark roast coffee but I'm allergic to soy milk")
    assert added.extraction == "none" and "no extraction ran" in added.note
    assert [e.event for e in added.events] == ["ADD", "ADD"]
    soy = next(e for e in added.events if "soy" in e.memory)

    hits = service.search("which milk should the user avoid?").hits
    assert hits[0].id == soy.id and 0 < hits[0].score <= 1

    updated = service.update(soy.id, "User is allergic to soy milk and to almonds")
    assert updated.event == "UPDATE" and updated.previous == "I'm allergic to soy milk."
    assert service.get(soy.id).memory == "User is allergic to soy milk and to almonds"

    deleted = service.delete(soy.id)
    assert deleted.event == "DELETE"
    assert soy.id not in {h.id for h in service.search("soy milk allergy").hits}
    assert service.get(soy.id).state == "deleted"
    history = service.history(soy.id).entries
    assert [h.event for h in history] == ["ADD", "UPDATE", "DELETE"]
    assert history[1].old == "I'm allergic to soy milk." and history[2].old.endswith("almonds")
    with pytest.raises(NotFound):
        service.update(soy.id, "again")


def test_exact_and_near_duplicates_merge_instead_of_adding(service: MemoryService):
    first = service.add("I love dark roast coffee").events[0]
    assert service.add("i love dark roast coffee.").events[0].event == "NONE"
    more = service.add("I love drinking dark roast coffee").events[0]
    assert (more.event, more.id, more.previous) == ("UPDATE", first.id, "I love dark roast coffee")
    assert service.add("I love dark roast coffee").events[0].event == "NONE"
    negated = service.add("I don't love dark roast coffee").events[0]
    assert negated.event == "ADD"  # a negation is never merged into its opposite
    assert service.list().total == 2


@pytest.mark.parametrize("vector_cache_mb", [512, 0])  # the matrix's one pass for all, and LanceDB's
def test_each_statement_of_one_add_is_checked_against_stored_memories(tmp_path, make_service: Any,
                                                                      vector_cache_mb: int):
    svc = make_service(data_dir=tmp_path / "d", vector_cache_mb=vector_cache_mb)
    coffee = svc.add("I love dark roast coffee").events[0]
    cat = svc.add("My cat Miso sleeps on the warm radiator").events[0]
    assert (svc.matrix is not None) == bool(vector_cache_mb)
    result = svc.add("I love drinking dark roast coffee. My cat Miso sleeps on the radiator. "
                     "I started learning the cello.")
    got = [(e.event, e.id, e.memory) for e in result.events]
    assert got[:2] == [("UPDATE", coffee.id, "I love drinking dark roast coffee."),
                       ("NONE", cat.id, "My cat Miso sleeps on the warm radiator")]
    assert got[2][0] == "ADD" and got[2][2] == "I started learning the cello."
    assert svc.list().total == 3


def test_statements_that_differ_in_a_detail_are_not_merged(service: MemoryService):
    service.add("My flight leaves at 3pm")
    assert service.add("My flight leaves at 5pm").events[0].event == "ADD"
    assert service.add("Input number 1 must survive").events[0].event == "ADD"
    assert service.add("Input number 2 must survive").events[0].event == "ADD"


def test_retraction_supersedes_the_previous_memory(service: MemoryService):
    tokyo = service.add("I am planning a trip to Tokyo").events[0]
    paris = service.add("Actually, scratch that, I'm going to Paris instead").events[0]
    assert (paris.event, paris.id, paris.previous) == ("UPDATE", tokyo.id, "I am planning a trip to Tokyo")
    memories = [m.memory for m in service.list().memories]
    assert memories == ["I'm going to Paris instead"]
    assert service.search("where is the user travelling?").hits[0].memory == "I'm going to Paris instead"


def test_no_llm_result_lists_related_memories(service: MemoryService):
    service.add("I prefer working in dark mode")
    result = service.add("I still love dark mode in every editor")
    assert result.events[0].event == "ADD"
    assert result.related and result.related[0].memory == "I prefer working in dark mode"
    assert "update_memory" in result.note


def test_scopes_never_leak(service: MemoryService):
    service.add("Alice's cat is called Miso", user_id="alice")
    service.add("Bob's cat is called Pixel", user_id="bob")
    service.add("Bob likes the agent to be terse", user_id="bob", agent_id="writer", run_id="r1")
    assert [h.memory for h in service.search("cat name", user_id="bob").hits][0] == "Bob's cat is called Pixel"
    assert all("Alice" not in h.memory for h in service.search("Alice cat Miso", user_id="bob").hits)
    assert [m.memory for m in service.list(user_id="bob", agent_id="writer").memories] == [
        "Bob likes the agent to be terse"]
    assert service.list(user_id="bob", run_id="r2").total == 0
    assert service.list().total == 0  # the default user has nothing


def test_metadata_filters_and_threshold(service: MemoryService):
    service.add("User's flight to Lisbon leaves on May 3", metadata={"topic": "travel"})
    service.add("User's favourite airline is TAP", metadata={"topic": "preferences"})
    hits = service.search("Lisbon flight airline", filters={"topic": "travel"}).hits
    assert [h.memory for h in hits] == ["User's flight to Lisbon leaves on May 3"]
    assert hits[0].metadata == {"topic": "travel"}
    assert len(service.search("Lisbon flight airline", filters={"topic": ["travel", "preferences"]}).hits) == 2
    assert service.search("Lisbon flight", threshold=1.0).hits == []


def test_bad_input_is_rejected_before_anything_is_written(service: MemoryService):
    for call, match in [
        (lambda: service.add("   "), "text is empty"),
        (lambda: service.add("x" * 50_000), "limit is 20000"),
        (lambda: service.add(None, None), "either text or"),
        (lambda: service.add("a", [{"role": "user", "content": "b"}]), "either text or"),
        (lambda: service.add(None, [{"role": "robot", "content": "b"}]), r"messages\[0\].role"),
        (lambda: service.add(None, [{"role": "user", "content": "b", "created_at": "yesterday"}]), "ISO 8601"),
        (lambda: service.add("ok", user_id=""), "user_id"),
        (lambda: service.add("ok", user_id="x" * 201), "user_id"),
        (lambda: service.add("ok", metadata={"x": object()}), "metadata"),
        (lambda: service.get("../../etc/passwd"), "memory_id"),
        (lambda: service.search("q", limit=0), "limit"),
        (lambda: service.list(page_size=5000), "page_size"),
        (lambda: service.delete_all(), "name the user_id"),
    ]:
        with pytest.raises(InvalidInput, match=match):
            call()
    with pytest.raises(NotFound):
        service.get("0" * 32)
    assert service.list().total == 0


def test_messages_are_logged_and_linked_as_source(service: MemoryService):
    result = service.add(None, [
        {"role": "user", "content": "My sister Ana lives in Porto", "created_at": "2024-05-01T10:00:00Z"},
        {"role": "assistant", "content": "Nice! Porto is lovely."},
    ], run_id="chat-1")
    assert result.messages_logged == 2
    assert [e.memory for e in result.events] == ["My sister Ana lives in Porto"]  # user turns only
    memory = service.get(result.events[0].id)
    assert [(m.role, m.created_at) for m in memory.source] == [("user", "2024-05-01T10:00:00Z"),
                                                               ("assistant", memory.source[1].created_at)]
    assert memory.run_id == "chat-1"


def test_delete_all_erases_text_from_every_file(service: MemoryService, data_dir):
    marker = "zqxmarker" + "7" * 6
    service.add(f"The secret codeword is {marker}", user_id="leaving")
    service.add(None, [{"role": "user", "content": f"remember {marker}2 for me"}], user_id="leaving")
    service.add("Someone else stays", user_id="staying")
    on_disk = [p for p in data_dir.rglob("*") if p.is_file() and marker.encode() in p.read_bytes()]
    assert on_disk  # the scan can see the marker before the erase
    result = service.delete_all(user_id="leaving")
    assert result.deleted == 2
    assert service.list(user_id="leaving").total == 0 and service.list(user_id="staying").total == 1
    service.close()
    leftovers = [p for p in data_dir.rglob("*") if p.is_file() and marker.encode() in p.read_bytes()]
    assert leftovers == []


def test_index_is_rebuilt_from_sqlite(make_service, data_dir):
    svc = make_service()
    kept = svc.add("User plays the cello on Sundays").events[0]
    svc.close()
    shutil.rmtree(data_dir / "lancedb")  # lose the whole search index
    svc2 = make_service()
    assert svc2.search("cello").hits[0].id == kept.id
    assert svc2.stats()["index_rows"] == 1


def test_crash_between_sqlite_and_index_is_repaired_at_start(make_service, data_dir):
    svc = make_service()
    svc.add("User's dentist is Dr. Ortega")
    svc.close()
    # a write acknowledged in SQLite whose index update never happened (process killed in between)
    con = sqlite3.connect(data_dir / "memory.sqlite3")
    con.execute("UPDATE memories SET text = 'User''s dentist is Dr. Silva'")
    con.execute("INSERT INTO index_queue (memory_id) SELECT id FROM memories")
    con.commit()
    con.close()
    svc2 = make_service()
    assert svc2.search("Silva dentist").hits[0].memory == "User's dentist is Dr. Silva"
    assert svc2.stats()["index_pending"] == 0


def test_writes_waiting_in_the_outbox_are_not_drift(make_service, data_dir):
    from mcp_memory.store.sync import drifted

    svc = make_service()
    for text in ("User's sister lives in Lyon", "User runs on Tuesdays"):
        svc.add(text, infer=False)
    svc.close()
    svc2 = make_service()
    svc2.search("sister")
    assert svc2.sql.count_active_and_queued() == (2, 0)
    # adds a client sends while the server is still opening its store are in SQLite and queued
    # for the index, not in it yet: a gap the outbox explains is no reason to compare every id
    # (which logged "search index out of step" and read every id twice at 1M rows)
    assert not drifted(active=12, queued=3, indexed=10) and not drifted(active=10, queued=0, indexed=10)
    # a gap larger than the outbox can explain is drift (rows lost from the index, or stale ones)
    assert drifted(active=12, queued=1, indexed=10) and drifted(active=8, queued=1, indexed=10)


def test_embedder_mismatch_is_a_clear_error_with_the_fix(make_service, data_dir):
    from mcp_memory.embeddings import Embedder

    svc = make_service()
    svc.add("User likes jazz")
    svc.close()

    class Other(Embedder):
        name, dim = "other", 256

        def embed_batch(self, texts):
            import numpy as np

            return np.ones((len(texts), 256), dtype=np.float32) / 16

    from mcp_memory.config import Settings

    other = MemoryService(Settings.from_env({}, data_dir=data_dir), embedder=Other())
    with pytest.raises(EmbedderMismatch, match="mcp-memory reindex"):
        other.search("jazz")
    assert other.reindex() == 1
    assert other.search("jazz").hits[0].memory == "User likes jazz"
    other.close()


def test_wordllama_vectors_are_bit_identical_with_wordllamas_own():
    import numpy as np
    from wordllama import WordLlama

    import wordllama
    from mcp_memory.embeddings import WordLlamaEmbedder, normalize

    ours = WordLlamaEmbedder()
    table = ours._table
    assert table.dtype == np.float16  # half the memory of WordLlama's float32 copy ...
    assert not table.flags.owndata and not table.flags.writeable  # ... mapped read-only from the wheel
    reference = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    assert reference.embedding.dtype == np.float32
    texts = ["I'm planning a trip to Tokyo", "", "x" * 3000, "Ünïcödé ✓ and numbers 12345", "a b c",
             "  leading and trailing spaces  ", "tabs\tand\nnewlines", "日本語のテキスト", "🙂🙃 emoji",
             "Caroline went to the LGBTQ support group on 7 May 2023."]
    texts += [f"memory number {i}: the user likes item {i * 7} and colour {i % 5}" for i in range(150)]
    assert np.array_equal(ours.embed_batch(texts), normalize(reference.embed(texts, norm=False)))
    # a smaller batch, then one text at a time (no padding at all): the same vectors
    assert np.array_equal(ours.embed_batch(texts[:3]), normalize(reference.embed(texts[:3], norm=False)))
    assert all(np.array_equal(ours.embed(t), normalize(reference.embed([t], norm=False))[0]) for t in texts[:12])


def test_answers_in_process_once_loaded_and_only_with_the_local_embedder(make_service: Any, tmp_path: Path,
                                                                          fake_openai: Any):
    """What lets the MCP layer run a call on its event loop (`mcp_memory.tooling.run`): never
    before the store, index and matrix are loaded, never with an embedder behind HTTP, never
    when searches would go to LanceDB's slower vector search."""
    svc = make_service()
    assert not svc.answers_in_process  # not opened yet: a call would wait for the opening
    svc.add("I love dark roast coffee")
    assert svc.matrix is not None and svc.matrix.wait_loaded(30)
    svc.sync.wait_ready()
    assert svc.answers_in_process
    no_matrix = make_service(data_dir=tmp_path / "no-matrix", vector_cache_mb=0)
    no_matrix.add("I love dark roast coffee")
    no_matrix.sync.wait_ready()
    assert not no_matrix.answers_in_process
    remote = make_service(data_dir=tmp_path / "remote", embedder="openai", embed_base_url=fake_openai.url,
                          embed_model="toy-embed", embed_dimensions=32)
    remote.add("I love dark roast coffee")
    remote.sync.wait_ready()
    assert remote.matrix is not None and remote.matrix.wait_loaded(30)
    assert not remote.answers_in_process
