"""Shared helpers for the bench scripts: temporary roots, server processes on loopback, /proc reads.

Stdlib only (urllib), so the probes add no dependency and no client-side event loop.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
TOKEN = "bench-control-token-0123456789"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

# The runtime in replay mode with every shipped agent seeded and cycling continuously:
# 600 bars/min = 10 bars/s and one cycle per 2 bars = a cycle every ~200 ms (5 cycles/s).
FAST_CYCLING_ENV = {
    "ONLYTRADE_SEED_AGENTS": "all",
    "REPLAY_SPEED": "600",
    "AGENT_DECISION_EVERY_BARS": "2",
    "AGENT_LLM_ENABLED": "false",
    "AGENT_FLAT_ENTRY_ENABLED": "true",
    "RUNTIME_DATA_MODE": "replay",
    "STRICT_LIVE_MODE": "false",
    "LOG_LEVEL": "warning",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_loopback(base: str) -> None:
    host = urlsplit(base).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        sys.exit(f"refusing to load {base}: benchmarks target loopback addresses only")


def make_root(prefix: str = "onlytrade-bench-") -> Path:
    """A temporary ONLYTRADE_ROOT holding copies of agents/ and data/replay/ (as tests/e2e do)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.copytree(REPO / "agents", root / "agents")
    (root / "data").mkdir()
    shutil.copytree(REPO / "data" / "replay", root / "data" / "replay")
    return root


def have_taskset() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pin_prefix(cpu: int | None) -> list[str]:
    """`taskset -c N` when available; every thread the process starts inherits the mask."""
    if cpu is None or not have_taskset():
        return []
    return ["taskset", "-c", str(cpu)]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "CONTROL_API", "AGENT_", "RUNTIME_", "KILL_SWITCH", "REPLAY_", "ONLYTRADE_"))}
    return {**base, **extra}


class Proc:
    """A server subprocess with its log in a file; `stop()` signals only this pid."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path, base: str):
        self.argv, self.env, self.cwd, self.log_path, self.base = argv, env, cwd, log_path, base
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> Proc:
        self.log = open(self.log_path, "ab")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, path: str = "/health/ready", timeout: float = 30.0, poll_s: float = 0.005) -> float:
        """Seconds from Popen to the first 200 on `path`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.read_log()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base + path, timeout=1.0) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started_at
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(poll_s)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.read_log()[-3000:]}")

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


# The show's own pace is the runtime's defaults for these (one bar a second, a cycle every 10 bars).
PACE_KEYS = ("REPLAY_SPEED", "AGENT_DECISION_EVERY_BARS")


def runtime_proc(root: Path, port: int, *, env: dict[str, str] | None = None, cpu: int | None = None,
                 pace: str = "stress") -> Proc:
    """`pace` "stress": FAST_CYCLING_ENV (50 times the show's decisions); "show": the runtime's defaults."""
    cycling = FAST_CYCLING_ENV if pace == "stress" else {k: v for k, v in FAST_CYCLING_ENV.items() if k not in PACE_KEYS}
    full_env = clean_env({
        "ONLYTRADE_ROOT": str(root), "HOST": "127.0.0.1", "PORT": str(port), "CONTROL_API_TOKEN": TOKEN,
        **cycling, **(env or {}),
    })
    argv = [*pin_prefix(cpu), sys.executable, "-m", "runtime_api"]
    return Proc(argv, env=full_env, cwd=root, log_path=root / "server.log", base=f"http://127.0.0.1:{port}")


def baseline_proc(workdir: Path, port: int, *, cpu: int | None = None, body_bytes: int = 0) -> Proc:
    argv = [*pin_prefix(cpu), sys.executable, str(BENCH / "baseline_app.py"), "--port", str(port),
            *(["--body-bytes", str(body_bytes)] if body_bytes else [])]
    return Proc(argv, env=clean_env({}), cwd=workdir, log_path=workdir / "baseline.log", base=f"http://127.0.0.1:{port}")


def get_raw(base: str, path: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body as sent: urllib inflates nothing, so a gzip answer stays compressed); 0 when no answer."""
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def get_json(base: str, path: str, timeout: float = 5.0) -> tuple[int, dict | None]:
    status, raw = get_raw(base, path, timeout=timeout)
    try:
        return status, json.loads(raw)
    except ValueError:  # an error without a JSON body keeps its status; a 200 that is not JSON counts as no answer
        return (status, None) if status >= 400 else (0, None)


def proc_status(pid: int | None) -> dict[str, int]:
    """VmRSS / VmHWM (kB) and thread count from /proc/<pid>/status."""
    out: dict[str, int] = {}
    if pid is None:
        return out
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of the process (all threads), from /proc/<pid>/stat."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f} MB"


def loop_stats(base: str) -> dict | None:
    status, body = get_json(base, "/api/agent/runtime/status")
    if status != 200 or not body:
        return None
    return (body.get("data") or {}).get("event_loop")


def total_cycles(base: str) -> int | None:
    status, body = get_json(base, "/api/statistics")
    if status != 200 or not body:
        return None
    return (body.get("data") or {}).get("total_cycles")


# ---- machine noise: other engineers' tests share this 2-core machine ------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_counters() -> dict[str, float]:
    """Whole-machine busy and steal seconds (/proc/stat), plus this process's and its waited children's CPU."""
    import resource

    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "busy": (user + nice + system + irq + softirq) / CLK_TCK,
        "steal": steal / CLK_TCK,
        "mine": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
    }


def foreign_cpu(before: dict, after: dict, server_cpu_s: float | None, extra_pids_cpu_s: float = 0.0) -> dict:
    """CPU seconds used on the machine by processes other than ours (server, wrk, this script) in the interval."""
    busy = after["busy"] - before["busy"]
    mine = (after["mine"] - before["mine"]) + (server_cpu_s or 0.0) + extra_pids_cpu_s
    return {"foreign_s": round(max(0.0, busy - mine), 2), "steal_s": round(after["steal"] - before["steal"], 2)}


def wait_quiet(max_wait_s: float, *, threshold: float = 0.10, settle_s: int = 3, own_pids: tuple[int, ...] = ()) -> tuple[bool, float]:
    """Wait (at most max_wait_s) until the machine's CPU use by others (other processes, plus steal time
    taken by the hypervisor) stays under `threshold` cores for
    `settle_s` consecutive seconds. Returns (quiet, last measured foreign load in cores)."""
    deadline = time.monotonic() + max_wait_s
    calm = 0
    load = 0.0
    while True:
        b = cpu_counters()
        own_b = sum(cpu_seconds(p) or 0.0 for p in own_pids)
        time.sleep(1.0)
        a = cpu_counters()
        own_a = sum(cpu_seconds(p) or 0.0 for p in own_pids)
        noise = foreign_cpu(b, a, own_a - own_b)
        load = noise["foreign_s"] + noise["steal_s"]  # steal: the hypervisor gave our vCPUs to someone else
        calm = calm + 1 if load < threshold else 0
        if calm >= settle_s:
            return True, load
        if time.monotonic() >= deadline:
            return False, load


def tree_state() -> str:
    """The runtime code being measured: commit and whether the work tree has local changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "runtime_api"], capture_output=True, text=True, timeout=5).stdout
        n = len([line for line in dirty.splitlines() if line.strip()])
        return f"{head}{f' + {n} uncommitted runtime_api changes' if n else ''}"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
