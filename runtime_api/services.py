"""Builds every store and service from one Settings object; the app factory hands them to routes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from . import clock
from .state.journal import AuditLog, DecisionLog
from .kill_switch import KillSwitch
from .market import sanity
from .market.bars import FrameIndex, load_frames
from .market.daily import DailyHistory
from .market.live_files import LiveFileFrameProvider, LiveJsonFileProvider, wall_clock_ms
from .market.live_files import LiveFileFrameProvider, LiveJsonFileProvider
from .market.names import SymbolNames
from .market.replay import ReplayEngine
from .market.service import MarketDataService
from .market.supplemental import ReplayBreadthSeries
from .state.memory import MemoryStore
from .registry import AgentRegistry
from .settings import Settings, display_path

log = logging.getLogger("onlytrade.boot")


class BootError(RuntimeError):
    """Boot cannot continue; the message is the one-line reason printed before exiting."""


def now_ms() -> int:
    """The one clock (runtime_api.clock): the wall clock, or a rehearsal's simulated time."""
    return clock.now_ms()


@dataclass
class LiveProviders:
    frames: dict[str, LiveFileFrameProvider] = field(default_factory=dict)
    overview: dict[str, LiveJsonFileProvider] = field(default_factory=dict)
    news: dict[str, LiveJsonFileProvider] = field(default_factory=dict)
    breadth: dict[str, LiveJsonFileProvider] = field(default_factory=dict)

    def all(self):
        for group in (self.frames, self.overview, self.news, self.breadth):
            yield from group.values()


@dataclass
class Services:
    settings: Settings
    registry: AgentRegistry
    memory: MemoryStore
    decisions: DecisionLog
    audit: AuditLog
    kill_switch: KillSwitch
    market: MarketDataService
    replay: ReplayEngine | None
    daily: DailyHistory | None
    live: LiveProviders
    replay_breadth: ReplayBreadthSeries | None
    boot_ms: int
    names: SymbolNames | None = None


def _live_providers(settings: Settings) -> LiveProviders:
    live = LiveProviders()
    if not settings.live_mode:
        return live

    def frames(path: str) -> LiveFileFrameProvider:
        p = settings.resolve(path)
        return LiveFileFrameProvider(
            p, refresh_ms=settings.live_file_refresh_ms, stale_ms=settings.live_file_stale_ms,
            now_ms=now_ms, display_path=display_path(settings, p), require_real=settings.strict_live_mode,
        )

    def json_file(path: str, refresh: int, stale: int) -> LiveJsonFileProvider:
        p = settings.resolve(path)
        return LiveJsonFileProvider(p, refresh_ms=refresh, stale_ms=stale, now_ms=now_ms, display_path=display_path(settings, p))

    live.frames = {"CN-A": frames(settings.live_frames_path_cn), "US": frames(settings.live_frames_path_us)}
    s = settings
    live.overview = {
        "CN-A": json_file(s.market_overview_path_cn, s.market_overview_refresh_ms, s.market_overview_stale_ms),
        "US": json_file(s.market_overview_path_us, s.market_overview_refresh_ms, s.market_overview_stale_ms),
    }
    live.news = {
        "CN-A": json_file(s.news_digest_path_cn, s.news_digest_refresh_ms, s.news_digest_stale_ms),
        "US": json_file(s.news_digest_path_us, s.news_digest_refresh_ms, s.news_digest_stale_ms),
    }
    live.breadth = {
        "CN-A": json_file(s.market_breadth_path_cn, s.market_breadth_refresh_ms, s.market_breadth_stale_ms),
        "US": json_file(s.market_breadth_path_us, s.market_breadth_refresh_ms, s.market_breadth_stale_ms),
    }
    for provider in live.all():
        provider.refresh(force=True)
    cn = live.frames["CN-A"].status()
    # An unreadable file stops boot; a readable one the data rules refuse (future bars, not "real")
    # boots and holds with the reason visible, so the next good file from the job is picked up.
    if cn.get("last_error") and cn["last_error"] not in (sanity.DATA_IN_FUTURE, sanity.MODE_NOT_REAL):
        raise BootError(f"live_frames_path_cn_unreadable: {display_path(settings, settings.resolve(settings.live_frames_path_cn))} ({cn['last_error']})")
    return live


def build_services(settings: Settings) -> Services:
    """Load state from disk; raise BootError with a one-line reason on anything unsafe."""
    from .state.storage import CorruptFileError

    if clock.configure(settings).simulated:
        log.warning("simulated clock: ONLYTRADE_CLOCK=%s speed %gx (now %s)", settings.onlytrade_clock,
                    settings.onlytrade_clock_speed, clock.now_iso())

    try:
        registry = AgentRegistry(settings.resolve(settings.agents_dir), settings.resolve(settings.agent_registry_path))
    except CorruptFileError as exc:
        raise BootError(f"corrupt registry {display_path(settings, exc.path)}: {exc.reason}; fix or move it aside, it is never overwritten") from exc
    if settings.seed_agents.strip():
        seed = settings.seed_agents.strip()
        registry.seed("all" if seed.lower() == "all" else [s.strip() for s in seed.split(",") if s.strip()])

    replay = None
    replay_breadth = None
    if not settings.live_mode or not settings.strict_live_mode:
        replay_path = settings.resolve(settings.replay_frames_path)
        if replay_path.exists():
            index = FrameIndex(load_frames(replay_path))
            replay = ReplayEngine(
                index, speed=settings.replay_speed, warmup_bars=settings.replay_warmup_bars,
                loop=settings.replay_loop, now_ms=wall_clock_ms,  # its tick is a timer, not a clock reading
            )
            breadth_path = settings.resolve(settings.replay_breadth_path) if settings.replay_breadth_path else replay_path
            replay_breadth = ReplayBreadthSeries(breadth_path)
        elif not settings.live_mode:
            log.warning("replay frames not found at %s: no market data", display_path(settings, replay_path))

    if settings.live_mode:
        # Live daily history comes only from the daily job's file, never from the replay pack.
        daily_file = settings.resolve(settings.live_daily_path_cn)
        daily = DailyHistory(daily_file, now_ms=now_ms, display_path=display_path(settings, daily_file), live=True,
                             require_real=settings.strict_live_mode)
    else:
        daily_file = settings.daily_history_file
        daily = DailyHistory(daily_file, now_ms=now_ms) if daily_file.exists() else None
    live = _live_providers(settings)
    market = MarketDataService(
        settings,
        replay=replay if not settings.live_mode else (replay if not settings.strict_live_mode else None),
        live_cn=live.frames.get("CN-A"),
        live_us=live.frames.get("US"),
        daily=daily,
        now_ms=now_ms,
    )
    memory = MemoryStore(settings.resolve(settings.agent_memory_dir), settings=settings)
    return Services(
        settings=settings,
        registry=registry,
        memory=memory,
        decisions=DecisionLog(settings.resolve(settings.decisions_dir)),
        audit=AuditLog(settings.resolve(settings.decision_audit_base_dir)),
        kill_switch=KillSwitch(settings.resolve(settings.kill_switch_path), settings.resolve(settings.runtime_state_dir)),
        market=market,
        replay=replay if not settings.live_mode else None,
        daily=daily,
        live=live,
        replay_breadth=replay_breadth,
        boot_ms=now_ms(),
        names=_symbol_names(settings),
    )


def _symbol_names(settings: Settings) -> SymbolNames:
    """The live names file in live_file mode (never the replay pack's), else the pack's table."""
    p = settings.resolve(settings.live_symbol_names_path_cn if settings.live_mode else settings.replay_symbol_names_path)
    return SymbolNames(p, now_ms=now_ms, display_path=display_path(settings, p))
