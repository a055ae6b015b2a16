"""What the route table cannot say about each endpoint: its query parameters, its JSON body, the
shape of its success body and every error code it can return (beyond the ones every route or
every control route shares, which `openapi` adds). Keyed by route name; the summary comes from
the handler's docstring. A test walks `app.routes` and fails for a route missing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STRING = {"type": "string"}
TRADER_ID = {"name": "trader_id", "in": "query", "schema": STRING, "description": "Trader (agent) id; omitted: the first lobby trader"}


def q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def limit(default: int, hi: int) -> dict[str, Any]:
    return q("limit", {"type": "integer", "default": default}, f"1..{hi}, clamped (a non-number means the default)")


def body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {"dry_run": {"type": "boolean"}, "actor": STRING, **properties}}
    if required:
        schema["required"] = required
    return schema


# Path parameters by name: a schema and a real example, so a fuzzer reaches past the 404s.
AGENT_ID = {"type": "string", "examples": ["demo_momentum"]}
PATH_PARAMS: dict[str, dict[str, Any]] = {
    "agent_id": AGENT_ID, "trader_id": AGENT_ID, "room_id": AGENT_ID,
    "file_name": {"type": "string", "examples": ["avatar.png"]},
    "name": {"type": "string", "examples": ["viewer.js", "viewer.css"]},
}


@dataclass(frozen=True)
class Op:
    query: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    errors: dict[int, list[str]] = field(default_factory=dict)
    envelope: bool = True  # {"success": true, "data": ...}; False: the body is unwrapped JSON
    media: str = "application/json"  # text/html, text/event-stream, ...


ACTION = lambda *names: {"type": "string", "enum": list(names)}  # noqa: E731
NUMBER = {"type": "number"}
TRADER_404 = {404: ["trader_not_found"]}
ROOM = {400: ["invalid_room_id"], 404: ["room_not_found"]}
MARKET = {400: ["invalid_interval", "invalid_symbol"], 503: ["live_frames_unavailable"]}
AGENT = {400: ["invalid_agent_id"], 404: ["agent_manifest_not_found"]}
STREAM = {429: ["too_many_subscribers"], 503: ["stream_closed"]}
VIEWER_BODY = {400: ["invalid_json"], 413: ["payload_too_large"]}

OPS: dict[str, Op] = {
    # health and config
    "get_health": Op(envelope=False),
    "get_ready": Op(envelope=False, errors={503: []}),
    "get_config": Op(envelope=False),
    "get_metrics": Op(envelope=False, media="text/plain",
                      errors={401: ["unauthorized_metrics_token"], 403: ["metrics_loopback_only"], 503: ["metrics_token_not_configured"]}),
    "get_openapi": Op(envelope=False),
    # agents
    "get_agents_available": Op(),
    "get_agents_registered": Op(),
    "get_agent_asset": Op(media="application/octet-stream", envelope=False,
                          errors={400: ["invalid_agent_id", "invalid_asset_file"], 404: ["agent_asset_not_found"]}),
    "post_agent_register": Op(body=body({}), errors=AGENT),
    "post_agent_unregister": Op(body=body({}), errors={**AGENT, 409: ["agent_not_registered"]}),
    "post_agent_start": Op(body=body({}), errors={**AGENT, 409: ["agent_not_registered"]}),
    "post_agent_stop": Op(body=body({}), errors={**AGENT, 409: ["agent_not_registered"]}),
    # traders (the web app's reads)
    "get_traders": Op(),
    "get_competition": Op(),
    "get_top_traders": Op(),
    "get_status": Op(query=[TRADER_ID], errors=TRADER_404),
    "get_account": Op(query=[TRADER_ID], errors=TRADER_404),
    "get_positions": Op(query=[TRADER_ID], errors=TRADER_404),
    "get_statistics": Op(query=[TRADER_ID], errors=TRADER_404),
    "get_equity_history": Op(query=[TRADER_ID, q("hours", NUMBER, "Window in hours (optional)")], errors=TRADER_404),
    "post_equity_history_batch": Op(
        body={"type": "object", "properties": {"trader_ids": {"type": "array", "items": STRING}, "hours": NUMBER}},
        errors={400: ["invalid_json", "invalid_trader_ids", "too_many_trader_ids"], 413: ["payload_too_large"]}),
    "get_positions_history": Op(query=[TRADER_ID, limit(100, 1000)], errors=TRADER_404),
    "get_trader_config": Op(errors=TRADER_404),
    "get_orders": Op(query=[TRADER_ID], errors=TRADER_404),
    "get_open_orders": Op(query=[TRADER_ID], errors=TRADER_404),
    "get_symbols": Op(query=[TRADER_ID], errors=TRADER_404, envelope=False),
    "close_position": Op(body=body({"symbol": STRING, "side": STRING}),
                         errors={400: ["invalid_agent_id", "invalid_symbol", "invalid_side"], 404: ["trader_not_found"],
                                 409: ["no_price", "market_closed", "no_position", "t_plus_one_locked", "nothing_sellable",
                                       "agent_memory_corrupt"],
                                 423: ["kill_switch_active"]}),
    # runtime
    "get_runtime_status": Op(),
    "post_runtime_control": Op(
        body=body({"action": ACTION("pause", "resume", "step", "set_cycle_ms", "set_decision_every_bars"),
                   "cycle_ms": NUMBER, "decision_every_bars": NUMBER}, ["action"]),
        errors={400: ["invalid_action", "invalid_cycle_ms", "invalid_decision_every_bars"], 423: ["kill_switch_active"],
                503: ["agent_runtime_unavailable"]}),
    "post_kill_switch": Op(body=body({"action": ACTION("activate", "deactivate"), "reason": STRING}, ["action"]),
                           errors={400: ["invalid_action"]}),
    "get_agent_memory": Op(query=[q("trader_id", STRING, "One agent; omitted: every lobby agent")],
                           errors={**TRADER_404, 404: ["trader_not_found", "memory_not_found"]}),
    "get_market_context": Op(
        query=[TRADER_ID, q("symbol", STRING), q("intraday_limit", {"type": "integer", "default": 180}),
               q("daily_limit", {"type": "integer", "default": 90}), q("intraday_interval", STRING), q("source", STRING)],
        errors={**MARKET, 404: ["trader_not_found"]}),
    # replay
    "get_replay_status": Op(),
    "post_replay_control": Op(
        body=body({"action": ACTION("pause", "resume", "step", "set_speed", "set_cursor", "set_loop"),
                   "bars": NUMBER, "speed": NUMBER, "cursor_index": NUMBER, "loop": {"type": "boolean"}}, ["action"]),
        errors={400: ["invalid_action", "invalid_speed", "invalid_cursor_index", "invalid_loop"], 423: ["kill_switch_active"],
                503: ["replay_unavailable"]}),
    # decisions and audit
    "get_decisions_latest": Op(query=[TRADER_ID, limit(5, 120)], errors=TRADER_404),
    "get_audit_latest": Op(query=[limit(50, 500)], errors={400: ["invalid_agent_id"], 404: ["agent_not_registered"]}),
    "get_audit_day": Op(query=[q("day_key", STRING, "YYYY-MM-DD"), limit(2000, 5000)],
                        errors={400: ["invalid_agent_id", "invalid_day_key"], 404: ["agent_not_registered"]}),
    # market data
    "get_market_frames": Op(query=[q("symbol", STRING), q("interval", STRING, "1m, 5m, 15m, 30m, 1h, 1d"),
                                   limit(800, 2000), q("source", STRING)], errors=MARKET),
    "get_klines": Op(query=[q("symbol", STRING), q("interval", STRING), limit(800, 2000), q("source", STRING)], errors=MARKET),
    # control plane
    "post_factory_reset": Op(body=body({"confirm": {"type": "string", "description": "RESET"}, "use_warmup": {"type": "boolean"},
                                        "cursor_index": NUMBER}, ["confirm"]),
                             errors={400: ["reset_confirmation_required"]}),
    "post_reset_agent": Op(
        body=body({"trader_id": STRING, "confirm": STRING, "reset_memory": {"type": "boolean"},
                   "reset_positions": {"type": "boolean"}, "reset_stats": {"type": "boolean"}}, ["trader_id", "confirm"]),
        errors={400: ["invalid_trader_id", "reset_confirmation_required", "no_reset_scope_selected", "invalid_agent_id"],
                404: ["trader_not_found"], 409: ["agent_memory_corrupt"]}),
    "get_live_preflight": Op(),
    "get_control_audit": Op(query=[limit(100, 1000)]),
    # viewers
    "get_stream_packet": Op(query=[q("decision_limit", {"type": "integer", "default": 5}, "1..20")], errors=ROOM),
    "get_room_events": Op(query=[q("decision_limit", {"type": "integer", "default": 5}, "1..20")], media="text/event-stream",
                          envelope=False, errors={**ROOM, **STREAM}),
    "get_market_stream": Op(query=[q("symbols", STRING, "Comma list"), q("interval", STRING)], media="text/event-stream",
                            envelope=False, errors={400: ["invalid_symbols", "too_many_symbols", "invalid_interval"], **STREAM}),
    "get_packet_build_stats": Op(errors={404: ["not_found", "room_not_found"]}),
    # two-person approvals (issue 10)
    "get_approvals": Op(),
    "post_approve": Op(body=body({}), errors={404: ["approval_not_found"], 409: ["approval_needs_second_person"]}),
    "post_cancel": Op(body=body({}), errors={404: ["approval_not_found"]}),
    # chat, speech and bets: viewer routes, no control token (issue 9)
    "post_chat_session_bootstrap": Op(body={"type": "object", "properties": {"user_nickname": STRING}}, errors=VIEWER_BODY),
    "get_room_public_chat": Op(query=[q("limit", {"type": "integer", "default": 20}, "1..200"), q("before_ts_ms", NUMBER)],
                               errors=ROOM),
    "get_room_private_chat": Op(query=[q("user_session_id", STRING, "The credential from bootstrap"),
                                       q("limit", {"type": "integer", "default": 20}, "1..200"), q("before_ts_ms", NUMBER)],
                                errors={**ROOM, 400: ["invalid_room_id", "invalid_user_session_id"], 403: ["unverified_user_session"]}),
    "post_room_message": Op(
        body={"type": "object", "properties": {"user_session_id": STRING, "user_nickname": STRING, "message_type": STRING,
                                               "text": STRING, "visibility": STRING}},
        errors={**VIEWER_BODY, 400: ["invalid_json", "invalid_room_id", "invalid_user_session_id", "invalid_message_type", "invalid_text",
                                     "text_too_long", "invalid_visibility", "invalid_mention_target"],
                403: ["unverified_user_session", "chat_posting_disabled"], 404: ["room_not_found"], 429: ["rate_limited"]}),
    "get_tts_config": Op(),
    "post_tts": Op(body={"type": "object", "properties": {"room_id": STRING, "message_id": STRING, "text": STRING, "speed": NUMBER}},
                   media="application/octet-stream", envelope=False,
                   errors={**VIEWER_BODY, 400: ["invalid_json", "room_id_required", "text_required", "invalid_speed", "message_id_required",
                                                "invalid_room_id"],
                           404: ["room_not_found"], 502: ["chat_tts_dispatch_failed"], 503: ["tts_disabled"]}),
    "get_bets_market": Op(query=[q("market", STRING), TRADER_ID, q("user_session_id", STRING)],
                          errors={404: ["bets_disabled", "trader_not_available_for_bet"]}),
    "post_bets_place": Op(
        body={"type": "object", "properties": {"user_session_id": STRING, "user_nickname": STRING, "trader_id": STRING,
                                               "stake_amount": NUMBER}},
        errors={**VIEWER_BODY, 400: ["invalid_json", "invalid_user_session_id", "invalid_trader_id", "insufficient_credit_points"],
                403: ["unverified_user_session"], 404: ["bets_disabled", "trader_not_available_for_bet"],
                409: ["betting_closed_before_market_close_30m"], 429: ["rate_limited"]}),
    "get_bets_credits": Op(query=[q("limit", {"type": "integer", "default": 20}, "1..200"), q("user_session_id", STRING)],
                           errors={404: ["bets_disabled"]}),
    # pages
    "get_lobby_page": Op(media="text/html", envelope=False),
    "get_room_page": Op(media="text/html", envelope=False),
    "get_static_asset": Op(media="application/octet-stream", envelope=False, errors={404: ["not_found"]}),
}
