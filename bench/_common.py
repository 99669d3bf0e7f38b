"""Shared helpers of the benchmark scripts: statistics, the machine description, a minimal
MCP stdio client (raw JSON-RPC over pipes, so the figures are the server's and the pipe's,
not a client library's), process RSS, and the RESULTS.md section writer."""

from __future__ import annotations

import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"


# -- statistics ----------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def settle(svc: Any) -> None:
    """Leave a store as a quiet server leaves it: the index outbox applied and the index folded
    (the worker does it 6 s after the last write; a process closed sooner leaves small fragments,
    and the next one to start folds them while the benchmark would be timing it)."""
    if svc.sync.is_ready:
        svc.sync.drain()
        svc.sync.compact_now()


def summary(ms: Sequence[float]) -> dict[str, float]:
    return {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99),
            "mean": statistics.fmean(ms) if ms else float("nan"), "max": max(ms) if ms else float("nan")}


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def fmt_ms(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    if v >= 10000:
        return f"{v / 1000:.1f} s"
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


# -- the machine -----------------------------------------------------------------------
def machine(packages: Sequence[str] = ("mcp", "lancedb", "pylance", "pyarrow", "numpy", "wordllama",
                                       "sqlite-utils", "pydantic")) -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    osname = platform.platform()
    try:
        pretty = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text())
        if pretty:
            osname = f"{pretty.group(1)} ({platform.release()})"
    except OSError:
        pass
    versions = []
    for p in packages:
        try:
            versions.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            pass
    versions.append(f"sqlite {sqlite3.sqlite_version}")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "mcp_memory"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
        commit += " (+ uncommitted changes in mcp_memory)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "ram": ram,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": osname,
        "packages": ", ".join(versions),
        "commit": commit,
    }


def machine_md(m: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in m.items())


# -- RESULTS.md ------------------------------------------------------------------------
def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace the section between ``<!-- name:start -->`` and ``<!-- name:end -->`` (append it
    if missing), leaving every other section of the file as it is."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


# -- processes -----------------------------------------------------------------------------
def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss / 1024, hwm / 1024


class MCPError(RuntimeError):
    pass


class StdioMCP:
    """A minimal MCP client over stdio: newline-delimited JSON-RPC on the child's pipes,
    handshake-era protocol (initialize). Blocking and single-threaded on purpose: each
    timing is one write and the read of its reply, nothing else."""

    PROTOCOL = "2025-06-18"

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None,
                 stderr_path: Path | None = None) -> None:
        self._stderr = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env, cwd=cwd)
        self._id = 0
        self.server_info: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._id += 1
        rid = self._id
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise MCPError(f"server exited (code {self.proc.poll()}) while waiting for {method}")
            msg = json.loads(line)
            if msg.get("id") == rid and ("result" in msg or "error" in msg):
                if "error" in msg:
                    raise MCPError(f"{method}: {msg['error']}")
                return msg["result"]
            if "method" in msg and "id" in msg:  # a server->client request (roots, sampling ...): decline
                self._send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "not supported"}})

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params or {}})

    def initialize(self) -> dict[str, Any]:
        result = self.request("initialize", {"protocolVersion": self.PROTOCOL, "capabilities": {},
                                             "clientInfo": {"name": "mcp-memory-bench", "version": "0"}})
        self.server_info = result
        self.notify("notifications/initialized")
        return result

    def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        result = self.request("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise MCPError(f"{name}: {result['content'][0].get('text')}")
        if result.get("structuredContent") is not None:
            return result["structuredContent"]
        text = result["content"][0].get("text", "") if result.get("content") else ""
        try:
            return json.loads(text)
        except ValueError:
            return text

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        finally:
            if self._stderr is not subprocess.DEVNULL:
                self._stderr.close()

    def __enter__(self) -> StdioMCP:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def server_argv() -> list[str]:
    return [sys.executable, "-m", "mcp_memory", "serve"]


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_")}
    env["MCP_MEMORY_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


# -- machine noise ---------------------------------------------------------------------------
def loadavg() -> float:
    """The 1-minute load average (runnable + waiting threads, all processes on the machine)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def wait_quiet(threshold: float = 1.0, max_wait_s: float = 600.0) -> float:
    """Wait until other work on the machine calms down (1-minute load below ``threshold``),
    at most ``max_wait_s``; return the load when starting. Benchmarks on a shared 2-core machine
    are only comparable when the load they ran under is said."""
    deadline = time.monotonic() + max_wait_s
    while loadavg() > threshold and time.monotonic() < deadline:
        time.sleep(10)
    return loadavg()


class LoadMonitor:
    """Samples the 1-minute load average every few seconds while a benchmark runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        import threading

        self.samples: list[float] = []
        self._stop = threading.Event()
        self._every = every_s
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(loadavg())
            self._stop.wait(self._every)

    def __enter__(self) -> LoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def describe(self) -> str:
        if not self.samples:
            return "-"
        return (f"median {pct(self.samples, 50):.1f}, max {max(self.samples):.1f} "
                f"(1-min load average on {os.cpu_count()} cores; this benchmark itself adds about 1)")


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall ms, CPU ms of this process, all its threads) of one call."""
    c, t = time.process_time(), time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000


def proc_cpu_ms(pid: int) -> float:
    """User + system CPU time a process has used so far (all threads), in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
