"""The stdio transport, with a start-up that does not make the client wait for the SDK.

Importing the MCP SDK takes ~0.5 s (pydantic models for two protocol eras and the HTTP
stack it imports eagerly), and clients launch a new server for every session. So:

1. The wire is claimed first: the process's own stdin/stdout descriptors are kept for
   JSON-RPC, and fd 0/1 are pointed at /dev/null and stderr, so nothing else (a
   library's print, a child process) can read the client's messages or write to it.
2. A thread reads the client's lines into a queue; another imports the SDK and builds
   the server, while this one reads core memory for the `instructions`.
3. The client's opening request (`initialize`, or `server/discover` on 2026-07-28
   connections) is answered at once when the SDK's own answer to that request is in the
   handshake cache (written by the previous start with the same package, SDK, profile
   and default user; the instructions are always the current ones). Once it was, the
   first pages of `tools/list` and `prompts/list` are answered from the cache too: the
   client learns the tools ~0.5 s before the SDK could tell it.
4. When the SDK is ready, everything the client sent is replayed into it, in order,
   then the live stream follows. The SDK's replies to the requests answered early are
   not sent again: each is compared with the early answer, and a difference refreshes
   the cache and is logged, so a stale cache costs at most one slightly wrong reply.

Everything after that is the SDK's own stdio server and session.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

from mcp_memory import __version__
from mcp_memory.config import Settings

log = logging.getLogger(__name__)

CACHE_FILE = "handshake-cache.json"
MODERN_META = "io.modelcontextprotocol/"
DRAIN_SECONDS = 30.0
LISTS = ("tools/list", "prompts/list")  # fixed by what `sdk_fingerprint` names: cached too
DIRECT_WRITE_BYTES = 16384  # replies up to this size are written from the event loop (a pipe holds 64 KiB)
_EOF = object()


class _Ready:
    def __init__(self, server: Any = None, error: BaseException | None = None) -> None:
        self.server = server
        self.error = error


def _claim_wire() -> tuple[BinaryIO, BinaryIO]:
    """Private copies of fd 0 and fd 1 for JSON-RPC; fd 0 then reads /dev/null and fd 1 goes to stderr."""
    wire_in, wire_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return os.fdopen(wire_in, "rb"), os.fdopen(wire_out, "wb")


def sdk_fingerprint(settings: Settings) -> str:
    """What the cached replies depend on: the package, the SDK, the profile (which tools are
    registered) and the default user (named in a tool's description)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        sdk = f"{version('mcp')}+{version('mcp-types')}"
    except PackageNotFoundError:
        sdk = "unknown"
    return f"mcp-memory {__version__}; mcp {sdk}; profile {settings.profile}; user {settings.default_user_id}"


class HandshakeCache:
    """The SDK's replies to opening requests, keyed by method and protocol version, minus
    the instructions (which change with core memory and are filled in fresh)."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self._entries: dict[str, Any] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("fingerprint") == fingerprint and isinstance(data.get("replies"), dict):
                self._entries = data["replies"]
        except (OSError, ValueError, AttributeError):
            pass  # no cache yet, or unreadable: the SDK answers and the cache is written

    @staticmethod
    def key(message: dict[str, Any]) -> str | None:
        """The cache key of an opening request we may answer early, or None."""
        if message.get("jsonrpc") != "2.0" or not isinstance(message.get("id"), (int, str)):
            return None
        params = message.get("params")
        if not isinstance(params, dict):
            return None
        if message.get("method") == "initialize":
            info = params.get("clientInfo")
            if (isinstance(params.get("protocolVersion"), str) and isinstance(params.get("capabilities"), dict)
                    and isinstance(info, dict) and isinstance(info.get("name"), str)
                    and isinstance(info.get("version"), str)):
                return f"initialize {params['protocolVersion']}"
        elif message.get("method") == "server/discover":
            meta = params.get("_meta")
            if isinstance(meta, dict) and isinstance(meta.get(MODERN_META + "protocolVersion"), str) \
                    and isinstance(meta.get(MODERN_META + "clientInfo"), dict) \
                    and isinstance(meta.get(MODERN_META + "clientCapabilities"), dict):
                return f"server/discover {meta[MODERN_META + 'protocolVersion']}"
        return None

    @staticmethod
    def list_key(message: dict[str, Any], opening: str | None) -> str | None:
        """The cache key of a first-page list request on a connection opened by ``opening``."""
        if opening is None or message.get("method") not in LISTS or not isinstance(message.get("id"), (int, str)):
            return None
        params = message.get("params")
        if params is None or (isinstance(params, dict) and set(params) <= {"_meta"}):
            return f"{message['method']} after {opening}"
        return None

    def reply(self, message: dict[str, Any], key: str, instructions: str) -> dict[str, Any] | None:
        result = self._entries.get(key)
        if not isinstance(result, dict):
            return None
        result = dict(result)
        if "instructions" in result:
            result["instructions"] = instructions
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}

    def store(self, key: str, reply: dict[str, Any]) -> None:
        result = dict(reply["result"])
        if "instructions" in result:
            result["instructions"] = ""
        if self._entries.get(key) == result:
            return  # a list request answered by the SDK, with the reply already cached: no rewrite
        self._entries[key] = result
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".handshake-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"fingerprint": self.fingerprint, "replies": self._entries}, f)
            os.replace(tmp, self.path)  # atomic: servers starting together never read half a file
        except OSError as exc:
            log.info("could not write the handshake cache %s: %s", self.path, exc)


class _Early:
    """The requests answered from the handshake cache before the SDK is loaded (the opening
    request, then first-page `tools/list` / `prompts/list` once the opening was answered so),
    and those whose SDK reply should fill the cache: by id, the cache key and the early reply."""

    def __init__(self, cache: HandshakeCache, instructions: str) -> None:
        self._cache = cache
        self._instructions = instructions
        self._opening: str | None = None  # the opening request's cache key
        self._seen_opening = False
        self._answered_opening = False
        self._mu = threading.Lock()
        self._watch: dict[str, tuple[str, dict[str, Any] | None]] = {}

    def answer(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """A request received before the SDK is loaded: its reply from the cache, if it may be
        answered now (the first request is the opening one)."""
        if not self._seen_opening:
            self._seen_opening = True
            key = self._opening = self._cache.key(message)
            reply = self._cache.reply(message, key, self._instructions) if key else None
            self._answered_opening = reply is not None
        else:
            key = self._cache.list_key(message, self._opening)
            early = key is not None and self._answered_opening
            reply = self._cache.reply(message, key, self._instructions) if early else None
        self._watch_for(message, key, reply)
        return reply

    def observe(self, message: Any) -> None:
        """A request reaching the SDK: a list request's reply will fill the cache."""
        if isinstance(message, dict) and "method" in message and "id" in message:
            self._watch_for(message, self._cache.list_key(message, self._opening), None)

    def _watch_for(self, message: dict[str, Any], key: str | None, reply: dict[str, Any] | None) -> None:
        if key is not None:
            with self._mu:
                self._watch.setdefault(json.dumps(message["id"]), (key, reply))

    def sdk_reply(self, message: dict[str, Any]) -> bool:
        """The SDK's reply to a watched request fills or refreshes the cache; True if the client
        already has it (from the cache)."""
        with self._mu:
            entry = self._watch.pop(json.dumps(message["id"]), None)
        if entry is None:
            return False
        key, early = entry
        if "result" in message and message != early:
            if early is not None:
                log.warning("the early reply to %s differed from the SDK's; the handshake cache is refreshed", key)
            self._cache.store(key, message)
        return early is not None


class _InFlight:
    """Ids of the client's requests not answered yet, so that end of input can wait for them."""

    def __init__(self) -> None:
        from mcp_memory.process import IdleTrim

        self._ids: set[str] = set()
        self._changed = threading.Condition()
        self._trim = IdleTrim()

    def received(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        with self._changed:
            if "method" in message and "id" in message:
                self._ids.add(json.dumps(message["id"]))
            elif message.get("method") == "notifications/cancelled" and isinstance(message.get("params"), dict):
                self._ids.discard(json.dumps(message["params"].get("requestId")))
                self._changed.notify_all()

    def answered(self, message: Any) -> None:
        if isinstance(message, dict) and "id" in message and "method" not in message:
            with self._changed:
                self._ids.discard(json.dumps(message["id"]))
                self._changed.notify_all()
                if not self._ids:
                    self._trim.touch()  # free memory once the client has been quiet a moment

    def wait_empty(self, timeout: float) -> int:
        """Wait until every request is answered (or ``timeout``); returns how many are left."""
        with self._changed:
            self._changed.wait_for(lambda: not self._ids, timeout)
            return len(self._ids)


class _Inbox:
    """The client's lines, read by a thread: into a queue while the SDK loads, then straight
    into the event loop (a line then reaches the SDK without a thread hop)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()  # also carries the SDK loader's _Ready
        self._mu = threading.Lock()
        self._loop: Any = None
        self._live: Any = None

    def put(self, item: Any) -> None:
        with self._mu:
            if self._loop is None:
                self.queue.put(item)
            else:
                try:
                    self._loop.call_soon_threadsafe(self._live.put_nowait, item)
                except RuntimeError:  # the loop has ended (the server is exiting): nobody reads on
                    pass

    def attach(self) -> Any:
        """From inside the event loop: the asyncio queue that now receives the lines, holding
        those not yet taken from the thread queue, in order."""
        import asyncio

        live: asyncio.Queue[Any] = asyncio.Queue()
        with self._mu:
            while True:
                try:
                    live.put_nowait(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._loop, self._live = asyncio.get_running_loop(), live
        return live


class _Lines:
    """What the SDK reads as stdin: the lines held during start-up, then the live ones.

    At the end of the client's input it waits until every request received has been
    answered before reporting end of file: the SDK drops the replies of requests still
    running when its input ends (their writes are made, but never acknowledged)."""

    def __init__(self, held: list[Any], inbox: _Inbox, inflight: _InFlight, early: _Early) -> None:
        self._held = held
        self._inbox = inbox
        self._live: Any = None
        self._inflight = inflight
        self._early = early
        self._done = False

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        if self._done:
            raise StopAsyncIteration
        if self._held:
            item = self._held.pop(0)
        else:
            if self._live is None:
                self._live = self._inbox.attach()
            item = await self._live.get()
        if item is _EOF:
            self._done = True
            import anyio.to_thread

            left = await anyio.to_thread.run_sync(self._inflight.wait_empty, DRAIN_SECONDS)
            if left:
                log.warning("stdin closed; %d requests still running after %ss are abandoned", left, DRAIN_SECONDS)
            raise StopAsyncIteration
        text = item.decode("utf-8", errors="replace")
        try:
            message = json.loads(text)
        except ValueError:
            return text  # the SDK answers malformed input itself
        self._inflight.received(message)
        self._early.observe(message)
        return text


class _Wire:
    """What the SDK writes as stdout: the wire, minus its reply to the request answered early.

    Replies are written from the event loop itself: a line into a pipe the client reads takes
    microseconds, less than a hand-off to a worker thread. A large one goes through a thread,
    so that a client slow to read cannot hold up the loop while the pipe is full."""

    def __init__(self, out: BinaryIO, inflight: _InFlight, early: _Early) -> None:
        self._out = out
        self._inflight = inflight
        self._early = early

    async def write(self, text: str) -> int:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if isinstance(message, dict) and "id" in message and "method" not in message \
                and self._early.sdk_reply(message):
            self._inflight.answered(message)
            return len(text)  # the client already has its answer
        data = text.encode("utf-8")
        if len(data) <= DIRECT_WRITE_BYTES:
            self._send(data)
        else:
            import anyio.to_thread

            await anyio.to_thread.run_sync(self._send, data)
        self._inflight.answered(message)  # after the write: end of input waits for the reply to be out
        return len(text)

    def _send(self, data: bytes) -> None:
        self._out.write(data)
        self._out.flush()

    async def flush(self) -> None:
        pass  # every write is flushed


def _read(wire_in: BinaryIO, inbox: _Inbox) -> None:
    try:
        for line in iter(wire_in.readline, b""):
            inbox.put(line)
    except (OSError, ValueError) as exc:
        log.info("stdin failed: %s", exc)
    inbox.put(_EOF)


def _load(settings: Settings, service: Any, instructions: str, inbox: _Inbox) -> None:
    try:
        from mcp_memory.server import build_server

        inbox.put(_Ready(server=build_server(settings, service, instructions=instructions)))
    except BaseException as exc:  # reported by the main thread
        inbox.put(_Ready(error=exc))


def serve(settings: Settings) -> None:
    """Serve MCP over this process's stdin/stdout until the client closes stdin."""
    from mcp_memory import instructions as instructions_mod
    from mcp_memory.process import pause_gc_during_startup
    from mcp_memory.service import MemoryService

    wire_in, wire_out = _claim_wire()
    inbox = _Inbox()
    threading.Thread(target=_read, args=(wire_in, inbox), name="mcp-memory-stdin", daemon=True).start()

    service = MemoryService(settings)
    pause_gc_during_startup(lambda: service.started)
    text = instructions_mod.build(settings, service)
    threading.Thread(target=_load, args=(settings, service, text, inbox), name="mcp-memory-sdk",
                     daemon=True).start()
    cache = HandshakeCache(settings.data_dir / CACHE_FILE, sdk_fingerprint(settings))

    early = _Early(cache, text)
    held: list[Any] = []
    while True:
        item = inbox.queue.get()
        if isinstance(item, _Ready):
            ready = item
            break
        held.append(item)
        if item is _EOF:
            continue
        try:
            message = json.loads(item)
        except ValueError:
            continue
        if isinstance(message, dict) and "method" in message and "id" in message:
            reply = early.answer(message)
            if reply is not None:
                wire_out.write(json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
                wire_out.flush()
                log.debug("answered %s before the SDK was loaded", message["method"])
    if ready.error is not None:
        raise ready.error

    import anyio

    inflight = _InFlight()
    anyio.run(_run, ready.server, _Lines(held, inbox, inflight, early), _Wire(wire_out, inflight, early))
    wire_out.flush()


async def _run(server: Any, stdin: _Lines, stdout: _Wire) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server(stdin=stdin, stdout=stdout) as (read, write):  # type: ignore[arg-type]
        lowlevel = server._lowlevel_server
        await lowlevel.run(read, write, lowlevel.create_initialization_options())
