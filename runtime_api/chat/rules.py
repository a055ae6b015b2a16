"""The chat's pure rules: message validation, agent text shaping, narration and reply templates."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata

MESSAGE_TYPES = ("public_plain", "public_mention_agent", "private_agent_dm")
BROADCAST = "room_broadcast"
_MENTION = re.compile(r"@([A-Za-z0-9_]+)")
_HANDLE_JUNK = re.compile(r"[^a-z0-9]+")
# Control, zero-width and bidi-override characters never reach storage (W-C9); newlines and tabs do.
_STRIP = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_STEP_NUMBER = re.compile(r"^\s*\d+\s*[.、)]?\s*")
_SENTENCE_END = "。！？!?"
_HOLDISH = ("HOLD", "hold", "观望", "等待", "持有", "不动")
_MARKDOWN = [
    (re.compile(r"```.*?```", re.S), " "),
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"(\*\*|__|\*|_)(.+?)\1"), r"\2"),
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.M), ""),
    (re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.M), ""),
]


def message_id(prefix: str = "msg_") -> str:
    return f"{prefix}{int(time.time() * 1000)}_{secrets.token_hex(3)}"


def clean_text(raw: object) -> str:
    """Viewer text as stored: NFC, control/bidi characters removed, trimmed. Never HTML-escaped:
    it is plain text in JSON, and every renderer must treat it as text."""
    return _STRIP.sub("", unicodedata.normalize("NFC", str(raw if raw is not None else ""))).strip()


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as the Node runtime (and the client's maxLength) count it."""
    return len(text.encode("utf-16-le")) // 2


def room_handle(agent_name: object) -> str:
    handle = _HANDLE_JUNK.sub("_", str(agent_name or "").lower()).strip("_")
    return handle or "agent"


def mention_tokens(text: str) -> list[str]:
    return [m.lower() for m in _MENTION.findall(text)]


def bad_mentions(text: str, agent_name: object) -> list[str]:
    allowed = {"agent", room_handle(agent_name)}
    return [t for t in mention_tokens(text) if t not in allowed]


def visibility_of(raw: object) -> str:
    return "private" if str(raw or "").strip().lower() == "private" else "public"


def strip_markdown(text: str) -> str:
    for pattern, repl in _MARKDOWN:
        text = pattern.sub(repl, text)
    return re.sub(r"\s+", " ", text).strip()


def shape(text: str, *, max_chars: int, max_sentences: int, mention: str | None = None) -> str:
    """Agent text: no markdown, one line, at most N sentences and M characters, one leading @mention."""
    text = clean_text(strip_markdown(text))
    if mention:
        text = re.sub(rf"^(?:@{re.escape(mention)}\s*)+", "", text).strip()
    sentences = re.findall(rf"[^{_SENTENCE_END}]+[{_SENTENCE_END}]?", text)
    text = "".join(sentences[:max_sentences]).strip() if sentences else text
    if len(text) > max_chars:
        cut = text[:max_chars]
        stop = max(cut.rfind(c) for c in _SENTENCE_END + "，,；; ")
        cut = cut[: stop + 1] if stop >= int(max_chars * 0.6) else cut
        cut = cut.rstrip("，,；; ")
        text = cut if cut and cut[-1] in _SENTENCE_END else cut[: max_chars - 1] + "…"
    if mention:
        text = f"@{mention} {text}"
    return text


def _pick(options: tuple[str, ...], seed: str) -> str:
    return options[int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(options)]


def narration_text(record: dict) -> str | None:
    """The Node rule narration from a decision's `reasoning_steps_cn`, or a one-line fallback."""
    steps = [_STEP_NUMBER.sub("", str(s)).strip() for s in record.get("reasoning_steps_cn") or [] if str(s).strip()]
    head = (record.get("decisions") or [{}])[0] or {}
    seed = f"{record.get('timestamp')}:{record.get('cycle_number')}"
    if steps:
        action = next((s for s in steps if s.startswith("动作")), steps[-1])
        signal = next((s for s in steps if s.startswith("信号快照")), None) or (steps[1] if len(steps) > 2 else steps[0])
        action_text = action.split("：", 1)[-1].strip()
        if any(word in action_text for word in _HOLDISH):
            text = f"{_pick(('先看看', '稳住', '观察中'), seed)}：{signal.rstrip('。')}，这一轮先等等"
        else:
            text = f"{_pick(('出手了', '这一轮', '行动'), seed)}：{action_text.rstrip('。')}；依据：{signal}"
    else:
        symbol, action = head.get("symbol"), str(head.get("action") or "hold").upper()
        if not symbol:
            return None
        conf = head.get("confidence")
        text = f"这一轮 {symbol} 给出 {action}" + (f"，置信度 {conf:.2f}" if isinstance(conf, (int, float)) else "")
    return text if text[-1] in _SENTENCE_END else text + "。"


def reply_text(sender: str, decision: dict | None, titles: list[str], seed: str) -> str:
    """The rule reply to a mention or DM: the latest decision in one sentence plus a news or casual line."""
    head = ((decision or {}).get("decisions") or [{}])[0] or {}
    symbol, action = head.get("symbol"), str(head.get("action") or "").lower()
    if not symbol:
        first = "我还在等第一轮决策，风险第一，先把数据看清楚。"
    elif action == "buy":
        first = _pick((f"刚刚在 {symbol} 上加了仓，会盯紧止损。", f"{symbol} 这一轮选择买入，仓位控制在计划内。",
                       f"我看好 {symbol} 的短线信号，所以买入。"), seed)
    elif action == "sell":
        first = _pick((f"{symbol} 这一轮减仓，先锁定一部分。", f"刚在 {symbol} 上卖出，控制回撤优先。",
                       f"{symbol} 信号转弱，我选择卖出。"), seed)
    else:
        first = _pick((f"{symbol} 目前先观望，等信号更清楚。", f"这一轮 {symbol} 持有不动。",
                       f"{symbol} 还没到出手点，耐心等待。"), seed)
    if titles:
        second = f"也留意一下这条消息：{titles[0][:24]}。"
    else:
        second = _pick(("纪律比预测更重要。", "仓位和止损永远先想好。", "不追高，不恐慌。"), seed + ":casual")
    return shape(f"{first}{second}", max_chars=120, max_sentences=2, mention=sender)


def proactive_text(decision: dict, seed: str) -> str | None:
    """An unprompted line from the latest decision: what the agent is doing and a discipline line."""
    head = (decision.get("decisions") or [{}])[0] or {}
    symbol, action = head.get("symbol"), str(head.get("action") or "hold").lower()
    if not symbol:
        return None
    first = {
        "buy": _pick((f"手里的 {symbol} 还在计划内，继续跟踪。", f"刚才买入的 {symbol}，我在盯量能变化。"), seed),
        "sell": _pick((f"{symbol} 已经减仓，接下来看有没有更好的机会。", f"卖出 {symbol} 之后，我先把节奏放慢。"), seed),
    }.get(action) or _pick((f"{symbol} 还在观察区间，不急着出手。", f"盯着 {symbol}，等一个更清楚的信号。",
                            f"现在重点看 {symbol} 的走势确认。"), seed)
    second = _pick(("纪律比预测更重要。", "先想好止损，再想收益。", "耐心也是仓位的一部分。", "不追高，不恐慌。"), seed + ":2")
    return first + second
