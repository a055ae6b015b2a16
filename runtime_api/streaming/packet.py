"""The room stream packet (`room.stream_packet.v1`): everything a viewer page shows, in one object.

RoomHub builds it (single-flight, briefly cached, pushed on a timer) for the SSE stream and the
stream-packet endpoint. The runtime's mutable state (decision history, in-flight set) is copied on
the event loop; the rest is assembled in a worker thread, because a snapshot's first load, today's
decision log, the latest audit record and the live files are disk reads. Viewers get no prompts, no
operator identities and no filesystem paths (W17): `viewer_decision` is the one filter every
decision passes on its way to a viewer.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import Any

import anyio

from ..audience import audience_of
from ..chat.tts import enabled as tts_enabled
from .. import clock as one_clock
from ..decision.features import price_volume_references
from ..errors import ApiError
from ..state.journal import AUDIT_SCHEMA, merge_newest
from ..manifests import AGENT_ID_RE
from ..market.supplemental import news_titles, normalize_breadth, overview_brief
from ..portfolio.views import account_view, positions_view
from ..routes.runtime import live_freshness
from ..routes.traders import avatar_urls, status_view
from ..settings import display_path
from ..market.calendar import local_datetime, market_of_exchange, session_state, trading_day_of

PACKET_SCHEMA = "room.stream_packet.v1"
HIDDEN_DECISION_KEYS = frozenset({"system_prompt", "input_prompt"})
COT_TRACE_MAX_CHARS = 2000
NEWS_TITLES = 8
HEADLINE_BRIEF_CHARS = 40
BRIEF_BARS = 240  # a CN trading day of 1m bars
HISTORY_BARS = 130  # the past-6-months window needs ~120 daily bars
AUDIT_PREVIEW_KEYS = ("schema_version", "saved_ts_ms", "timestamp", "cycle_number", "symbol", "action",
                      "decision_source", "forced_hold", "data_readiness", "session_gate", "market_overview",
                      "market_breadth", "news_digest")
META_KEYS = ("forced_hold", "data_readiness", "session_gate", "market_overview", "market_breadth", "news_digest")
_LEVELS = {"OK": 0, "WARN": 1, "ERROR": 2}
STATUS_KEYS = ("refresh_ms", "stale_after_ms", "last_load_ts_ms", "last_attempt_ts_ms", "last_mtime_ms", "last_error",
               "last_error_ts_ms", "has_last_good")


def wall_ms() -> int:
    return one_clock.now_ms()


def room_record(ctx, raw_room_id: Any) -> dict:
    """The registered, available agent behind a room; 400 invalid_room_id or 404 room_not_found."""
    room_id = str(raw_room_id or "").strip()
    if not AGENT_ID_RE.match(room_id):
        raise ApiError(400, "invalid_room_id", "a room id is an agent id such as t_001")
    rec = ctx.svc.registry.get(room_id)
    if not rec or rec.get("available") is False:
        raise ApiError(404, "room_not_found", f"no registered agent {room_id!r}")
    return rec


def viewer_decision(record: dict) -> dict:
    """A decision record as viewers see it: no prompts, a bounded trace, no LLM failure details.

    `reasoning` and `reasoning_steps_cn` are the narration the show is built on and stay. The
    prompts are the operator's (and the bulk of a record's size); `cot_trace` stays, capped,
    because it is the model's own rationale (or the rule engine's feature line), which the
    original front end shows in its decision cards.
    """
    out = {k: v for k, v in record.items() if k not in HIDDEN_DECISION_KEYS}
    trace = out.get("cot_trace")
    if isinstance(trace, str) and len(trace) > COT_TRACE_MAX_CHARS:
        out["cot_trace"] = trace[: COT_TRACE_MAX_CHARS - 1] + "…"
    llm = out.get("llm")
    if isinstance(llm, dict):
        out["llm"] = {"used": llm.get("used"), "model": llm.get("model")}
    return out


def audit_preview(record: dict, meta: dict) -> dict:
    """The `decision_audit_preview` of a decision, from its record and the runtime's decision meta."""
    head = (record.get("decisions") or [{}])[0] or {}
    return {
        "schema_version": AUDIT_SCHEMA,
        "saved_ts_ms": meta.get("saved_ts_ms"),
        "timestamp": record.get("timestamp"),
        "cycle_number": record.get("cycle_number"),
        "symbol": head.get("symbol"),
        "action": head.get("action"),
        "decision_source": record.get("decision_source"),
        **{key: meta.get(key) for key in META_KEYS},
    }


def meta_from_audit(audit: dict) -> dict:
    """`decision_meta` rebuilt from a decision audit record (after a restart)."""
    return {
        "saved_ts_ms": audit.get("saved_ts_ms"),
        "decision_ts": audit.get("timestamp"),
        "cycle_number": audit.get("cycle_number"),
        "thinking_symbol": audit.get("symbol"),
        **{key: audit.get(key) for key in META_KEYS},
    }


def _first_symbol(record: dict | None) -> str | None:
    head = ((record or {}).get("decisions") or [{}])[0] or {}
    return head.get("symbol") or None


def breadth_summary(breadth: dict | None) -> str:
    if not breadth:
        return ""
    ratio = breadth.get("advancer_ratio")
    tail = f" (advancer ratio {ratio:.1%})" if isinstance(ratio, (int, float)) else ""
    return (f"advancers {breadth.get('advancers')} / decliners {breadth.get('decliners')}"
            f" / unchanged {breadth.get('unchanged')}{tail}")


def _inner_breadth(value: Any) -> dict | None:
    """Breadth as the 6-field dict, whether given bare or as a replay point `{ts_ms, breadth}`."""
    if isinstance(value, dict) and isinstance(value.get("breadth"), dict):
        value = value["breadth"]
    return normalize_breadth(value) if isinstance(value, dict) else None


class RoomPackets:
    """Builds room packets for one app and remembers each agent's latest decision and its meta."""

    def __init__(self, ctx, *, build_delay_ms: int = 0):
        self.ctx = ctx
        self.build_delay_ms = build_delay_ms
        self.counters: Counter[str] = Counter()
        self._latest: dict[str, tuple[dict, dict]] = {}

    def remember(self, agent_id: str, record: dict, meta: dict) -> None:
        """The runtime's decision listener feeds this, so packets need no audit-log read."""
        self._latest[agent_id] = (record, meta)

    def room_stats(self, room_id: str) -> dict:
        """Per-room build counters for the test-only stats route."""
        return {key.split(":", 1)[1]: value for key, value in self.counters.items() if key.startswith(f"{room_id}:")}

    async def build(self, room_id: str, decision_limit: int) -> dict:
        """The packet of one room with up to `decision_limit` decisions (RoomHub's build_packet)."""
        if self.build_delay_ms:
            await asyncio.sleep(self.build_delay_ms / 1000)
        ctx = self.ctx
        rt = ctx.runtime
        history = list(rt.history.get(room_id, ()))
        latest = self._latest.get(room_id)
        if latest is not None and not (history and history[0] is latest[0]):
            latest = None  # the history was reset since: fall back to the logs
        loop_state = {
            "state": rt.state(),
            "metrics": dict(rt.metrics),
            "decision_every_bars": rt.decision_every_bars,
            "clock_ms": rt.clock_ms(),
        }
        return await anyio.to_thread.run_sync(
            functools.partial(self._assemble, room_id, decision_limit, history, latest, loop_state)
        )

    # ---- worker thread -------------------------------------------------------------------------

    def _assemble(self, room_id: str, limit: int, history: list[dict], latest: tuple[dict, dict] | None,
                  loop_state: dict) -> dict:
        ctx = self.ctx
        self.counters[f"{room_id}:packet_build_count"] += 1
        rec = room_record(ctx, room_id)
        now = wall_ms()
        market = market_of_exchange(str(rec.get("exchange_id") or ""))
        clock = loop_state["clock_ms"] or now
        snapshot = ctx.svc.memory.get(room_id)
        decisions = [viewer_decision(r) for r in self._decisions(room_id, market, history, limit, now)]
        if latest is not None:
            meta, preview = latest[1], audit_preview(*latest)
        else:
            audits = ctx.svc.audit.read_latest(room_id, 1)
            meta = meta_from_audit(audits[0]) if audits else None
            preview = {k: audits[0].get(k) for k in AUDIT_PREVIEW_KEYS} if audits else None
        thinking = ((meta or {}).get("thinking_symbol") or _first_symbol(decisions[0] if decisions else None)
                    or next(iter(rec.get("stock_pool") or []), None))

        # Each side source is fetched once per packet and shared with the room context.
        overview = self._overview(room_id, market, meta)
        digest = self._digest(room_id, market, meta)
        breadth = self._breadth(room_id, market, clock, meta)
        brief, history_summary, history_lines = self._symbol(thinking, market)
        freshness = live_freshness(ctx)
        readiness = self._readiness(meta, freshness, market, now)
        kill = ctx.svc.kill_switch.snapshot()
        state = loop_state["state"]
        audience = audience_of(ctx)
        context = {
            "room_id": room_id,
            "data_readiness": readiness,
            "time_context": _time_context(market, clock, ctx.settings.live_mode),
            "market_overview_brief": overview["brief"],
            "news_digest_titles": digest["titles"],
            "news_digest_headline_briefs": [_clip(t, HEADLINE_BRIEF_CHARS) for t in digest["titles"]],
            "news_background_notes": [],
            "recent_viewer_messages": [],
            "news_commentary": [],
            "news_categories": [],
            "news_as_of": digest.get("as_of_ts_ms"),
            "casual_topics": [],
            "news_burst_signal": None,
            "market_breadth_summary": breadth["summary"],
            "market_breadth": breadth["breadth"],
            "symbol_brief": brief,
            "symbol_history_summary": history_summary,
            "symbol_history_lines": history_lines,
            "sensitive_filter_stats": None,
            "thinking_symbol": thinking,
        }
        trader = {
            "trader_id": room_id,
            "trader_name": rec.get("agent_name"),
            "exchange_id": rec.get("exchange_id"),
            "is_running": rec.get("status") == "running",
            "ai_model": rec.get("ai_model"),
            **avatar_urls(ctx, rec),
        }
        return {
            "schema_version": PACKET_SCHEMA,
            "room_id": room_id,
            "ts_ms": now,
            "clock": one_clock.status(),
            "trader": trader,
            "room_context": context,
            "market_overview": {**{k: overview[k] for k in ("source_kind", "brief")},
                                "status": self._status("overview", market, overview)},
            "market_breadth": {**breadth, "status": self._status("breadth", market, breadth)},
            "news_digest": {**{k: digest[k] for k in ("source_kind", "titles")},
                            "status": self._status("news", market, digest)},
            "status": status_view(ctx, rec),
            "account": account_view(snapshot),
            "positions": positions_view(snapshot),
            "decisions_latest": decisions,
            "decision_latest": decisions[0] if decisions else None,
            "public_chat_preview": audience.chat.preview(room_id),
            "bets": {"enabled": audience.bets is not None},
            "tts": {"enabled": tts_enabled(ctx.settings)},
            "decision_audit_preview": preview,
            "decision_meta": meta,
            "thinking_symbol_live": thinking,
            "thinking_symbol_live_ts_ms": (meta or {}).get("saved_ts_ms"),
            "runtime": {
                "state": state,
                "paused_reason": state.get("paused_reason"),
                "metrics": loop_state["metrics"],
                "decision_every_bars": loop_state["decision_every_bars"],
                "data_mode": ctx.settings.runtime_data_mode,
                "kill_switch": {k: kill.get(k) for k in ("active", "reason", "activated_at")},
                "data_freshness": freshness,
            },
            "files": self._files(),
        }

    def _decisions(self, room_id: str, market: str, history: list[dict], limit: int, now: int) -> list[dict]:
        """The in-memory history, topped up from today's log when it holds fewer than `limit`."""
        if len(history) >= limit:
            return history[:limit]
        self.counters[f"{room_id}:decision_log_reads"] += 1
        logged = self.ctx.svc.decisions.read_day(room_id, trading_day_of(now, market), limit=limit, from_end=True)
        return merge_newest(history, logged, limit=limit)

    def _overview(self, room_id: str, market: str, meta: dict | None) -> dict:
        self.counters[f"{room_id}:packet_overview_fetch_count"] += 1
        payload, status = self._live_payload("overview", market)
        if payload is not None:
            return {"source_kind": "benchmark", "brief": overview_brief(payload), "status": "ok",
                    "as_of_ts_ms": status.get("latest_ts_ms")}
        seen = (meta or {}).get("market_overview") or {}
        if seen.get("brief"):
            return {"source_kind": seen.get("source_kind") or "proxy_watchlist", "brief": seen["brief"],
                    "status": "from_decision", "as_of_ts_ms": (meta or {}).get("saved_ts_ms")}
        return {"source_kind": "empty", "brief": "", "status": _absent(status), "as_of_ts_ms": None}

    def _digest(self, room_id: str, market: str, meta: dict | None) -> dict:
        self.counters[f"{room_id}:packet_digest_fetch_count"] += 1
        payload, status = self._live_payload("news", market)
        if payload is not None:
            titles = news_titles(payload, NEWS_TITLES)
            return {"source_kind": "digest_file" if titles else "empty", "titles": titles, "status": "ok",
                    "as_of_ts_ms": status.get("latest_ts_ms")}
        seen = (meta or {}).get("news_digest") or {}
        if seen.get("titles"):
            return {"source_kind": seen.get("source_kind") or "digest_file", "titles": list(seen["titles"]),
                    "status": "from_decision", "as_of_ts_ms": (meta or {}).get("saved_ts_ms")}
        return {"source_kind": "empty", "titles": [], "status": _absent(status), "as_of_ts_ms": None}

    def _breadth(self, room_id: str, market: str, clock: int, meta: dict | None) -> dict:
        self.counters[f"{room_id}:packet_breadth_fetch_count"] += 1
        payload, status = self._live_payload("breadth", market)
        breadth, kind, state = _inner_breadth(payload), "live_file", "ok"
        replay = self.ctx.svc.replay_breadth
        if breadth is None and replay is not None and not self.ctx.settings.live_mode:
            breadth, kind = _inner_breadth(replay.at(clock)), "replay"
        if breadth is None:
            breadth, kind, state = _inner_breadth((meta or {}).get("market_breadth")), "decision", "from_decision"
        if breadth is None:
            return {"source_kind": "empty", "summary": "", "breadth": None, "status": _absent(status)}
        return {"source_kind": kind, "summary": breadth_summary(breadth), "breadth": breadth, "status": state}

    def _status(self, group: str, market: str, part: dict) -> dict:
        """A side source's status object: `stale` is a JSON boolean (the client's fresh/stale badge),
        `state` the old one-word status; the live file's own status fields when there is one (no path)."""
        state = part["status"]
        provider = getattr(self.ctx.svc.live, group).get(market)
        live = provider.status() if provider is not None else {}
        stale = state != "ok" and not (state == "from_decision" and not self.ctx.settings.live_mode)
        if part.get("source_kind") == "replay":
            stale = False
        kept = {k: live.get(k) for k in STATUS_KEYS if k in live}
        return {**kept, "state": state, "source_kind": part.get("source_kind"), "stale": stale}

    def _live_payload(self, group: str, market: str) -> tuple[dict | None, dict | None]:
        """A fresh live JSON payload of a group (overview, news, breadth), and the file's status."""
        provider = getattr(self.ctx.svc.live, group).get(market)
        if provider is None:
            return None, None
        payload = provider.payload()
        status = provider.status()
        if payload is None or status.get("stale"):
            return None, status
        return payload, status

    def _symbol(self, symbol: str | None, market: str) -> tuple[dict | None, dict | None, list[str]]:
        """The thinking symbol's intraday brief and its daily-history summary."""
        if not symbol:
            return None, None, []
        service = self.ctx.svc.market
        try:
            intraday = service.get_frames(symbol, "1m", BRIEF_BARS)["frames"]
            daily = service.get_frames(symbol, "1d", HISTORY_BARS)["frames"]
        except ApiError:  # an invalid symbol, or strict live mode without live bars
            return {"symbol": symbol, "available": False}, None, []
        refs = price_volume_references(daily) if daily else None
        summary = {"symbol": symbol, **refs["descriptions"]} if refs else None
        return _symbol_brief(symbol, intraday, market), summary, refs["lines"] if refs else []

    def _readiness(self, meta: dict | None, freshness: dict, market: str, now: int) -> dict:
        """The room's data readiness: the last decision's readiness and gate, plus live-file freshness."""
        level, reasons = "OK", []
        for part in ("data_readiness", "session_gate"):
            seen = (meta or {}).get(part) or {}
            if _LEVELS.get(seen.get("level"), 0) > 0:
                level = max(level, seen["level"], key=_LEVELS.__getitem__)
                reasons += [str(r) for r in seen.get("reasons") or [] if str(r) not in reasons]
        if not freshness.get("ok", True):
            level = "ERROR"
            frames = (freshness.get("checks") or {}).get("cn_a_frames" if market == "CN-A" else "us_frames") or {}
            reason = "live_file_error" if frames.get("error") else "live_file_stale"
            if reason not in reasons:
                reasons.append(reason)
        return {"level": level, "reasons": reasons, "market": market, "ts_ms": now}

    def _files(self) -> dict:
        """The side files a room reads, as root-relative display names (never absolute paths)."""
        s = self.ctx.settings

        def shown(path: str) -> str:
            return display_path(s, s.resolve(path))

        return {
            "market_overview": {"cn_a": shown(s.market_overview_path_cn), "us": shown(s.market_overview_path_us)},
            "news_digest": {"cn_a": shown(s.news_digest_path_cn), "us": shown(s.news_digest_path_us)},
            "market_breadth": {"cn_a": shown(s.market_breadth_path_cn), "us": shown(s.market_breadth_path_us)},
            "x_hot_news": None,
            "topic_stream": {},
        }


def _absent(status: dict | None) -> str:
    if status is None:
        return "unavailable"
    return "stale" if status.get("has_last_good") else "missing"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _time_context(market: str, clock: int, live: bool) -> dict:
    local = local_datetime(clock, market)
    session = session_state(market, clock)
    return {
        "timezone": session["timezone"],
        "now_iso": local.isoformat(timespec="seconds"),
        "now_ts_ms": clock,
        "clock": "wall" if live else "replay",
        "hhmm": local.strftime("%H:%M"),
        "day_part": session["phase"],
        "minutes_since_midnight": session["minutes_since_midnight"],
        "trading_day": local.date().isoformat(),
        "is_open": session["is_open"],
    }


def _symbol_brief(symbol: str, intraday: list[dict], market: str) -> dict:
    """Last price and the move since the trading day's first bar, from the visible 1m bars."""
    if not intraday:
        return {"symbol": symbol, "available": False}
    last = intraday[-1]
    day = (last.get("window") or {}).get("trading_day")
    today = [f for f in intraday if (f.get("window") or {}).get("trading_day") == day] or [last]
    close = (last.get("bar") or {}).get("close")
    open_ = (today[0].get("bar") or {}).get("open")
    highs = [(f.get("bar") or {}).get("high") for f in today]
    lows = [(f.get("bar") or {}).get("low") for f in today]
    change = round(close / open_ - 1, 6) if isinstance(close, (int, float)) and open_ else None
    return {
        "symbol": symbol,
        "available": True,
        "market": market,
        "trading_day": day,
        "latest_price": close,
        "day_open": open_,
        "day_high": max((h for h in highs if isinstance(h, (int, float))), default=None),
        "day_low": min((v for v in lows if isinstance(v, (int, float))), default=None),
        "day_change_pct": change,
        "day_volume": sum((f.get("bar") or {}).get("volume_shares") or 0 for f in today),
        "as_of_ts_ms": (last.get("window") or {}).get("end_ts_ms"),
        "bars_today": len(today),
    }
