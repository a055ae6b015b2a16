"""What every data job shares: the market-hours gate, the lock, the time budget, the commit, the summary.

A run goes: `--if-open` gate (before anything else, so a closed market costs nothing) -> exclusive
non-blocking lock -> the job's work (vendor calls + pure transform; the budget is checked after every
vendor call, and under the CLI a timer interrupts a call that hangs) -> atomic write. A vendor error,
an exhausted budget or any other failure happens before the write, so the previous output is left
exactly as it was. The result is a `JobResult`; the CLI prints it as one JSON line (or with rich
when stdout is a terminal) and exits with its code.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO
from zoneinfo import ZoneInfo

import orjson
from filelock import FileLock, Timeout

from runtime_api import clock
from runtime_api.state import storage
from runtime_api.settings import display_path
from runtime_api.market.calendar import CN, session_bounds_ms, session_state, trading_day_of
from runtime_api.settings import Settings, SettingsError

from .vendor import VendorError
from data_jobs.vendor import Vendor, VendorError, vendor_from_env

log = logging.getLogger("onlytrade.data_jobs")

# Exit codes of `python -m data_jobs.<job>` (and of the onlytrade-ops commands that wrap them).
EXIT_OK = 0  # wrote the output, or skipped on purpose (market closed, nothing to collect)
EXIT_ERROR = 1  # vendor or I/O error; the previous output file is left intact
EXIT_USAGE = 2  # bad arguments or configuration
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run of the same job holds its lock; try again later
EXIT_BUDGET = 124  # the time budget ran out (as timeout(1) reports it); nothing was written

DEFAULT_BUDGET_S = 120.0
# --if-open also runs this long after a continuous session ends, so the bars of 11:30 and of the
# closing auction (14:57-15:00, which the calendar does not count as open) are still collected.
DEFAULT_OPEN_GRACE_MIN = 5

SH_TZ = ZoneInfo("Asia/Shanghai")


class BudgetExceeded(Exception):
    """The job ran past its time budget; it stops before writing anything."""


class Skip(Exception):
    """Raised by a job's work to end the run with exit 0 and no write (e.g. `no_symbols`)."""

    def __init__(self, reason: str, **details: Any):
        super().__init__(reason)
        self.reason = reason
        self.details = details


@dataclass
class Output:
    """What a job's work hands back for the commit: one JSON payload for one path."""

    path: Path
    payload: dict[str, Any]
    latest_ts_ms: int | None
    counts: dict[str, Any] = field(default_factory=dict)
    pretty: bool = True
    # Runs after the output is committed (the archive): its counts join the summary; a failure is
    # reported there and never undoes the committed output.
    after_commit: Callable[[], dict[str, Any]] | None = None


@dataclass
class JobResult:
    job: str
    status: str  # ok | skipped | locked | error | budget_exceeded
    exit_code: int
    wrote: bool = False
    latest_ts_ms: int | None = None
    duration_ms: int = 0
    counts: dict[str, Any] = field(default_factory=dict)
    file: str | None = None
    reason: str | None = None
    error: str | None = None
    detail: str | None = None

    def summary(self) -> dict[str, Any]:
        """The one-line JSON summary: job, status, wrote, the job's counts, latest_ts_ms, duration_ms, ..."""
        out: dict[str, Any] = {"job": self.job, "status": self.status, "wrote": self.wrote}
        out.update(self.counts)
        out["latest_ts_ms"] = self.latest_ts_ms
        out["duration_ms"] = self.duration_ms
        for key in ("file", "reason", "error", "detail"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class Progress(Protocol):
    def start(self, total: int, description: str) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NullProgress:
    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class JobContext:
    """Handed to a job's work: settings, vendor, the injected time and the budget check."""

    settings: Settings
    vendor: Vendor
    now_ms: int
    deadline: float
    clock: Callable[[], float]
    progress: Progress

    def check_budget(self) -> None:
        if self.clock() > self.deadline:
            raise BudgetExceeded()

    def fetch_each(self, symbols: Sequence[str], fetch: Callable[[str], Any], max_failed: int) -> tuple[dict[str, Any], list[str]]:
        """`fetch` every symbol within the budget, with progress: (results, failed symbols in order).
        A vendor error aborts the run (the old file stays) once more than `max_failed` symbols fail."""
        results: dict[str, Any] = {}
        failed: list[str] = []
        for symbol in symbols:
            try:
                results[symbol] = fetch(symbol)
            except VendorError:
                failed.append(symbol)
                if len(failed) > max_failed:
                    raise
            self.check_budget()
            self.progress.advance()
        return results, failed


def wall_clock_ms() -> int:
    """The one clock (runtime_api.clock): the wall clock, or a rehearsal's simulated time."""
    return clock.now_ms()


def iso_ms(ts_ms: int) -> str:
    """Epoch ms as `2026-02-13T01:50:18.407Z` (the format the Node runtime prints)."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload_header(schema_version: str, *, provider: str, now_ms: int, latest_ts_ms: int | None) -> dict[str, Any]:
    """The keys every CN context file starts with, freshness fields included."""
    return {
        "schema_version": schema_version,
        "market": "CN-A",
        "mode": "real",
        "provider": provider,
        "day_key": trading_day_of(now_ms, CN),
        "as_of_ts_ms": now_ms,
        "generated_at": iso_ms(now_ms),
        "latest_ts_ms": latest_ts_ms,
    }


def market_open(now: int, grace_min: int = DEFAULT_OPEN_GRACE_MIN) -> tuple[bool, dict[str, Any]]:
    """(whether a CN job gated by --if-open should run now, the calendar's session state now).

    It runs while the calendar says open, and on a trading day from a session's open until
    `grace_min` after its close (which also covers the 14:57-15:00 closing auction).
    """
    state = session_state(CN, now)
    if state["is_open"]:
        return True, state
    if not state["is_trading_day"]:
        return False, state
    for open_ms, close_ms in session_bounds_ms(trading_day_of(now, CN), CN):
        if open_ms <= now < close_ms + max(grace_min, 0) * 60_000:
            return True, state
    return False, state


def lock_path(settings: Settings, job: str) -> Path:
    return settings.resolve(settings.runtime_state_dir) / "locks" / f"{job}.lock"


@contextmanager
def _hard_deadline(seconds: float, enabled: bool) -> Iterator[Callable[[], None]]:
    """Interrupt a hung call with BudgetExceeded (main thread only); yields a function that disarms it.

    Uses SIGALRM; a timer already armed by someone else is restored (minus the time spent) afterwards.
    """
    if not enabled or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield lambda: None
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise BudgetExceeded()

    entered = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))

    def disarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)

    try:
        yield disarm
    finally:
        disarm()
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:
            remaining = max(previous_delay - (time.monotonic() - entered), 0.001)
            signal.setitimer(signal.ITIMER_REAL, remaining, previous_interval)


def execute(
    job: str,
    settings: Settings,
    work: Callable[[JobContext], Output],
    *,
    now_ms: int | None = None,
    vendor: Vendor | None = None,
    if_open: bool = False,
    open_grace_min: int = DEFAULT_OPEN_GRACE_MIN,
    budget_s: float = DEFAULT_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
    hard_timeout: bool = False,
) -> JobResult:
    """Run one job: gate, lock, work, atomic write; never raises for vendor, budget or I/O failures."""
    started = clock()
    now = wall_clock_ms() if now_ms is None else int(now_ms)

    def result(status: str, code: int, **kw: Any) -> JobResult:
        return JobResult(job, status, code, duration_ms=int((clock() - started) * 1000), **kw)

    if if_open:
        is_open, state = market_open(now, open_grace_min)
        if not is_open:
            return result("skipped", EXIT_OK, reason="market_closed", detail=state.get("reason"))

    lock_file = lock_path(settings, job)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return result("error", EXIT_ERROR, error="lock_unavailable", detail=str(exc))
    lock = FileLock(str(lock_file), blocking=False)
    try:
        lock.acquire()
    except Timeout:
        return result("locked", EXIT_LOCKED)

    try:
        ctx = JobContext(
            settings=settings,
            vendor=vendor if vendor is not None else vendor_from_env(),
            now_ms=now,
            deadline=started + budget_s,
            clock=clock,
            progress=progress or NullProgress(),
        )
        with _hard_deadline(budget_s - (clock() - started), hard_timeout) as disarm:
            output = work(ctx)
            ctx.check_budget()
            disarm()  # the commit is never interrupted: it either happens entirely or not at all
        storage.write_json_atomic(output.path, output.payload, pretty=output.pretty)
        counts = dict(output.counts)
        if output.after_commit is not None:
            try:
                counts.update(output.after_commit())
            except Exception as exc:
                log.exception("data job %s: post-commit step failed", job)
                counts["archive_error"] = f"{type(exc).__name__}: {exc}"[:200]
        return result(
            "ok",
            EXIT_OK,
            wrote=True,
            latest_ts_ms=output.latest_ts_ms,
            counts=counts,
            file=display_path(settings, output.path),
        )
    except Skip as skip:
        return result("skipped", EXIT_OK, reason=skip.reason, counts=skip.details)
    except BudgetExceeded:
        return result("budget_exceeded", EXIT_BUDGET, error="budget_exceeded", detail=f"over {budget_s:g} s")
    except VendorError as exc:
        return result("error", EXIT_ERROR, error="vendor_error", detail=str(exc))
    except Exception as exc:
        log.exception("data job %s failed", job)
        return result("error", EXIT_ERROR, error=type(exc).__name__, detail=str(exc))
    finally:
        lock.release()


# ---- CLI ---------------------------------------------------------------------------------------


def parse_now(raw: str | None) -> int | None:
    """`--now`: epoch milliseconds, or an ISO-8601 time (a naive one is Shanghai wall-clock time)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--now: expected epoch ms or an ISO-8601 time, got {raw!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SH_TZ)
    return int(parsed.timestamp() * 1000)


def build_parser(job: str, description: str) -> argparse.ArgumentParser:
    """The options every job accepts; jobs add their own."""
    parser = argparse.ArgumentParser(prog=f"python -m data_jobs.{job}", description=description)
    parser.add_argument("--if-open", action="store_true", help="exit 0 at once (skipped: market_closed) outside CN trading hours")
    parser.add_argument("--open-grace-min", type=int, default=DEFAULT_OPEN_GRACE_MIN, help="with --if-open, keep running this many minutes after a session ends (default %(default)s)")
    parser.add_argument("--now", default=None, help="run as if at this time: epoch ms or ISO-8601 (naive = Shanghai); for tests and backfills")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="abort without writing after this many seconds (exit 124; default %(default)s)")
    return parser


class _RichProgress:
    def __init__(self, progress: Any):
        self._progress = progress
        self._task: Any = None

    def start(self, total: int, description: str) -> None:
        self._task = self._progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)


def emit(result: JobResult, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    line = orjson.dumps(result.summary()).decode()
    if stream.isatty():
        from rich.console import Console

        Console(file=stream).print_json(line)
    else:
        stream.write(line + "\n")
        stream.flush()


def cli(
    job: str,
    parser: argparse.ArgumentParser,
    run: Callable[..., JobResult],
    argv: Sequence[str] | None = None,
    job_options: Callable[[argparse.Namespace], dict[str, Any]] = lambda args: {},
) -> int:
    """Parse the arguments, build settings and vendor from the environment, run, print, return the exit code."""
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        clock.configure(settings)
        vendor = vendor_from_env()
        now = parse_now(args.now)
        extra = job_options(args)
    except (SettingsError, ValueError) as exc:
        emit(JobResult(job, "error", EXIT_USAGE, error="invalid_configuration", detail=str(exc)))
        return EXIT_USAGE
    options: dict[str, Any] = dict(
        now_ms=now,
        vendor=vendor,
        if_open=args.if_open,
        open_grace_min=args.open_grace_min,
        budget_s=args.budget_s,
        hard_timeout=True,
    )
    if sys.stdout.isatty():
        from rich.progress import Progress as RichProgress

        with RichProgress(transient=True) as bar:
            result = run(settings, progress=_RichProgress(bar), **options, **extra)
    else:
        result = run(settings, **options, **extra)
    emit(result)
    if result.status in ("error", "budget_exceeded"):
        _alert(settings, result)
    return result.exit_code


def _alert(settings: Settings, result: JobResult) -> None:
    """A failing or timed-out job posts to ALERT_WEBHOOK_URL itself (once per throttle window per job)."""
    from runtime_api.observability.alerts import Alert, post_throttled

    kind = "data_job.timeout" if result.status == "budget_exceeded" else "data_job.failed"
    title = f"Data job {result.job} {'ran out of time' if result.status == 'budget_exceeded' else 'failed'}: previous output kept"
    alert = Alert(kind, title, "warning", {"job": result.job, "error": result.error, "detail": (result.detail or "")[:200],
                                           "exit_code": result.exit_code})
    post_throttled(settings, alert, settings.resolve(settings.runtime_state_dir) / "alerts" / f"{result.job}.{result.status}.last")
