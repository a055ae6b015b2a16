"""`onlytrade-ops rehearse`: the seven steps of docs/runbooks/go-live-rehearsal.md, end to end, offline.

A fresh temporary host layout (the agents, a registry seeded with the show agents, an env file as
/etc/onlytrade/runtime.env would hold it) runs in `live_file` + strict mode on a simulated session
(`ONLYTRADE_CLOCK`, shared by every process through one anchor) with the recorded vendor. The data
jobs run as subprocesses on their systemd timers' schedule in simulated time, the runtime is a real
`onlytrade-runtime` process under a small supervisor (restarted when it dies, as `Restart=always`),
and every step is checked with the real `onlytrade-ops` commands the runbook gives. Each step prints
PASS/FAIL with its evidence; the first FAIL stops the rehearsal (as the runbook says) and the exit
code is 0 only if all seven pass.

`--break` sabotages one condition on purpose (a frames job that stopped 10 minutes ago, no control
token, the kill-switch file present) to prove the rehearsal catches it and names the step.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from runtime_api.clock import iso_ms, parse_instant

from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OpsError, Outcome

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIXTURES = REPO / "tests" / "data_jobs" / "fixtures" / "akshare"
DEFAULT_AT = "2026-02-13T10:00:00+08:00"  # a Friday session the recorded vendor holds bars for
DEFAULT_AGENTS = ("t_001", "t_002")  # show agents with stock pools; the last one is step 4's reset target
BREAKAGES = ("stale-job", "missing-token", "kill-switch")
CONTROL_PATHS = ("agent/runtime/control", "agent/runtime/kill-switch", "replay/runtime/control",
                 "dev/factory-reset", "dev/reset-agent", "agents/t_001/stop")
CYCLE_MS = 3000  # the smallest AGENT_RUNTIME_CYCLE_MS: step 7's own timer cycle comes quickly
READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Job:
    """A data job and its systemd timer, in simulated time: every `every_s`, `offset_s` into the period."""

    module: str
    args: tuple[str, ...]
    every_s: int
    offset_s: int


# As systemd/onlytrade-job-*.timer: frames, overview and breadth at :05 of every minute, news every
# 15 min at :30; the daily history runs before the open (08:45), i.e. once when the layout is built.
JOBS = (
    Job("frames_collector", ("--if-open", "--budget-s", "50"), 60, 5),
    Job("market_overview", ("--if-open", "--budget-s", "50"), 60, 5),
    Job("breadth", ("--if-open", "--budget-s", "50"), 60, 5),
    Job("news_digest", ("--budget-s", "300"), 900, 30),
)
PRE_OPEN_JOBS = (Job("daily_history", ("--budget-s", "240"), 0, 0),)


@dataclass
class Step:
    number: int
    title: str
    ok: bool = False
    evidence: list[str] = field(default_factory=list)
    skipped: bool = False
    seconds: float | None = None

    @property
    def level(self) -> str:
        return "SKIP" if self.skipped else ("PASS" if self.ok else "FAIL")

    def view(self) -> dict[str, Any]:
        return {"step": self.number, "title": self.title, "level": self.level, "evidence": self.evidence, "seconds": self.seconds}


class StepFailed(Exception):
    """A step's check failed; the message is the evidence line that says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_available(module: str) -> bool:
    return (REPO / "data_jobs" / f"{module}.py").is_file()


# ---- the host layout -----------------------------------------------------------------------


class Host:
    """A temporary host: root folder, runtime env (as runtime.env), one simulated clock for all processes."""

    def __init__(self, root: Path, *, agents_dir: Path, fixtures: Path, at: str, speed: float,
                 agents: tuple[str, ...], breakage: str | None):
        self.root = root
        self.breakage = breakage
        self.agents = agents
        self.port = free_port()
        self.token = "" if breakage == "missing-token" else secrets.token_hex(24)
        self.at_ms = parse_instant(at)
        self.speed = speed
        self.anchor_ms = int(time.time() * 1000)
        shutil.copytree(agents_dir, root / "agents")
        (root / "data" / "runtime").mkdir(parents=True)
        # A host that has been set up has its show agents registered before the first job runs.
        registry = root / "data" / "agents" / "registry.json"
        registry.parent.mkdir(parents=True)
        registry.write_bytes(orjson.dumps({"schema_version": "agent.registry.v1",
                                           "agents": {a: {"status": "running", "show_in_lobby": True} for a in agents}}))
        if breakage == "kill-switch":
            (root / "data" / "runtime" / "KILL_SWITCH").write_text("rehearsal: left on by mistake\n")
        self.env = {
            "ONLYTRADE_ROOT": str(root),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "RUNTIME_DATA_MODE": "live_file",
            "STRICT_LIVE_MODE": "true",
            "ONLYTRADE_REHEARSAL": "true",
            "ONLYTRADE_CLOCK": iso_ms(self.at_ms),
            "ONLYTRADE_CLOCK_SPEED": f"{speed:g}",
            "ONLYTRADE_CLOCK_ANCHOR": str(self.anchor_ms),
            "ONLYTRADE_DATA_VENDOR": f"recorded:{fixtures}",
            "LIVE_PREFLIGHT_EXPECTED_REGISTRY_COUNT": str(len(agents)),
            "AGENT_RUNTIME_CYCLE_MS": str(CYCLE_MS),
            "AGENT_SESSION_GUARD_CHECK_MS": "5000",
            "AGENT_LLM_ENABLED": "false",
            # The daily job's file is the daily history (also where LIVE_DAILY_PATH_CN points by default).
            "MARKET_DAILY_HISTORY_PATH": "data/live/onlytrade/frames.1d.json",
            **({"CONTROL_API_TOKEN": self.token} if self.token else {}),
        }
        (root / "runtime.env").write_text("".join(f"{k}={v}\n" for k, v in self.env.items()))
        self.logs = root / "logs"
        self.logs.mkdir()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def process_env(self, **extra: str) -> dict[str, str]:
        """A clean environment: nothing inherited that could point at the real host's data or token."""
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "TMPDIR")}
        return {**keep, "PYTHONUTF8": "1", **self.env, "ONLYTRADE_API_BASE": self.api, **extra}

    def sim_now_ms(self) -> int:
        return int(self.at_ms + self.speed * (time.time() * 1000 - self.anchor_ms))


# ---- the data jobs on their schedule --------------------------------------------------------


class Scheduler:
    """Runs the data jobs as subprocesses when their timers fire in simulated time (one thread)."""

    def __init__(self, host: Host, jobs: tuple[Job, ...]):
        self.host = host
        self.jobs = [j for j in jobs if job_available(j.module)]
        self.runs: list[dict[str, Any]] = []
        self._next: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_job(self, job: Job, **env: str) -> dict[str, Any]:
        cmd = [sys.executable, "-m", f"data_jobs.{job.module}", *job.args]
        with open(self.host.logs / f"{job.module}.log", "ab") as log:
            proc = subprocess.run(cmd, env=self.host.process_env(**env), cwd=self.host.root, stdout=subprocess.PIPE,
                                  stderr=log, timeout=300, check=False)
        lines = [ln for ln in proc.stdout.decode(errors="replace").splitlines() if ln.strip()]
        try:
            summary = orjson.loads(lines[-1]) if lines else {}
        except orjson.JSONDecodeError:
            summary = {"raw": lines[-1][:200]}
        run = {"job": job.module, "exit": proc.returncode, "status": summary.get("status"), "reason": summary.get("reason"),
               "error": summary.get("error"), "sim_time": iso_ms(self.host.sim_now_ms())}
        self.runs.append(run)
        return run

    def _due_after(self, job: Job, now_ms: int) -> int:
        period = job.every_s * 1000
        base = now_ms - now_ms % period + job.offset_s * 1000
        return base if base > now_ms else base + period

    def start(self) -> None:
        now = self.host.sim_now_ms()
        self._next = {j.module: self._due_after(j, now) for j in self.jobs}
        self._thread = threading.Thread(target=self._loop, name="rehearsal-jobs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            now = self.host.sim_now_ms()
            for job in self.jobs:
                if now >= self._next[job.module] and not self._stop.is_set():
                    self.run_job(job)
                    self._next[job.module] = self._due_after(job, self.host.sim_now_ms())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


# ---- the runtime under supervision ---------------------------------------------------------


class Supervisor:
    """`onlytrade-runtime` as systemd runs it: restarted a second after it dies, unless we stopped it."""

    def __init__(self, host: Host):
        self.host = host
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.unexpected_exits: list[int] = []
        self._wanted = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.log_path = host.logs / "runtime.log"

    def _spawn(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "runtime_api"], cwd=self.host.root, env=self.host.process_env(),
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1

    def start(self) -> None:
        with self._lock:
            self._wanted = True
            self._spawn()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="rehearsal-supervisor", daemon=True)
            self._thread.start()
        self.wait_ready()

    def _watch(self) -> None:
        while True:
            time.sleep(0.2)
            with self._lock:
                if not self._wanted:
                    return
                if self.proc is not None and self.proc.poll() is not None:
                    self.unexpected_exits.append(self.proc.returncode)
                    time.sleep(1.0)  # RestartSec
                    self._spawn()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.host.api + "/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StepFailed(f"runtime not ready within {timeout:g} s; log tail: {self.log_tail()}")

    def _terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> int:
        """`systemctl restart`: SIGTERM, wait, start, wait ready; returns the stopped process's exit code."""
        with self._lock:
            self._terminate()
            code = self.proc.returncode if self.proc else 0
            self._spawn()
        self.wait_ready()
        return code

    def kill(self) -> int:
        """SIGKILL the runtime (a crash); the watcher restarts it. Returns the killed pid."""
        with self._lock:
            pid = self.proc.pid
            self.proc.kill()
        # let the watcher see the exit before anyone polls /health/ready on the old process
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (self.proc is None or self.proc.pid == pid):
            time.sleep(0.05)
        return pid

    def stop(self) -> None:
        with self._lock:
            self._wanted = False
            self._terminate()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 5) -> str:
        return " | ".join(self.log_text().strip().splitlines()[-lines:])


# ---- the CLI as the operator runs it --------------------------------------------------------


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        try:
            return orjson.loads(self.out)
        except orjson.JSONDecodeError:
            return None


def ops_command() -> list[str]:
    installed = shutil.which("onlytrade-ops", path=str(Path(sys.executable).parent))
    return [installed] if installed else [sys.executable, "-c", "from ops.cli import main; main()"]


class Operator:
    def __init__(self, host: Host):
        self.host = host
        self.cmd = ops_command()

    def ops(self, *args: str, timeout: float = 90) -> Ran:
        proc = subprocess.run([*self.cmd, *args], env=self.host.process_env(COLUMNS="160"), cwd=self.host.root,
                              capture_output=True, text=True, timeout=timeout, check=False)
        return Ran(proc.returncode, proc.stdout, proc.stderr)

    def post(self, path: str, body: dict, *, token: str | None = None) -> httpx.Response:
        headers = {"content-type": "application/json", **({"x-control-token": token} if token else {})}
        return httpx.post(self.host.api + path, content=orjson.dumps(body), headers=headers, timeout=30)

    def get(self, path: str) -> Any:
        return httpx.get(self.host.api + path, timeout=30).json()


def expect(ok: bool, evidence: list[str], line: str) -> None:
    evidence.append(line)
    if not ok:
        raise StepFailed(line)


def _failing_checks(preflight: dict) -> list[str]:
    checks = (preflight or {}).get("checks") or {}
    def why(c: dict) -> str:
        sources = c.get("sources")
        return ", ".join(str(x) for x in (c.get("reason"), f"sources: {','.join(sources)}" if sources else None) if x)

    return [f"{name} ({why(c)})" for name, c in checks.items() if isinstance(c, dict) and c.get("level") == "FAIL"]


def _levels(preflight: dict) -> str:
    checks = (preflight or {}).get("checks") or {}
    return ", ".join(f"{name} {c.get('level')}" for name, c in checks.items() if isinstance(c, dict))


# ---- the seven steps ------------------------------------------------------------------------


def step1(op: Operator, ev: list[str]) -> None:
    ran = op.ops("--json", "live-preflight")
    report = ran.json() or {}
    failing = _failing_checks(report)
    expect(ran.code == 0 and report.get("ok") is True, ev,
           f"live-preflight exit {ran.code}: " + (f"FAIL {', '.join(failing)}" if failing else _levels(report)))
    clock = (report.get("checks") or {}).get("clock") or {}
    ev.append(f"clock {clock.get('level')}: simulated {((clock.get('state') or {}).get('now'))} (a rehearsal)")
    fresh = op.ops("--json", "check-live-freshness", "--strict")
    rows = (fresh.json() or {}).get("checks") or []
    shown = ", ".join(f"{r['label']} {'ok' if r['ok'] else 'STALE'} {r.get('age_sec')}s" for r in rows if r.get("required"))
    expect(fresh.code == 0, ev, f"check-live-freshness --strict exit {fresh.code}: {shown}")


def step2(op: Operator, ev: list[str], agents: tuple[str, ...]) -> None:
    ran = op.ops("--json", "agents-registered")
    rows = {r.get("agent_id"): r for r in (ran.json() or []) if isinstance(r, dict)}
    bad = [a for a in agents if (rows.get(a) or {}).get("status") != "running" or (rows.get(a) or {}).get("show_in_lobby") is False]
    expect(ran.code == 0 and not bad, ev, f"agents-registered exit {ran.code}: " + ", ".join(
        f"{a} {(rows.get(a) or {}).get('status')}" for a in agents))
    traders = op.get("/api/traders")
    traders = traders.get("data") if isinstance(traders, dict) else traders
    lobby = [t.get("trader_id") for t in traders or [] if isinstance(t, dict)]
    missing = [a for a in agents if a not in lobby]
    expect(not missing, ev, f"/api/traders lobby: {', '.join(lobby)}" + (f"; missing {', '.join(missing)}" if missing else ""))
    mon = op.ops("--json", "stream-monitor", agents[0])
    data = mon.json() or {}
    sse = data.get("sse") or {}
    expect(mon.code == 0, ev, f"stream-monitor {agents[0]} exit {mon.code}: packet {(data.get('packet') or {}).get('ok')}, "
                              f"SSE {sse.get('status')} {sse.get('content_type')}")


def step3(op: Operator, ev: list[str], sup: Supervisor) -> None:
    codes = {path: op.post(f"/api/{path}", {}).status_code for path in CONTROL_PATHS}
    expect(all(c == 401 for c in codes.values()), ev, "no token: " + ", ".join(f"{p} {c}" for p, c in codes.items()))
    audit = op.ops("--json", "audit", "8")
    records = ((audit.json() or {}).get("records") or []) if isinstance(audit.json(), dict) else []
    # one line per call, or (since the access hardening) one `control.rejected` line with a count
    unauthorized = sum(int(r.get("count") or 1) for r in records if r.get("result") == "unauthorized")
    expect(audit.code == 0 and unauthorized >= len(CONTROL_PATHS), ev,
           f"audit 8 exit {audit.code}: {unauthorized} unauthorized calls recorded")
    status = op.ops("--json", "status")
    runtime = ((status.json() or {}).get("runtime") or {})
    expect(status.code == 0 and runtime.get("paused_reason") in (None, "market_gate"), ev,
           f"status exit {status.code}: paused_reason {runtime.get('paused_reason')}, nothing paused or stopped")
    leaks = sum(p.read_text(errors="replace").count(op.host.token) for p in op.host.logs.glob("*.log")) if op.host.token else 0
    expect(leaks == 0, ev, f"token occurrences in the runtime and job logs: {leaks}")


def _wait_for_snapshot(op: Operator, agent: str, timeout: float = 30.0) -> None:
    path = op.host.root / "data" / "agent-memory" / f"{agent}.json"
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    if not path.exists():
        raise StepFailed(f"{agent} has no snapshot after {timeout:g} s: no decision cycle ran")


def step4(op: Operator, ev: list[str], target: str) -> None:
    _wait_for_snapshot(op, target)
    tmp = op.host.root / "rehearsal"
    tmp.mkdir(exist_ok=True)
    expect(op.ops("pause").code == 0, ev, "pause exit 0")
    before, dry, after = (str(tmp / f"reset-{n}.json") for n in ("before", "dry", "after"))
    expect(op.ops("continuity-snapshot", before).code == 0, ev, "continuity-snapshot before")
    plan = op.ops("agent-reset", target, "--stats-only", "--dry-run")
    expect(plan.code == 0 and "nothing changed" in plan.out + plan.err, ev, f"agent-reset {target} --dry-run exit {plan.code}: nothing changed")
    op.ops("continuity-snapshot", dry)
    same = op.ops("continuity-verify", before, dry)
    expect(same.code == 0, ev, f"continuity-verify before dry-run exit {same.code} (no change)")
    refused = op.ops("agent-reset", target, "--stats-only")
    expect(refused.code == 2, ev, f"agent-reset without --confirm exit {refused.code} (refused)")
    done = op.ops("agent-reset", target, "--stats-only", "--confirm")
    backup = next((ln.split("backup of the previous snapshot:")[1].split("(")[0].strip()
                   for ln in (done.out + done.err).splitlines() if "backup of the previous snapshot:" in ln), None)
    expect(done.code == 0 and bool(backup), ev, f"agent-reset --confirm exit {done.code}: backup {backup}")
    op.ops("continuity-snapshot", after)
    changed = op.ops("--json", "continuity-verify", before, after)
    files = [c["file"] for c in ((changed.json() or {}).get("files") or {}).get("changed", [])]
    expect(changed.code == 1 and files and all(f.endswith(f"{target}.json") for f in files), ev,
           f"continuity-verify before after exit {changed.code}: changed {', '.join(files) or 'nothing'}")
    listed = op.ops("--json", "backups")
    expect(listed.code == 0 and Path(backup).name in listed.out, ev, f"backups lists {Path(backup).name}")
    expect(op.ops("resume").code == 0, ev, "resume exit 0")


def step5(op: Operator, ev: list[str]) -> None:
    refused = op.ops("factory-reset")
    expect(refused.code == 2, ev, f"factory-reset exit {refused.code} (refused, nothing sent)")
    plan = op.ops("factory-reset", "--dry-run")
    expect(plan.code == 0, ev, f"factory-reset --dry-run exit {plan.code}")
    resp = op.post("/api/dev/factory-reset", {"confirm": "reset", "dry_run": True}, token=op.host.token)
    body = resp.json()
    expect(body.get("error") == "reset_confirmation_required", ev,
           f"API with confirm \"reset\": {resp.status_code} {body.get('error')}")


def step6(op: Operator, ev: list[str], sup: Supervisor) -> None:
    tmp = op.host.root / "rehearsal"
    tmp.mkdir(exist_ok=True)
    expect(op.ops("kill-on", "rehearsal_restart").code == 0, ev, "kill-on exit 0")
    a, b = str(tmp / "restart-before.json"), str(tmp / "restart-after.json")
    op.ops("continuity-snapshot", a)
    code = sup.restart()
    ev.append(f"restart: SIGTERM exit {code}, ready again (runtime starts: {sup.starts})")
    op.ops("continuity-snapshot", b)
    same = op.ops("continuity-verify", a, b)
    expect(same.code == 0, ev, f"continuity-verify across the restart exit {same.code}")
    # a crash, as systemd's Restart=always meets it: the supervisor brings it back, state unchanged
    killed_at = time.monotonic()
    pid = sup.kill()
    sup.wait_ready()
    ev.append(f"SIGKILL pid {pid}: back after {time.monotonic() - killed_at:.1f} s (unexpected exits: {sup.unexpected_exits})")
    c = str(tmp / "crash-after.json")
    op.ops("continuity-snapshot", c)
    crashed = op.ops("continuity-verify", a, c)
    expect(crashed.code == 0 and sup.unexpected_exits[-1:] == [-signal.SIGKILL], ev,
           f"continuity-verify across the crash exit {crashed.code}")
    status = (op.ops("--json", "status").json() or {}).get("runtime") or {}
    expect((status.get("kill_switch") or {}).get("active") is True, ev, "kill switch still on after the crash (persisted)")
    expect(op.ops("kill-off", "rehearsal_done").code == 0, ev, "kill-off exit 0")
    second = subprocess.run([sys.executable, "-m", "runtime_api"], cwd=op.host.root, capture_output=True, text=True,
                            env=op.host.process_env(PORT=str(free_port())), timeout=60, check=False)
    message = (second.stderr + second.stdout).strip().splitlines()[-1:] or [""]
    expect(second.returncode == 4 and "another runtime already holds" in message[0], ev,
           f"second instance exit {second.returncode}: {message[0][:140]}")


def step7(op: Operator, ev: list[str], agents: tuple[str, ...]) -> None:
    status = (op.ops("--json", "status").json() or {})
    gate = ((status.get("runtime") or {}).get("market_session_guard") or {})
    active = gate.get("active_trader_ids") or []
    expect(gate.get("enabled") is True and set(agents) <= set(active), ev,
           f"status: gate {'on' if gate.get('enabled') else 'off'}, active {', '.join(active) or '-'}, "
           f"held {gate.get('blocked') or '-'}")
    step = op.ops("--json", "step")
    cycle = (step.json() or {}).get("cycle") or {}
    decided = sorted(d.get("trader_id") for d in cycle.get("decisions") or [])
    expect(step.code == 0 and cycle.get("ran") is True and set(agents) <= set(decided), ev,
           f"step exit {step.code}: ran {cycle.get('ran')}, decisions for {', '.join(decided) or '-'}")
    latest = op.get(f"/api/agents/{agents[0]}/decision-audit/latest?limit=1")
    record = ((latest.get("data") or {}).get("records") or [{}])[0]
    gate_level = (record.get("session_gate") or {}).get("level")
    readiness = (record.get("data_readiness") or {})
    expect(gate_level == "OK" and readiness.get("level") in ("OK", "WARN"), ev,
           f"{agents[0]} audit: session_gate {gate_level}, data readiness {readiness.get('level')} "
           f"{readiness.get('reasons') or ''}, source {record.get('decision_source')}")
    def newest_cycle() -> int:
        rows = op.ops("--json", "decisions", agents[0], "1").json() or [{}]
        return int((rows[0] or {}).get("cycle_number") or 0)

    first = newest_cycle()
    deadline = time.monotonic() + 4 * CYCLE_MS / 1000 + 10
    newest = first
    while newest <= first and time.monotonic() < deadline:
        time.sleep(1.0)
        newest = newest_cycle()
    expect(newest > first, ev, f"the timer ran a cycle on its own: {agents[0]} cycle {first} -> {newest}")
    mon = op.ops("--json", "stream-monitor", agents[0])
    packet = (mon.json() or {}).get("packet") or {}
    expect(mon.code == 0, ev, f"stream-monitor {agents[0]} exit {mon.code}: latest decision {packet.get('label')} "
                              f"({(packet.get('decision_latest') or {}).get('action')} {(packet.get('decision_latest') or {}).get('symbol')})")


def warm_up(scheduler: Scheduler, breakage: str | None) -> list[str]:
    """Every job once before the runtime boots (the daily history's 08:45 run and the first collection), in parallel."""
    host = scheduler.host
    lines: dict[str, str] = {}

    def one(job: Job) -> None:
        if breakage == "stale-job" and job.module == "frames_collector":
            # the frames timer last fired 10 simulated minutes ago and never since
            run = scheduler.run_job(job, ONLYTRADE_CLOCK=iso_ms(host.at_ms - 600_000))
        else:
            run = scheduler.run_job(job)
        detail = run["error"] or run["reason"]
        lines[job.module] = f"{job.module}: {run['status']} (exit {run['exit']}{', ' + str(detail) if detail else ''})"

    threads = []
    for job in (*PRE_OPEN_JOBS, *JOBS):
        if not job_available(job.module):
            lines[job.module] = f"{job.module}: not in this build, skipped"
            continue
        threads.append(threading.Thread(target=one, args=(job,), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if breakage == "stale-job":
        scheduler.jobs = [j for j in scheduler.jobs if j.module != "frames_collector"]
    return [lines[j.module] for j in (*PRE_OPEN_JOBS, *JOBS) if j.module in lines]


STEPS = (
    (1, "Preflight is green"),
    (2, "Agents are registered, running and visible"),
    (3, "Control endpoints refuse without the token"),
    (4, "A per-agent reset: dry run, then for real"),
    (5, "A global reset needs confirmation"),
    (6, "A restart keeps continuity"),
    (7, "One live decision cycle under the session gate"),
)


def rehearse(*, at: str = DEFAULT_AT, speed: float = 1.0, breakage: str | None = None, keep: bool = False,
             agents: tuple[str, ...] = DEFAULT_AGENTS, agents_dir: Path | None = None, fixtures: Path | None = None,
             report: Callable[[str], None] = print) -> Outcome:
    """Build the host, run the jobs and the runtime, run the seven steps; exit 0 only if all pass."""
    if breakage is not None and breakage not in BREAKAGES:
        raise OpsError(EXIT_USAGE, f"--break: expected one of {', '.join(BREAKAGES)}, got {breakage!r}")
    try:
        parse_instant(at)
    except ValueError:
        raise OpsError(EXIT_USAGE, f"--at: expected an ISO-8601 time, got {at!r}") from None
    agents_dir = Path(agents_dir or REPO / "agents")
    fixtures = Path(fixtures or DEFAULT_FIXTURES)
    for label, folder in (("agents", agents_dir), ("vendor fixtures", fixtures)):
        if not folder.is_dir():
            raise OpsError(EXIT_USAGE, f"{label} folder not found: {folder}")
    root = Path(tempfile.mkdtemp(prefix="onlytrade-rehearsal-"))
    steps = [Step(n, title) for n, title in STEPS]
    host = Host(root, agents_dir=agents_dir, fixtures=fixtures, at=at, speed=speed, agents=agents, breakage=breakage)
    scheduler = Scheduler(host, JOBS)
    sup = Supervisor(host)
    op = Operator(host)
    report(f"rehearsal host {root}: simulated session from {iso_ms(host.at_ms)} at {speed:g}x, port {host.port}"
           + (f", broken on purpose: {breakage}" if breakage else ""))
    setup: list[str] = []
    steps_started = time.monotonic()
    try:
        setup = warm_up(scheduler, breakage)
        report("jobs before the open: " + "; ".join(setup))
        scheduler.start()
        sup.start()
        report(f"runtime up (pid {sup.proc.pid}), supervised")
        failed = False
        for step in steps:
            if failed:
                step.skipped = True
                continue
            started = time.monotonic()
            try:
                {1: lambda: step1(op, step.evidence), 2: lambda: step2(op, step.evidence, agents),
                 3: lambda: step3(op, step.evidence, sup), 4: lambda: step4(op, step.evidence, agents[-1]),
                 5: lambda: step5(op, step.evidence), 6: lambda: step6(op, step.evidence, sup),
                 7: lambda: step7(op, step.evidence, agents)}[step.number]()
                step.ok = True
            except StepFailed as exc:
                if str(exc) not in step.evidence:
                    step.evidence.append(str(exc))
                failed = True
            except (subprocess.TimeoutExpired, httpx.HTTPError, OSError) as exc:
                step.evidence.append(f"{type(exc).__name__}: {exc}")
                failed = True
            step.seconds = round(time.monotonic() - started, 1)
            report(f"step {step.number} {step.title}: {step.level} ({step.seconds:g} s)")
            for line in step.evidence:
                report(f"    {line}")
    finally:
        scheduler.stop()
        sup.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    failing = next((s for s in steps if s.level == "FAIL"), None)
    ok = failing is None and all(s.ok for s in steps)
    verdict = "rehearsal: PASS (all seven steps)" if ok else f"rehearsal: FAIL at step {failing.number} ({failing.title})"
    report(verdict)
    data = {
        "ok": ok,
        "failed_step": None if ok else failing.number,
        "failed_title": None if ok else failing.title,
        "breakage": breakage,
        "clock": {"start": iso_ms(host.at_ms), "speed": speed},
        "setup": setup,
        "job_runs": scheduler.runs,
        "runtime_starts": sup.starts,
        "runtime_unexpected_exits": sup.unexpected_exits,
        "steps": [s.view() for s in steps],
        "root": str(root) if keep else None,
    }
    return Outcome(data, EXIT_OK if ok else EXIT_FAILED, view="rehearsal")
