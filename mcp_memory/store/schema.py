"""Named, ordered schema migrations of the SQLite system of record (sqlite-utils `Migrations`).

Add a migration at the end; never edit one that has shipped.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("mcp_memory")


@migrations(name="0001_memories_history_messages")
def _initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        -- Every memory row (facts and archival passages), active or deleted.
        CREATE TABLE memories (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'fact',
            text TEXT NOT NULL,
            hash TEXT NOT NULL,
            user_id TEXT,
            agent_id TEXT,
            run_id TEXT,
            metadata TEXT,
            tags TEXT,
            state TEXT NOT NULL DEFAULT 'active',
            vector BLOB,
            source TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX memories_scope ON memories(user_id, kind, state, updated_at);
        CREATE INDEX memories_hash ON memories(hash);
        -- Every change of a memory: ADD / UPDATE / DELETE with old and new text and why.
        CREATE TABLE history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            memory_id TEXT NOT NULL,
            event TEXT NOT NULL,
            old_value TEXT,
            new_value TEXT,
            reason TEXT,
            actor TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX history_memory ON history(memory_id, id);
        -- The recall log: every message the server has seen.
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            role TEXT NOT NULL,
            name TEXT,
            content TEXT NOT NULL,
            created_at TEXT NOT NULL,
            user_id TEXT,
            agent_id TEXT,
            run_id TEXT
        );
        CREATE INDEX messages_time ON messages(user_id, created_at);
        CREATE INDEX messages_run ON messages(run_id, created_at);
        -- Outbox of the LanceDB search index: memory ids whose index entry is stale.
        CREATE TABLE index_queue (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            memory_id TEXT NOT NULL
        );
        """
    )
    db["messages"].enable_fts(["content"], create_triggers=True, tokenize="porter")


@migrations(name="0002_core_memory_blocks")
def _blocks(db: Database) -> None:
    db.executescript(
        """
        -- Letta-style core memory: small labelled blocks the assistant keeps in context and edits.
        CREATE TABLE blocks (
            user_id TEXT NOT NULL,
            label TEXT NOT NULL,
            value TEXT NOT NULL DEFAULT '',
            description TEXT,
            char_limit INTEGER NOT NULL,
            read_only INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (user_id, label)
        );
        -- Every version of every block, for history and rollback.
        CREATE TABLE block_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL,
            label TEXT NOT NULL,
            version INTEGER NOT NULL,
            event TEXT NOT NULL,
            value TEXT NOT NULL,
            actor TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX block_history_key ON block_history(user_id, label, version);
        CREATE INDEX memories_kind_created ON memories(kind, user_id, created_at);
        """
    )


@migrations(name="0003_background_jobs")
def _jobs(db: Database) -> None:
    db.executescript(
        """
        -- add_memory(wait=false): raw input waiting for (or done with) background extraction.
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            payload TEXT NOT NULL,
            result TEXT,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            lease_until TEXT,
            owner TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX jobs_state ON jobs(state, created_at);
        """
    )


@migrations(name="0004_graph")
def _graph(db: Database) -> None:
    db.executescript(
        """
        -- Entities (people, organisations, places, things) and their aliases, per user.
        CREATE TABLE entities (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            name TEXT NOT NULL,
            type TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE entity_aliases (
            user_id TEXT NOT NULL,
            alias_norm TEXT NOT NULL,
            alias TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            PRIMARY KEY (user_id, alias_norm, entity_id)
        );
        -- Relations hold over a time range: valid_to NULL means true now. A superseded relation is
        -- ended, not deleted, so the graph can be read as of any date.
        CREATE TABLE relations (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            source_id TEXT NOT NULL,
            relation TEXT NOT NULL,
            target_id TEXT NOT NULL,
            valid_from TEXT NOT NULL,
            valid_to TEXT,
            ended_reason TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX relations_source ON relations(user_id, source_id, relation);
        CREATE INDEX relations_target ON relations(user_id, target_id);
        -- Which memories state a relation; when the last of them is superseded, the relation ends.
        CREATE TABLE relation_support (
            relation_id TEXT NOT NULL,
            memory_id TEXT NOT NULL,
            PRIMARY KEY (relation_id, memory_id)
        );
        CREATE INDEX relation_support_memory ON relation_support(memory_id);
        """
    )


@migrations(name="0005_recall_ranking")
def _recall_ranking(db: Database) -> None:
    """What `mcp_memory.recall_rank` needs: a vector per message (embedded by the index worker;
    NULL until then), indexes for a turn's neighbours in its conversation, for speakers by
    name and for messages still without a vector, and a full-text update trigger that fires
    only when the content changes (not on every vector written)."""
    db.executescript(
        """
        ALTER TABLE messages ADD COLUMN vector BLOB;
        DROP TRIGGER IF EXISTS messages_au;
        CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
            INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
        END;
        CREATE INDEX messages_conversation ON messages(user_id, run_id, created_at, id);
        CREATE INDEX messages_name ON messages(user_id, name COLLATE NOCASE);
        CREATE INDEX messages_unembedded ON messages(id) WHERE vector IS NULL;
        """
    )


@migrations(name="0006_memory_changes")
def _memory_changes(db: Database) -> None:
    """A change log of `memories` for the in-memory vector matrix (`mcp_memory.store.matrix`):
    every process applies what changed since its last search. Filled by triggers, so no write
    path (tools, bulk import, erase, re-embedding) can forget it; the index worker trims it."""
    db.executescript(
        """
        CREATE TABLE memory_changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            memory_id TEXT NOT NULL
        );
        CREATE TRIGGER memory_changes_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memory_changes (memory_id) VALUES (new.id);
        END;
        CREATE TRIGGER memory_changes_au AFTER UPDATE OF text, state, vector, kind, user_id, agent_id, run_id
            ON memories BEGIN
            INSERT INTO memory_changes (memory_id) VALUES (new.id);
        END;
        CREATE TRIGGER memory_changes_ad AFTER DELETE ON memories BEGIN
            INSERT INTO memory_changes (memory_id) VALUES (old.id);
        END;
        """
    )
