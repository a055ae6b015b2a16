"""The chat's pure rules: handles and mentions, text shaping, narration and reply templates."""

from __future__ import annotations

from runtime_api.bets import odds
from runtime_api.chat import rules


def test_room_handle_and_mentions_follow_node():
    assert rules.room_handle("Replay Momentum (demo)") == "replay_momentum_demo"
    assert rules.room_handle("梅林") == "agent"
    assert rules.bad_mentions("@Agent hi @replay_momentum_demo", "Replay Momentum (demo)") == []
    assert rules.bad_mentions("ping a@b.com @x", "Replay Momentum (demo)") == ["b", "x"]
    assert rules.utf16_len("🙂a") == 3


def test_shape_strips_markdown_caps_sentences_and_keeps_one_mention():
    text = rules.shape("@bob @bob **看好** `600519.SH`。第二句！第三句？第四句。", max_chars=180, max_sentences=3, mention="bob")
    assert text == "@bob 看好 600519.SH。第二句！第三句？"
    long = rules.shape("这是一个很长的句子" * 30, max_chars=40, max_sentences=3)
    assert len(long) <= 40 and long.endswith("…")


def test_narration_text_from_reasoning_steps():
    hold = {"timestamp": "t1", "reasoning_steps_cn": ["1 数据状态：OK。", "2 信号快照：5m+0.04%，RSI55。", "3 动作：HOLD，继续观望。"]}
    text = rules.narration_text(hold)
    assert "信号快照：5m+0.04%，RSI55，这一轮先等等。" in text and "。，" not in text
    buy = {"timestamp": "t2", "reasoning_steps_cn": ["1 数据状态：OK。", "2 信号快照：RSI40。", "3 动作：600519.SH buy 100 股。"]}
    assert "600519.SH buy 100 股；依据：信号快照：RSI40。" in rules.narration_text(buy)
    bare = {"decisions": [{"symbol": "600519.SH", "action": "sell", "confidence": 0.7}]}
    assert rules.narration_text(bare) == "这一轮 600519.SH 给出 SELL，置信度 0.70。"
    assert rules.narration_text({}) is None


def test_reply_quotes_the_latest_decision_and_a_headline():
    decision = {"decisions": [{"symbol": "600519.SH", "action": "buy"}]}
    text = rules.reply_text("amy", decision, ["白酒板块午后走强，资金持续流入"], "seed")
    assert text.startswith("@amy ") and "600519.SH" in text and "白酒板块" in text
    assert rules.reply_text("amy", None, [], "seed").startswith("@amy 我还在等第一轮决策")


def test_clean_text_drops_controls_and_bidi_but_never_escapes():
    assert rules.clean_text("  <b>x</b>\u202e\u200b\x07\n y ") == "<b>x</b>\n y"


def test_odds_are_nodes_formula_and_money_lowers_odds():
    candidates = [{"trader_id": t, "trader_name": t, "market": "CN-A"} for t in ("a", "b")]
    even = {r["trader_id"]: r for r in odds.entries(candidates, {}, {}, 0.08)}
    assert even["a"]["odds"] == even["b"]["odds"] == round(0.92 / 0.5, 4)
    staked = {r["trader_id"]: r for r in odds.entries(candidates, {}, {"a": {"amount": 100, "tickets": 1}}, 0.08)}
    assert staked["a"]["odds"] < even["a"]["odds"] < staked["b"]["odds"]
    capped = {r["trader_id"]: r for r in odds.entries(candidates, {"a": 50, "b": -50}, {}, 0.08)}
    assert capped["b"]["odds"] == 30 and capped["a"]["odds"] == 1.05
    assert odds.payout(100, 1.5) == 150 and odds.payout(1, 0.5) == 1
