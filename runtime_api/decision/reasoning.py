"""Human-facing text of a decision record: viewer reasoning steps, execution log, heuristic trace."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from runtime_api.decision.features import number
from runtime_api.decision.heuristic import Profile, Signals

_SPACES = re.compile(r"[\r\n\t]+")
_RUNS = re.compile(r"\s{2,}")


def safe_text(value: Any, max_len: int = 240) -> str:
    text = _RUNS.sub(" ", _SPACES.sub(" ", str(value or ""))).strip()
    return text[: max(16, max_len)] if text else ""


def _js_number(value: float, digits: int) -> str:
    """String(Number(x.toFixed(d))): rounded, without trailing zeros, never "-0"."""
    scaled = math.floor(abs(value) * 10**digits + 0.5) / 10**digits
    text = f"{scaled:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{scaled:.0f}"
    return text if scaled == 0 or value >= 0 else f"-{text}"


def _pct(value: Any) -> str | None:
    n = number(value)
    if n is None:
        return None
    text = _js_number(n * 100, 2)
    return text if text.startswith("-") else f"+{text}"


def _join_reasons(reasons: Any) -> str:
    rows = [safe_text(r, 40) for r in reasons or []] if isinstance(reasons, list) else []
    return "、".join([r for r in rows if r][:4])


def _data_step(ready: dict | None, gate: dict | None) -> str:
    ready = ready or {}
    text = f"数据状态：{safe_text(ready.get('level') or 'OK', 10) or 'OK'}"
    reasons = _join_reasons(ready.get("reasons"))
    if reasons:
        text += f"（{reasons}）"
    if "market_closed" in ((gate or {}).get("reasons") or []):
        text += "；当前休市，策略以保守为主。"
    return safe_text(text, 140)


def _overview_step(brief: Any, titles: Any) -> str:
    bits = []
    brief = safe_text(brief, 200)
    if brief:
        bits.append(f"市场概览：{brief}")
    rows = [safe_text(t, 60) for t in titles or []] if isinstance(titles, list) else []
    rows = [t for t in rows if t]
    if rows:
        bits.append(f"消息面：{'；'.join(rows[:2])}")
    return safe_text("；".join(bits), 160) if bits else ""


def _signal_step(features: dict) -> str:
    bits = []
    ret5, ret20 = _pct(features.get("ret_5")), _pct(features.get("ret_20"))
    if ret5 is not None:
        bits.append(f"5m{ret5}%")
    if ret20 is not None:
        bits.append(f"20m{ret20}%")
    rsi = number(features.get("rsi_14"))
    if rsi is not None:
        bits.append(f"RSI{_js_number(rsi, 0)}")
    sma20, sma60 = number(features.get("sma_20")), number(features.get("sma_60"))
    if sma20 and sma60 and sma20 > 0 and sma60 > 0:
        bits.append("趋势偏强" if sma20 >= sma60 else "趋势偏弱")
    return safe_text(f"信号快照：{'，'.join(bits)}。", 140) if bits else ""


def _action_step(head: dict, shares_on_symbol: int, forced_reasons: list | None) -> str:
    if forced_reasons is not None:
        reasons = _join_reasons(forced_reasons)
        detail = f"（{reasons}）" if reasons else ""
        return safe_text(f"动作：HOLD（数据未就绪{detail}，跳过模型）。", 160)
    symbol = safe_text(head.get("symbol"), 20)
    action = (safe_text(head.get("action"), 10) or "hold").upper()
    bits = [f"动作：{symbol + ' ' if symbol else ''}{action}"]
    if action == "HOLD" and shares_on_symbol <= 0:
        bits.append("当前无仓位，继续观察")
    qty = number(head.get("quantity"))
    if qty and qty > 0:
        bits.append(f"数量{int(qty)}")
    conf = number(head.get("confidence"))
    if conf is not None:
        bits.append(f"置信度{conf:.2f}")
    for key, label in (("stop_loss", "止损"), ("take_profit", "止盈")):
        value = number(head.get(key))
        if value and value > 0:
            bits.append(f"{label}{value:.2f}")
    return safe_text(f"{'，'.join(bits)}。", 160)


def reasoning_steps_cn(
    *,
    trader: dict,
    context: dict,
    head: dict,
    features: dict,
    shares_on_symbol: int,
    forced_hold: bool,
) -> list[str]:
    """2..4 numbered Chinese lines for viewers: data state, market overview, signals, action."""
    steps = []
    data = _data_step(context.get("data_readiness"), context.get("session_gate"))
    if data:
        steps.append(f"1 {data}")
    overview = _overview_step(
        (context.get("market_overview") or {}).get("brief"), (context.get("news_digest") or {}).get("titles")
    )
    if overview:
        steps.append(f"2 {overview}")
    signal = _signal_step(features)
    if signal:
        steps.append(f"{len(steps) + 1} {signal}")
    forced = (context.get("data_readiness") or {}).get("reasons", []) if forced_hold else None
    action = _action_step(head, shares_on_symbol, forced)
    if action:
        steps.append(f"{len(steps) + 1} {action}")
    steps = steps[:4]
    if len(steps) >= 2:
        return steps
    name = safe_text(trader.get("agent_name") or trader.get("agent_id") or "Agent", 24)
    return [steps[0] if steps else "1 数据状态：OK。", f"2 {name}：继续观察，等待更明确的信号。"]


def execution_log(*, now_iso: str, name: str, head: dict, error: str | None) -> str:
    action, symbol = head["action"], head["symbol"]
    price = number(head.get("price"))
    price_text = f"{price:.2f}" if price is not None else "n/a"
    if action == "hold":
        return f"{now_iso} | {name} -> HOLD {symbol} @ {price_text} (no order emitted)"
    if head.get("executed"):
        return (
            f"{now_iso} | {name} -> {action.upper()} {symbol} qty={head['filled_quantity']} "
            f"@ {price_text} fee={head['fee_paid']:.2f}"
        )
    return f"{now_iso} | {name} -> {action.upper()} {symbol} rejected ({error})"


def heuristic_trace(action: str, text: str, s: Signals, p: Profile) -> str:
    return "\n".join(
        [
            f"decision_path=heuristic action={action} style={p.style} risk={p.risk}",
            f"features: ret5={s.ret5:.4f}, rsi14={s.rsi:.2f}, sma20={s.sma20:.2f}, sma60={s.sma60:.2f}",
            f"reasoning: {text}",
        ]
    )


def heuristic_input_prompt(context: dict, symbol: str, features: dict, cycle_number: int) -> str:
    """What the rule engine looked at, stored as the record's `input_prompt`."""

    def f(key: str, default: float) -> float:
        value = number(features.get(key))
        return default if value is None else value

    position = context.get("position_state") or {}
    payload = {
        "cycle_number": cycle_number,
        "symbol": symbol,
        "intraday": {k: f(k, 0.0) for k in ("ret_5", "ret_20", "atr_14", "vol_ratio_20")},
        "daily": {
            "sma_20": f("sma_20", 0.0),
            "sma_60": f("sma_60", 0.0),
            "rsi_14": f("rsi_14", 50.0),
            "range_20d_pct": f("range_20d_pct", 0.0),
        },
        "position_state": {
            "shares": number(position.get("shares")) or 0,
            "avg_cost": number(position.get("avg_cost")) or 0,
            "cash_cny": number(position.get("cash_cny")) or 0,
        },
        "market_overview": {"brief": str((context.get("market_overview") or {}).get("brief") or "")[:240]},
        "news_digest": {
            "titles": [str(t)[:96] for t in (context.get("news_digest") or {}).get("titles") or [] if t][:3]
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
