"""Port of the Node agentMarketContext tests: exact feature values on synthetic series."""

from __future__ import annotations

from runtime_api.decision.features import bar_features, build_symbol_context, position_state

from .helpers import series


def test_position_state_maps_account_and_symbol_position():
    state = position_state(
        "600519.SH",
        {
            "cash": 91_000,
            "holdings": [
                {"symbol": "300750.SZ", "shares": 300, "avg_cost": 186.2, "mark_price": 184.2},
                {"symbol": "600519.SH", "shares": 100, "avg_cost": 1501.1, "mark_price": 1504.1},
            ],
            "total_equity": 0,
        },
    )
    assert state == {
        "shares": 100,
        "avg_cost": 1501.1,
        "unrealized_pnl": 300.0,
        "cash_cny": 91_000,
        "total_balance_cny": 0,
        "total_unrealized_pnl_cny": -300.0,
        "max_gross_exposure_pct": 1.0,
    }


def test_feature_snapshots_match_reference_values():
    # Closes 100..124 (1m) and 200..269 (1d), high/low = close +/- 1, constant volume.
    intraday = series("600519.SH", "1m", [100 + i for i in range(25)])
    daily = series("600519.SH", "1d", [200 + i for i in range(70)], volume=2_000)
    ctx = build_symbol_context("600519.SH", intraday, daily, market="CN-A", position=None)

    assert ctx["schema_version"] == "agent.market_context.v1"
    assert ctx["symbol"] == "600519.SH"
    assert ctx["intraday"]["interval"] == "1m" and ctx["daily"]["interval"] == "1d"
    assert ctx["intraday"]["frame_count"] == 25 and ctx["daily"]["frame_count"] == 70
    assert "frames" not in ctx["intraday"]
    assert ctx["intraday"]["feature_snapshot"] == {"ret_5": 0.042017, "ret_20": 0.192308, "atr_14": 2.0, "vol_ratio_20": 1.0}
    assert ctx["daily"]["feature_snapshot"] == {"sma_20": 259.5, "sma_60": 239.5, "rsi_14": 100.0, "range_20d_pct": 0.078067}
    assert ctx["latest_price"] == 124
    assert ctx["as_of_ts_ms"] == intraday[-1]["event_ts_ms"]
    assert ctx["constraints"] == {"lot_size": 100, "t_plus_one": True, "currency": "CNY"}


def test_four_horizon_windows_and_english_descriptions():
    daily = series("600519.SH", "1d", [200 + i for i in range(70)], volume=2_000)
    ctx = build_symbol_context("600519.SH", [], daily, market="CN-A", position=None)
    windows = ctx["daily"]["price_volume_windows"]
    assert list(windows) == ["past_6m", "past_1m", "past_1w", "past_1d"]
    assert windows["past_6m"]["effective_lookback_days"] == 69  # only 70 bars
    assert windows["past_1m"]["start_close"] == 248 and windows["past_1m"]["latest_close"] == 269
    assert windows["past_1d"]["price_change_pct"] == 0.003731
    descriptions = ctx["daily"]["price_volume_descriptions"]
    assert descriptions["past_6m"] == (
        "past 6 months (using 69 trading days): price +34.50% (200.00 -> 269.00), "
        "recent average volume 0.00% vs prior window."
    )
    assert descriptions["past_1m"] == (
        "past 1 month: price +8.47% (248.00 -> 269.00), recent average volume 0.00% vs prior window."
    )
    assert descriptions["past_1w"].startswith("past 1 week: price +1.89% (264.00 -> 269.00)")
    assert ctx["daily"]["price_volume_reference_lines"] == list(descriptions.values())
    assert ctx["daily"]["price_volume_reference_text"] == " ".join(descriptions.values())


def test_missing_data_gives_none_features_and_no_price():
    ctx = build_symbol_context("AAPL", [], [], market="US", position=None, include_frames=True)
    assert ctx["latest_price"] is None and ctx["as_of_ts_ms"] is None
    assert set(ctx["intraday"]["feature_snapshot"].values()) == {None}
    assert ctx["constraints"] == {"lot_size": 1, "t_plus_one": False, "currency": "USD"}
    assert ctx["intraday"]["frames"] == [] and ctx["daily"]["frames"] == []
    assert ctx["daily"]["price_volume_descriptions"]["past_1d"] == (
        "past 1 day: insufficient daily bars (0) for reliable price/volume reference."
    )


def test_rsi_with_losses_and_unsorted_input():
    closes = [100, 102, 101, 103, 102, 104, 103, 105, 104, 106, 105, 107, 106, 108, 107]
    daily = series("X", "1d", closes)
    ctx = build_symbol_context("X", [], list(reversed(daily)), market="CN-A", position=None)
    # gains 7 x 2 = 14, losses 7 x 1 = 7 -> RS 2 -> RSI 66.6667
    assert ctx["daily"]["feature_snapshot"]["rsi_14"] == 66.6667


def test_shared_bar_features_give_the_same_context_and_separate_copies():
    intraday = series("600519.SH", "1m", [100 + i for i in range(25)])
    daily = series("600519.SH", "1d", [200 + i for i in range(70)], volume=2_000)
    shared = bar_features("600519.SH", intraday, daily)
    fresh = build_symbol_context("600519.SH", intraday, daily, market="CN-A", position=None, include_frames=True)
    a = build_symbol_context("600519.SH", intraday, daily, market="CN-A", position=None, include_frames=True, features=shared)
    assert a == fresh
    # One agent's cycle adds to its context; the next agent built from the same features never sees it.
    a["intraday"]["feature_snapshot"]["ret_5"] = 99
    a["daily"]["price_volume_windows"]["past_1d"]["price_change_pct"] = 99
    a["daily"]["price_volume_reference_lines"].append("x")
    a["intraday"]["frames"].clear()
    b = build_symbol_context("600519.SH", intraday, daily, market="CN-A", position=None, include_frames=True, features=shared)
    assert b == fresh
    # Features of another symbol are not used by mistake.
    other = build_symbol_context("000001.SZ", intraday, daily, market="CN-A", position=None, features=shared)
    assert other["symbol"] == "000001.SZ"
