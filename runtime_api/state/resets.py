"""Destructive resets, done safely: confirmed, dry-runnable, backed up, and race-free.

A real reset copies the affected snapshots to a timestamped backup folder first, then takes each
agent's lock and bumps its generation, so a decision cycle in flight discards its result instead
of writing the pre-reset portfolio back.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import anyio

from ..errors import ApiError, bad_request
from ..settings import display_path
from ..market.calendar import market_of_exchange
from .housekeeping import prune_backups


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def snapshot_ids(ctx) -> list[str]:
    """Every agent whose snapshot a factory reset covers: registered ones and any file on disk."""
    from ..manifests import AGENT_ID_RE

    ids = set(ctx.svc.registry.running_ids()) | {r["agent_id"] for r in ctx.svc.registry.registered()}
    memory_dir = ctx.settings.resolve(ctx.settings.agent_memory_dir)
    if memory_dir.is_dir():
        ids |= {p.stem for p in memory_dir.glob("*.json") if AGENT_ID_RE.match(p.stem)}
    return sorted(ids)


def factory_cursor(ctx, body: dict, use_warmup: bool) -> int:
    """Node's cursor rule, then clamped to the replay timeline: the answer names the cursor the reset
    really sets (and `cursor_index: 1e308` stays an encodable number, decided before anything changes)."""
    raw = body.get("cursor_index")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
        cursor = max(0, math.floor(raw))
    else:
        cursor = max(0, ctx.settings.replay_warmup_bars - 1) if use_warmup else 0
    replay = ctx.svc.replay
    last = len(replay.timeline) - 1 if replay is not None and replay.timeline else 0
    return min(cursor, last)


def _names_and_markets(ctx, ids: list[str]) -> tuple[dict, dict]:
    names, markets = {}, {}
    for agent_id in ids:
        rec = ctx.svc.registry.get(agent_id) or ctx.svc.registry.manifest(agent_id) or {}
        names[agent_id] = rec.get("agent_name") or agent_id
        markets[agent_id] = market_of_exchange(str(rec.get("exchange_id") or ""))
    return names, markets


def plan(ctx, ids: list[str], **scopes: bool) -> list[dict]:
    return [ctx.svc.memory.plan_reset(agent_id, **scopes) for agent_id in ids]


async def backup(ctx, ids: list[str]) -> str:
    """Copy the snapshots of `ids` to a new backup folder, then apply the retention settings."""
    s = ctx.settings

    def make() -> Path:
        folder = ctx.svc.memory.backup(ids, s.resolve(s.backups_dir))
        prune_backups(s.resolve(s.backups_dir), keep_last=s.backups_keep_last, max_age_days=s.backups_max_age_days)
        return folder

    folder: Path = await anyio.to_thread.run_sync(make)
    return display_path(ctx.settings, folder)


async def reset_agents(ctx, ids: list[str], *, memory: bool, positions: bool, stats: bool) -> dict[str, dict]:
    """Reset each agent under its lock, bumping its generation so in-flight cycles discard."""
    runtime = ctx.runtime
    names, markets = _names_and_markets(ctx, ids)
    result = {}
    for agent_id in ids:
        async with runtime.lock_for(agent_id):
            runtime.generation[agent_id] += 1
            result[agent_id] = await anyio.to_thread.run_sync(
                lambda a=agent_id: ctx.svc.memory.reset(
                    a, memory=memory, positions=positions, stats=stats, trader_name=names[a], market=markets[a]
                )
            )
        ctx.extra.setdefault("last_reset_time", {})[agent_id] = _now_iso()
    if memory or stats:
        runtime.reset_history(ids)
    runtime.bump()
    return result


def validate_agent_reset(ctx, body: dict) -> tuple[str, dict[str, bool]]:
    """The reference's order of checks: id, existence, confirmation, scope."""
    from ..web.http import truthy

    trader_id = str(body.get("trader_id") or "").strip()
    if not trader_id:
        raise bad_request("invalid_trader_id", "trader_id is required")
    if not ctx.svc.registry.get(trader_id) and not ctx.svc.registry.manifest(trader_id):
        raise ApiError(404, "trader_not_found", f"no registered or available trader {trader_id!r}")
    if str(body.get("confirm") if body.get("confirm") is not None else "").strip() != trader_id:
        raise bad_request("reset_confirmation_required", f'send "confirm": "{trader_id}" to reset this agent')
    scopes = {k: truthy(body.get(f"reset_{k}")) for k in ("memory", "positions", "stats")}
    if not any(scopes.values()):
        raise bad_request("no_reset_scope_selected", "set reset_memory, reset_positions or reset_stats")
    return trader_id, scopes
