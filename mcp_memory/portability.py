"""Export everything as JSON lines (streamed), and import it back, or import from peers.

Our export is one JSON object per line with a ``type``: ``meta`` first, then ``memory``
(facts and archival passages, deleted ones too), ``history``, ``message``, ``block``,
``block_version``, ``entity``, ``alias``, ``relation`` and ``support``. Vectors are not
exported: they are derived, and re-made by the importing store's embedder.

`load` reads, line by line or as one JSON document, and recognises:
- our own export: restored with its ids, history, states and timestamps (idempotent: what
  already exists is skipped);
- a Mem0 export or `get_all()` dump (``{"results": [...]}`` or a list of objects with
  ``memory``), or such objects one per line;
- the reference MCP memory server's JSONL knowledge graph (``{"type": "entity", "name",
  "entityType", "observations"}`` and ``{"type": "relation", "from", "to", "relationType"}``):
  each observation becomes a fact and each relation a graph relation;
- plain text or markdown, into archival memory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mcp_memory.errors import InvalidInput
from mcp_memory.models import utcnow

if TYPE_CHECKING:
    from mcp_memory.service import MemoryService

FORMAT_VERSION = 1
_OURS = {"meta", "memory", "history", "message", "block", "block_version", "entity", "alias", "relation", "support"}
Progress = Callable[[int, int], None]  # (records done, records in all)


def _rows(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
    cur = conn.execute(sql, list(params))
    cols = [c[0] for c in cur.description]
    for row in cur:
        yield dict(zip(cols, row))


def export(service: MemoryService, out: IO[str], user_id: str | None = None,
           progress: Progress | None = None) -> dict[str, int]:
    """Write every record (of one user, or of all) to ``out``, one JSON object per line. One read
    transaction on its own connection: a consistent snapshot while other clients keep writing."""
    service._ready()
    conn = sqlite3.connect(service.sql.path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("BEGIN")
        return _export(service, conn, out, user_id, progress)
    finally:
        conn.close()


def _export(service: MemoryService, conn: sqlite3.Connection, out: IO[str], user_id: str | None,
            progress: Progress | None) -> dict[str, int]:
    where, params = ("WHERE user_id = ?", [service.scope(user_id).user_id]) if user_id else ("", [])
    counts: dict[str, int] = {}
    total = 1 + sum(conn.execute(f"SELECT count(*) FROM {table} {where}", params).fetchone()[0]
                    for table in ("memories", "messages", "blocks", "block_history", "entities", "entity_aliases",
                                  "relations"))
    total += conn.execute("SELECT count(*) FROM history").fetchone()[0] if not user_id else 0
    done = 0

    def emit(kind: str, record: dict[str, Any]) -> None:
        nonlocal done
        out.write(json.dumps({"type": kind, **record}, ensure_ascii=False, separators=(",", ":")) + "\n")
        counts[kind] = counts.get(kind, 0) + 1
        done += 1
        if progress is not None and done % 500 == 0:
            progress(done, max(total, done))

    embedder = conn.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
    emit("meta", {"format": "mcp-memory", "version": FORMAT_VERSION, "exported_at": utcnow(),
                  "user_id": user_id, "embedder": json.loads(embedder[0]) if embedder else None})
    cols = ("id, kind, text, user_id, agent_id, run_id, metadata, tags, state, source, created_at, updated_at")
    for r in _rows(conn, f"SELECT {cols} FROM memories {where} ORDER BY created_at, id", params):
        for key in ("metadata", "tags", "source"):
            r[key] = json.loads(r[key]) if r[key] else None
        emit("memory", r)
    mem_scope = f"WHERE memory_id IN (SELECT id FROM memories {where})" if user_id else ""
    for r in _rows(conn, f"SELECT memory_id, event, old_value, new_value, reason, actor, created_at FROM history "
                         f"{mem_scope} ORDER BY id", params):
        emit("history", r)
    for r in _rows(conn, f"SELECT id, role, name, content, created_at, user_id, agent_id, run_id FROM messages "
                         f"{where} ORDER BY id", params):
        emit("message", r)
    for r in _rows(conn, f"SELECT user_id, label, value, description, char_limit, read_only, version, created_at, "
                         f"updated_at FROM blocks {where} ORDER BY rowid", params):
        r["read_only"] = bool(r["read_only"])
        emit("block", r)
    for r in _rows(conn, f"SELECT user_id, label, version, event, value, actor, created_at FROM block_history "
                         f"{where} ORDER BY id", params):
        emit("block_version", r)
    for r in _rows(conn, f"SELECT id, user_id, name, type AS entity_type, created_at, updated_at FROM entities {where}", params):
        emit("entity", r)
    for r in _rows(conn, f"SELECT user_id, alias_norm, alias, entity_id FROM entity_aliases {where}", params):
        emit("alias", r)
    for r in _rows(conn, f"SELECT id, user_id, source_id, relation, target_id, valid_from, valid_to, ended_reason, "
                         f"created_at FROM relations {where} ORDER BY valid_from", params):
        emit("relation", r)
    rel_scope = f"WHERE relation_id IN (SELECT id FROM relations {where})" if user_id else ""
    for r in _rows(conn, f"SELECT relation_id, memory_id FROM relation_support {rel_scope}", params):
        emit("support", r)
    if progress is not None:
        progress(done, done)
    return counts


# -- reading -----------------------------------------------------------------------------------------
def read_records(path: Path) -> tuple[str, list[Any]]:
    """(format, records) of a file: 'ours', 'mem0', 'mcp-graph' or 'text'."""
    raw = path.read_text(encoding="utf-8")
    stripped = raw.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("results"), list):
            return "mem0", doc["results"]
        if isinstance(doc, list):
            return _detect(doc), doc
        if isinstance(doc, dict):
            return _detect([doc]), [doc]
        records = []
        for n, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path.name}:{n} is not JSON ({exc.msg}); fix or remove that line") from None
        return _detect(records), records
    return "text", [raw]


def _detect(records: list[Any]) -> str:
    dicts = [r for r in records if isinstance(r, dict)]
    if not dicts:
        raise InvalidInput("no JSON objects found: expected an mcp-memory export, a Mem0 dump or an MCP memory "
                           "server graph")
    first = dicts[0]
    if first.get("type") == "meta" and first.get("format") == "mcp-memory":
        return "ours"
    if any("entityType" in r or "relationType" in r for r in dicts):
        return "mcp-graph"
    if all("memory" in r or "text" in r for r in dicts):
        return "mem0"
    if all(r.get("type") in _OURS for r in dicts):
        return "ours"
    raise InvalidInput("unrecognised records: expected an mcp-memory export, a Mem0 dump (objects with 'memory') "
                       "or an MCP memory server graph (entities with 'entityType')")


# -- loading -----------------------------------------------------------------------------------------
def load(service: MemoryService, path: Path, user_id: str | None = None,
         progress: Progress | None = None) -> dict[str, Any]:
    """Import ``path`` (format detected); returns what was imported and skipped."""
    fmt, records = read_records(path)
    if fmt == "text":
        if not records[0].strip():
            return {"format": fmt, "passages": 0}
        r = service.agent.archival_insert(records[0], [f"file:{path.name}"], user_id, {"source": str(path)})
        return {"format": fmt, "passages": len(r.ids), "duplicates": r.duplicates}
    if fmt == "mem0":
        rows = []
        for r in records:
            if not isinstance(r, dict):
                continue
            rows.append({k: v for k, v in {
                "text": r.get("memory", r.get("text")), "user_id": r.get("user_id") or user_id,
                "agent_id": r.get("agent_id"), "run_id": r.get("run_id"),
                "metadata": r.get("metadata") if isinstance(r.get("metadata"), dict) else None,
                "created_at": r.get("created_at"), "updated_at": r.get("updated_at")}.items() if v is not None})
        result = service.import_memories(rows, user_id=user_id)
        return {"format": fmt, "memories": result.imported, "duplicates": result.skipped}
    if fmt == "mcp-graph":
        return {"format": fmt, **_load_mcp_graph(service, records, user_id)}
    return {"format": fmt, **_restore(service, records, progress)}


def _load_mcp_graph(service: MemoryService, records: list[Any], user_id: str | None) -> dict[str, int]:
    """Each observation becomes a fact ("Name: observation", the entity in its metadata); each
    relation a graph relation whose ends carry their entity types."""
    types: dict[str, str] = {}
    facts, relations = [], []
    for r in records:
        if isinstance(r, dict) and r.get("type") == "entity" and isinstance(r.get("name"), str):
            kind = r.get("entityType") if isinstance(r.get("entityType"), str) else None
            if kind:
                types[r["name"]] = kind
            for obs in r.get("observations") or []:
                if isinstance(obs, str) and obs.strip():
                    meta = {"entity": r["name"], **({"entity_type": kind} if kind else {}), "source": "mcp-graph"}
                    facts.append({"text": f"{r['name']}: {obs}", "metadata": meta})
    for r in records:
        if (isinstance(r, dict) and r.get("type") == "relation"
                and all(isinstance(r.get(k), str) and r[k].strip() for k in ("from", "to", "relationType"))):
            relations.append({"source": r["from"], "relation": r["relationType"], "target": r["to"],
                              "source_type": types.get(r["from"]), "target_type": types.get(r["to"])})
    imported = service.import_memories(facts, user_id=user_id) if facts else None
    added = 0
    for i in range(0, len(relations), 200):
        added += len(service.graph.add(relations[i:i + 200], user_id).added)
    return {"memories": imported.imported if imported else 0, "duplicates": imported.skipped if imported else 0,
            "relations": added}


def _restore(service: MemoryService, records: list[Any], progress: Progress | None) -> dict[str, int]:
    """Our own export, with ids, history, states and dates. What exists already is left alone."""
    from mcp_memory import text as textlib
    from mcp_memory.store.sql import SQLStore

    by: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if isinstance(r, dict) and r.get("type") in _OURS:
            by.setdefault(r["type"], []).append(r)
    service._ready()
    sql = service.sql
    counts = {"memories": 0, "messages": 0, "blocks": 0, "relations": 0, "skipped": 0}
    with sql.write() as conn:
        ids: dict[int, int] = {}
        for m in by.get("message", []):
            same = conn.execute("SELECT id FROM messages WHERE role = ? AND content = ? AND created_at = ? AND "
                                "user_id IS ? AND run_id IS ?", (m["role"], m["content"], m["created_at"],
                                                                 m.get("user_id"), m.get("run_id"))).fetchone()
            if same:  # already imported
                ids[int(m["id"])] = int(same[0])
                continue
            cur = conn.execute("INSERT INTO messages (role, name, content, created_at, user_id, agent_id, run_id) "
                               "VALUES (?,?,?,?,?,?,?)", (m["role"], m.get("name"), m["content"], m["created_at"],
                                                          m.get("user_id"), m.get("agent_id"), m.get("run_id")))
            ids[int(m["id"])] = int(cur.lastrowid)
            counts["messages"] += 1
        fresh = set()
        for m in by.get("memory", []):
            if conn.execute("SELECT 1 FROM memories WHERE id = ?", (m["id"],)).fetchone():
                counts["skipped"] += 1
                continue
            source = [ids[s] for s in m.get("source") or [] if s in ids] or None
            conn.execute(
                "INSERT INTO memories (id, kind, text, hash, user_id, agent_id, run_id, metadata, tags, state, "
                "vector, source, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,NULL,?,?,?)",
                (m["id"], m["kind"], m["text"], textlib.text_hash(m["text"]), m.get("user_id"), m.get("agent_id"),
                 m.get("run_id"), _dump(m.get("metadata")), _dump(m.get("tags")), m["state"], _dump(source),
                 m["created_at"], m["updated_at"]))
            if m["state"] == "active":  # the index worker embeds rows stored without a vector
                SQLStore.enqueue_index(conn, [m["id"]])
            fresh.add(m["id"])
            counts["memories"] += 1
        for h in by.get("history", []):
            if h["memory_id"] in fresh:
                SQLStore.add_history(conn, h["memory_id"], h["event"], h.get("old_value"), h.get("new_value"),
                                     h.get("reason"), h.get("actor"), h["created_at"])
        new_blocks = set()
        for b in by.get("block", []):
            key = (b["user_id"], b["label"])
            if _untouched_default(conn, *key):  # a fresh store's empty persona/human give way
                conn.execute("DELETE FROM blocks WHERE user_id = ? AND label = ?", key)
                conn.execute("DELETE FROM block_history WHERE user_id = ? AND label = ?", key)
            cur = conn.execute(
                "INSERT OR IGNORE INTO blocks (user_id, label, value, description, char_limit, read_only, version, "
                "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (b["user_id"], b["label"], b["value"], b.get("description"), b["char_limit"], int(b["read_only"]),
                 b["version"], b["created_at"], b["updated_at"]))
            if cur.rowcount:
                new_blocks.add(key)
                counts["blocks"] += 1
            else:  # edited here already: the local block wins
                counts["skipped"] += 1
        for v in by.get("block_version", []):
            if (v["user_id"], v["label"]) in new_blocks:
                conn.execute("INSERT INTO block_history (user_id, label, version, event, value, actor, created_at) "
                             "VALUES (?,?,?,?,?,?,?)", (v["user_id"], v["label"], v["version"], v["event"],
                                                         v["value"], v.get("actor"), v["created_at"]))
        for e in by.get("entity", []):
            conn.execute("INSERT OR IGNORE INTO entities (id, user_id, name, type, created_at, updated_at) "
                         "VALUES (?,?,?,?,?,?)", (e["id"], e["user_id"], e["name"], e.get("entity_type"), e["created_at"],
                                                  e["updated_at"]))
        for a in by.get("alias", []):
            conn.execute("INSERT OR IGNORE INTO entity_aliases (user_id, alias_norm, alias, entity_id) VALUES "
                         "(?,?,?,?)", (a["user_id"], a["alias_norm"], a["alias"], a["entity_id"]))
        for r in by.get("relation", []):
            cur = conn.execute(
                "INSERT OR IGNORE INTO relations (id, user_id, source_id, relation, target_id, valid_from, valid_to, "
                "ended_reason, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (r["id"], r["user_id"], r["source_id"], r["relation"], r["target_id"], r["valid_from"],
                 r.get("valid_to"), r.get("ended_reason"), r["created_at"]))
            counts["relations"] += cur.rowcount
        for s in by.get("support", []):
            conn.execute("INSERT OR IGNORE INTO relation_support (relation_id, memory_id) VALUES (?, ?)",
                         (s["relation_id"], s["memory_id"]))
    service.sync.notify()
    if progress is not None:
        progress(len(records), len(records))
    return counts


def _untouched_default(conn: sqlite3.Connection, user_id: str, label: str) -> bool:
    row = conn.execute("SELECT version FROM blocks WHERE user_id = ? AND label = ?", (user_id, label)).fetchone()
    return bool(row and row[0] == 1 and not conn.execute(
        "SELECT 1 FROM block_history WHERE user_id = ? AND label = ? AND actor IS NOT 'default'",
        (user_id, label)).fetchone())


def _dump(value: Any) -> str | None:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else None
