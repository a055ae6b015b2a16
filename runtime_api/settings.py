"""Runtime settings: one frozen object, loaded once from the environment and env files.

Variable names are the Node runtime's own, so an existing `.env.local` keeps working. Every
setting is declared once, as a dataclass field carrying (env name, default, parser, help); that
table drives parsing, validation, `settings_table()` (used by the CLI and the runbook test) and
the docs. A bad value raises `SettingsError` naming the variable.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A setting has a value the runtime refuses to boot with."""


# ---- parsers ---------------------------------------------------------------------------------


def _number(kind: type, lo: float | None = None, hi: float | None = None) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> Any:
        try:
            value = kind(float(raw)) if kind is int else float(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise SettingsError(f"{name}: expected a finite number, got {raw!r}")
        if lo is not None and value < lo:
            value = kind(lo)
        if hi is not None and value > hi:
            value = kind(hi)
        return value

    return parse


def integer(lo: float | None = None, hi: float | None = None):
    return _number(int, lo, hi)


def decimal(lo: float | None = None, hi: float | None = None):
    return _number(float, lo, hi)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def boolean(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def text(name: str, raw: str) -> str:
    return raw


def choice(*options: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        lowered = raw.strip().lower()
        if lowered not in options:
            raise SettingsError(f"{name}: expected one of {', '.join(options)}, got {raw!r}")
        return lowered

    return parse


def instant(name: str, raw: str) -> str:
    """An epoch-ms or ISO-8601 time (naive = Shanghai); kept as text, checked here."""
    from .clock import parse_instant

    try:
        parse_instant(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected epoch ms or an ISO-8601 time, got {raw!r}") from None
    return raw


def path(name: str, raw: str) -> str:
    # Resolved against ONLYTRADE_ROOT after loading; see Settings.resolve().
    return raw


def proxy_list(name: str, raw: str) -> str:
    """Trusted proxies as uvicorn's FORWARDED_ALLOW_IPS: addresses or CIDR networks, comma-separated, or *."""
    from .access.client_address import TrustedProxies

    try:
        TrustedProxies(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    return raw.strip()


def setting(env: str, default: Any, parse: Callable[[str, str], Any], help: str, *, secret: bool = False) -> Any:
    meta = {"env": env, "parse": parse, "help": help, "secret": secret, "default": default}
    return field(default=default, metadata=meta)


# ---- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    # process and paths
    onlytrade_root: str = setting("ONLYTRADE_ROOT", ".", path, "Root every relative path resolves against")
    host: str = setting("HOST", "127.0.0.1", text, "Bind address")
    port: int = setting("PORT", 8080, integer(0, 65535), "HTTP port")
    log_level: str = setting("LOG_LEVEL", "info", choice("debug", "info", "warning", "error"), "Log level")
    agents_dir: str = setting("AGENTS_DIR", "agents", path, "Agent manifest folders (agents/<id>/agent.json)")
    agent_registry_path: str = setting("AGENT_REGISTRY_PATH", "data/agents/registry.json", path, "Registry file (agent.registry.v1)")
    agent_memory_dir: str = setting("AGENT_MEMORY_DIR", "data/agent-memory", path, "Memory snapshots (agent.memory.v2), one file per agent")
    decisions_dir: str = setting("DECISIONS_DIR", "data/decisions", path, "Decision log JSONL, <dir>/<id>/<day>.jsonl")
    decision_audit_base_dir: str = setting("DECISION_AUDIT_BASE_DIR", "data/audit/decision_audit", path, "Decision audit JSONL, read and written")
    runtime_state_dir: str = setting("RUNTIME_STATE_DIR", "data/runtime", path, "Runtime state (kill switch, control audit, locks)")
    kill_switch_path: str = setting("KILL_SWITCH_PATH", "data/runtime/kill-switch.json", path, "Persisted kill-switch state")
    backups_dir: str = setting("BACKUPS_DIR", "data/backups", path, "Snapshot backups taken before resets")
    replay_frames_path: str = setting("REPLAY_FRAMES_PATH", "data/replay/cn-a", path, "Replay 1m frames: a day-folder tree, a .jsonl or a market.frames.v1 .json")
    replay_breadth_path: str = setting("REPLAY_BREADTH_PATH", "", path, "Replay breadth series (default: market_breadth.1m.json files under the replay path)")
    market_daily_history_days: int = setting("MARKET_DAILY_HISTORY_DAYS", 111, integer(20, 365), "Daily history window (selects frames.1d.<N>.json)")
    market_daily_history_path: str = setting("MARKET_DAILY_HISTORY_PATH", "", path, "Daily history file (default: data/replay/cn-a/history/frames.1d.<N>.json)")
    seed_agents: str = setting("ONLYTRADE_SEED_AGENTS", "", text, "Agents to register and start when no registry file exists yet: comma list or 'all'")

    # data mode and live files
    runtime_data_mode: str = setting("RUNTIME_DATA_MODE", "replay", choice("replay", "live_file"), "Data source and cadence: replay or live_file")
    strict_live_mode: bool = setting("STRICT_LIVE_MODE", False, boolean, "Never serve replay or synthetic data; requires live_file")
    market_provider: str = setting("MARKET_PROVIDER", "real", choice("real", "mock"), "real or mock (mock allows ?source=mock outside strict mode)")
    live_frames_path_cn: str = setting("LIVE_FRAMES_PATH_CN", "data/live/onlytrade/frames.1m.json", path, "CN live 1m frames file (alias LIVE_FRAMES_PATH)")
    live_frames_path_us: str = setting("LIVE_FRAMES_PATH_US", "data/live/us/frames.us.json", path, "US live frames file")
    live_file_refresh_ms: int = setting("LIVE_FILE_REFRESH_MS", 10000, integer(250), "Minimum gap between live-file stat() checks")
    live_file_stale_ms: int = setting("LIVE_FILE_STALE_MS", 180000, integer(10000), "Live file stale window (effective: max(6*refresh, stale))")
    live_preflight_expected_registry_count: int = setting("LIVE_PREFLIGHT_EXPECTED_REGISTRY_COUNT", 0, integer(0), "Preflight registry threshold (0 means at least 1)")
    market_overview_path_cn: str = setting("MARKET_OVERVIEW_PATH_CN", "data/live/onlytrade/market_overview.cn-a.json", path, "CN market overview JSON")
    market_overview_path_us: str = setting("MARKET_OVERVIEW_PATH_US", "data/live/onlytrade/market_overview.us.json", path, "US market overview JSON")
    market_overview_refresh_ms: int = setting("MARKET_OVERVIEW_REFRESH_MS", 15000, integer(250), "Overview refresh gap")
    market_overview_stale_ms: int = setting("MARKET_OVERVIEW_STALE_MS", 180000, integer(250), "Overview stale window")
    news_digest_path_cn: str = setting("NEWS_DIGEST_PATH_CN", "data/live/onlytrade/news_digest.cn-a.json", path, "CN news digest JSON")
    news_digest_path_us: str = setting("NEWS_DIGEST_PATH_US", "data/live/onlytrade/news_digest.us.json", path, "US news digest JSON")
    news_digest_refresh_ms: int = setting("NEWS_DIGEST_REFRESH_MS", 60000, integer(250), "News digest refresh gap")
    news_digest_stale_ms: int = setting("NEWS_DIGEST_STALE_MS", 43200000, integer(250), "News digest stale window")
    market_breadth_path_cn: str = setting("MARKET_BREADTH_PATH_CN", "data/live/onlytrade/market_breadth.cn-a.json", path, "CN breadth JSON")
    market_breadth_path_us: str = setting("MARKET_BREADTH_PATH_US", "data/live/onlytrade/market_breadth.us.json", path, "US breadth JSON")
    market_breadth_refresh_ms: int = setting("MARKET_BREADTH_REFRESH_MS", 15000, integer(250), "Breadth refresh gap")
    market_breadth_stale_ms: int = setting("MARKET_BREADTH_STALE_MS", 180000, integer(250), "Breadth stale window")

    # session gate
    agent_session_guard_enabled: bool | None = setting("AGENT_SESSION_GUARD_ENABLED", None, boolean, "Market-hours gate (default: on in live_file, off in replay)")
    agent_session_guard_check_ms: int = setting("AGENT_SESSION_GUARD_CHECK_MS", 30000, integer(5000), "Gate re-evaluation period")
    agent_session_guard_require_fresh_live_data: bool = setting("AGENT_SESSION_GUARD_REQUIRE_FRESH_LIVE_DATA", True, boolean, "Gate also requires fresh live data")
    agent_session_guard_auto_resume: bool = setting("AGENT_SESSION_GUARD_AUTO_RESUME", True, boolean, "Gate resumes the runtime when the session opens (unless manually paused)")

    # runtime cadence and replay
    agent_runtime_cycle_ms: int = setting("AGENT_RUNTIME_CYCLE_MS", 15000, integer(3000, 120000), "live_file decision timer")
    agent_decision_every_bars: int = setting("AGENT_DECISION_EVERY_BARS", 10, integer(1, 240), "replay: one cycle per N replay bars")
    replay_speed: float = setting("REPLAY_SPEED", 60.0, decimal(0.1, 1000), "Replay bars per minute of wall time")
    replay_warmup_bars: int = setting("REPLAY_WARMUP_BARS", 120, integer(1), "Initial replay cursor = warmup-1")
    replay_tick_ms: int = setting("REPLAY_TICK_MS", 250, integer(100), "Replay engine tick")
    replay_loop: bool = setting("REPLAY_LOOP", True, boolean, "Wrap the replay at the end")
    market_stream_poll_ms: int = setting("MARKET_STREAM_POLL_MS", 500, integer(300), "/api/market/stream poll period")
    reset_agent_memory_on_boot: bool = setting("RESET_AGENT_MEMORY_ON_BOOT", False, boolean, "Reset every snapshot at boot (backed up first)")

    # control plane
    control_api_token: str = setting("CONTROL_API_TOKEN", "", text, "Control token for every mutating route", secret=True)
    control_api_allow_unauthenticated: bool = setting("CONTROL_API_ALLOW_UNAUTHENTICATED", False, boolean, "Open control routes without a token (loopback bind only)")

    # LLM
    openai_api_key: str = setting("OPENAI_API_KEY", "", text, "LLM key; empty disables the LLM decider", secret=True)
    openai_base_url: str = setting("OPENAI_BASE_URL", "https://api.openai.com/v1", text, "OpenAI-compatible base URL")
    openai_model: str = setting("OPENAI_MODEL", "gpt-4o-mini", text, "Default model")
    agent_openai_model: str = setting("AGENT_OPENAI_MODEL", "", text, "Decision model (default: OPENAI_MODEL)")
    agent_llm_enabled: bool = setting("AGENT_LLM_ENABLED", True, boolean, "false means heuristic only")
    agent_llm_timeout_ms: int = setting("AGENT_LLM_TIMEOUT_MS", 7000, integer(1000), "Timeout per LLM call")
    agent_llm_dev_token_saver: bool = setting("AGENT_LLM_DEV_TOKEN_SAVER", True, boolean, "Compact prompt, temperature 0")
    agent_llm_max_output_tokens: int = setting("AGENT_LLM_MAX_OUTPUT_TOKENS", 180, integer(80), "max_completion_tokens")
    agent_llm_breaker_failures: int = setting("AGENT_LLM_BREAKER_FAILURES", 3, integer(1), "Consecutive LLM failures that open an agent's breaker")
    agent_llm_breaker_cooldown_ms: int = setting("AGENT_LLM_BREAKER_COOLDOWN_MS", 300000, integer(1000), "How long an open breaker skips the LLM")

    # trading rules
    agent_commission_rate: float = setting("AGENT_COMMISSION_RATE", 0.0003, decimal(0), "Commission on buy and sell notional")
    agent_min_commission: float = setting("AGENT_MIN_COMMISSION", 5.0, decimal(0), "Minimum commission per order (CNY/USD)")
    agent_stamp_duty_rate: float = setting("AGENT_STAMP_DUTY_RATE", 0.0005, decimal(0), "Stamp duty on CN sells")
    agent_t_plus_one: bool = setting("AGENT_T_PLUS_ONE", True, boolean, "CN: shares bought today cannot be sold today")
    agent_portfolio_max_position_count: int = setting("AGENT_PORTFOLIO_MAX_POSITION_COUNT", 4, integer(1), "Max distinct positions")
    agent_portfolio_max_symbol_concentration_pct: float = setting("AGENT_PORTFOLIO_MAX_SYMBOL_CONCENTRATION_PCT", 0.45, decimal(0.1, 1), "Max symbol value / equity")
    agent_portfolio_min_cash_reserve_pct: float = setting("AGENT_PORTFOLIO_MIN_CASH_RESERVE_PCT", 0.08, decimal(0, 0.9), "Cash kept in reserve / equity")
    agent_portfolio_turnover_throttle_pct: float = setting("AGENT_PORTFOLIO_TURNOVER_THROTTLE_PCT", 0.35, decimal(0.01, 1), "Max notional per cycle / equity")
    agent_candidate_symbol_limit: int = setting("AGENT_CANDIDATE_SYMBOL_LIMIT", 12, integer(1, 20), "Candidate symbols per cycle")
    agent_strict_symbol_loop: bool = setting("AGENT_STRICT_SYMBOL_LOOP", True, boolean, "Round-robin focus symbol")
    agent_flat_entry_enabled: bool = setting("AGENT_FLAT_ENTRY_ENABLED", False, boolean, "Anti-stall starter buy when flat")
    agent_flat_entry_min_cycles: int = setting("AGENT_FLAT_ENTRY_MIN_CYCLES", 6, integer(1), "Flat-entry: cycles before it fires")
    agent_flat_entry_lots: int = setting("AGENT_FLAT_ENTRY_LOTS", 1, integer(1), "Flat-entry lots")
    agent_flat_entry_max_rsi: float = setting("AGENT_FLAT_ENTRY_MAX_RSI", 70.0, decimal(0, 100), "Flat-entry max RSI")
    agent_conservative_probe_enabled: bool = setting("AGENT_CONSERVATIVE_PROBE_ENABLED", True, boolean, "Probe buy for mean_reversion+conservative")
    agent_conservative_probe_min_cycles: int = setting("AGENT_CONSERVATIVE_PROBE_MIN_CYCLES", 8, integer(1), "Probe: cycles before it fires")
    agent_conservative_probe_max_rsi: float = setting("AGENT_CONSERVATIVE_PROBE_MAX_RSI", 62.0, decimal(0, 100), "Probe: max RSI")
    agent_conservative_probe_ret5_max: float = setting("AGENT_CONSERVATIVE_PROBE_RET5_MAX", -0.003, decimal(), "Probe: max ret_5")
    agent_conservative_probe_ret20_max: float = setting("AGENT_CONSERVATIVE_PROBE_RET20_MAX", -0.006, decimal(), "Probe: max ret_20")
    agent_conservative_probe_allow_bearish: bool = setting("AGENT_CONSERVATIVE_PROBE_ALLOW_BEARISH", True, boolean, "Probe in a bearish trend")
    agent_conservative_probe_bearish_max_rsi: float = setting("AGENT_CONSERVATIVE_PROBE_BEARISH_MAX_RSI", 58.0, decimal(0, 100), "Probe (bearish): max RSI")
    agent_conservative_probe_bearish_ret5_max: float = setting("AGENT_CONSERVATIVE_PROBE_BEARISH_RET5_MAX", -0.006, decimal(), "Probe (bearish): max ret_5")
    agent_conservative_probe_bearish_ret20_max: float = setting("AGENT_CONSERVATIVE_PROBE_BEARISH_RET20_MAX", -0.01, decimal(), "Probe (bearish): max ret_20")
    agent_conservative_probe_lots: int = setting("AGENT_CONSERVATIVE_PROBE_LOTS", 1, integer(1), "Probe lots")

    # data readiness
    data_readiness_min_intraday_frames: int = setting("DATA_READINESS_MIN_INTRADAY_FRAMES", 21, integer(10), "Min 1m frames")
    data_readiness_min_daily_frames: int = setting("DATA_READINESS_MIN_DAILY_FRAMES", 61, integer(20), "Min 1d frames")
    data_readiness_fresh_warn_ms: int = setting("DATA_READINESS_FRESH_WARN_MS", 150000, integer(10000), "Last-bar age that warns")
    data_readiness_fresh_error_ms: int = setting("DATA_READINESS_FRESH_ERROR_MS", 330000, integer(20000), "Last-bar age that forces a hold")
    data_readiness_opening_phase_enabled: bool = setting("DATA_READINESS_OPENING_PHASE_ENABLED", True, boolean, "Opening-phase relaxation")
    data_readiness_opening_min_intraday_frames: int = setting("DATA_READINESS_OPENING_MIN_INTRADAY_FRAMES", 2, integer(1), "Opening phase: min 1m frames")
    opening_phase_max_lots: int = setting("OPENING_PHASE_MAX_LOTS", 1, integer(1, 3), "Opening phase: max lots")
    opening_phase_max_confidence: float = setting("OPENING_PHASE_MAX_CONFIDENCE", 0.72, decimal(0.51, 0.95), "Opening phase: max confidence")

    # viewers
    room_events_keepalive_ms: int = setting("ROOM_EVENTS_KEEPALIVE_MS", 15000, integer(5000), "SSE keepalive")
    room_events_stream_packet_interval_ms: int = setting("ROOM_EVENTS_STREAM_PACKET_INTERVAL_MS", 15000, integer(2000), "SSE packet period")
    room_events_buffer_size: int = setting("ROOM_EVENTS_BUFFER_SIZE", 200, integer(10, 2000), "SSE replay buffer size")
    room_events_buffer_ttl_ms: int = setting("ROOM_EVENTS_BUFFER_TTL_MS", 60000, integer(2000), "SSE replay buffer TTL after the last viewer")

    # ---- issue 8: live daily history and per-symbol market-data sanity
    live_daily_path_cn: str = setting("LIVE_DAILY_PATH_CN", "data/live/onlytrade/frames.1d.json", path, "CN live daily bars (written by data_jobs.daily_history); live_file mode reads daily history only from here")
    # ---- issue 10: access (named tokens and roles, two-person rule, proxies, connection limits)
    control_tokens_file: str = setting("CONTROL_TOKENS_FILE", "", path, "Named control tokens: name:role:sha256 lines; roles viewer, auditor, operator, admin")
    control_two_person: bool = setting("CONTROL_TWO_PERSON", False, boolean, "Admin actions (kill switch off, resets) need one admin's request and another's approval")
    control_two_person_window_s: int = setting("CONTROL_TWO_PERSON_WINDOW_S", 900, integer(30, 86400), "How long a two-person request waits for its approval (s)")
    forwarded_allow_ips: str = setting("FORWARDED_ALLOW_IPS", "", proxy_list, "Trusted proxies (addresses, CIDRs or *) whose X-Forwarded-For names the client; empty: the peer is the client")
    http_header_timeout_s: float = setting("HTTP_HEADER_TIMEOUT_S", 10.0, decimal(1, 300), "A connection that has not sent a complete request head in this time is closed (s)")
    http_body_timeout_s: float = setting("HTTP_BODY_TIMEOUT_S", 30.0, decimal(1, 600), "A request body not complete in this time is refused and its connection closed (s)")
    http_send_timeout_s: float = setting("HTTP_SEND_TIMEOUT_S", 20.0, decimal(1, 600), "A connection whose unsent bytes stay above the bound this long is dropped (s)")
    http_send_buffer_bytes: int = setting("HTTP_SEND_BUFFER_BYTES", 65536, integer(4096, 16777216), "Unsent-bytes bound per connection (kernel send buffer and write buffer)")
    http_max_connections: int = setting("HTTP_MAX_CONNECTIONS", 0, integer(0), "Open-connection cap (0: the descriptor limit minus the reserve)")
    descriptor_reserve: int = setting("DESCRIPTOR_RESERVE", 0, integer(0), "Descriptors kept for state files, logs and outgoing calls (0: max(64, 10% of the limit))")
    # ---- issue 8b: replay show (symbol names, position review, exits)
    live_symbol_names_path_cn: str = setting("LIVE_SYMBOL_NAMES_PATH_CN", "data/live/onlytrade/symbol_names.cn-a.json", path, "CN short names JSON (data_jobs.symbol_names), used in live_file mode")
    agent_position_review_enabled: bool = setting("AGENT_POSITION_REVIEW_ENABLED", True, boolean, "Every second cycle focuses on a holding sellable today (false: the Node round-robin only)")
    agent_announced_exit_enabled: bool = setting("AGENT_ANNOUNCED_EXIT_ENABLED", True, boolean, "Sell a sellable holding whose mark reaches the stop (avg cost x0.985) or target (x1.02) its buy announced (false: informational, as in Node)")
    agent_reversion_exit_enabled: bool = setting("AGENT_REVERSION_EXIT_ENABLED", True, boolean, "mean_reversion rule decisions sell a sellable holding at or above its 20-day mean (false: the Node rules only)")
    replay_symbol_names_path: str = setting("REPLAY_SYMBOL_NAMES_PATH", "data/replay/cn-a/symbol_names.json", path, "Short names of the replay pack's symbols, used in replay mode")
    # ---- issue 9: room chat, narration, TTS config, bets, built web front end
    chat_dir: str = setting("CHAT_DIR", "data/chat", path, "Room chat: one JSONL per room (<dir>/rooms/<id>.jsonl)")
    chat_retention_messages: int = setting("CHAT_RETENTION_MESSAGES", 2000, integer(50, 100000), "Chat records kept per room (file compacted past twice this)")
    chat_viewer_posts_enabled: bool = setting("CHAT_VIEWER_POSTS_ENABLED", False, boolean, "Viewers may post (off: 403 chat_posting_disabled)")
    chat_max_text_len: int = setting("CHAT_MAX_TEXT_LEN", 600, integer(10, 2000), "Viewer message limit (characters)")
    chat_rate_limit_per_min: int = setting("CHAT_RATE_LIMIT_PER_MIN", 20, integer(1), "Posts per room and session per 60 s")
    chat_rate_limit_per_ip_per_min: int = setting("CHAT_RATE_LIMIT_PER_IP_PER_MIN", 60, integer(1), "Posts per client address per 60 s (all rooms)")
    chat_agent_max_chars: int = setting("CHAT_AGENT_MAX_CHARS", 180, integer(24, 800), "Agent message length cap")
    chat_agent_max_sentences: int = setting("CHAT_AGENT_MAX_SENTENCES", 3, integer(1, 4), "Agent message sentence cap")
    chat_llm_enabled: bool = setting("CHAT_LLM_ENABLED", False, boolean, "Agent replies from the LLM (needs OPENAI_API_KEY; within the agent's LLM breaker)")
    chat_openai_model: str = setting("CHAT_OPENAI_MODEL", "", text, "Chat model (default: OPENAI_MODEL)")
    chat_llm_timeout_ms: int = setting("CHAT_LLM_TIMEOUT_MS", 7000, integer(1000, 60000), "Chat LLM call timeout")
    chat_decision_narration_enabled: bool = setting("CHAT_DECISION_NARRATION_ENABLED", True, boolean, "The agent narrates its decisions in the room")
    chat_decision_narration_min_interval_ms: int = setting("CHAT_DECISION_NARRATION_MIN_INTERVAL_MS", 60000, integer(5000), "Narration gap after a trade")
    chat_decision_narration_hold_interval_ms: int = setting("CHAT_DECISION_NARRATION_HOLD_INTERVAL_MS", 25000, integer(5000), "Narration gap after a hold")
    chat_decision_narration_conservative_hold_interval_ms: int = setting("CHAT_DECISION_NARRATION_CONSERVATIVE_HOLD_INTERVAL_MS", 20000, integer(5000), "Narration gap after a hold (conservative agents)")
    chat_public_proactive_interval_ms: int = setting("CHAT_PUBLIC_PROACTIVE_INTERVAL_MS", 90000, integer(10000), "Quiet time before the agent speaks unprompted (only while watched and trading)")
    chat_tts_enabled: bool = setting("CHAT_TTS_ENABLED", False, boolean, "Text-to-speech of agent messages (needs OPENAI_API_KEY)")
    chat_tts_model: str = setting("CHAT_TTS_MODEL", "tts-1-hd", text, "OpenAI TTS model")
    chat_tts_response_format: str = setting("CHAT_TTS_RESPONSE_FORMAT", "mp3", choice("mp3", "opus", "aac", "flac", "wav"), "TTS audio format")
    chat_tts_speed: float = setting("CHAT_TTS_SPEED", 1.0, decimal(0.25, 4), "TTS base speed")
    chat_tts_tone_speed_energetic: float = setting("CHAT_TTS_TONE_SPEED_ENERGETIC", 1.08, decimal(0.25, 4), "TTS speed of the energetic tone")
    chat_tts_max_chars: int = setting("CHAT_TTS_MAX_CHARS", 320, integer(48, 600), "TTS text cut")
    bets_enabled: bool = setting("BETS_ENABLED", True, boolean, "Daily bet board (virtual points, no money)")
    bets_ledger_path: str = setting("BETS_LEDGER_PATH", "data/bets/ledger.json", path, "Bets ledger (bets.ledger.v2)")
    bets_house_edge: float = setting("BETS_HOUSE_EDGE", 0.08, decimal(0, 0.3), "Odds margin")
    bets_starting_points: int = setting("BETS_STARTING_POINTS", 1000, integer(0, 1000000), "Points a new viewer session starts with")
    bets_place_rate_limit_per_min: int = setting("BETS_PLACE_RATE_LIMIT_PER_MIN", 30, integer(1), "Bet placements per client address per 60 s")
    onlytrade_web_dist: str = setting("ONLYTRADE_WEB_DIST", "", path, "A built web front end to serve under /onlytrade/ (empty: none)")
    # ---- issue 10: faults (backup retention, SSE stream duration)
    backups_keep_last: int = setting("BACKUPS_KEEP_LAST", 50, integer(0), "Backup folders kept, newest first (0 keeps all; the newest is always kept)")
    backups_max_age_days: float = setting("BACKUPS_MAX_AGE_DAYS", 0.0, decimal(0), "Backup folders older than this many days are removed at boot and after each backup (0: no age limit)")
    sse_max_stream_ms: int = setting("SSE_MAX_STREAM_MS", 3600000, integer(60000, 86400000), "Longest SSE stream (room events, market stream): then `event: bye` and the browser reconnects")
    # ---- issue 11: observability (metrics, alerts, logs)
    metrics_access: str = setting("METRICS_ACCESS", "loopback", choice("loopback", "token", "public"), "GET /metrics: loopback (direct loopback clients only, no token), token (Bearer METRICS_TOKEN, else CONTROL_API_TOKEN) or public")
    metrics_token: str = setting("METRICS_TOKEN", "", text, "Bearer token for /metrics when METRICS_ACCESS=token (default: CONTROL_API_TOKEN)", secret=True)
    log_format: str = setting("LOG_FORMAT", "text", choice("text", "json"), "Log lines as text or one JSON object per line (with the request id)")
    alert_webhook_url: str = setting("ALERT_WEBHOOK_URL", "", text, "Webhook for operator alerts (Slack incoming webhook or any JSON receiver); empty disables", secret=True)
    alert_webhook_format: str = setting("ALERT_WEBHOOK_FORMAT", "slack", choice("slack", "json"), "Alert body: slack ({\"text\": ...}) or json (onlytrade.alert.v1)")
    alert_throttle_s: float = setting("ALERT_THROTTLE_S", 300.0, decimal(0, 86400), "At most one alert per kind per this many seconds (the rest are counted)")
    alert_timeout_ms: int = setting("ALERT_TIMEOUT_MS", 3000, integer(100, 30000), "Timeout of one webhook POST")
    alert_queue_size: int = setting("ALERT_QUEUE_SIZE", 100, integer(1, 10000), "Alerts waiting to be sent; more are dropped and counted")

    # ---- issue 12: one clock, show-day recording, live-file watching
    onlytrade_clock: str = setting("ONLYTRADE_CLOCK", "", instant, "Simulated clock start for a rehearsal (ISO-8601, naive = Shanghai); empty = the wall clock")
    onlytrade_clock_speed: float = setting("ONLYTRADE_CLOCK_SPEED", 1.0, decimal(0.01, 10000), "Simulated clock speed (x real time)")
    onlytrade_clock_anchor: str = setting("ONLYTRADE_CLOCK_ANCHOR", "", instant, "Real time (epoch ms or ISO) when the simulated clock read ONLYTRADE_CLOCK (default: process start)")
    onlytrade_rehearsal: bool = setting("ONLYTRADE_REHEARSAL", False, boolean, "Allow a simulated clock in strict live mode (a rehearsal, never a show)")
    archive_dir: str = setting("ARCHIVE_DIR", "data/archive", path, "Show-day archive: <dir>/<market>/<day>/frames.1m.parquet (written by the data jobs)")
    llm_recordings_dir: str = setting("LLM_RECORDINGS_DIR", "data/llm-recordings", path, "LLM exchanges, <dir>/<agent>/<day>.jsonl (request without secrets, response, latency, outcome)")
    llm_recordings_retention_days: int = setting("LLM_RECORDINGS_RETENTION_DAYS", 30, integer(0), "Days of LLM recordings kept (0 keeps every day)")
    replay_llm: str = setting("REPLAY_LLM", "live", choice("live", "recorded"), "recorded: answer each LLM call from the recording of the same agent, day and bar")
    live_file_watch: bool = setting("LIVE_FILE_WATCH", True, boolean, "Pick up a replaced live file at once (watchfiles); mtime polling stays as the fallback")
    # ---- issue 13: HTTP caching, viewer bus, edges
    http_cache_status_max_age_s: int = setting("HTTP_CACHE_STATUS_MAX_AGE_S", 1, integer(0, 60), "Cache-Control max-age of fast-changing public reads (status, packets, account, frames)")
    http_cache_list_max_age_s: int = setting("HTTP_CACHE_LIST_MAX_AGE_S", 5, integer(0, 300), "Cache-Control max-age of public lists (traders, competition, symbols, histories)")
    http_cache_asset_max_age_s: int = setting("HTTP_CACHE_ASSET_MAX_AGE_S", 86400, integer(0, 604800), "Cache-Control max-age of avatar images (their URLs carry ?v=<boot>)")
    freshness_refresh_ms: int = setting("FRESHNESS_REFRESH_MS", 2000, integer(250, 60000), "How often the live-file freshness report behind runtime status is recomputed")
    viewer_bus_url: str = setting("VIEWER_BUS_URL", "", text, "redis://host:port/db: publish every room event to Redis streams for onlytrade-edge (empty: no bus)", secret=True)
    viewer_bus_stream_maxlen: int = setting("VIEWER_BUS_STREAM_MAXLEN", 1000, integer(50, 100000), "Approximate MAXLEN of each room's Redis stream (the resume history)")
    edge_name: str = setting("EDGE_NAME", "", text, "onlytrade-edge: name shown in /health and packets (default host:port)")
    edge_max_viewers: int = setting("EDGE_MAX_VIEWERS", 5000, integer(1, 100000), "onlytrade-edge: SSE viewers one edge accepts (429 beyond)")
    edge_reconnect_ms: int = setting("EDGE_RECONNECT_MS", 1000, integer(100, 60000), "onlytrade-edge: pause between attempts to reach a lost viewer bus")
    gc_thaw_hours: float = setting("GC_THAW_HOURS", 24.0, decimal(0, 720), "Hours between full collections of the frozen heap (one ~0.1 s collection; 0: never; see runtime_api/observability/heap.py)")

    # ---- derived -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, env_files: bool = True) -> Settings:
        """Environment first, then `.env.local`, then `.env` (both under ONLYTRADE_ROOT)."""
        env = dict(os.environ if environ is None else environ)
        if env_files:
            root = Path(env.get("ONLYTRADE_ROOT") or ".")
            for name in (".env.local", ".env"):
                for key, value in read_env_file(root / name).items():
                    env.setdefault(key, value)
        if "LIVE_FRAMES_PATH_CN" not in env and env.get("LIVE_FRAMES_PATH"):
            env["LIVE_FRAMES_PATH_CN"] = env["LIVE_FRAMES_PATH"]
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = f.metadata["parse"](f.metadata["env"], raw.strip())
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.strict_live_mode and self.runtime_data_mode != "live_file":
            raise SettingsError("STRICT_LIVE_MODE: strict_live_mode_requires_runtime_data_mode_live_file")
        if self.strict_live_mode and self.market_provider != "real":
            raise SettingsError("STRICT_LIVE_MODE: strict_live_mode_requires_market_provider_real")
        if self.control_api_allow_unauthenticated and not is_loopback(self.host):
            raise SettingsError("CONTROL_API_ALLOW_UNAUTHENTICATED: refused because HOST is not a loopback address")
        if self.replay_llm == "recorded" and self.live_mode:
            raise SettingsError("REPLAY_LLM: recorded answers replay a recorded day; refused in live_file mode")
        if self.onlytrade_clock and self.strict_live_mode and not self.onlytrade_rehearsal:
            raise SettingsError("ONLYTRADE_CLOCK: a simulated clock is refused in strict live mode unless ONLYTRADE_REHEARSAL=true")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def root(self) -> Path:
        return Path(self.onlytrade_root).resolve()

    def resolve(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.root / p

    @property
    def live_mode(self) -> bool:
        return self.runtime_data_mode == "live_file"

    @property
    def session_guard_enabled(self) -> bool:
        enabled = self.live_mode if self.agent_session_guard_enabled is None else self.agent_session_guard_enabled
        return enabled and self.live_mode

    @property
    def decision_model(self) -> str:
        return self.agent_openai_model or self.openai_model

    @property
    def llm_configured(self) -> bool:
        return self.agent_llm_enabled and bool(self.openai_api_key)

    @property
    def daily_history_file(self) -> Path:
        if self.market_daily_history_path:
            return self.resolve(self.market_daily_history_path)
        return self.resolve(f"data/replay/cn-a/history/frames.1d.{self.market_daily_history_days}.json")

    @property
    def control_token_configured(self) -> bool:
        return bool(self.control_api_token or self.control_tokens_file)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def display_path(settings: Settings, path: Path) -> str:
    """A path for public output: relative to the root, else the bare file name; never absolute (W17)."""
    try:
        return Path(path).resolve().relative_to(settings.root).as_posix()
    except ValueError:
        return Path(path).name


def read_env_file(file: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines as the Node runtime does (# comments, quotes stripped, \\n unescaped)."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    out: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export "):].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out.setdefault(key, value.replace("\\n", "\n"))
    return out


def settings_table() -> list[dict[str, Any]]:
    """(env, default, help, secret) for every setting: feeds the CLI help and the runbook test."""
    return [
        {
            "env": f.metadata["env"],
            "default": f.metadata["default"],
            "help": f.metadata["help"],
            "secret": f.metadata["secret"],
        }
        for f in dataclasses.fields(Settings)
    ]
