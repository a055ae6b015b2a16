from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime_api.market.bars import INTERVALS, FrameIndex, aggregate, load_batch, load_frames, to_kline
from runtime_api.state.storage import CorruptFileError

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "data" / "contracts"


def assert_matches_contract(frame: dict) -> None:
    """The parts of market.bar.v1 the runtime produces (jsonschema is not a dependency)."""
    schema = json.loads((CONTRACTS / "market.bar.v1.schema.json").read_text())
    props = schema["properties"]
    assert set(schema["required"]) <= set(frame) <= set(props)
    for key in ("instrument", "window", "session", "bar"):
        assert set(props[key]["required"]) <= set(frame[key]) <= set(props[key]["properties"]), key
    assert frame["interval"] in props["interval"]["enum"]
    assert frame["session"]["phase"] in props["session"]["properties"]["phase"]["enum"]
    assert frame["window"]["start_ts_ms"] < frame["window"]["end_ts_ms"]


# ---- loading ---------------------------------------------------------------------------------


def test_load_jsonl_day(root):
    frames = load_frames(root / "data/replay/cn-a/2026-02-10/frames.1m.jsonl")
    assert len(frames) == 1194
    assert frames[0]["schema_version"] == "market.bar.v1"


def test_load_directory_reads_day_folders_in_order(root):
    frames = load_frames(root / "data/replay/cn-a")
    assert len(frames) == 1194 + 2400  # the history/ folder's 1d file is not a day file
    days = [f["window"]["trading_day"] for f in frames]
    assert days == sorted(days)


def test_load_directory_that_is_itself_a_day(root):
    assert len(load_frames(root / "data/replay/cn-a/2026-02-13")) == 2400


def test_load_frames_object_and_bare_list(tmp_path, bar, at, batch, write):
    frames = [bar("600519.SH", at("2026-02-13 09:30:00"), 10.0)]
    write(tmp_path / "obj.json", batch(frames, provider="akshare"))
    write(tmp_path / "list.json", frames)
    assert load_frames(tmp_path / "obj.json") == frames == load_frames(tmp_path / "list.json")
    assert load_batch(tmp_path / "obj.json")["provider"] == "akshare"
    assert load_batch(tmp_path / "list.json")["provider"] == "test-feed"  # from the bars


def test_directory_prefers_jsonl_when_a_day_has_both(tmp_path, bar, at, write):
    day = tmp_path / "2026-02-13"
    write(day / "frames.1m.json", [bar("600519.SH", at("2026-02-13 09:30:00"), 1.0)])
    jsonl = [bar("600519.SH", at("2026-02-13 09:30:00"), 2.0), bar("600519.SH", at("2026-02-13 09:31:00"), 3.0)]
    write(day / "frames.1m.jsonl", None, raw=b"\n".join(json.dumps(f).encode() for f in jsonl) + b"\n")
    assert [f["bar"]["close"] for f in load_frames(tmp_path)] == [2.0, 3.0]


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("bad.json", b"{not json", "invalid_json"),
        ("bad.jsonl", b'{"a": 1}\n{oops\n', "invalid_json: line 2"),
        ("odd.json", b'{"frames": 3}', "invalid_payload"),
        ("num.json", b"42", "invalid_payload"),
    ],
)
def test_corrupt_files_raise_with_a_pathless_reason(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CorruptFileError) as info:
        load_frames(tmp_path / name)
    assert info.value.reason.startswith(reason)
    assert str(tmp_path) not in info.value.reason


def test_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_frames(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):
        load_frames(tmp_path)  # a folder without day files


# ---- index -----------------------------------------------------------------------------------


def test_index_drops_incomplete_dedupes_last_wins_and_sorts(bar, at):
    t = at("2026-02-13 09:30:00")
    no_symbol = bar("600519.SH", t, 1.0)
    no_symbol["instrument"] = {}
    no_interval = bar("600519.SH", t, 1.0)
    del no_interval["interval"]
    no_start = bar("600519.SH", t, 1.0)
    no_start["window"] = {}
    frames = [
        bar("600519.SH", t + 120_000, 3.0),
        bar("600519.SH", t, 1.0),
        bar("600519.SH", t + 60_000, 2.0),
        bar("600519.SH", t, 1.5),  # same start: the last one wins
        no_symbol,
        no_interval,
        no_start,
        "not a frame",
    ]
    index = FrameIndex(frames)
    assert [f["bar"]["close"] for f in index.frames("600519.SH")] == [1.5, 2.0, 3.0]
    assert len(index) == 3


def test_index_queries(bar, at):
    t = at("2026-02-13 09:30:00")
    index = FrameIndex(
        [bar("600519.SH", t + i * 60_000, 10.0 + i) for i in range(5)]
        + [bar("000001.SZ", t, 5.0), bar("600519.SH", at("2026-02-12 00:00:00"), 9.0, interval="1d")]
    )
    assert index.symbols() == ["000001.SZ", "600519.SH"]
    assert index.symbols("1d") == ["600519.SH"]
    assert [f["bar"]["close"] for f in index.frames("600519.sh", limit=2)] == [13.0, 14.0]
    # until: only bars whose window has ended by then (09:30 + 3 min = the end of the third bar)
    assert [f["bar"]["close"] for f in index.frames("600519.SH", until_ts_ms=t + 180_000)] == [10.0, 11.0, 12.0]
    assert [f["bar"]["close"] for f in index.frames("600519.SH", limit=1, until_ts_ms=t + 179_999)] == [11.0]
    assert index.frames("600519.SH", until_ts_ms=t) == []
    assert index.frames("UNKNOWN", limit=3, until_ts_ms=t) == []
    assert index.latest("600519.SH")["bar"]["close"] == 14.0
    assert index.latest("UNKNOWN") is None
    assert index.latest_ts_ms() == t + 5 * 60_000
    assert index.starts() == [t + i * 60_000 for i in range(5)]
    assert FrameIndex().latest_ts_ms() is None


# ---- aggregation -----------------------------------------------------------------------------


@pytest.fixture
def day_bars(root):
    return FrameIndex(load_frames(root / "data/replay/cn-a/2026-02-10/frames.1m.jsonl")).frames("000858.SZ")


def test_intervals():
    assert INTERVALS == ("1m", "5m", "15m", "30m", "60m", "1h", "4h", "1d")


@pytest.mark.parametrize("interval, per_day", [("5m", 48), ("15m", 16), ("30m", 8), ("60m", 4), ("1h", 4), ("4h", 2), ("1d", 1)])
def test_buckets_per_full_cn_day(day_bars, interval, per_day):
    assert len(day_bars) == 240
    out = aggregate(day_bars, interval)
    assert len(out) == per_day
    assert sum(b["bar"]["volume_shares"] for b in out) == sum(b["bar"]["volume_shares"] for b in day_bars)
    assert not any(b["session"]["is_partial"] for b in out)
    for built in out:
        assert_matches_contract(built)
        assert built["interval"] == interval
        assert built["window"]["trading_day"] == "2026-02-10"


@pytest.mark.parametrize("interval", ["5m", "15m", "30m", "60m", "4h"])
def test_buckets_never_span_the_lunch_break(day_bars, at, interval):
    lunch_start, lunch_end = at("2026-02-10 11:30:00"), at("2026-02-10 13:00:00")
    for built in aggregate(day_bars, interval):
        start, end = built["window"]["start_ts_ms"], built["window"]["end_ts_ms"]
        assert end <= lunch_start or start >= lunch_end
    starts = {b["window"]["start_ts_ms"] for b in aggregate(day_bars, interval)}
    assert at("2026-02-10 09:30:00") in starts and at("2026-02-10 13:00:00") in starts  # anchored at each open


def test_ohlcv_of_a_bucket(day_bars, at):
    first = aggregate(day_bars, "5m")[0]
    members = day_bars[:5]
    assert first["window"] == {
        "start_ts_ms": at("2026-02-10 09:30:00"),
        "end_ts_ms": at("2026-02-10 09:35:00"),
        "trading_day": "2026-02-10",
    }
    assert first["bar"]["open"] == members[0]["bar"]["open"]
    assert first["bar"]["high"] == max(m["bar"]["high"] for m in members)
    assert first["bar"]["low"] == min(m["bar"]["low"] for m in members)
    assert first["bar"]["close"] == members[-1]["bar"]["close"]
    volume = sum(m["bar"]["volume_shares"] for m in members)
    turnover = sum(m["bar"]["turnover_cny"] for m in members)
    assert first["bar"]["volume_shares"] == volume
    assert first["bar"]["turnover_cny"] == pytest.approx(turnover, abs=0.01)
    assert first["bar"]["vwap"] == pytest.approx(turnover / volume, abs=1e-4)
    assert first["session"] == {"phase": "continuous_am", "is_halt": False, "is_partial": False}
    assert first["event_ts_ms"] == first["window"]["end_ts_ms"]
    assert (first["instrument"], first["provider"], first["mode"]) == (members[0]["instrument"], members[0]["provider"], "real")


def test_newest_bucket_is_partial_until_the_data_reaches_its_end(day_bars):
    seven = aggregate(day_bars[:7], "5m")
    assert [b["session"]["is_partial"] for b in seven] == [False, True]
    assert seven[-1]["bar"]["close"] == day_bars[6]["bar"]["close"]
    assert not aggregate(day_bars[:10], "5m")[-1]["session"]["is_partial"]
    day = aggregate(day_bars[:100], "1d")[0]
    assert day["session"]["is_partial"] and day["session"]["phase"] == "continuous_am"
    assert aggregate(day_bars, "1d")[0]["session"]["phase"] == "closed"


def test_zero_volume_bucket_has_no_vwap(bar, at):
    out = aggregate([bar("600519.SH", at("2026-02-13 09:30:00"), 10.0, volume=0)], "5m")
    assert "vwap" not in out[0]["bar"]
    assert out[0]["bar"]["close"] == 10.0


def test_end_labelled_feed_stays_inside_the_sessions(root, at):
    # The AKShare day labels bars by their closing minute: 09:31..11:30 and 13:01..15:00.
    bars = FrameIndex(load_frames(root / "data/replay/cn-a/2026-02-13/frames.1m.jsonl")).frames("600519.SH")
    hourly = aggregate(bars, "60m")
    assert [b["window"]["start_ts_ms"] for b in hourly] == [
        at("2026-02-13 09:30:00"), at("2026-02-13 10:30:00"), at("2026-02-13 13:00:00"), at("2026-02-13 14:00:00")
    ]
    assert sum(b["bar"]["volume_shares"] for b in hourly) == sum(b["bar"]["volume_shares"] for b in bars)
    assert [b["session"]["phase"] for b in hourly] == ["continuous_am", "continuous_am", "continuous_pm", "continuous_pm"]


def test_days_are_bucketed_separately(root):
    bars = FrameIndex(load_frames(root / "data/replay/cn-a")).frames("600519.SH")
    daily = aggregate(bars, "1d")
    assert [d["window"]["trading_day"] for d in daily] == ["2026-02-10", "2026-02-13"]
    assert [d["seq"] for d in daily] == [1, 2]


def test_us_bars_use_new_york_regular_hours(bar, at):
    start = at("2026-07-02 09:30:00", "US")
    bars = [bar("AAPL", start + i * 60_000, 200.0 + i, market="US") for i in range(70)]
    hourly = aggregate(bars, "1h")
    assert [(b["window"]["start_ts_ms"] - start) // 60_000 for b in hourly] == [0, 60]
    assert [b["session"]["phase"] for b in hourly] == ["regular", "regular"]
    assert hourly[-1]["session"]["is_partial"]
    last_4h = aggregate([bar("AAPL", at("2026-07-02 15:59:00", "US"), 1.0, market="US")], "4h")[0]
    assert last_4h["window"]["end_ts_ms"] == at("2026-07-02 16:00:00", "US")  # truncated at the close


def test_aggregate_skips_unusable_bars_and_rejects_unknown_intervals(bar, at):
    broken = bar("600519.SH", at("2026-02-13 09:31:00"), 10.0)
    broken["bar"] = {"close": None}
    assert len(aggregate([bar("600519.SH", at("2026-02-13 09:30:00"), 10.0), broken], "5m")) == 1
    with pytest.raises(ValueError):
        aggregate([], "2m")


def test_to_kline(bar, at):
    b = bar("600519.SH", at("2026-02-13 09:30:00"), 10.0, open=9.5, high=10.5, low=9.0, volume=300, turnover_cny=2999.5)
    assert to_kline(b) == {
        "openTime": at("2026-02-13 09:30:00"),
        "open": 9.5,
        "high": 10.5,
        "low": 9.0,
        "close": 10.0,
        "volume": 300,
        "quoteVolume": 2999.5,
    }
