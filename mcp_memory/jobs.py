"""Background extraction: `add_memory(wait=false)` stores the raw input as a job in SQLite
(in the same transaction as the message log) and returns at once; workers run the LLM
steps later.

Jobs survive restarts and SIGKILL: a worker claims a job with a lease inside `BEGIN
IMMEDIATE`, and a job whose lease ran out (its process died) is claimed again by any
process. The memories a job writes and its "done" mark commit in one transaction, so a
job never applies twice. A job that keeps failing for unexpected reasons is marked failed
after `MAX_ATTEMPTS` and its text is stored as given, so no input is lost.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mcp_memory.models import AddResult, JobInfo, short_ts, utcnow

if TYPE_CHECKING:
    from mcp_memory.store.sql import SQLStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
POLL_SECONDS = 1.0


@dataclass
class Job:
    id: str
    payload: dict[str, Any]
    attempts: int


def _in(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JobQueue:
    def __init__(self, sql: SQLStore) -> None:
        self.sql = sql

    @staticmethod
    def enqueue(conn: sqlite3.Connection, payload: dict[str, Any]) -> str:
        job_id = uuid.uuid4().hex
        now = utcnow()
        conn.execute("INSERT INTO jobs (id, kind, state, payload, attempts, created_at, updated_at) "
                     "VALUES (?, 'add', 'pending', ?, 0, ?, ?)",
                     (job_id, json.dumps(payload, ensure_ascii=False), now, now))
        return job_id

    def claim(self, lease_seconds: float) -> Job | None:
        """Take the oldest pending job, or a running one whose process died or whose lease ran out."""
        now = utcnow()
        with self.sql.write() as conn:
            rows = conn.execute("SELECT id, payload, attempts, state, lease_until, owner FROM jobs "
                                "WHERE state IN ('pending', 'running') ORDER BY created_at LIMIT 100").fetchall()
            row = next((r for r in rows if r["state"] == "pending" or (r["lease_until"] or "") < now
                        or not _alive(r["owner"])), None)
            if row is None:
                return None
            conn.execute("UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, owner = ?, "
                         "updated_at = ? WHERE id = ?", (_in(lease_seconds), OWNER, now, row["id"]))
        return Job(row["id"], json.loads(row["payload"]), row["attempts"] + 1)

    @staticmethod
    def mark_done(conn: sqlite3.Connection, job_id: str, result: AddResult) -> None:
        conn.execute("UPDATE jobs SET state = 'done', result = ?, lease_until = NULL, updated_at = ? WHERE id = ?",
                     (json.dumps(result.compact(), ensure_ascii=False), utcnow(), job_id))

    def set_result(self, job_id: str, result: AddResult) -> None:
        with self.sql.write() as conn:
            self.mark_done(conn, job_id, result)

    def retry_later(self, job_id: str, error: str) -> None:
        with self.sql.write() as conn:
            conn.execute("UPDATE jobs SET state = 'pending', error = ?, lease_until = NULL, updated_at = ? "
                         "WHERE id = ?", (error, utcnow(), job_id))

    def mark_failed(self, conn: sqlite3.Connection, job_id: str, error: str, result: AddResult | None) -> None:
        conn.execute("UPDATE jobs SET state = 'failed', error = ?, result = ?, lease_until = NULL, updated_at = ? "
                     "WHERE id = ?", (error, json.dumps(result.compact()) if result else None, utcnow(), job_id))

    def get(self, job_id: str) -> JobInfo | None:
        row = self.sql.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _info(row) if row else None

    def recent(self, user_id: str, limit: int = 20) -> list[JobInfo]:
        rows = self.sql.conn.execute(
            "SELECT * FROM jobs WHERE json_extract(payload, '$.scope.user_id') = ? "
            "ORDER BY created_at DESC LIMIT ?", (user_id, limit)).fetchall()
        return [_info(r) for r in rows]

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.sql.conn.execute("SELECT state, count(*) FROM jobs GROUP BY state")}


OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _alive(owner: str | None) -> bool:
    """Whether the process that claimed a job still runs (known on this host only; elsewhere the
    lease decides). A process is identified by host, pid and a per-process token, so a pid the
    kernel has reused for another process does not count as the old one."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    if owner == OWNER:
        return True
    if int(pid_text) == os.getpid():  # our pid, another token: a dead process whose pid we got
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _info(row: sqlite3.Row) -> JobInfo:
    result = json.loads(row["result"]) if row["result"] else {}
    return JobInfo(id=row["id"], state=row["state"], attempts=row["attempts"], created_at=short_ts(row["created_at"])
                   or "", updated_at=short_ts(row["updated_at"]) or "", events=result.get("events"),
                   extraction=result.get("extraction"), note=result.get("note"), error=row["error"])


class JobWorker:
    """Threads that claim jobs and run them with ``run(job) -> None``; ``run`` marks the job."""

    def __init__(self, queue: JobQueue, run: Callable[[Job], None], lease_seconds: float, threads: int = 2) -> None:
        self.queue = queue
        self.run = run
        self.lease_seconds = lease_seconds
        self.threads = threads
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._loop, name=f"mcp-memory-jobs-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._workers:
            t.join(timeout)
        self._workers.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.queue.claim(self.lease_seconds)
            except Exception:
                log.exception("claiming a background job failed")
                job = None
            if job is None:
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()
                continue
            try:
                self.run(job)
            except Exception as exc:  # run() handles expected failures; this is the unexpected
                log.exception("background job %s failed (attempt %d)", job.id, job.attempts)
                if job.attempts < MAX_ATTEMPTS:
                    self.queue.retry_later(job.id, f"{type(exc).__name__}: {exc}")
