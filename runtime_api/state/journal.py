"""Append-only JSONL logs: decisions (`<dir>/<id>/<day>.jsonl`) and decision audits (same layout).

Each log has one base directory used for both reading and writing (W12). Appends are durable and
locked (`storage.append_jsonl`) and errors propagate so the caller can count them (W20). Reads
follow the Node limit semantics: `limit` counts raw non-empty lines and malformed lines are dropped
afterwards. Reading from the end walks the file backwards in blocks, so a large day file is never
loaded whole.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from runtime_api.state import storage
from runtime_api.errors import ApiError
from runtime_api.manifests import AGENT_ID_RE

DAY_KEY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
AUDIT_SCHEMA = "agent.decision_audit.v1"
MAX_DAY_LIMIT = 5000
MAX_LATEST_LIMIT = 500
_BLOCK = 64 * 1024


def day_key_for(ts_ms: int, tz: str = "Asia/Shanghai") -> str:
    """The calendar day of `ts_ms` in `tz` (Node's `dayKeyInTimeZone`)."""
    return datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).date().isoformat()


def _parse(lines: list[bytes]) -> list[dict]:
    out = []
    for line in lines:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def _head_lines(path: Path, limit: int) -> list[bytes]:
    out: list[bytes] = []
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\n").removesuffix(b"\r")
            if line:
                out.append(line)
                if len(out) >= limit:
                    break
    return out


def _tail_lines(path: Path, limit: int) -> list[bytes]:
    """The last `limit` non-empty lines in file order, reading backwards block by block."""
    newest_first: list[bytes] = []
    with open(path, "rb") as fh:
        pos = fh.seek(0, 2)
        carry = b""  # the start of a line whose beginning lies in an earlier block
        while pos > 0 and len(newest_first) < limit:
            step = min(_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            parts = (fh.read(step) + carry).split(b"\n")
            carry = parts[0]
            for part in reversed(parts[1:]):
                line = part.removesuffix(b"\r")
                if line:
                    newest_first.append(line)
                    if len(newest_first) >= limit:
                        break
        if pos == 0 and len(newest_first) < limit and carry.removesuffix(b"\r"):
            newest_first.append(carry.removesuffix(b"\r"))
    newest_first.reverse()
    return newest_first


def read_jsonl(path: Path, limit: int, *, from_end: bool = False) -> list[dict]:
    """Objects from the first (or last) `limit` raw non-empty lines; malformed lines are then dropped."""
    limit = max(1, int(limit))
    try:
        lines = _tail_lines(Path(path), limit) if from_end else _head_lines(Path(path), limit)
    except FileNotFoundError:
        return []
    return _parse(lines)


def read_jsonl_tail(path: Path, limit: int) -> list[dict]:
    return read_jsonl(path, limit, from_end=True)


def _check(trader_id: str, day_key: str | None = None) -> str:
    trader_id = str(trader_id or "").strip()
    if not AGENT_ID_RE.match(trader_id):
        raise ApiError(400, "invalid_agent_id")
    if day_key is not None and not DAY_KEY_RE.match(str(day_key)):
        raise ApiError(400, "invalid_day_key")
    return trader_id


def _now_ms() -> int:
    return int(time.time() * 1000)


class _DayLog:
    """One JSONL file per trader and day under `base_dir`; blocking I/O."""

    def __init__(self, base_dir: Path):
        self.base_dir = Path(base_dir)

    def path_for(self, trader_id: str, day_key: str) -> Path:
        return self.base_dir / _check(trader_id, day_key) / f"{day_key}.jsonl"

    def _line(self, trader_id: str, record: dict, day_key: str, saved_ts_ms: int) -> dict:
        raise NotImplementedError

    def append(self, trader_id: str, record: dict, *, day_key: str, saved_ts_ms: int | None = None) -> dict:
        """Append one line durably; returns the line written. Errors are raised, never swallowed."""
        if not isinstance(record, dict):
            raise TypeError("record must be a dict")
        path = self.path_for(trader_id, day_key)
        saved = int(saved_ts_ms if saved_ts_ms is not None else record.get("saved_ts_ms") or _now_ms())
        line = self._line(trader_id.strip(), record, day_key, saved)
        storage.append_jsonl(path, line)
        return line

    def day_keys(self, trader_id: str) -> list[str]:
        """Day files of a trader, newest first."""
        folder = self.base_dir / _check(trader_id)
        try:
            names = [p.stem for p in folder.iterdir() if p.suffix == ".jsonl" and DAY_KEY_RE.match(p.stem)]
        except FileNotFoundError:
            return []
        return sorted(names, reverse=True)

    def read_day(self, trader_id: str, day_key: str, limit: int = 2000, *, from_end: bool = False) -> list[dict]:
        """One day's records in file order: the first `limit` raw lines (the last ones with `from_end`)."""
        limit = max(1, min(int(limit), MAX_DAY_LIMIT))
        return read_jsonl(self.path_for(trader_id, day_key), limit, from_end=from_end)

    def read_latest(self, trader_id: str, limit: int = 50) -> list[dict]:
        """The newest records across day files (newest day first until `limit`), by saved_ts_ms desc."""
        limit = max(1, min(int(limit), MAX_LATEST_LIMIT))
        records: list[dict] = []
        for day_key in self.day_keys(trader_id):
            records += read_jsonl(self.path_for(trader_id, day_key), limit - len(records), from_end=True)
            if len(records) >= limit:
                break
        records.sort(key=lambda r: _saved_ms(r), reverse=True)
        return records[:limit]


def _saved_ms(record: dict) -> float:
    value = record.get("saved_ts_ms")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


class DecisionLog(_DayLog):
    """Decision records: the record plus trader_id, day_key and saved_ts_ms (§3.5)."""

    def _line(self, trader_id: str, record: dict, day_key: str, saved_ts_ms: int) -> dict:
        head = {"trader_id": trader_id, "day_key": day_key, "saved_ts_ms": saved_ts_ms}
        return {**head, **record, **head}


class AuditLog(_DayLog):
    """Decision audit records, schema `agent.decision_audit.v1` (§3.6)."""

    def _line(self, trader_id: str, record: dict, day_key: str, saved_ts_ms: int) -> dict:
        head = {"schema_version": AUDIT_SCHEMA, "trader_id": trader_id, "day_key": day_key, "saved_ts_ms": saved_ts_ms}
        return {**head, **record, **head}


def hold_semantics(action: str, position_shares: Any) -> str | None:
    if str(action or "").lower() != "hold":
        return None
    shares = position_shares if isinstance(position_shares, (int, float)) and not isinstance(position_shares, bool) else 0
    return "keep_existing_position" if shares > 0 else "no_position_no_order"


def audit_record(trader_id: str, day_key: str, saved_ts_ms: int, timestamp: str, cycle_number: int,
                 fields: dict, live_files: dict | None) -> dict:
    """Assemble one audit line: the header, the decision `fields` (§3.6 order), then `live_files`.

    `hold_semantics` is derived from `action` and `position_shares_on_symbol` when not given.
    """
    record: dict[str, Any] = {
        "schema_version": AUDIT_SCHEMA,
        "trader_id": trader_id,
        "day_key": day_key,
        "saved_ts_ms": saved_ts_ms,
        "timestamp": timestamp,
        "cycle_number": cycle_number,
    }
    for key, value in (fields or {}).items():
        if key not in record and key != "live_files":
            record[key] = value
    if "hold_semantics" not in record:
        record["hold_semantics"] = hold_semantics(record.get("action"), record.get("position_shares_on_symbol"))
    record["live_files"] = live_files if live_files is not None else {"cn_a": None, "us": None}
    return record


def merge_newest(*sources: list[dict], limit: int) -> list[dict]:
    """In-memory and logged decision records merged: de-duplicated on timestamp, cycle and decision, newest first."""
    seen, merged = set(), []
    for record in (r for source in sources for r in source):
        key = f"{record.get('timestamp')}|{record.get('cycle_number')}|{record.get('decision_json')}"
        if key not in seen:
            seen.add(key)
            merged.append(record)
    merged.sort(key=lambda r: str(r.get("timestamp") or ""), reverse=True)
    return merged[:limit]
