"""Graph and temporal memory: entities, relations over time, as_of, aliases, deletion."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mcp_memory.cli import cli
from mcp_memory.config import Settings
from mcp_memory.llm import LLM
from mcp_memory.service import MemoryService
from tests.conftest import call, stdio_client
from tests.fake_openai import existing_memories, is_extraction, new_facts


def triples(result: Any) -> set[tuple[str, str, str]]:
    return {(r.source, r.relation, r.target) for r in result.relations}


def test_people_at_a_company_and_what_they_prefer(service: MemoryService):
    for text in ("Alice works at Company X", "Bob works at Company X", "Carol works at Globex",
                 "Alice prefers oolong tea", "Bob prefers espresso", "Carol prefers green tea"):
        service.add(text)
    found = service.graph.search("What do people at Company X prefer?", depth=2)
    assert [e.name for e in found.entities] == ["Company X"]
    assert triples(found) == {("Alice", "works_at", "Company X"), ("Bob", "works_at", "Company X"),
                              ("Alice", "likes", "oolong tea"), ("Bob", "likes", "espresso")}
    hits = service.search("who likes espresso", include_relations=True)
    assert ("Bob", "likes", "espresso") in {(r.source, r.relation, r.target) for r in hits.relations}


def test_tokyo_then_paris_with_as_of(service: MemoryService):
    service.add(None, [{"role": "user", "content": "I am planning a trip to Tokyo", "created_at": "2024-01-10"}])
    service.add(None, [{"role": "user", "content": "Actually, scratch that, I'm going to Paris instead",
                        "created_at": "2024-03-01"}])
    now = triples(service.graph.search("User", depth=1))
    assert ("User", "travels_to", "Paris") in now and ("User", "travels_to", "Tokyo") not in now
    before = triples(service.graph.search("User", depth=1, as_of="2024-02-01"))
    assert ("User", "travels_to", "Tokyo") in before and ("User", "travels_to", "Paris") not in before
    assert triples(service.graph.search("User", as_of="2023-12-01")) == set()
    tokyo = service.graph.entity("tokyo")
    assert tokyo.current == [] and tokyo.past[0].valid_to.startswith("2024-03-01")
    assert tokyo.past[0].ended  # why it ended is kept


def test_python_then_rust_explicit_relations(service: MemoryService):
    r = service.graph.add([{"source": "User", "relation": "primary stack", "target": "Python",
                            "valid_from": "2021-06-01", "exclusive": True}])
    assert [(x.relation, x.target) for x in r.added] == [("primary_stack", "Python")]
    r = service.graph.add([{"source": "User", "relation": "primary_stack", "target": "Rust",
                            "valid_from": "2024-09-01", "exclusive": True}])
    assert [(x.target, x.valid_to) for x in r.ended] == [("Python", "2024-09-01T00:00:00Z")]
    assert ("User", "primary_stack", "Python") in triples(service.graph.search("User", as_of="2023-01-01"))
    assert ("User", "primary_stack", "Rust") in triples(service.graph.search("User"))
    assert ("User", "primary_stack", "Python") not in triples(service.graph.search("User"))


class AliasModel(LLM):
    """A scripted model that reads the known-entities list the server sends it."""

    name, kind = "scripted", "llm"

    def complete(self, system: str, user: str, max_tokens: int, timeout: float) -> str:
        if not is_extraction(system):
            return json.dumps({"actions": [{"event": "ADD", "text": f} for f in new_facts(user)]})
        known = dict(re.findall(r"^\[(E\d+)\] ([^(]+?) \(", user, re.M))
        first_alex = next((eid for eid, name in known.items() if name == "Alex"), None)
        text = user.split("<input>")[1]
        if "Alex from Acme" in text:
            return json.dumps({"facts": ["Alex works at Acme"],
                               "relations": [{"source": "Alex", "relation": "works_at", "target": "Acme"}]})
        if "alex said" in text:
            return json.dumps({"facts": ["Alex finished the deploy"],
                               "relations": [{"source": "alex", "relation": "finished", "target": "the deploy"}]})
        if "Alex M." in text:
            return json.dumps({"facts": ["Alex M. leads the migration"],
                               "entities": [{"name": "Alex M.", "same_as": first_alex}],
                               "relations": [{"source": "Alex M.", "relation": "leads", "target": "the migration"}]})
        if "sister Alex" in text:
            return json.dumps({"facts": ["User's sister Alex lives in Lisbon"],
                               "entities": [{"name": "Alex", "new": True}],
                               "relations": [{"source": "User", "relation": "sister", "target": "Alex"},
                                             {"source": "Alex", "relation": "lives_in", "target": "Lisbon"}]})
        return json.dumps({"facts": []})


def test_aliases_merge_but_namesakes_stay_apart(data_dir: Path):
    svc = MemoryService(Settings.from_env({}, data_dir=data_dir), llm=AliasModel())
    try:
        for text in ("Alex from Acme helped me with the deploy", "alex said the deploy is done",
                     "Alex M. is leading the migration", "My sister Alex is visiting from Lisbon"):
            svc.add(text, wait=True)
        colleague = svc.graph.entity("Alex M.")
        assert set(colleague.entity.aliases) == {"Alex", "Alex M."}
        assert {(r.relation, r.target) for r in colleague.current} == {
            ("works_at", "Acme"), ("finished", "the deploy"), ("leads", "the migration")}
        sister = svc.graph.search("User", depth=1)
        assert ("User", "sister", "Alex") in triples(sister)
        lisbon = svc.graph.entity("Lisbon")
        alex_in_lisbon = next(r for r in lisbon.current if r.relation == "lives_in")
        sister_entity = svc.graph.search("Lisbon", depth=1).relations[0]
        assert alex_in_lisbon.source == "Alex" and sister_entity.source == "Alex"
        # the sister is another entity than the colleague, though both are "Alex"
        acme = svc.graph.search("Acme", depth=2)
        assert ("Alex", "lives_in", "Lisbon") not in triples(acme)
        assert svc.graph.entity("Alex").others_named_alike == ["Alex"]
    finally:
        svc.close()


def test_superseded_fact_ends_its_relation_and_deletion_erases_the_graph(service: MemoryService, data_dir: Path):
    mid = service.add("I live in Zorbaxville").events[0].id
    assert ("User", "lives_in", "Zorbaxville") in triples(service.graph.search("User"))
    service.update(mid, "I live in Quuxton")
    now = triples(service.graph.search("User"))
    assert ("User", "lives_in", "Quuxton") in now and ("User", "lives_in", "Zorbaxville") not in now
    service.delete(mid)
    assert ("User", "lives_in", "Quuxton") not in triples(service.graph.search("User"))
    assert {r.target for r in service.graph.export(include_ended=True)} >= {"Zorbaxville", "Quuxton"}
    service.purge(all_history=True)
    assert service.graph.export(include_ended=True) == []
    service.add("My brother Blorpington works at Snazzcorp")
    service.delete_all(user_id="default")
    service.close()
    leftovers = [p for p in data_dir.rglob("*") if p.is_file() and any(
        m in p.read_bytes() for m in (b"Zorbaxville", b"Quuxton", b"Blorpington", b"Snazzcorp"))]
    assert leftovers == []


def test_cli_exports_json_and_dot(tmp_path: Path):
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    assert runner.invoke(cli, [*base, "add", "Alice works at Initech"]).exit_code == 0
    out = runner.invoke(cli, [*base, "graph", "--format", "json"]).output
    assert json.loads(out)[0] | {"valid_from": ""} == {"source": "Alice", "relation": "works_at",
                                                         "target": "Initech", "valid_from": ""}
    dot = runner.invoke(cli, [*base, "graph", "--format", "dot"]).output
    assert dot.startswith("digraph memory {") and '"Alice" -> "Initech" [label="works_at"];' in dot
    assert "Alice -[works_at]-> Initech" in runner.invoke(cli, [*base, "graph"]).output


@pytest.mark.anyio
async def test_graph_tools_and_resource_over_mcp(tmp_path: Path):
    async with stdio_client(tmp_path / "data") as client:
        await call(client, "add_memory", text="Dana works at Hooli")
        added = await call(client, "add_relations", relations=[
            {"source": "Dana", "relation": "likes", "target": "rock climbing"},
            {"source": "Dana", "relation": "lives_in", "target": "Oslo", "valid_from": "2020-01-01"},
            {"source": "Dana", "relation": "lives_in", "target": "Bergen", "valid_from": "2023-05-01"}])
        assert len(added["added"]) == 3 and added["ended"][0]["target"] == "Oslo"
        found = await call(client, "search_graph", query="Dana", depth=1)
        assert {(r["relation"], r["target"]) for r in found["relations"]} == {
            ("works_at", "Hooli"), ("likes", "rock climbing"), ("lives_in", "Bergen")}
        then = await call(client, "search_graph", query="Dana", depth=1, as_of="2021-01-01")
        assert ("lives_in", "Oslo") in {(r["relation"], r["target"]) for r in then["relations"]}
        entity = await call(client, "get_entity", name="dana")
        assert entity["memories"] == ["Dana works at Hooli"] and entity["past"][0]["target"] == "Oslo"
        text = (await client.read_resource("memory://graph")).contents[0].text
        assert "Dana -[lives_in]-> Bergen  (2023-05-01..)" in text
        hits = await call(client, "search_memory", query="Hooli", include_relations=True)
        assert hits["relations"] == [{"source": "Dana", "relation": "works_at", "target": "Hooli",
                                      "valid_from": hits["relations"][0]["valid_from"]}]


def test_llm_relations_link_to_the_fact_that_states_them(data_dir: Path):
    class Model(LLM):
        name, kind = "scripted", "llm"

        def complete(self, system: str, user: str, max_tokens: int, timeout: float) -> str:
            if is_extraction(system):
                return json.dumps({"facts": ["User works at Initrode", "User likes jazz"],
                                   "relations": [{"source": "User", "relation": "works_at", "target": "Initrode"},
                                                 {"source": "User", "relation": "likes", "target": "jazz"}]})
            return json.dumps({"actions": [{"event": "ADD", "text": f} for f in new_facts(user)]
                               if not existing_memories(user) else []})

    svc = MemoryService(Settings.from_env({}, data_dir=data_dir), llm=Model())
    try:
        events = svc.add("I work at Initrode and I like jazz", wait=True).events
        jazz = next(e for e in events if "jazz" in e.memory)
        svc.delete(jazz.id)
        now = triples(svc.graph.search("User"))
        assert ("User", "works_at", "Initrode") in now and ("User", "likes", "jazz") not in now
    finally:
        svc.close()
