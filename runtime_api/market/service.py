"""Frame resolution behind /api/market/frames, /api/klines and the decision context.

Sources, by interval: 1m comes from the live file of the symbol's market (live_file mode) or the
replay cursor (replay mode); 1d from the daily history, clipped to the replay clock; every other
interval is aggregated from that 1m source. Strict live mode never serves replay or generated bars:
with nothing live it raises `live_frames_unavailable` (503). Outside strict mode, missing data is an
empty list, never invented bars; generated bars exist only behind an explicit `source=mock`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from runtime_api.errors import ApiError
from runtime_api.market.bars import DEFAULT_LIMIT, INTERVAL_MINUTES, INTERVALS, aggregate, clamp_limit, to_kline
from runtime_api.market import sanity, session_freshness
from runtime_api.market.bar_memo import BarMemo
from runtime_api.market.daily import DailyHistory
from runtime_api.market.live_files import LiveFileFrameProvider, wall_clock_ms
from runtime_api.market.replay import ReplayEngine
from runtime_api.market.calendar import CN, US, bar_phase, market_of_symbol, trading_day_of
from runtime_api.settings import Settings

SCHEMA = "market.frames.v1"
_SYMBOL = re.compile(r"^(\d{6}\.(SH|SZ)|[A-Z]{1,6})$")


class MarketDataError(ApiError):
    """A market-data request the runtime refuses; carries its HTTP status and code."""


def live_frames_unavailable(message: str | None = None) -> MarketDataError:
    """503: strict live mode has no live frames to serve (or refuses generated ones)."""
    return MarketDataError(503, "live_frames_unavailable", message)


def invalid_interval(interval: Any = None) -> MarketDataError:
    """400: the interval is not one of INTERVALS."""
    return MarketDataError(400, "invalid_interval", f"interval must be one of {', '.join(INTERVALS)}")


def invalid_symbol(symbol: Any = None) -> MarketDataError:
    """400: the symbol is neither a CN-A code nor a US ticker."""
    return MarketDataError(400, "invalid_symbol", "symbol must look like 600519.SH, 000001.SZ or AAPL")


def normalize_symbol(raw: Any) -> str:
    """Trimmed, upper-cased symbol; raises invalid_symbol unless it is a CN-A code or a US ticker."""
    symbol = str(raw if raw is not None else "").strip().upper()
    if not _SYMBOL.match(symbol):
        raise invalid_symbol(raw)
    return symbol


def normalize_interval(raw: Any) -> str:
    """One of INTERVALS (default 1m); raises invalid_interval otherwise."""
    interval = "1m" if raw is None or str(raw).strip() == "" else str(raw).strip()
    if interval not in INTERVALS:
        raise invalid_interval(raw)
    return interval


def _mode_of(bars: list[dict]) -> str:
    return "real" if any(b.get("mode") == "real" for b in bars) else "mock"


def _provider_of(bars: list[dict], fallback: str) -> str:
    providers = {b.get("provider") for b in bars if b.get("provider")}
    return providers.pop() if len(providers) == 1 else fallback


def _seed(symbol: str) -> int:
    # The Node runtime's 32-bit string hash, so generated bars match its mock series shape.
    h = 0
    for ch in symbol:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return abs(h - (1 << 32) if h >= 1 << 31 else h)


def mock_frames(symbol: str, interval: str, limit: int, now_ms: int) -> list[dict]:
    """Deterministic generated bars (same symbol, interval, limit and clock give the same series)."""
    market = market_of_symbol(symbol)
    seed = _seed(symbol)
    base = 80 + seed % 1500
    step = INTERVAL_MINUTES[interval] * 60_000
    last_start = now_ms // step * step
    frames, prev = [], float(base)
    for i in range(limit - 1, -1, -1):
        start = last_start - i * step
        drift = math.sin((limit - i) / 12) * base * 0.001
        noise = ((seed + i * 17) % 11 - 5) * base * 0.0006
        open_, close = prev, max(0.1, prev + drift + noise)
        volume = 5000 + (seed + i * 29) % 9000
        turnover = round(volume * close, 2)
        frames.append({
            "schema_version": "market.bar.v1",
            "market": market,
            "mode": "mock",
            "provider": "runtime-api-generated",
            "feed": "bars",
            "seq": start // step,
            "event_ts_ms": start + step,
            "ingest_ts_ms": start + step,
            "instrument": {
                "symbol": symbol,
                "exchange": {"SH": "SSE", "SZ": "SZSE"}.get(symbol[-2:], "OTHER") if market == CN else "OTHER",
                "timezone": "Asia/Shanghai" if market == CN else "America/New_York",
                "currency": "CNY" if market == CN else "USD",
            },
            "interval": interval,
            "window": {"start_ts_ms": start, "end_ts_ms": start + step, "trading_day": trading_day_of(start, market)},
            "session": {"phase": bar_phase(start, market), "is_halt": False, "is_partial": i == 0},
            "bar": {
                "open": round(open_, 4),
                "high": round(max(open_, close) * 1.004, 4),
                "low": round(min(open_, close) * 0.996, 4),
                "close": round(close, 4),
                "volume_shares": volume,
                "turnover_cny": turnover,
                "vwap": round(turnover / volume, 4),
            },
        })
        prev = close
    return frames


class MarketDataService:
    """Resolves frames for a symbol and interval from the sources the current data mode allows."""

    def __init__(
        self,
        settings: Settings,
        *,
        replay: ReplayEngine | None = None,
        live_cn: LiveFileFrameProvider | None = None,
        live_us: LiveFileFrameProvider | None = None,
        daily: DailyHistory | None = None,
        now_ms: Callable[[], int] | None = None,
    ):
        self.settings = settings
        self.replay = replay
        self.live = {CN: live_cn, US: live_us}
        self.daily = daily
        self.now_ms = now_ms or wall_clock_ms
        # Work on bars shared by every agent asking for the same ones (see bar_memo): daily bars
        # aggregated from 1m bars (a day of bars re-aggregated per agent cost ~100 ms), sanity, features.
        self.memo = BarMemo()

    @property
    def strict(self) -> bool:
        """Strict live mode: never replay or generated bars."""
        return self.settings.strict_live_mode

    def live_provider(self, market: str) -> LiveFileFrameProvider | None:
        """The live frames provider of a market ('CN-A' or 'US'), if configured."""
        return self.live.get(market)

    def replay_clock_ms(self) -> int | None:
        """The replay clock in replay mode (bars ending later are the future); None in live mode."""
        if self.settings.live_mode or self.replay is None:
            return None
        return self.replay.clock_ms()

    def _live(self, symbol: str, market: str, interval: str, limit: int | None) -> tuple[list[dict], str, str] | None:
        provider = self.live.get(market)
        bars = provider.get_frames(symbol, interval, limit) if provider is not None else []
        if not bars:
            return None
        return bars, provider.mode or _mode_of(bars), provider.provider or _provider_of(bars, "live-file")

    def _intraday(self, symbol: str, market: str, limit: int | None) -> tuple[list[dict], str, str]:
        """1m bars (None: all of them) with the envelope's (mode, provider), from the source the data mode allows."""
        if self.settings.live_mode:
            live = self._live(symbol, market, "1m", limit)
            if live:
                return live
            if not self.strict and self.replay is not None:
                # Non-strict fallback to the replay pack, labelled mock so nobody mistakes it for live.
                bars = self.replay.index.frames(symbol, "1m", limit)
                if bars:
                    return bars, "mock", "replay-stream"
        elif self.replay is not None:
            bars = self.replay.visible_frames(symbol, limit)
            if bars:
                return bars, _mode_of(bars), _provider_of(bars, "replay-stream")
        return [], "real", "none"

    def _daily_until_ms(self) -> int | None:
        """Daily bars visible now: up to the replay clock, or (live) bars that have closed."""
        return self.now_ms() if self.settings.live_mode else self.replay_clock_ms()

    def _daily(self, symbol: str, market: str, limit: int) -> tuple[list[dict], str, str]:
        if self.daily is not None:
            bars = self.daily.frames(symbol, limit, until_ts_ms=self._daily_until_ms())
            if bars:
                return bars, self.daily.mode or "real", self.daily.provider or "daily-history"
        live = self._live(symbol, market, "1d", limit) if self.settings.live_mode else None  # the US file has 1d bars
        if live:
            return live
        bars, mode, source = self._intraday(symbol, market, None)
        daily = self.memo.get(("daily_from_1m", symbol), (bars,), lambda: aggregate(bars, "1d"))
        return daily[-limit:], mode, source

    def get_frames(self, symbol: Any, interval: Any = "1m", limit: Any = DEFAULT_LIMIT, source: Any = None) -> dict:
        """The `market.frames.v1` envelope for a symbol; see the module docstring for the resolution order."""
        symbol = normalize_symbol(symbol)
        interval = normalize_interval(interval)
        limit = clamp_limit(limit)
        market = market_of_symbol(symbol)
        if str(source or "").strip().lower() == "mock":
            if self.strict:
                raise live_frames_unavailable("generated frames are disabled in strict live mode")
            bars, mode, provider = mock_frames(symbol, interval, limit, self.now_ms()), "mock", "runtime-api-generated"
        elif interval == "1d":
            bars, mode, provider = self._daily(symbol, market, limit)
        elif interval == "1m":
            bars, mode, provider = self._intraday(symbol, market, limit)
        else:
            one_minute, mode, provider = self._intraday(symbol, market, None)
            bars = aggregate(one_minute, interval)[-limit:]
        if not bars and self.strict:
            raise live_frames_unavailable(f"no live {interval} frames for {symbol}")
        return {"schema_version": SCHEMA, "market": market, "mode": mode, "provider": provider, "frames": bars}

    def get_klines(self, symbol: Any, interval: Any = "1m", limit: Any = DEFAULT_LIMIT, source: Any = None) -> list[dict]:
        """The same bars in the `/api/klines` shape."""
        return [to_kline(bar) for bar in self.get_frames(symbol, interval, limit, source)["frames"]]

    def latest_price(self, symbol: Any) -> float | None:
        """The close of the newest 1m bar visible now, when it is a sane price (finite, positive,
        inside the daily limit against the previous close); None otherwise, so a bad tick never
        marks a position."""
        try:
            symbol = normalize_symbol(symbol)
        except MarketDataError:
            return None
        market = market_of_symbol(symbol)
        bars, _, _ = self._intraday(symbol, market, 1)
        if not bars:
            return None
        close = (bars[-1].get("bar") or {}).get("close")
        if not sanity.usable_price(close):
            return None
        if market == CN:
            daily = self.daily.frames(symbol, 5, until_ts_ms=self._daily_until_ms()) if self.daily is not None else []
            reference = sanity.previous_close(daily, sanity.trading_day(bars[-1]))
            if reference is not None and not sanity.within_limit(float(close), reference, sanity.price_limit_pct(symbol)):
                return None
        return float(close)

    def assess(self, symbol: str, intraday: list[dict], daily: list[dict], *, name: str | None = None) -> dict:
        """Whether a symbol's bars may be traded on: `intraday` / `daily` reasons (None when fine).

        Sanity (finite positive prices, the daily price limit) applies in every mode; in live mode
        the symbol must also be in the frames file and fresh against the session
        (`session_freshness`), and have enough daily bars ending on the previous trading day."""
        now = self.now_ms()
        cn = market_of_symbol(symbol) == CN
        intraday_reason = daily_reason = None
        if cn:
            intraday_reason, daily_reason = self.memo.get(
                ("sanity", symbol, name), (intraday, daily),
                lambda: (sanity.intraday_problem(symbol, intraday, daily, name), sanity.daily_problem(symbol, daily, name)),
            )
        if self.settings.live_mode:
            if not intraday:
                intraday_reason = "symbol_missing"
            elif intraday_reason is None:
                latest = sanity.bar_end_ms(intraday[-1]) or 0
                window = self.settings.live_file_stale_ms
                if session_freshness.intraday_age_ms(latest, now, window) > window:
                    intraday_reason = "symbol_stale"
            daily_error = self.daily.last_error if self.daily is not None else "daily_file_missing"
            if cn and daily_error:
                daily_reason = f"daily_file_error:{daily_error}"  # the job's file is refused: its bars are not used
            elif cn and daily_reason is None:
                if not daily:
                    daily_reason = "daily_missing"
                elif len(daily) < self.settings.data_readiness_min_daily_frames:
                    daily_reason = "daily_insufficient"
                elif not session_freshness.daily_fresh(sanity.trading_day(daily[-1]), now):
                    daily_reason = "daily_stale"
        return {
            "symbol": symbol,
            "usable": intraday_reason is None and daily_reason is None,
            "reason": intraday_reason or daily_reason,
            "intraday": intraday_reason,
            "daily": daily_reason,
            "intraday_frames": len(intraday),
            "daily_frames": len(daily),
        }

    def symbol_health(self, symbol: Any, *, intraday_limit: int = 180, daily_limit: int = 180) -> dict:
        """`assess` on the bars the decision context would get for this symbol now."""
        symbol = normalize_symbol(symbol)
        try:
            intraday = self.get_frames(symbol, "1m", intraday_limit)["frames"]
        except MarketDataError:
            intraday = []
        try:
            daily = self.get_frames(symbol, "1d", daily_limit)["frames"]
        except MarketDataError:
            daily = []
        return self.assess(symbol, intraday, daily)

    def symbols(self) -> list[str]:
        """Symbols with 1m bars in the active source (the live files, or the replay pack)."""
        if self.settings.live_mode:
            found: set[str] = set()
            for provider in self.live.values():
                if provider is not None:
                    provider.refresh()
                    found.update(provider.symbols("1m"))
            return sorted(found)
        return self.replay.index.symbols("1m") if self.replay is not None else []
