"""Destructive resets: refused without --confirm, planned by the API with --dry-run, backed up when real."""

from __future__ import annotations

from .client import Client
from .control import check_agent_id
from .approvals import approval_flag as _approval, awaiting
from .exits import EXIT_USAGE, OpsError, Outcome

FACTORY_RESET = "/api/dev/factory-reset"
RESET_AGENT = "/api/dev/reset-agent"
RESET_TIMEOUT_S = 120.0  # waits for in-flight cycles' locks

SCOPES = {
    "full": {"reset_memory": True, "reset_positions": True, "reset_stats": True},
    "positions": {"reset_memory": False, "reset_positions": True, "reset_stats": False},
    "stats": {"reset_memory": False, "reset_positions": False, "reset_stats": True},
}
SCOPE_TEXT = {
    "full": "replace its whole memory snapshot with a fresh 100000 cash account (positions, history, stats)",
    "positions": "close its positions into cash at their last marks and clear lots, closed positions and trade events",
    "stats": "zero its counters and clear its journal, recent actions and equity curve (positions kept)",
}


def factory_body(*, warmup: bool, cursor: int | None, dry_run: bool) -> dict:
    if warmup and cursor is not None:
        raise OpsError(EXIT_USAGE, "use either --warmup or --cursor N, not both")
    if cursor is not None and cursor < 0:
        raise OpsError(EXIT_USAGE, "--cursor must be 0 or more")
    body: dict = {"confirm": "RESET", "dry_run": dry_run}
    if warmup:
        body["use_warmup"] = True
    elif cursor is not None:
        body["cursor_index"] = cursor
    return body


def factory_reset_text(body: dict) -> str:
    where = ("the warm-up cursor (REPLAY_WARMUP_BARS-1)" if body.get("use_warmup")
             else f"cursor {body.get('cursor_index', 0)}")
    return ("factory-reset would reset the memory snapshot of EVERY agent (registered agents and every file in "
            "data/agent-memory) to 100000 cash, clear the runtime's decision history and metrics, move the replay "
            f"to {where} and leave the runtime paused until `resume`. The snapshots are backed up first.")


def factory_reset(client: Client, *, warmup: bool = False, cursor: int | None = None, confirm: bool = False,
                  dry_run: bool = False, request_only: bool = False) -> Outcome:
    """POST /api/dev/factory-reset; refuses (exit 2) without confirm unless it is a dry run."""
    body = factory_body(warmup=warmup, cursor=cursor, dry_run=dry_run)
    if not confirm and not dry_run:
        raise OpsError(EXIT_USAGE, "refused without --confirm: " + factory_reset_text(body)
                       + " Rerun with --confirm, or with --dry-run to see the plan.", {"would_send": body})
    data = client.control(FACTORY_RESET, {**body, **_approval(request_only)}, "factory reset", timeout=RESET_TIMEOUT_S)
    parked = awaiting(data)
    if parked is not None:
        return parked
    notes = []
    if dry_run:
        notes.append("dry run: nothing changed")
    elif data.get("backup"):
        notes.append(f"backup of the previous snapshots: {data['backup']} (undo: stop the runtime, then "
                     f"`onlytrade-ops restore-backup {data['backup']} --confirm`)")
    return Outcome(data, view="reset", notes=notes)


def scope_of(*, full: bool, positions_only: bool, stats_only: bool) -> str:
    chosen = [name for name, on in (("full", full), ("positions", positions_only), ("stats", stats_only)) if on]
    if len(chosen) != 1:
        raise OpsError(EXIT_USAGE, "choose exactly one of --full, --positions-only, --stats-only")
    return chosen[0]


def agent_reset(client: Client, agent_id: str, scope: str, *, confirm: bool = False, dry_run: bool = False,
                request_only: bool = False) -> Outcome:
    """POST /api/dev/reset-agent for one agent; refuses (exit 2) without confirm unless it is a dry run."""
    agent_id = check_agent_id(agent_id)
    if scope not in SCOPES:
        raise OpsError(EXIT_USAGE, f"unknown reset scope {scope!r}")
    body = {"trader_id": agent_id, "confirm": agent_id, **SCOPES[scope], "dry_run": dry_run}
    if not confirm and not dry_run:
        raise OpsError(EXIT_USAGE, f"refused without --confirm: agent-reset would {SCOPE_TEXT[scope]} for {agent_id}; "
                       "other agents are untouched and the snapshot is backed up first. "
                       "Rerun with --confirm, or with --dry-run to see the plan.", {"would_send": body})
    data = client.control(RESET_AGENT, {**body, **_approval(request_only)}, f"reset agent {agent_id}", timeout=RESET_TIMEOUT_S)
    parked = awaiting(data)
    if parked is not None:
        return parked
    notes = []
    if dry_run:
        notes.append("dry run: nothing changed")
    elif data.get("backup"):
        notes.append(f"backup of the previous snapshot: {data['backup']} (undo: stop the runtime, then "
                     f"`onlytrade-ops restore-backup {data['backup']} --confirm`)")
    return Outcome(data, view="reset", notes=notes)
