"""Replay runtime: status for every viewer page, control for operators."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..access.control_route import ControlCall, control_route, read_route
from ..errors import ApiError, bad_request
from ..web.http import clamp_int
from ..numbers import finite
from ..web.responses import ok


def replay_status(ctx) -> dict:
    s = ctx.settings
    replay = ctx.svc.replay
    if replay is not None:
        base = replay.status()
    else:
        base = {
            "running": False, "speed": s.replay_speed, "loop": s.replay_loop, "completed": False,
            "warmup_bars": s.replay_warmup_bars, "cursor_index": -1, "timeline_length": 0, "current_ts_ms": None,
        }
    live = ctx.svc.live.frames
    return {
        **base,
        "data_mode": s.runtime_data_mode,
        "live_file": live["CN-A"].status() if "CN-A" in live else None,
        "live_files": {"CN-A": live["CN-A"].status() if "CN-A" in live else None, "US": live["US"].status() if "US" in live else None},
        "symbols": ctx.svc.market.symbols(),
        "kill_switch_active": ctx.svc.kill_switch.active,
        "runtime_paused_reason": ctx.runtime.state_reason(),
    }


async def get_replay_status(request: Request) -> Response:
    """Replay cursor, speed and day boundaries (also the live/replay badge for viewers)."""
    ctx = request.app.state.ctx
    if ctx.svc.replay is None:  # live provider status changes with the clock: not cacheable
        return ok(replay_status(ctx))
    return ctx.cache.get("replay-status", ctx.replay_version(), lambda: replay_status(ctx))


async def post_replay_control(call: ControlCall) -> Response:
    """Pause, resume, step bars, set speed, cursor or loop."""
    ctx = call.request.app.state.ctx
    replay = ctx.svc.replay
    if replay is None:
        raise ApiError(503, "replay_unavailable", "replay is not active in this data mode")
    body = call.body
    action = str(body.get("action") or "").strip().lower()
    if action in ("resume", "step") and ctx.svc.kill_switch.active:
        raise ApiError(423, "kill_switch_active", "deactivate the kill switch first")
    cycle = None
    if action == "pause":
        replay.pause()
    elif action == "resume":
        replay.resume()
    elif action == "step":
        replay.step(clamp_int(body.get("bars"), 1, 1, 120))
        ctx.runtime.note_replay_step()
        # A manual step always forces one decision cycle, even below the bar cadence.
        cycle = await ctx.runtime.run_cycle(force=True)
    elif action == "set_speed":
        speed = finite(body.get("speed"))
        if speed is None:
            raise bad_request("invalid_speed", "speed must be a number")
        replay.set_speed(speed)
    elif action == "set_cursor":
        cursor = finite(body.get("cursor_index"))
        if cursor is None:
            raise bad_request("invalid_cursor_index", "cursor_index must be a number")
        replay.set_cursor(cursor)
        ctx.runtime.note_replay_step()
    elif action == "set_loop":
        if not isinstance(body.get("loop"), bool):
            raise bad_request("invalid_loop", "loop must be a JSON boolean")
        replay.set_loop(body["loop"])
    else:
        raise bad_request("invalid_action", "action must be pause, resume, step, set_speed, set_cursor or set_loop")
    await ctx.runtime.save_replay_position()  # cursor and pause survive a restart
    ctx.runtime.bump()
    data = {"action": action, "state": replay_status(ctx)}
    if cycle is not None:
        data["cycle"] = cycle
    return ok(data)



routes = [
    read_route("/api/replay/runtime/status", get_replay_status),
    control_route("/api/replay/runtime/control", post_replay_control,
                  action=lambda b: f"replay.runtime.control.{str(b.get('action') or '').strip().lower() or 'none'}"),
]
