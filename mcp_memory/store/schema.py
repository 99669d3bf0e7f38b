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


MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")


def date_words_sql(row: str) -> str:
    """SQL for the date words of a message ("8 May 2023") from ``row``.created_at, so recall's
    full-text index matches "May 2023" in a question. One expression serves the view, the
    triggers and every rebuild, so the index and its content table always agree."""
    months = " ".join(f"WHEN '{i:02d}' THEN '{m}'" for i, m in enumerate(MONTH_NAMES, 1))
    return (f"ltrim(strftime('%d', {row}.created_at), '0') || ' ' || CASE strftime('%m', {row}.created_at) "
            f"{months} ELSE '' END || ' ' || strftime('%Y', {row}.created_at)")


@migrations(name="0003_recall_search")
def _recall_search(db: Database) -> None:
    """Recall ranks messages by what they say, who said them and when: the full-text index now
    covers the speaker's name and the date words beside the content (porter stemming as before),
    messages get a vector (embedded by the index worker; NULL until then), and indexes serve
    the neighbour and participant-name look-ups of `mcp_memory.recall_rank`."""
    fields = "coalesce({r}.name, ''), {r}.content, " + date_words_sql("{r}")
    new, old = fields.format(r="new"), fields.format(r="old")
    db.executescript(
        f"""
        DROP TRIGGER IF EXISTS messages_ai;
        DROP TRIGGER IF EXISTS messages_ad;
        DROP TRIGGER IF EXISTS messages_au;
        DROP TABLE IF EXISTS messages_fts;
        ALTER TABLE messages ADD COLUMN vector BLOB;
        -- What the full-text index holds for a message (its external content).
        CREATE VIEW messages_doc AS
            SELECT id, coalesce(name, '') AS name, content, {date_words_sql("messages")} AS dated FROM messages;
        CREATE VIRTUAL TABLE messages_search USING fts5(
            name, content, dated, content='messages_doc', content_rowid='id', tokenize='porter');
        CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_search (rowid, name, content, dated) VALUES (new.id, {new});
        END;
        CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_search (messages_search, rowid, name, content, dated)
                VALUES ('delete', old.id, {old});
        END;
        -- Not on vector updates: only what the index holds.
        CREATE TRIGGER messages_search_au AFTER UPDATE OF name, content, created_at ON messages BEGIN
            INSERT INTO messages_search (messages_search, rowid, name, content, dated)
                VALUES ('delete', old.id, {old});
            INSERT INTO messages_search (rowid, name, content, dated) VALUES (new.id, {new});
        END;
        INSERT INTO messages_search (messages_search) VALUES ('rebuild');
        -- Conversation order within a run (neighbouring turns), participants by name.
        CREATE INDEX messages_conversation ON messages(user_id, run_id, created_at, id);
        CREATE INDEX messages_name ON messages(user_id, name COLLATE NOCASE);
        CREATE INDEX messages_unembedded ON messages(id) WHERE vector IS NULL;
        """
    )
