from __future__ import annotations

import math
import random

import orjson
import pytest

from runtime_api.errors import ApiError
from runtime_api.market.bars import FrameIndex, clamp_limit, load_frames
from runtime_api.market.daily import DailyHistory
from runtime_api.market.live_files import LiveFileFrameProvider
from runtime_api.market.replay import ReplayEngine
from runtime_api.market.service import MarketDataError, MarketDataService
from runtime_api.settings import Settings

REPLAY = Settings()
LIVE = Settings(runtime_data_mode="live_file")
STRICT = Settings(runtime_data_mode="live_file", strict_live_mode=True)


def assert_api_error(excinfo: pytest.ExceptionInfo, status: int, code: str) -> None:
    assert isinstance(excinfo.value, ApiError)
    assert (excinfo.value.status, excinfo.value.code) == (status, code)


@pytest.fixture
def replay(root, clock):
    index = FrameIndex(load_frames(root / "data/replay/cn-a"))
    return ReplayEngine(index, speed=60, warmup_bars=120, loop=True, now_ms=clock)


@pytest.fixture
def daily(root, clock):
    return DailyHistory(root / "data/replay/cn-a/history/frames.1d.111.json", now_ms=clock)


@pytest.fixture
def daily_600519(root, tmp_path, clock, write):
    """The shipped daily history cut down to 600519.SH, so other symbols have none."""
    payload = orjson.loads((root / "data/replay/cn-a/history/frames.1d.111.json").read_bytes())
    payload["frames"] = [f for f in payload["frames"] if f["instrument"]["symbol"] == "600519.SH"]
    write(tmp_path / "daily.json", payload)
    return DailyHistory(tmp_path / "daily.json", now_ms=clock)


@pytest.fixture
def live_cn(tmp_path, clock, bar, write, batch):
    """Live CN file: 30 minutes of 600519.SH ending at the clock (10:00)."""
    path = tmp_path / "live/frames.1m.json"
    write(path, batch([bar("600519.SH", clock() - (30 - i) * 60_000, 1500.0 + i) for i in range(30)], provider="akshare-live"))
    return LiveFileFrameProvider(path, refresh_ms=250, stale_ms=180_000, now_ms=clock, display_path="live/frames.1m.json")


@pytest.fixture
def live_us(tmp_path, clock, bar, at, write, batch):
    path = tmp_path / "live/frames.us.json"
    start = at("2026-02-12 09:30:00", "US")
    frames = [bar("AAPL", start + i * 60_000, 200.0 + i, market="US") for i in range(10)]
    frames += [bar("AAPL", at(f"2026-02-{d:02d} 00:00:00", "US"), 190.0 + d, interval="1d", market="US") for d in (10, 11)]
    write(path, batch(frames, provider="alpaca"))
    return LiveFileFrameProvider(path, refresh_ms=250, stale_ms=180_000, now_ms=clock, display_path="live/frames.us.json")


# ---- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "symbol, interval, code",
    [
        ("", "1m", "invalid_symbol"),
        (None, "1m", "invalid_symbol"),
        ("600519", "1m", "invalid_symbol"),
        ("60051.SH", "1m", "invalid_symbol"),
        ("600519.SS", "1m", "invalid_symbol"),
        ("TOOLONGX", "1m", "invalid_symbol"),
        ("../etc/passwd", "1m", "invalid_symbol"),
        ("BRK.B", "1m", "invalid_symbol"),
        ("600519.SH", "2m", "invalid_interval"),
        ("600519.SH", "1M", "invalid_interval"),
        ("600519.SH", "1w", "invalid_interval"),
        ("600519.SH", 5, "invalid_interval"),
    ],
)
def test_invalid_requests(replay, symbol, interval, code):
    service = MarketDataService(REPLAY, replay=replay)
    with pytest.raises(MarketDataError) as info:
        service.get_frames(symbol, interval)
    assert_api_error(info, 400, code)


def test_symbols_are_trimmed_and_upper_cased(replay):
    envelope = MarketDataService(REPLAY, replay=replay).get_frames(" 600519.sh ", " 1m ")
    assert envelope["frames"][-1]["instrument"]["symbol"] == "600519.SH"


@pytest.mark.parametrize("raw, expected", [(None, 800), ("abc", 800), (math.nan, 800), (0, 1), (-3, 1), (5000, 2000), ("10", 10), (10.9, 10)])
def test_clamp_limit(raw, expected):
    assert clamp_limit(raw) == expected


# ---- replay mode -----------------------------------------------------------------------------


def test_replay_1m_is_the_visible_window(replay):
    envelope = MarketDataService(REPLAY, replay=replay).get_frames("600519.SH", "1m", 50)
    assert {k: envelope[k] for k in ("schema_version", "market", "mode", "provider")} == {
        "schema_version": "market.frames.v1", "market": "CN-A", "mode": "real", "provider": "yahoo-finance"
    }
    frames = envelope["frames"]
    assert len(frames) == 50
    assert frames[-1]["window"]["start_ts_ms"] == replay.current_ts_ms()


def test_duplicates_are_dropped_and_bars_sorted(bar, at, clock):
    t = at("2026-02-13 09:30:00")
    frames = [bar("600519.SH", t + i * 60_000, float(i)) for i in range(10)] * 2
    random.Random(7).shuffle(frames)
    engine = ReplayEngine(FrameIndex(frames), warmup_bars=10, now_ms=clock)
    out = MarketDataService(REPLAY, replay=engine).get_frames("600519.SH", "1m")["frames"]
    assert [f["window"]["start_ts_ms"] for f in out] == [t + i * 60_000 for i in range(10)]


def test_replay_1d_comes_from_the_daily_batch_up_to_the_replay_clock(replay, daily):
    envelope = MarketDataService(REPLAY, replay=replay, daily=daily).get_frames("600519.SH", "1d", 30)
    assert (envelope["provider"], envelope["mode"]) == ("public-github-datasets", "real")
    assert len(envelope["frames"]) == 30
    assert envelope["frames"][-1]["window"]["trading_day"] == "2026-02-09"  # the replay is on 2026-02-10


def test_replay_1d_without_daily_history_is_built_from_visible_bars(replay, daily_600519, at):
    replay.set_cursor(240 + 29)  # 2026-02-13, 30th bar
    service = MarketDataService(REPLAY, replay=replay, daily=daily_600519)
    day = service.get_frames("002050.SZ", "1d")["frames"]
    assert len(day) == 1
    assert day[0]["session"]["is_partial"] is True
    assert day[0]["bar"]["close"] == service.get_frames("002050.SZ", "1m", 1)["frames"][-1]["bar"]["close"]


@pytest.mark.parametrize("interval", ["5m", "15m", "30m", "60m", "1h", "4h"])
def test_replay_intraday_intervals_are_aggregated_without_look_ahead(replay, interval):
    replay.set_cursor(240 + 77)
    service = MarketDataService(REPLAY, replay=replay)
    bars = service.get_frames("600519.SH", interval)["frames"]
    one_minute = service.get_frames("600519.SH", "1m", 2000)["frames"]
    assert bars and all(b["interval"] == interval for b in bars)
    assert bars[-1]["bar"]["close"] == one_minute[-1]["bar"]["close"]
    assert sum(b["bar"]["volume_shares"] for b in bars) == sum(b["bar"]["volume_shares"] for b in one_minute)


def test_a_symbol_nobody_has_gives_an_empty_envelope_not_invented_bars(replay):
    envelope = MarketDataService(REPLAY, replay=replay).get_frames("AAPL", "5m")
    assert envelope["market"] == "US" and envelope["frames"] == []


def test_without_a_replay_engine_nothing_is_served():
    assert MarketDataService(REPLAY).get_frames("600519.SH")["frames"] == []


def test_mock_source_outside_strict_mode_is_deterministic(clock):
    service = MarketDataService(REPLAY, now_ms=clock)
    first = service.get_frames("600519.SH", "5m", 20, source="mock")
    assert (first["mode"], first["provider"], len(first["frames"])) == ("mock", "runtime-api-generated", 20)
    assert service.get_frames("600519.SH", "5m", 20, source=" MOCK ") == first
    last = first["frames"][-1]
    assert last["window"]["start_ts_ms"] % 300_000 == 0 and last["session"]["is_partial"]
    us = service.get_frames("AAPL", "1m", 3, source="mock")
    assert us["market"] == "US" and us["frames"][0]["instrument"]["currency"] == "USD"


# ---- live mode -------------------------------------------------------------------------------


def test_live_1m_comes_from_the_market_live_file(replay, live_cn, live_us):
    service = MarketDataService(LIVE, replay=replay, live_cn=live_cn, live_us=live_us)
    cn = service.get_frames("600519.SH", "1m", 5)
    assert (cn["provider"], cn["mode"], len(cn["frames"])) == ("akshare-live", "real", 5)
    assert cn["frames"][-1]["bar"]["close"] == 1529.0
    us = service.get_frames("AAPL", "1m")
    assert (us["market"], us["provider"], len(us["frames"])) == ("US", "alpaca", 10)


def test_live_us_1d_uses_the_files_daily_bars(live_us, daily):
    envelope = MarketDataService(LIVE, live_us=live_us, daily=daily).get_frames("AAPL", "1d")
    assert [f["window"]["trading_day"] for f in envelope["frames"]] == ["2026-02-10", "2026-02-11"]


def test_non_strict_live_falls_back_to_replay_labelled_mock(replay, live_cn):
    envelope = MarketDataService(LIVE, replay=replay, live_cn=live_cn).get_frames("600036.SH", "1m", 10)
    assert (envelope["mode"], envelope["provider"], len(envelope["frames"])) == ("mock", "replay-stream", 10)


@pytest.mark.parametrize(
    "interval, source",
    [("1m", None), ("5m", None), ("1h", None), ("1d", None), ("1m", "mock"), ("5m", "mock"), ("1d", "mock")],
)
def test_strict_live_never_serves_replay_or_mock(replay, live_cn, daily_600519, interval, source):
    # 002050.SZ is in the replay pack but neither in the live file nor in the daily history.
    service = MarketDataService(STRICT, replay=replay, live_cn=live_cn, daily=daily_600519)
    with pytest.raises(MarketDataError) as info:
        service.get_frames("002050.SZ", interval, source=source)
    assert_api_error(info, 503, "live_frames_unavailable")


def test_strict_live_with_no_live_provider_at_all(replay):
    with pytest.raises(MarketDataError) as info:
        MarketDataService(STRICT, replay=replay).get_frames("600519.SH", "1m")
    assert_api_error(info, 503, "live_frames_unavailable")


def test_strict_live_refuses_mock_even_when_live_data_exists(live_cn):
    with pytest.raises(MarketDataError) as info:
        MarketDataService(STRICT, live_cn=live_cn).get_frames("600519.SH", "1m", source="mock")
    assert_api_error(info, 503, "live_frames_unavailable")


@pytest.mark.parametrize("interval, count", [("1m", 30), ("5m", 6), ("30m", 1), ("1d", 1)])
def test_strict_live_serves_live_data_and_what_is_built_from_it(live_cn, interval, count):
    envelope = MarketDataService(STRICT, live_cn=live_cn).get_frames("600519.SH", interval)
    assert (envelope["mode"], envelope["provider"], len(envelope["frames"])) == ("real", "akshare-live", count)
    assert envelope["frames"][-1]["bar"]["close"] == 1529.0


def test_strict_live_1d_uses_the_real_daily_history(live_cn, daily):
    envelope = MarketDataService(STRICT, live_cn=live_cn, daily=daily).get_frames("600519.SH", "1d", 5)
    assert (envelope["provider"], len(envelope["frames"])) == ("public-github-datasets", 5)


# ---- prices, symbols, klines -----------------------------------------------------------------


def test_latest_price_follows_the_replay_cursor(replay, clock):
    service = MarketDataService(REPLAY, replay=replay)
    before = service.latest_price("600519.SH")
    assert before == replay.visible_frames("600519.SH", 1)[-1]["bar"]["close"]
    replay.set_cursor(300)
    assert service.latest_price("600519.SH") == replay.visible_frames("600519.SH", 1)[-1]["bar"]["close"]
    assert service.latest_price("AAPL") is None and service.latest_price("bad symbol") is None


def test_latest_price_live_and_strict(replay, live_cn):
    assert MarketDataService(STRICT, replay=replay, live_cn=live_cn).latest_price("600519.SH") == 1529.0
    assert MarketDataService(STRICT, replay=replay, live_cn=live_cn).latest_price("002050.SZ") is None


def test_symbols_of_the_active_source(replay, live_cn, live_us):
    assert len(MarketDataService(REPLAY, replay=replay).symbols()) == 14
    assert MarketDataService(LIVE, replay=replay, live_cn=live_cn, live_us=live_us).symbols() == ["600519.SH", "AAPL"]
    assert MarketDataService(REPLAY).symbols() == []


def test_klines_shape(live_cn):
    klines = MarketDataService(STRICT, live_cn=live_cn).get_klines("600519.SH", "1m", 2)
    assert [set(k) for k in klines] == [{"openTime", "open", "high", "low", "close", "volume", "quoteVolume"}] * 2
    assert klines[-1]["close"] == 1529.0
