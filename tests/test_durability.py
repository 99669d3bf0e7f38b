"""Several assistants, one memory: concurrent server processes, visibility, real deletion."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from mcp_memory.cli import cli
from mcp_memory.config import Settings
from mcp_memory.service import MemoryService
from tests.conftest import call, stdio_client
from tests.test_http import http_server

WORKERS = 4
OPS = 300
VOCAB = [f"{a}{b}" for a in ("bra", "cle", "dro", "fli", "gra", "kno", "pla", "stu", "tri", "vo")
         for b in ("mble", "nder", "ssel", "ttle", "pper", "zzle", "rkin", "mpet", "ndle", "ggle")]


def check_store(data: Path) -> MemoryService:
    """Open the store as a new process would and check it is whole."""
    svc = MemoryService(Settings.from_env({}, data_dir=data))
    svc.open()
    con = sqlite3.connect(data / "memory.sqlite3")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # nothing half-written: every memory has its ADD in history, every block its versions
    assert con.execute("SELECT count(*) FROM memories m WHERE NOT EXISTS (SELECT 1 FROM history h "
                       "WHERE h.memory_id = m.id AND h.event = 'ADD')").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM blocks b WHERE version != (SELECT max(version) FROM block_history h "
                       "WHERE h.user_id = b.user_id AND h.label = b.label)").fetchone()[0] == 0
    con.close()
    svc.sync.drain()
    assert svc.index.ids() == svc.sql.active_ids()  # the index agrees with SQLite row for row
    return svc


@pytest.mark.anyio
async def test_four_stdio_processes_and_one_http_server_three_hundred_operations_each(tmp_path: Path):
    data = tmp_path / "data"
    expected: dict[str, str | None] = {}  # memory id -> current text (None: deleted)
    block_lines: list[str] = []
    messages: list[str] = []
    archival: list[str] = []

    async with stdio_client(data) as setup:
        await call(setup, "core_memory_create_block", label="shared", limit=100_000)

    async def worker(p: int, url: str | None = None) -> None:
        from mcp import Client

        rng = random.Random(p)
        mine: list[str] = []
        async with (stdio_client(data) if url is None else Client(url)) as client:
            for i in range(OPS):
                op = rng.random()
                words = " ".join(rng.sample(VOCAB, 3))
                if op < 0.35 or not mine:
                    r = await call(client, "add_memory", text=f"Worker {p} fact {i} about {words}")
                    [event] = r["events"]
                    assert event["event"] == "ADD"
                    expected[event["id"]] = event["memory"]
                    mine.append(event["id"])
                elif op < 0.45:
                    mid = rng.choice(mine)
                    r = await call(client, "update_memory", memory_id=mid, text=f"Worker {p} revised {i} {words}")
                    expected[mid] = r["memory"]
                elif op < 0.52:
                    mid = mine.pop(rng.randrange(len(mine)))
                    await call(client, "delete_memory", memory_id=mid)
                    expected[mid] = None
                elif op < 0.70:
                    line = f"w{p}-line-{i}"
                    await call(client, "core_memory_append", label="shared", text=line)
                    block_lines.append(line)
                elif op < 0.80:
                    r = await call(client, "archival_memory_insert", text=f"Worker {p} document {i}: {words}.")
                    archival.extend(r["ids"])
                else:
                    turns = [f"w{p} turn {i}.{k} {words}" for k in range(rng.randint(1, 3))]
                    await call(client, "log_messages", run_id=f"w{p}",
                               messages=[{"role": "user", "content": t} for t in turns])
                    messages.extend(turns)

    started = time.monotonic()
    with http_server(data, "--transport", "http") as http:  # and one more process, over streamable HTTP
        async with anyio.create_task_group() as tg:
            for p in range(WORKERS):
                tg.start_soon(worker, p)
            tg.start_soon(worker, WORKERS, http.url)
    elapsed = time.monotonic() - started

    svc = check_store(data)
    try:
        rows = svc.sql.get_memories(list(expected) + archival)
        for mid, text in expected.items():
            row = rows[mid]
            if text is None:
                assert row.state == "deleted"
            else:
                assert (row.state, row.text) == ("active", text)
        texts = Counter(r.text for r in rows.values() if r.state == "active")
        assert max(texts.values()) == 1  # every acknowledged write exactly once
        assert all(rows[a].state == "active" for a in archival)
        shared = svc.agent.core_read("shared").blocks[0].value.splitlines()
        assert sorted(shared) == sorted(block_lines)  # no lost update
        logged = [r[0] for r in svc.sql.conn.execute("SELECT content FROM messages")]
        assert sorted(logged) == sorted(messages)
        deleted = {m for m, t in expected.items() if t is None}
        assert not deleted & svc.index.ids()
    finally:
        svc.close()
    print(f"{WORKERS} stdio + 1 HTTP processes x {OPS} mixed operations in {elapsed:.1f}s")


@pytest.mark.anyio
async def test_a_write_in_one_process_is_searchable_in_another_within_a_second(tmp_path: Path):
    data = tmp_path / "data"
    async with stdio_client(data) as writer, stdio_client(data) as reader:
        await call(reader, "search_memory", query="warm up")
        await call(writer, "search_memory", query="warm up")
        for n in range(3):
            word = f"zephyrine{n}"
            await call(writer, "add_memory", text=f"User's new password hint is {word}")
            t0 = time.monotonic()
            while True:
                hits = (await call(reader, "search_memory", query=f"{word} password hint"))["hits"]
                if hits and word in hits[0]["memory"]:
                    break
                assert time.monotonic() - t0 < 1.0, "not visible in the other process within 1 s"
                await anyio.sleep(0.02)


def test_purge_erases_deleted_and_superseded_text_from_every_file(tmp_path: Path, make_service: Any):
    data = tmp_path / "data"
    svc = make_service(data_dir=data)
    m = [f"qqmarker{i}zz" for i in range(5)]
    deleted = svc.add(f"Old address is {m[0]}").events[0].id
    updated = svc.add(f"Locker code {m[1]}").events[0].id
    svc.add(f"Keep this {m[4]} forever")
    svc.delete(deleted)
    svc.update(updated, "Locker code changed")
    svc.agent.core_rethink("human", f"Temporary note {m[2]}")
    svc.agent.core_rethink("human", "Nothing to see")
    archived = svc.agent.archival_insert(f"A passage about {m[3]}").ids[0]
    svc.delete(archived)  # archival passages are deleted like facts
    svc.close()

    def files_with(marker: str) -> list[Path]:
        return [p for p in data.rglob("*") if p.is_file() and marker.encode() in p.read_bytes()]

    assert all(files_with(x) for x in m)  # the scan sees every marker before the purge
    result = CliRunner().invoke(cli, ["--data-dir", str(data), "purge", "--all-history", "--yes"])
    assert result.exit_code == 0, result.output
    assert "erased 2 deleted memories" in result.output
    assert [x for x in m[:4] if files_with(x)] == []
    assert files_with(m[4])  # what is still active stays
    svc = make_service(data_dir=data)
    assert svc.search(m[4]).hits[0].memory == f"Keep this {m[4]} forever"
    assert [v.value for v in svc.agent.core_history("human").versions] == ["Nothing to see"]


def test_an_index_left_in_small_pieces_is_compacted_by_the_next_process(tmp_path, make_service):
    """A client that closes the server right after some adds leaves the index in small
    fragments, and every search then reads them all. The next process folds them at start."""
    import time

    from mcp_memory.store.sync import FRAGMENTS_AT_START

    data = tmp_path / "data"
    first = make_service(data_dir=data)
    first.search("the index is open")
    for i in range(FRAGMENTS_AT_START + 12):  # each add indexed on its own, as in a conversation
        first.add(f"Fact number {i}: the user visited city {i}", infer=False)
        assert first.sync.wait_idle(30)
    before = first.index.fragment_count()
    first.close()  # at once: no quiet moment to fold them in
    assert before > FRAGMENTS_AT_START
    second = make_service(data_dir=data)
    assert len(second.search("which city did the user visit", limit=5).hits) == 5
    deadline = time.monotonic() + 30
    while second.index.fragment_count() > 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert second.index.fragment_count() <= 2
    assert len(second.search("which city did the user visit", limit=50).hits) == FRAGMENTS_AT_START + 12


def test_the_index_worker_applies_what_was_queued_when_it_began(make_service):
    """During a burst of adds the worker writes what was queued when it began and rests before
    the next write, instead of chasing each new add with a LanceDB version of its own."""
    svc = make_service()
    svc.search("the index is open")
    svc.sync.stop()  # no worker: the outbox is applied by hand below
    first = svc.add("The user drinks green tea", infer=False).events[0].id
    mark = svc.sql.last_pending_seq()
    second = svc.add("The user plays chess on Sundays", infer=False).events[0].id
    assert [mid for _, mid in svc.sql.pending_index()] == [first, second]
    assert svc.sync.drain(upto=mark) == 1
    assert [mid for _, mid in svc.sql.pending_index()] == [second]
    assert first in svc.index.ids() and second not in svc.index.ids()
    assert svc.sync.drain() == 1
    assert not svc.sql.has_pending_index()
    assert {first, second} <= svc.index.ids()
