"""The one INFO line per decision round, so a terminal shows the show is running (and why agents hold)."""

from __future__ import annotations

from collections import Counter

FILL = "fill"


def outcome_label(record: dict, audit: dict) -> str:
    """`fill`, or why the decision is a hold: `readiness:<first reason>`, the guard's error, `guardrail`, `no_signal`."""
    head = (record.get("decisions") or [{}])[0]
    if head.get("executed"):
        return FILL
    if audit.get("forced_hold"):
        reasons = (audit.get("data_readiness") or {}).get("reasons") or ["unknown"]
        return f"readiness:{reasons[0]}"
    if head.get("error"):
        return str(head["error"])
    if str(head.get("reasoning") or "").startswith("guardrail:"):
        return "guardrail"
    return "no_signal"


def round_line(number: int, labels: dict[str, str], failed: list[str], replay: dict | None) -> str:
    """`round 12: 8 agents decided, 3 fills; holds no_signal=3 readiness:data_too_stale=2; replay 2026-02-10 bar 130/240`."""
    holds = Counter(label for label in labels.values() if label != FILL)
    fills = sum(1 for label in labels.values() if label == FILL)
    parts = [f"round {number}: {len(labels)} agents decided, {fills} fills"]
    parts.append("holds " + " ".join(f"{reason}={n}" for reason, n in sorted(holds.items())) if holds else "no holds")
    if failed:
        parts.append(f"failed {','.join(sorted(failed))}")
    if replay and replay.get("trading_day"):
        parts.append(f"replay {replay['trading_day']} bar {replay.get('day_bar_index')}/{replay.get('day_bar_count')}")
    return "; ".join(parts)
