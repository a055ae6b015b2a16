"""Resets (the Node runtime's "dev" endpoints): confirmed, dry-runnable, backed up, audited."""

from __future__ import annotations

from starlette.responses import Response

from ..state import resets
from ..access.control_route import ControlCall, control_route
from ..errors import bad_request
from ..web.http import truthy
from ..web.responses import ok
from ..state.write_health import state_write_failed
from .runtime import runtime_summary


async def post_factory_reset(call: ControlCall) -> Response:
    """Reset every agent's snapshot and the runtime; the runtime stays paused until resumed."""
    ctx = call.request.app.state.ctx
    body = call.body
    if str(body.get("confirm") if body.get("confirm") is not None else "").strip() != "RESET":
        raise bad_request("reset_confirmation_required", 'send "confirm": "RESET" to reset every agent')
    use_warmup = truthy(body.get("use_warmup"))
    cursor = resets.factory_cursor(ctx, body, use_warmup)
    ids = resets.snapshot_ids(ctx)
    call.target = "all"
    if call.dry_run:
        return ok({
            "action": "factory_reset", "dry_run": True, "cursor_index": cursor, "use_warmup": use_warmup,
            "would_reset": {
                "agents": resets.plan(ctx, ids, memory=True),
                "runtime": {"metrics": dict(ctx.runtime.metrics), "paused_after_reset": True},
                "replay_cursor": cursor if ctx.svc.replay else None,
            },
        })
    runtime = ctx.runtime
    try:  # the writes come first: on a full disk the reset is refused with nothing changed
        backup = await resets.backup(ctx, ids)
        await runtime.pause("after_reset", strict=True)
    except OSError as exc:
        raise state_write_failed(exc, "factory reset refused, nothing changed") from exc
    call.extra["backup"] = backup
    replay = ctx.svc.replay
    if replay is not None:
        replay.pause()
        replay.set_cursor(cursor)
        runtime.note_replay_step()
    try:
        if replay is not None:
            await runtime.save_replay_position()  # a restart after the reset starts at the rewound cursor too
        snapshots = await resets.reset_agents(ctx, ids, memory=True, positions=False, stats=False)
    except OSError as exc:
        raise state_write_failed(exc, f"factory reset incomplete, the runtime stays paused; the snapshots "
                                      f"before it are in {backup}; retry once the disk has room") from exc
    runtime.reset_history(None)
    ctx.extra["viewer_streams"].state_changed()  # viewers see the reset at once
    return ok({
        "action": "factory_reset", "dry_run": False, "cursor_index": cursor, "use_warmup": use_warmup,
        "backup": backup,
        "state": {
            "runtime": runtime_summary(ctx),
            "replay": replay.status() if replay else None,
            "memory": list(snapshots.values()),
        },
    })


async def post_reset_agent(call: ControlCall) -> Response:
    """Reset one agent's memory, positions and/or stats (other agents untouched)."""
    ctx = call.request.app.state.ctx
    trader_id, scopes = resets.validate_agent_reset(ctx, call.body)
    call.target = trader_id
    flags = {f"reset_{k}": v for k, v in scopes.items()}
    if call.dry_run:
        return ok({"action": "reset_agent", "trader_id": trader_id, **flags, "dry_run": True,
                   "would_reset": resets.plan(ctx, [trader_id], **scopes)[0]})
    try:
        backup = await resets.backup(ctx, [trader_id])
        call.extra["backup"] = backup
        snapshot = (await resets.reset_agents(ctx, [trader_id], **scopes))[trader_id]
    except OSError as exc:  # backup and snapshot are each written before anything changes in memory
        raise state_write_failed(exc, f"reset of {trader_id} refused, nothing changed") from exc
    ctx.extra["viewer_streams"].state_changed(trader_id)  # its viewers see the reset at once
    return ok({"action": "reset_agent", "trader_id": trader_id, **flags, "dry_run": False, "backup": backup,
               "memory": snapshot})


routes = [
    control_route("/api/dev/factory-reset", post_factory_reset, action="dev.factory_reset", role="admin"),
    control_route("/api/dev/reset-agent", post_reset_agent, action="dev.reset_agent", role="admin"),
]
