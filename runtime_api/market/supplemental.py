"""Side data for decision context and the room packet: breadth, overview brief, news titles.

Overview and news text comes from third-party feeds and ends up inside an LLM prompt, so every
string is cleaned: control and invisible characters removed, chat-template / role markup and
"ignore previous instructions" style lines dropped, length capped.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from pathlib import Path
from typing import Any

from runtime_api.market.calendar import trading_day_of
from runtime_api.state.storage import read_json
from ..numbers import finite

TITLE_MAX_CHARS = 160
BRIEF_MAX_CHARS = 400
BREADTH_FILE = "market_breadth.1m.json"

_MARKUP = re.compile(
    r"<\|[^|>]{0,40}\|>"  # <|im_start|>, <|system|>, <|endoftext|>
    r"|\[/?(?:INST|SYS|SYSTEM)\]"  # [INST] ... [/INST]
    r"|<<\s*/?\s*SYS\s*>>"  # <<SYS>>
    r"|</?\s*(?:system|assistant|user|developer|tool|instructions?|prompt|s)\s*>"  # <system>, </s>
    r"|`{3,}|#{2,}",  # code fences, markdown headings such as ### Instruction
    re.IGNORECASE,
)
_ROLE_PREFIX = re.compile(r"^\s*(?:system|assistant|user|developer|tool|instruction|instructions)\s*[:：]\s*", re.IGNORECASE)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:previous|prior|above|earlier|all|system)\b.{0,40}"
    r"\b(?:instructions?|prompts?|rules|messages?)\b"
    r"|忽略.{0,12}(?:指令|提示|规则)",
    re.IGNORECASE,
)


def clean_prompt_text(value: Any, max_chars: int = TITLE_MAX_CHARS) -> str:
    """Untrusted text made safe to quote in a prompt ("" when nothing usable, or it reads as an injection)."""
    if not isinstance(value, str):
        return ""
    # Cc (controls, newlines) and Cf (zero-width, bidi overrides) can hide or reshape text.
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in value)
    text = _MARKUP.sub(" ", text)
    text = _ROLE_PREFIX.sub("", text)
    text = " ".join(text.split())
    if _INJECTION.search(text):
        return ""
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


_number = finite


def normalize_breadth(payload: Any) -> dict | None:
    """{advancers, decliners, unchanged, total, advancer_ratio, red_blue_ratio}, from the top level or `breadth`."""
    if not isinstance(payload, dict):
        return None
    source = payload.get("breadth") if isinstance(payload.get("breadth"), dict) else payload
    advancers, decliners = _number(source.get("advancers")), _number(source.get("decliners"))
    if advancers is None or decliners is None:
        return None
    unchanged = _number(source.get("unchanged")) or 0
    total = _number(source.get("total"))
    if total is None or total <= 0:
        total = advancers + decliners + unchanged
    advancer_ratio = _number(source.get("advancer_ratio"))
    if advancer_ratio is None:
        advancer_ratio = round(advancers / total, 6) if total > 0 else None
    red_blue = _number(source.get("red_blue_ratio"))
    if red_blue is None and decliners > 0:
        red_blue = round(advancers / decliners, 6)
    return {
        "advancers": int(advancers),
        "decliners": int(decliners),
        "unchanged": int(unchanged),
        "total": int(total),
        "advancer_ratio": advancer_ratio,
        "red_blue_ratio": red_blue,
    }


def _pct(value: Any) -> str | None:
    number = _number(value)
    return None if number is None else f"{number * 100:+.2f}%"


def _describe(row: Any) -> str | None:
    if not isinstance(row, dict):
        return None
    name = clean_prompt_text(row.get("name") or row.get("label") or row.get("symbol") or row.get("code"), 40)
    parts = [f"{label} {pct}" for label, pct in (("20d", _pct(row.get("ret_20"))), ("5d", _pct(row.get("ret_5")))) if pct]
    return f"{name} {' '.join(parts)}" if name and parts else None


def _rows(payload: dict, *keys: str) -> list:
    return next((payload[k] for k in keys if isinstance(payload.get(k), list) and payload[k]), [])


def _strength(row: Any) -> float | None:
    if not isinstance(row, dict):
        return None
    ret_20 = _number(row.get("ret_20"))
    return ret_20 if ret_20 is not None else _number(row.get("ret_5"))


def overview_brief(payload: Any) -> str:
    """`summary` when present, else a one-line brief of benchmarks and the strongest/weakest sectors."""
    if not isinstance(payload, dict):
        return ""
    summary = clean_prompt_text(payload.get("summary"), BRIEF_MAX_CHARS)
    if summary:
        return summary
    parts = []
    benchmarks = [d for d in (_describe(b) for b in _rows(payload, "benchmarks")[:3]) if d]
    if benchmarks:
        parts.append("benchmarks: " + "; ".join(benchmarks))
    sectors = sorted((s for s in _rows(payload, "sectors", "industries") if _strength(s) is not None), key=_strength, reverse=True)
    leaders = [d for d in map(_describe, sectors[:3]) if d]
    laggards = [d for d in map(_describe, sectors[3:][-2:]) if d]
    if leaders:
        parts.append("leaders: " + "; ".join(leaders))
    if laggards:
        parts.append("laggards: " + "; ".join(laggards))
    return clean_prompt_text(" | ".join(parts), BRIEF_MAX_CHARS)


def news_titles(payload: Any, limit: int = 8) -> list[str]:
    """Cleaned, de-duplicated titles from `headlines|items|news[]` (at most `limit`, each ≤ 160 chars)."""
    if not isinstance(payload, dict):
        return []
    out: list[str] = []
    for row in _rows(payload, "headlines", "items", "news"):
        if len(out) >= limit:
            break
        title = clean_prompt_text(row.get("title") if isinstance(row, dict) else row)
        if title and title not in out:
            out.append(title)
    return out


class ReplayBreadthSeries:
    """Replay breadth points (`market.breadth.replay.v1`) from one file or every breadth file under a folder."""

    def __init__(self, path_or_dir: Path | str):
        path = Path(path_or_dir)
        files = sorted(path.rglob(BREADTH_FILE)) if path.is_dir() else [path] if path.exists() else []
        points: dict[int, dict] = {}
        for file in files:
            payload = read_json(file, {})
            series = payload.get("series") if isinstance(payload, dict) else None
            for point in series if isinstance(series, list) else []:
                ts = _number(point.get("ts_ms")) if isinstance(point, dict) else None
                breadth = normalize_breadth(point.get("breadth")) if ts is not None else None
                if breadth is not None:
                    day = point.get("trading_day") or trading_day_of(int(ts), "CN-A")
                    points[int(ts)] = {"ts_ms": int(ts), "trading_day": day, "breadth": breadth}
        self._ts = sorted(points)
        self._points = [points[ts] for ts in self._ts]

    def __len__(self) -> int:
        return len(self._points)

    def at(self, ts_ms: int) -> dict | None:
        """The latest point at or before ts_ms on the same trading day (yesterday's breadth is not today's)."""
        i = bisect.bisect_right(self._ts, ts_ms) - 1
        if i < 0:
            return None
        point = self._points[i]
        return point if point["trading_day"] == trading_day_of(ts_ms, "CN-A") else None
