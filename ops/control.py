"""Control commands: pause/resume/step, replay speed and loop, cadence, kill switch, agent lifecycle.

Every call sends the control token. `pause`, `resume` and `step` also work in live_file mode: the
replay half answers 503 `replay_unavailable` there, which is expected and reported as skipped (the
Node script aborted on it after pausing only the agents, W21).
"""

from __future__ import annotations

from runtime_api.manifests import AGENT_ID_RE

from . import reads
from .approvals import approval_flag as _approval, awaiting
from .client import Client
from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OpsError, Outcome

AGENT_CONTROL = "/api/agent/runtime/control"
REPLAY_CONTROL = "/api/replay/runtime/control"
KILL_SWITCH = "/api/agent/runtime/kill-switch"
STEP_TIMEOUT_S = 180.0  # a forced cycle waits for every active agent's decision (LLM timeouts included)

AGENT_ACTIONS = ("register", "unregister", "start", "stop")
_ON = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def parse_on_off(text: str) -> bool:
    """`set-loop` values as the Node script: on/true/1 or off/false/0."""
    try:
        return _ON[str(text).strip().lower()]
    except KeyError:
        raise OpsError(EXIT_USAGE, f"expected on or off (true/1, false/0), got {text!r}") from None


def check_agent_id(agent_id: str) -> str:
    agent_id = str(agent_id or "").strip()
    if not AGENT_ID_RE.match(agent_id):
        raise OpsError(EXIT_USAGE, f"invalid agent id {agent_id!r}: expected ^[a-z][a-z0-9_]{{1,63}}$")
    return agent_id


def replay_call(client: Client, body: dict, what: str, *, timeout: float | None = None) -> dict:
    """Replay control; in live_file mode (503 replay_unavailable) returns a `skipped` marker instead of failing."""
    reply = client.post(REPLAY_CONTROL, body, timeout=timeout)
    if reply.status == 503 and reply.error == "replay_unavailable":
        return {"skipped": True, "reason": "replay_unavailable", "message": reply.message or "replay is not active in this data mode"}
    return client.expect(reply, what)


def _pause_or_resume(client: Client, action: str) -> Outcome:
    agent = client.control(AGENT_CONTROL, {"action": action}, f"{action} agents")
    replay = replay_call(client, {"action": action}, f"{action} replay")
    current = reads.status(client).data
    notes = []
    if agent.get("persisted") is False:
        notes.append("paused in memory only: the pause file could not be written (disk full?); "
                     "a restart now would resume; the runtime retries the write")
    if replay.get("skipped"):
        notes.append(f"replay {action}: skipped (replay_unavailable: live_file mode); the agent runtime was {action}d")
    runtime = current.get("runtime") or {}
    if action == "resume" and not runtime.get("running"):
        notes.append(f"agents resumed but not running now: {runtime.get('paused_reason') or 'unknown reason'}")
    return Outcome({"action": action, "agent_runtime": agent, "replay": replay, "status": current}, view="control", notes=notes)


def pause(client: Client) -> Outcome:
    """Pause the agent runtime, then the replay (skipped in live_file mode), then show status."""
    return _pause_or_resume(client, "pause")


def resume(client: Client) -> Outcome:
    """Resume the agent runtime (423 while the kill switch is on), then the replay, then show status."""
    return _pause_or_resume(client, "resume")


def step(client: Client, bars: int = 1) -> Outcome:
    """Replay: advance `bars` (1..120) and force one decision cycle. live_file: run one cycle now, under the gate."""
    if bars < 1:
        raise OpsError(EXIT_USAGE, "bars must be at least 1")
    replay = replay_call(client, {"action": "step", "bars": bars}, "step replay", timeout=STEP_TIMEOUT_S)
    notes = []
    if replay.get("skipped"):
        data = client.control(AGENT_CONTROL, {"action": "step"}, "step agents", timeout=STEP_TIMEOUT_S)
        out = {"action": "step", "mode": "live_file", "bars": None, "cycle": data.get("cycle"), "state": data.get("state")}
        notes.append("live_file mode: ran one decision cycle (bars do not apply)")
    else:
        out = {"action": "step", "mode": "replay", "bars": bars, "cycle": replay.get("cycle"), "state": replay.get("state")}
    cycle = out["cycle"] or {}
    if not cycle.get("ran"):
        # A step that ran nothing did not do what was asked: exit 1, saying why.
        notes.append(f"step ran no decision cycle: {cycle.get('reason') or 'nothing to run'}")
        return Outcome(out, EXIT_FAILED, view="step", notes=notes)
    return Outcome(out, view="step", notes=notes)


def set_speed(client: Client, speed: float) -> Outcome:
    return Outcome(client.control(REPLAY_CONTROL, {"action": "set_speed", "speed": speed}, "set speed"), view="replay_control")


def set_loop(client: Client, loop: bool) -> Outcome:
    return Outcome(client.control(REPLAY_CONTROL, {"action": "set_loop", "loop": loop}, "set loop"), view="replay_control")


def set_cadence(client: Client, bars: int) -> Outcome:
    data = client.control(AGENT_CONTROL, {"action": "set_decision_every_bars", "decision_every_bars": bars}, "set cadence")
    return Outcome(data, view="agent_control")


def kill_on(client: Client, reason: str = "manual_emergency_stop") -> Outcome:
    """Activate the kill switch: every agent stops, no LLM call, no order, persisted across restarts."""
    data = client.control(KILL_SWITCH, {"action": "activate", "reason": reason}, "kill switch on")
    if data.get("persisted") is False:
        # On in memory, but a restart would forget it: exit 1 so a script (and the operator) acts.
        return Outcome(data, EXIT_FAILED, view="kill_switch", notes=[
            "kill switch is ON, in memory only: the state file could not be written (disk full?)",
            "  the runtime retries the write; until it lands a restart would forget it:",
            "  free disk space, or touch data/runtime/KILL_SWITCH (the flag file needs no free blocks)"])
    return Outcome(data, view="kill_switch")


def kill_off(client: Client, reason: str = "manual_resume", *, request_only: bool = False) -> Outcome:
    """Deactivate the API kill switch; exit 1 if another source (env, file) still holds it on."""
    data = client.control(KILL_SWITCH, {"action": "deactivate", "reason": reason, **_approval(request_only)},
                          "kill switch off")
    parked = awaiting(data)
    if parked is not None:
        return parked
    ks = data.get("kill_switch") or {}
    if ks.get("active"):
        sources = ", ".join(ks.get("sources") or []) or "unknown"
        hint = {"env": "KILL_SWITCH=1 in the runtime's environment (restart without it)",
                "file": "the file data/runtime/KILL_SWITCH (remove it)"}
        notes = [f"kill switch still active from: {sources}"] + [f"  {hint[s]}" for s in ks.get("sources") or [] if s in hint]
        return Outcome(data, EXIT_FAILED, view="kill_switch", notes=notes)
    return Outcome(data, EXIT_OK, view="kill_switch",
                   notes=["kill switch off: live_file agents decide again from the next cycle (in session); "
                          "a replay stays paused until `onlytrade-ops resume`"])


def close_position(client: Client, agent_id: str, symbol: str, *, dry_run: bool = False) -> Outcome:
    """Sell the trader's whole position in `symbol` now (T+1: shares bought today stay)."""
    agent_id = check_agent_id(agent_id)
    body = {"symbol": symbol, "dry_run": dry_run}
    data = client.control(f"/api/traders/{agent_id}/close-position", body, f"close {symbol} for {agent_id}")
    return Outcome(data, view="record", notes=[data.get("message") or ""])


def agent_action(client: Client, agent_id: str, action: str) -> Outcome:
    """POST /api/agents/<id>/{register,unregister,start,stop}."""
    if action not in AGENT_ACTIONS:
        raise OpsError(EXIT_USAGE, f"unknown agent action {action!r}")
    agent_id = check_agent_id(agent_id)
    return Outcome(client.control(f"/api/agents/{agent_id}/{action}", {}, f"agent {action} {agent_id}"), view="record")
