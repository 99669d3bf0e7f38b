"""`mcp-memory export` / `import`: our own format round trip, and imports from the peers' formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from mcp_memory.cli import cli


def run(data_dir: Path, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def records(path: Path) -> dict[str, list[dict[str, Any]]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        by.setdefault(r.pop("type"), []).append(r)
    return by


def comparable(by: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Every record but the export's own header, order-free; message ids are the store's own."""
    out = {}
    for kind, rows in by.items():
        if kind == "meta":
            continue
        out[kind] = sorted(json.dumps({k: v for k, v in r.items() if not (kind == "message" and k == "id")},
                                      sort_keys=True) for r in rows)
    return out


def fill(make_service: Any, data_dir: Path) -> None:
    svc = make_service(data_dir=data_dir)
    trip = svc.add("I am planning a trip to Tokyo", user_id="alice", metadata={"topic": "travel"}).events[0]
    svc.update(trip.id, "Alice is going to Paris instead", reason="plans changed")
    gone = svc.add("Alice dislikes olives", user_id="alice").events[0]
    svc.delete(gone.id, reason="wrong")
    svc.add(messages=[{"role": "user", "content": "My sister Jane lives in Lyon"}], user_id="alice", infer=False)
    svc.agent.archival_insert("Project Falcon notes: the launch moved to March.", ["work"], "alice")
    svc.agent.log_messages([{"role": "user", "content": "remind me about the dentist", "name": "Alice",
                             "created_at": "2024-05-02T09:00:00Z"}], run_id="s1", user_id="alice")
    svc.agent.core_append("human", "Name: Alice. Vegetarian.", "alice")
    svc.agent.core_create("project", "the current project", 2000, "Falcon", user_id="alice")
    svc.graph.add([{"source": "Alice", "relation": "lives_in", "target": "Tokyo", "exclusive": True,
                    "valid_from": "2024-01-01"},
                   {"source": "Alice", "relation": "lives_in", "target": "Paris", "exclusive": True,
                    "valid_from": "2024-06-01"}], "alice")
    svc.add("Bob likes jazz", user_id="bob")
    svc.close()


def test_export_import_round_trip_keeps_everything(make_service: Any, tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    fill(make_service, a)
    dump = tmp_path / "all.jsonl"
    assert "exported" in run(a, "export", str(dump))
    first = records(dump)
    assert first["meta"][0]["format"] == "mcp-memory"
    assert {r["state"] for r in first["memory"]} == {"active", "deleted"}
    assert any(h["event"] == "UPDATE" and h["old_value"] == "I am planning a trip to Tokyo" for h in first["history"])
    assert any(r["valid_to"] for r in first["relation"]), "the superseded relation is exported with its end"
    assert not any("vector" in r for rows in first.values() for r in rows)

    run(b, "list")  # a fresh store with its default (empty) core blocks: the imported ones replace them
    out = run(b, "import", str(dump))
    assert "format ours" in out and "memories 5" in out
    again = tmp_path / "again.jsonl"
    run(b, "export", str(again))
    assert comparable(records(again)) == comparable(first)

    assert "memories 0" in run(b, "import", str(dump)), "importing twice adds nothing"
    run(b, "export", str(again))
    assert comparable(records(again)) == comparable(first)

    # the restored store works: search re-embeds, history and core memory are there
    hits = json.loads(run(b, "--json", "search", "where is Alice travelling?", "--user", "alice"))["hits"]
    assert hits[0]["memory"] == "Alice is going to Paris instead"
    assert "UPDATE 'I am planning a trip to Tokyo'" in run(b, "show", hits[0]["id"])
    assert "Vegetarian" in run(b, "blocks", "show", "human", "--user", "alice")
    assert "dentist" in run(b, "recall", "dentist", "--user", "alice")


def test_export_one_user(make_service: Any, tmp_path: Path):
    fill(make_service, tmp_path / "a")
    dump = tmp_path / "bob.jsonl"
    run(tmp_path / "a", "export", str(dump), "--user", "bob")
    by = records(dump)
    assert [m["text"] for m in by["memory"]] == ["Bob likes jazz"]
    assert all(r.get("user_id") in (None, "bob") for rows in by.values() for r in rows if "user_id" in r)
    assert not any("Tokyo" in json.dumps(r) or "Alice" in json.dumps(r) for rows in by.values() for r in rows)


def test_import_mem0_dump(tmp_path: Path):
    dump = tmp_path / "mem0.json"
    dump.write_text(json.dumps({"results": [
        {"id": "6f1c2b9e-0000-4000-8000-000000000001", "memory": "Likes hiking in the Alps", "hash": "x",
         "metadata": {"source": "chat"}, "created_at": "2024-07-20T10:00:00.123456-07:00", "updated_at": None,
         "user_id": "carol"},
        {"id": "6f1c2b9e-0000-4000-8000-000000000002", "memory": "Is allergic to peanuts", "metadata": None,
         "created_at": "2024-07-21T08:30:00-07:00", "user_id": "carol"},
        {"id": "6f1c2b9e-0000-4000-8000-000000000003", "memory": "likes hiking in the alps", "user_id": "carol"},
    ]}))
    out = run(tmp_path / "d", "import", str(dump))
    assert "format mem0" in out and "memories 2" in out and "duplicates 1" in out
    listed = json.loads(run(tmp_path / "d", "--json", "list", "--user", "carol"))
    by_text = {m["memory"]: m for m in listed["memories"]}
    assert set(by_text) == {"Likes hiking in the Alps", "Is allergic to peanuts"}
    assert by_text["Likes hiking in the Alps"]["created_at"].startswith("2024-07-20T17:00:00")
    hits = json.loads(run(tmp_path / "d", "--json", "search", "food allergy", "--user", "carol"))["hits"]
    assert hits[0]["memory"] == "Is allergic to peanuts"


def test_import_reference_server_graph(tmp_path: Path):
    graph = tmp_path / "memory.jsonl"
    graph.write_text("\n".join(json.dumps(r) for r in [
        {"type": "entity", "name": "John_Smith", "entityType": "person",
         "observations": ["Speaks fluent Spanish", "Graduated in 2019"]},
        {"type": "entity", "name": "Anthropic", "entityType": "organization", "observations": []},
        {"type": "relation", "from": "John_Smith", "to": "Anthropic", "relationType": "works_at"},
    ]) + "\n")
    out = run(tmp_path / "d", "import", str(graph), "--user", "dana")
    assert "format mcp-graph" in out and "memories 2" in out and "relations 1" in out
    assert "John_Smith -[works_at]-> Anthropic" in run(tmp_path / "d", "graph", "--user", "dana")
    run(tmp_path / "d", "export", str(tmp_path / "out.jsonl"))
    types = {e["name"]: e["entity_type"] for e in records(tmp_path / "out.jsonl")["entity"]}
    assert types == {"John_Smith": "person", "Anthropic": "organization"}
    hits = json.loads(run(tmp_path / "d", "--json", "search", "which languages does John speak", "--user",
                          "dana"))["hits"]
    assert hits[0]["memory"] == "John_Smith: Speaks fluent Spanish"
    assert hits[0]["metadata"] == {"entity": "John_Smith", "entity_type": "person", "source": "mcp-graph"}


def test_import_text_into_archival_and_bad_files(tmp_path: Path):
    notes = tmp_path / "notes.md"
    notes.write_text("# Falcon\n\nThe Falcon launch moved to March because of the supplier delay.\n")
    assert "format text" in run(tmp_path / "d", "import", str(notes))
    assert "supplier delay" in run(tmp_path / "d", "archival-search", "why did the launch move?")

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "meta", "format": "mcp-memory", "version": 1}\n{oops\n')
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "d"), "import", str(bad)])
    assert result.exit_code == 1 and "bad.jsonl:2 is not JSON" in result.output
    assert [line for line in result.output.splitlines() if line.startswith("Error")] == \
        result.output.splitlines()[-1:], "one error line, no traceback"
    odd = tmp_path / "odd.json"
    odd.write_text('[{"colour": "blue"}]')
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "d"), "import", str(odd)])
    assert result.exit_code == 1 and "unrecognised records" in result.output
