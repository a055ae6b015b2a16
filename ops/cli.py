"""`onlytrade-ops`: the operator CLI. Typer wiring only: each command calls one plain function that
returns an Outcome (data, exit code, view, notes), printed as rich tables or, with --json, as JSON.

Exit codes (ops.exits): 0 ok, 1 failed check or API error, 2 usage error or refused,
3 runtime unreachable; data-job commands pass the job's own code through (75 locked, 124 budget),
and `check-live-freshness --strict` exits 1 when a required live file is stale (a failed check).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import orjson
import typer
from rich.console import Console

from . import approvals, backups, continuity, control, reads, resets, stream
from .client import Client
from .exits import EXIT_OK, OpsError, Outcome
from .render import render

app = typer.Typer(
    help="Operate an onlytrade runtime (ONLYTRADE_API_BASE, default the runtime's PORT on 127.0.0.1, else :8080). "
         "Exit codes: 0 ok, 1 failed check or API error, 2 usage or refused, 3 unreachable.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
)
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


class State:
    def __init__(self, json_output: bool):
        self.json = json_output


def _console() -> Console:
    # Piped output (logs, tickets) gets a fixed width instead of rich's 80 columns.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
    return Console(width=width, highlight=False, soft_wrap=False)


def _dump(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode()


def emit(ctx: typer.Context, produce: Callable[[], Outcome]) -> None:
    """Run one command function, print its outcome, exit with its code."""
    state: State = ctx.find_root().obj or State(False)
    try:
        outcome = produce()
    except OpsError as exc:
        typer.echo(f"onlytrade-ops: {exc.message}", err=True)
        if state.json:
            typer.echo(_dump({"ok": False, "exit_code": exc.code, "error": exc.detail.get("error"), "message": exc.message,
                              "detail": exc.detail}))
        raise typer.Exit(exc.code) from None
    if state.json:
        typer.echo(_dump(outcome.data))
        for note in outcome.notes:
            typer.echo(note, err=True)
    else:
        console = _console()
        render(console, outcome.view, outcome.data)
        for note in outcome.notes:
            console.print(note, style="yellow" if outcome.code else "dim", markup=False)
    raise typer.Exit(outcome.code)


def client(timeout: float | None = None) -> Client:
    return Client.from_env(**({"timeout": timeout} if timeout else {}))


def settings():
    from .local import load_settings

    return load_settings()


@app.callback()
def options(ctx: typer.Context,
            json_output: bool = typer.Option(False, "--json", help="Print JSON instead of tables (may be given anywhere).")) -> None:
    ctx.obj = State(json_output)


# ---- reads --------------------------------------------------------------------------------


@app.command()
def health(ctx: typer.Context) -> None:
    """GET /health; exit 1 unless it answers ok."""
    emit(ctx, lambda: reads.health(client()))


@app.command()
def status(ctx: typer.Context) -> None:
    """GET /health, /api/agent/runtime/status and /api/replay/runtime/status."""
    emit(ctx, lambda: reads.status(client()))


@app.command()
def watch(ctx: typer.Context, sec: float = typer.Argument(3.0, help="Seconds between refreshes."),
          count: int = typer.Option(0, "--count", "-n", help="Stop after N refreshes (default: until Ctrl-C).")) -> None:
    """`status` in a loop; keeps going while the runtime restarts."""
    state: State = ctx.find_root().obj
    console = _console()
    done = 0
    try:
        while True:
            try:
                outcome = reads.status(client(timeout=max(5.0, sec)))
                data, error = outcome.data, None
            except OpsError as exc:
                data, error = None, exc.message
            if state.json:
                typer.echo(orjson.dumps({"ts_ms": int(time.time() * 1000), "status": data, "error": error}).decode())
            else:
                if console.is_terminal:
                    console.clear()
                console.print(time.strftime("%H:%M:%S"), f"every {sec:g}s", style="dim")
                if error:
                    console.print(error, style="bold red", markup=False)
                else:
                    render(console, "status", data)
            done += 1
            if count and done >= count:
                break
            time.sleep(max(0.1, sec))
    except KeyboardInterrupt:
        pass
    raise typer.Exit(EXIT_OK)


@app.command("live-preflight")
def live_preflight(ctx: typer.Context) -> None:
    """GET /api/ops/live-preflight; exit 1 unless ok (no FAIL)."""
    emit(ctx, lambda: reads.live_preflight(client()))


@app.command("agents-available")
def agents_available(ctx: typer.Context) -> None:
    """GET /api/agents/available."""
    emit(ctx, lambda: reads.agents_available(client()))


@app.command("agents-registered")
def agents_registered(ctx: typer.Context) -> None:
    """GET /api/agents/registered."""
    emit(ctx, lambda: reads.agents_registered(client()))


@app.command()
def decisions(ctx: typer.Context, trader: Optional[str] = typer.Argument(None, help="Trader id (optional)."),
              limit: Optional[int] = typer.Argument(None, help="How many (default 10, at most 120).")) -> None:
    """Latest decisions (GET /api/decisions/latest); a number alone is the limit."""
    if trader is not None and trader.isdigit() and limit is None:
        trader, limit = None, int(trader)
    emit(ctx, lambda: reads.decisions(client(), trader, limit or 10))


@app.command()
def memory(ctx: typer.Context, trader: Optional[str] = typer.Argument(None, help="Trader id (optional).")) -> None:
    """GET /api/agent/memory[?trader_id=]."""
    emit(ctx, lambda: reads.memory(client(), trader))


@app.command()
def audit(ctx: typer.Context, limit: int = typer.Argument(20, help="How many records (1..1000).")) -> None:
    """GET /api/ops/audit (token): who called which control endpoint, with what result."""
    emit(ctx, lambda: reads.audit(client(), limit))


@app.command("stream-monitor")
def stream_monitor(ctx: typer.Context, room: str = typer.Argument(..., help="Room (trader) id."),
                   limit: int = typer.Argument(5, help="decision_limit (1..20).")) -> None:
    """Room stream packet, replay status and a 5 s SSE probe; freshness of the latest decision."""
    emit(ctx, lambda: stream.monitor(client(), room, limit))


# ---- control ------------------------------------------------------------------------------


@app.command()
def pause(ctx: typer.Context) -> None:
    """Pause the agents, then the replay (skipped in live_file mode), then show status."""
    emit(ctx, lambda: control.pause(client()))


@app.command()
def resume(ctx: typer.Context) -> None:
    """Resume the agents, then the replay (skipped in live_file mode), then show status."""
    emit(ctx, lambda: control.resume(client()))


@app.command()
def step(ctx: typer.Context, bars: int = typer.Argument(1, help="Replay bars to advance (1..120).")) -> None:
    """Replay: advance N bars and force one decision cycle. live_file: run one decision cycle now."""
    emit(ctx, lambda: control.step(client(), bars))


@app.command("set-speed")
def set_speed(ctx: typer.Context, speed: float = typer.Argument(..., help="Replay bars per minute (0.1..1000).")) -> None:
    """Replay speed."""
    emit(ctx, lambda: control.set_speed(client(), speed))


@app.command("set-loop")
def set_loop(ctx: typer.Context, value: str = typer.Argument(..., metavar="on|off", help="on/true/1 or off/false/0.")) -> None:
    """Whether the replay wraps at its end."""
    emit(ctx, lambda: control.set_loop(client(), control.parse_on_off(value)))


@app.command("set-cadence")
def set_cadence(ctx: typer.Context, bars: int = typer.Argument(..., help="One decision cycle per N replay bars (1..240).")) -> None:
    """AGENT_DECISION_EVERY_BARS at run time."""
    emit(ctx, lambda: control.set_cadence(client(), bars))


@app.command("kill-on")
def kill_on(ctx: typer.Context, reason: str = typer.Argument("manual_emergency_stop")) -> None:
    """Activate the kill switch: no LLM call, no order, every agent stops (persisted)."""
    emit(ctx, lambda: control.kill_on(client(), reason))


@app.command("stop-all", hidden=True)
def stop_all(ctx: typer.Context, reason: str = typer.Argument("manual_emergency_stop")) -> None:
    """Alias of kill-on."""
    emit(ctx, lambda: control.kill_on(client(), reason))


@app.command("kill-off")
def kill_off(ctx: typer.Context, reason: str = typer.Argument("manual_resume")) -> None:
    """Deactivate the API kill switch; exit 1 if the env or file source still holds it."""
    emit(ctx, lambda: control.kill_off(client(), reason))


def _agent_command(action: str) -> None:
    def command(ctx: typer.Context, agent_id: str = typer.Argument(..., metavar="ID")) -> None:
        emit(ctx, lambda: control.agent_action(client(), agent_id, action))

    command.__doc__ = f"POST /api/agents/<id>/{action}."
    app.command(f"agent-{action}")(command)


for _action in control.AGENT_ACTIONS:
    _agent_command(_action)


# ---- resets and backups -------------------------------------------------------------------


@app.command("factory-reset")
def factory_reset(ctx: typer.Context,
                  warmup: bool = typer.Option(False, "--warmup", help="Move the replay to REPLAY_WARMUP_BARS-1."),
                  cursor: Optional[int] = typer.Option(None, "--cursor", help="Move the replay to this bar."),
                  confirm: bool = typer.Option(False, "--confirm", help="Really do it."),
                  dry_run: bool = typer.Option(False, "--dry-run", help="Print the API's plan; change nothing.")) -> None:
    """Reset EVERY agent's snapshot and the runtime (backed up first). Refused without --confirm."""
    emit(ctx, lambda: resets.factory_reset(client(), warmup=warmup, cursor=cursor, confirm=confirm, dry_run=dry_run))


@app.command("agent-reset")
def agent_reset(ctx: typer.Context, agent_id: str = typer.Argument(..., metavar="ID"),
                full: bool = typer.Option(False, "--full", help="Memory, positions and stats."),
                positions_only: bool = typer.Option(False, "--positions-only", help="Positions into cash only."),
                stats_only: bool = typer.Option(False, "--stats-only", help="Counters, journal and curve only."),
                confirm: bool = typer.Option(False, "--confirm", help="Really do it."),
                dry_run: bool = typer.Option(False, "--dry-run", help="Print the API's plan; change nothing.")) -> None:
    """Reset one agent (backed up first). Refused without --confirm."""
    emit(ctx, lambda: resets.agent_reset(client(), agent_id, resets.scope_of(full=full, positions_only=positions_only, stats_only=stats_only),
                                         confirm=confirm, dry_run=dry_run))


@app.command("backups")
def list_backups(ctx: typer.Context) -> None:
    """Backup folders the resets made (data/backups), newest first."""
    emit(ctx, lambda: backups.list_backups(settings()))


@app.command("restore-backup")
def restore_backup(ctx: typer.Context, backup: str = typer.Argument(..., help="Backup folder, as a reset printed it."),
                   confirm: bool = typer.Option(False, "--confirm", help="Really restore (the runtime must be stopped)."),
                   dry_run: bool = typer.Option(False, "--dry-run", help="List what would be restored.")) -> None:
    """Undo a reset: put the backed-up snapshots back (local; refused while the runtime runs)."""
    emit(ctx, lambda: backups.restore(settings(), backup, confirm=confirm, dry_run=dry_run))


# ---- issue 10: two-person rule and named tokens --------------------------------------------

request_app = typer.Typer(help="Ask for an admin action that a SECOND admin must approve (`approve ID`); nothing runs yet.",
                          no_args_is_help=True, rich_markup_mode=None)
app.add_typer(request_app, name="request")


@request_app.command("kill-off")
def request_kill_off(ctx: typer.Context, reason: str = typer.Argument("manual_resume")) -> None:
    """Request the kill switch off."""
    emit(ctx, lambda: control.kill_off(client(), reason, request_only=True))


@request_app.command("factory-reset")
def request_factory_reset(ctx: typer.Context,
                          warmup: bool = typer.Option(False, "--warmup", help="Move the replay to REPLAY_WARMUP_BARS-1."),
                          cursor: Optional[int] = typer.Option(None, "--cursor", help="Move the replay to this bar.")) -> None:
    """Request a factory reset (every agent)."""
    emit(ctx, lambda: resets.factory_reset(client(), warmup=warmup, cursor=cursor, confirm=True, request_only=True))


@request_app.command("agent-reset")
def request_agent_reset(ctx: typer.Context, agent_id: str = typer.Argument(..., metavar="ID"),
                        full: bool = typer.Option(False, "--full"), positions_only: bool = typer.Option(False, "--positions-only"),
                        stats_only: bool = typer.Option(False, "--stats-only")) -> None:
    """Request a reset of one agent."""
    emit(ctx, lambda: resets.agent_reset(client(), agent_id, resets.scope_of(full=full, positions_only=positions_only, stats_only=stats_only),
                                         confirm=True, request_only=True))


@app.command("pending")
def pending_requests(ctx: typer.Context) -> None:
    """Admin requests waiting for a second admin (auditor token or above)."""
    emit(ctx, lambda: approvals.pending(client()))


@app.command("approve")
def approve(ctx: typer.Context, approval_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Confirm another admin's request: it runs now (a different admin token than the requester's)."""
    emit(ctx, lambda: approvals.approve(client(), approval_id))


@app.command("cancel-request")
def cancel_request(ctx: typer.Context, approval_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Withdraw a pending request (any admin)."""
    emit(ctx, lambda: approvals.cancel(client(), approval_id))


@app.command("token-new")
def token_new(ctx: typer.Context, name: str = typer.Argument(...), role: str = typer.Argument(..., help="viewer, auditor, operator or admin")) -> None:
    """Print a fresh random token and its CONTROL_TOKENS_FILE line (name:role:sha256)."""
    emit(ctx, lambda: approvals.new_token(name, role))


# ---- continuity and probes ----------------------------------------------------------------


@app.command("continuity-snapshot")
def continuity_snapshot(ctx: typer.Context, out: Optional[Path] = typer.Argument(None, help="Also write it to this file.")) -> None:
    """sha256/size of every memory snapshot, plus registry and equity when the runtime answers."""
    emit(ctx, lambda: continuity.take(settings(), client(timeout=10.0), out))


@app.command("continuity-verify")
def continuity_verify(ctx: typer.Context, a: Path = typer.Argument(..., metavar="A"), b: Path = typer.Argument(..., metavar="B")) -> None:
    """Compare two continuity snapshots; exit 1 if anything changed."""
    emit(ctx, lambda: continuity.compare(a, b))


@app.command("health-restart-probe")
def health_restart_probe(ctx: typer.Context) -> None:
    """/health plus a listener on the API port; exit 1 if unhealthy (systemd then restarts the runtime)."""
    from . import probe

    def run() -> Outcome:
        try:
            local = settings()
        except OpsError:
            local = None
        return probe.probe(client(timeout=probe.PROBE_TIMEOUT_S), local)

    emit(ctx, run)


# ---- data ---------------------------------------------------------------------------------


@app.command("check-live-freshness")
def check_live_freshness(ctx: typer.Context, strict: bool = typer.Option(False, "--strict", help="Exit 1 when a required file fails.")) -> None:
    """Age of the newest data in each live file (local; no runtime needed)."""
    from . import jobs

    emit(ctx, lambda: jobs.live_freshness(settings(), strict=strict))


@app.command("akshare-status")
def akshare_status(ctx: typer.Context) -> None:
    """What the canonical CN 1m frames file holds."""
    from . import jobs

    emit(ctx, lambda: jobs.akshare_status(settings()))


@app.command("akshare-run-once", context_settings=PASS_THROUGH)
def akshare_run_once(ctx: typer.Context, symbols: Optional[str] = typer.Option(None, "--symbols", help="CSV instead of the registered pools.")) -> None:
    """Collect CN 1m bars now (data_jobs.frames_collector; other options pass through)."""
    from . import jobs

    raise typer.Exit(jobs.run_job("akshare-run-once", [*(["--symbols", symbols] if symbols is not None else []), *ctx.args]))


def _job_command(name: str, doc: str) -> None:
    def command(ctx: typer.Context) -> None:
        from . import jobs

        raise typer.Exit(jobs.run_job(name, ctx.args))

    command.__doc__ = doc
    app.command(name, context_settings=PASS_THROUGH)(command)


for _name, _doc in (
    ("market-overview-cn-run-once", "Write the CN market overview now (data_jobs.market_overview)."),
    ("market-overview-cn-if-open", "Same, only while the CN market is open."),
    ("red-blue-cn-run-once", "Write the CN red/blue breadth now (data_jobs.breadth)."),
    ("red-blue-cn-if-open", "Same, only while the CN market is open."),
    ("news-digest-cn-run-once", "Write the CN news digest now (data_jobs.news_digest)."),
    ("daily-history-cn-run-once", "Write the CN daily history now (data_jobs.daily_history)."),
):
    _job_command(_name, _doc)


# ---- issue 10: operator close of a position ----------------------------------------------


@app.command("close-position")
def close_position(ctx: typer.Context, agent_id: str = typer.Argument(..., help="Trader id."),
                   symbol: str = typer.Argument(..., help="Held symbol, e.g. 600519.SH."),
                   dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be sold; sell nothing.")) -> None:
    """Sell a trader's whole position in one symbol now, at the latest price (T+1 respected)."""
    emit(ctx, lambda: control.close_position(client(), agent_id, symbol, dry_run=dry_run))
# ---- issue 12: rehearsal, archive, replay packs ---------------------------------------------


@app.command()
def rehearse(ctx: typer.Context,
             at: str = typer.Option("2026-02-13T10:00:00+08:00", "--at", help="Simulated session start (ISO-8601)."),
             speed: float = typer.Option(1.0, "--speed", help="Simulated clock speed (x real time)."),
             breakage: Optional[str] = typer.Option(None, "--break", help="Break one condition on purpose: stale-job, missing-token, kill-switch."),
             keep: bool = typer.Option(False, "--keep", help="Keep the temporary host folder (logs, snapshots) for inspection."),
             agents_dir: Optional[Path] = typer.Option(None, "--agents-dir", help="Agent manifests to rehearse with (default: this build's agents/)."),
             fixtures: Optional[Path] = typer.Option(None, "--fixtures", help="Recorded vendor responses (default: the suite's recorded AKShare responses).")) -> None:
    """The go-live rehearsal's seven steps on a temporary host: recorded vendor, simulated session, supervised runtime."""
    from . import rehearse as rehearsal

    state: State = ctx.find_root().obj or State(False)
    say = (lambda line: typer.echo(line, err=True)) if state.json else (lambda line: typer.echo(line))
    emit(ctx, lambda: rehearsal.rehearse(at=at, speed=speed, breakage=breakage, keep=keep, agents_dir=agents_dir,
                                         fixtures=fixtures, report=say))


replay_pack_app = typer.Typer(help="Replay packs from the show-day archive.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(replay_pack_app, name="replay-pack")


@replay_pack_app.command("build")
def replay_pack_build(ctx: typer.Context,
                      from_archive: str = typer.Option(..., "--from-archive", help="Archived days: 2026-02-13, a comma list, A..B or all."),
                      out: Path = typer.Option(..., "--out", help="New folder for the pack (refused if it exists)."),
                      market: str = typer.Option("CN-A", "--market", help="Archive market."),
                      fmt: str = typer.Option("jsonl", "--format", help="1m frames as jsonl or parquet."),
                      archive_dir: Optional[Path] = typer.Option(None, "--archive-dir", help="Archive folder (default: ARCHIVE_DIR).")) -> None:
    """Archived show days -> a replay pack (1m frames, daily history cut before each day, breadth, names, meta)."""
    from . import replay_pack

    emit(ctx, lambda: replay_pack.build(settings(), from_archive, out, market=market, fmt=fmt, archive_dir=archive_dir))


# ---- issue 11: the daily ops report -----------------------------------------------------------


@app.command("report")
def day_report(ctx: typer.Context,
               day: Optional[str] = typer.Option(None, "--day", help="Trading day YYYY-MM-DD (default: the newest with decision logs)."),
               csv_output: bool = typer.Option(False, "--csv", help="One CSV row per agent instead of tables.")) -> None:
    """One trading day per agent (decisions, fills, fees, P&L, drawdown, LLM, gate holds), control actions, data incidents; read from the logs."""
    from . import report

    if csv_output:
        try:
            typer.echo(report.csv_text(report.build(settings(), day)), nl=False)
        except OpsError as exc:
            typer.echo(f"onlytrade-ops: {exc.message}", err=True)
            raise typer.Exit(exc.code) from None
        raise typer.Exit(EXIT_OK)
    emit(ctx, lambda: report.report(settings(), day))


def normalize_argv(argv: list[str]) -> list[str]:
    """`help` means --help; --json may follow the command (it is moved before it)."""
    if argv[:1] == ["help"]:
        return ["--help", *argv[1:]]
    head, sep, tail = (argv, [], []) if "--" not in argv else (argv[: argv.index("--")], ["--"], argv[argv.index("--") + 1:])
    if "--json" in head[1:]:
        head = ["--json", *[a for a in head if a != "--json"]]
    return [*head, *sep, *tail]


def main() -> None:
    try:
        app(args=normalize_argv(sys.argv[1:]), prog_name="onlytrade-ops")
    except SystemExit as exc:
        sys.exit(exc.code)
    except KeyboardInterrupt:
        sys.exit(130)
