"""GET /api/rooms/:id/stream-packet against the real app: shape, errors, leaks, state, single flight."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from runtime_api.streaming.packet import COT_TRACE_MAX_CHARS, viewer_decision
from tests.api.live_files import write_live_files
from tests.conftest import middleware_of
from tests.viewer.helpers import AGENT, TOKEN, asgi_app, make_settings

pytestmark = pytest.mark.anyio

PACKET_KEYS = {
    "schema_version", "room_id", "ts_ms", "trader", "room_context", "market_overview", "market_breadth",
    "news_digest", "status", "account", "positions", "decisions_latest", "decision_latest", "public_chat_preview",
    "decision_audit_preview", "decision_meta", "thinking_symbol_live", "thinking_symbol_live_ts_ms", "runtime",
}
CONTEXT_KEYS = {
    "room_id", "data_readiness", "time_context", "market_overview_brief", "news_digest_titles",
    "news_digest_headline_briefs", "news_background_notes", "recent_viewer_messages", "news_commentary",
    "news_categories", "news_as_of", "casual_topics", "news_burst_signal", "market_breadth_summary",
    "market_breadth", "symbol_brief", "symbol_history_summary", "symbol_history_lines", "sensitive_filter_stats",
    "thinking_symbol",
}
META_KEYS = {"saved_ts_ms", "decision_ts", "cycle_number", "thinking_symbol", "forced_hold", "data_readiness",
             "session_gate", "market_overview", "market_breadth", "news_digest"}
PREVIEW_KEYS = {"schema_version", "saved_ts_ms", "timestamp", "cycle_number", "symbol", "action", "decision_source",
                "forced_hold", "data_readiness", "session_gate", "market_overview", "market_breadth", "news_digest"}


async def packet(live, room: str = AGENT, **params) -> dict:
    resp = await live.client.get(f"/api/rooms/{room}/stream-packet", params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True
    return body["data"]


def keys_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


async def test_the_packet_has_the_reference_shape(root):
    async with asgi_app(make_settings(root)) as live:
        await live.start_agent()
        before = await packet(live)
        assert before["decisions_latest"] == [] and before["decision_latest"] is None
        assert before["decision_meta"] is None and before["decision_audit_preview"] is None
        for _ in range(3):
            await live.step()
        data = await packet(live, decision_limit=2)

    assert PACKET_KEYS <= set(data)
    assert data["schema_version"] == "room.stream_packet.v1" and data["room_id"] == AGENT
    assert isinstance(data["ts_ms"], int)
    assert data["trader"]["trader_id"] == AGENT and data["trader"]["is_running"] is True
    assert data["trader"]["trader_name"] == "Replay Momentum (demo)" and data["trader"]["exchange_id"] == "sim-cn"
    assert data["status"]["trader_id"] == AGENT and data["status"]["call_count"] == 3
    assert data["account"]["total_equity"] > 0 and isinstance(data["positions"], list)

    decisions = data["decisions_latest"]
    assert [d["cycle_number"] for d in decisions] == [3, 2]
    assert data["decision_latest"] == decisions[0]
    assert decisions[0]["decisions"][0]["action"] in ("buy", "sell", "hold")
    assert 2 <= len(decisions[0]["reasoning_steps_cn"]) <= 4

    meta = data["decision_meta"]
    assert META_KEYS <= set(meta) and meta["cycle_number"] == 3
    assert meta["thinking_symbol"] == decisions[0]["decisions"][0]["symbol"]
    preview = data["decision_audit_preview"]
    assert PREVIEW_KEYS <= set(preview) and preview["schema_version"] == "agent.decision_audit.v1"
    assert (preview["cycle_number"], preview["symbol"]) == (3, meta["thinking_symbol"])

    context = data["room_context"]
    assert CONTEXT_KEYS <= set(context)
    assert context["thinking_symbol"] == meta["thinking_symbol"] == data["thinking_symbol_live"]
    assert set(context["data_readiness"]) == {"level", "reasons", "market", "ts_ms"}
    assert context["time_context"]["clock"] == "replay" and context["time_context"]["timezone"] == "Asia/Shanghai"
    assert context["symbol_brief"]["symbol"] == meta["thinking_symbol"] and context["symbol_brief"]["latest_price"] > 0
    assert set(context["symbol_history_summary"]) == {"symbol", "past_6m", "past_1m", "past_1w", "past_1d"}
    # Overview and digest are fetched once per packet and shared with the room context.
    assert context["market_overview_brief"] == data["market_overview"]["brief"]
    assert data["market_overview"]["source_kind"] == "proxy_watchlist"
    assert context["news_digest_titles"] == data["news_digest"]["titles"]
    assert context["market_breadth_summary"] == data["market_breadth"]["summary"]

    # Three decisions within 25 s: the first is narrated, the next two are throttled (Node's cadence).
    chat = data["public_chat_preview"]
    assert (chat["room_id"], chat["visibility"], chat["count"]) == (AGENT, "public", 1)
    assert chat["messages"][0]["agent_message_kind"] == "narration"
    assert chat["last_ts_ms"] == chat["messages"][0]["created_ts_ms"]
    for part in ("market_overview", "news_digest", "market_breadth"):
        assert isinstance(data[part]["status"]["stale"], bool), part
    runtime = data["runtime"]
    assert runtime["state"]["running"] is True and runtime["paused_reason"] is None
    assert runtime["metrics"]["totalCycles"] == 3
    assert runtime["kill_switch"] == {"active": False, "reason": None, "activated_at": None}
    assert runtime["data_freshness"]["ok"] is True and runtime["data_mode"] == "replay"


async def test_the_packet_leaks_no_path_prompt_or_secret(root, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "overview.json"
    settings = make_settings(root, OPENAI_API_KEY="sk-viewer-secret-key", MARKET_OVERVIEW_PATH_CN=str(elsewhere))
    async with asgi_app(settings) as live:
        await live.start_agent()
        await live.control("/api/agent/runtime/kill-switch", {"action": "activate", "actor": "ops-alice"})
        await live.control("/api/agent/runtime/kill-switch", {"action": "deactivate", "actor": "ops-alice"})
        for _ in range(2):
            await live.step()
        resp = await live.client.get(f"/api/rooms/{AGENT}/stream-packet", params={"decision_limit": 20})
    text = resp.text
    data = resp.json()["data"]
    assert str(root) not in text and str(elsewhere.parent) not in text
    assert TOKEN not in text and "sk-viewer-secret-key" not in text and "ops-alice" not in text
    assert {"system_prompt", "input_prompt", "file_path"}.isdisjoint(keys_anywhere(data))
    assert "agent.market_context.rule_engine.v1" not in text  # the rule engine's "system prompt" name
    assert data["files"]["market_overview"] == {"cn_a": "overview.json", "us": "data/live/onlytrade/market_overview.us.json"}
    assert all(not name.startswith("/") for group in ("news_digest", "market_breadth") for name in data["files"][group].values())


def test_viewer_decision_strips_prompts_and_bounds_the_trace():
    record = {
        "cycle_number": 7, "system_prompt": "you are a trader", "input_prompt": '{"huge": "context"}',
        "cot_trace": "x" * 5000, "reasoning_steps_cn": ["1 数据状态：OK"], "decisions": [{"reasoning": "why"}],
        "llm": {"used": True, "model": "gpt-x", "failure_reason": "openai_http_500: upstream at 10.0.0.5", "breaker": "closed"},
    }
    out = viewer_decision(record)
    assert "system_prompt" not in out and "input_prompt" not in out
    assert len(out["cot_trace"]) == COT_TRACE_MAX_CHARS and out["cot_trace"].endswith("…")
    assert out["llm"] == {"used": True, "model": "gpt-x"}
    assert out["reasoning_steps_cn"] == ["1 数据状态：OK"] and out["decisions"] == [{"reasoning": "why"}]
    assert record["system_prompt"] == "you are a trader", "the runtime's record is not modified"


@pytest.mark.parametrize(
    "room, status, code",
    [
        ("Bad!", 400, "invalid_room_id"),
        ("x", 400, "invalid_room_id"),
        ("t_999", 404, "room_not_found"),
        ("t_002", 404, "room_not_found"),  # has a manifest, but is not registered
    ],
)
async def test_room_errors(root, monkeypatch, room, status, code):
    monkeypatch.setenv("ROOM_EVENTS_TEST_MODE", "true")
    async with asgi_app(make_settings(root)) as live:
        for path in (f"/api/rooms/{room}/stream-packet", f"/api/rooms/{room}/events"):
            resp = await live.client.get(path)
            assert resp.status_code == status, resp.text
            assert resp.headers["content-type"].startswith("application/json")
            assert resp.json()["error"] == code
        # A refused room leaves no build state behind.
        stats = await live.client.get(f"/api/_test/rooms/{room}/packet-build-stats")
        assert stats.status_code == 404 and stats.json()["error"] == "room_not_found"


async def test_a_failed_build_is_500_stream_packet_failed(root):
    async with asgi_app(make_settings(root)) as live:
        await live.start_agent()

        async def broken(room_id: str, limit: int) -> dict:
            raise RuntimeError("disk on fire")

        live.ctx.extra["viewer_streams"].hub._build_packet = broken
        resp = await live.client.get(f"/api/rooms/{AGENT}/stream-packet")
    assert resp.status_code == 500
    assert resp.json() == {"success": False, "error": "stream_packet_failed"}


async def test_decision_limit_is_clamped(root):
    async with asgi_app(make_settings(root)) as live:
        await live.start_agent()
        for _ in range(6):
            await live.step()
        counts = {}
        for raw in ("0", "3", "abc", "500"):
            counts[raw] = len((await packet(live, decision_limit=raw))["decisions_latest"])
    assert counts == {"0": 1, "3": 3, "abc": 5, "500": 6}


async def test_kill_switch_pause_and_freshness_show_in_the_next_packet(root):
    async with asgi_app(make_settings(root)) as live:
        await live.start_agent()
        assert (await packet(live))["runtime"]["state"]["running"] is True
        await live.control("/api/agent/runtime/kill-switch", {"action": "activate", "reason": "incident-7"})
        killed = await packet(live)  # no stale cached packet: the kill switch invalidates it
        assert killed["runtime"]["kill_switch"]["active"] is True
        assert killed["runtime"]["kill_switch"]["reason"] == "incident-7"
        assert killed["status"]["market_gate"]["kill_switch_active"] is True
        assert killed["runtime"]["state"]["paused_reason"] == "kill_switch"
        await live.control("/api/agent/runtime/kill-switch", {"action": "deactivate"})
        await live.control("/api/agent/runtime/control", {"action": "pause"})
        paused = await packet(live)
        assert paused["runtime"]["kill_switch"]["active"] is False
        assert paused["runtime"]["state"]["running"] is False and paused["runtime"]["paused_reason"] == "manual"
        assert paused["status"]["market_gate"]["manual_paused"] is True
        await live.control("/api/agent/runtime/control", {"action": "resume"})
        assert (await packet(live))["runtime"]["paused_reason"] is None


async def test_live_mode_packets_use_the_live_files_and_show_stale_data(root):
    write_live_files(root)
    settings = make_settings(root, RUNTIME_DATA_MODE="live_file", AGENT_SESSION_GUARD_ENABLED="false")
    async with asgi_app(settings) as live:
        await live.control(f"/api/agents/{AGENT}/register")
        fresh = await packet(live)
        overview = fresh["market_overview"]
        assert (overview["source_kind"], overview["brief"]) == ("benchmark", "CSI300 +0.4%")
        assert overview["status"]["state"] == "ok" and overview["status"]["stale"] is False
        assert all(fresh[k]["status"]["stale"] is False for k in ("news_digest", "market_breadth"))
        assert fresh["news_digest"]["titles"] == ["Liquor stocks steady"]
        assert fresh["market_breadth"]["breadth"]["advancers"] == 6 and fresh["market_breadth"]["source_kind"] == "live_file"
        assert fresh["runtime"]["data_freshness"]["ok"] is True
        assert fresh["room_context"]["data_readiness"]["level"] == "OK"
        assert fresh["room_context"]["time_context"]["clock"] == "wall"

        write_live_files(root, age_ms=3_600_000)
        for provider in live.ctx.svc.live.all():
            provider.refresh(force=True)
        live.ctx.extra["viewer_streams"].state_changed()
        stale = await packet(live)
    assert stale["runtime"]["data_freshness"]["ok"] is False
    assert stale["room_context"]["data_readiness"]["level"] == "ERROR"
    assert "live_file_stale" in stale["room_context"]["data_readiness"]["reasons"]


async def test_after_a_restart_the_packet_reads_the_logs(root):
    async with asgi_app(make_settings(root)) as live:
        await live.start_agent()
        for _ in range(2):
            await live.step()
        before = await packet(live)
    async with asgi_app(make_settings(root)) as again:
        assert again.ctx.runtime.history == {}
        after = await packet(again)
    assert [d["cycle_number"] for d in after["decisions_latest"]] == [2, 1]
    assert after["decisions_latest"][0]["decisions"] == before["decisions_latest"][0]["decisions"]
    assert {"system_prompt", "input_prompt"}.isdisjoint(keys_anywhere(after["decisions_latest"]))
    assert after["decision_meta"]["cycle_number"] == 2
    assert after["decision_meta"]["thinking_symbol"] == before["decision_meta"]["thinking_symbol"]
    assert after["decision_audit_preview"]["cycle_number"] == 2


async def test_concurrent_requests_share_builds_and_a_higher_limit_never_joins_a_lower(root, monkeypatch):
    monkeypatch.setenv("ROOM_EVENTS_TEST_MODE", "true")
    monkeypatch.setenv("ROOM_EVENTS_PACKET_BUILD_DELAY_MS", "300")
    async with asgi_app(make_settings(root)) as live:
        await live.start_agent()
        for _ in range(4):
            await live.step()
        same = await asyncio.gather(*(packet(live, decision_limit=3) for _ in range(8)))
        assert len({orjson.dumps(p) for p in same}) == 1
        stats = (await live.client.get(f"/api/_test/rooms/{AGENT}/packet-build-stats")).json()["data"]
        # one build; the other seven waited for it, in the HTTP cache (the same URL) or in the hub
        http_joins = middleware_of(live.app, "HttpCache").response_joins
        assert stats["build_started_count"] == 1 and stats["joined_call_count"] + http_joins == 7
        assert http_joins == 7  # the same URL: they never reached the route

        live.ctx.extra["viewer_streams"].hub.invalidate(AGENT)
        low = asyncio.create_task(packet(live, decision_limit=1))
        await asyncio.sleep(0.1)
        high = asyncio.create_task(packet(live, decision_limit=20))
        low_packet, high_packet = await low, await high
        stats = (await live.client.get(f"/api/_test/rooms/{AGENT}/packet-build-stats")).json()["data"]
    assert len(low_packet["decisions_latest"]) == 1 and len(high_packet["decisions_latest"]) == 4
    assert stats["build_started_count"] == 3  # the higher limit did not take the lower one's packet
    assert stats["global_max_concurrency"] == 1
    assert stats["packet_overview_fetch_count"] == stats["packet_digest_fetch_count"] == 3
    assert stats["context_overview_fetch_count"] == stats["context_digest_fetch_count"] == 0


async def test_the_stats_route_exists_only_in_test_mode(root, monkeypatch):
    monkeypatch.delenv("ROOM_EVENTS_TEST_MODE", raising=False)
    async with asgi_app(make_settings(root)) as live:
        await live.start_agent()
        await packet(live)
        resp = await live.client.get(f"/api/_test/rooms/{AGENT}/packet-build-stats")
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
