"""Decision and audit JSONL logs (ports jsonlReader and decisionAuditStore)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from runtime_api.state import journal
from runtime_api.errors import ApiError
from runtime_api.state.journal import AuditLog, DecisionLog, audit_record, day_key_for, read_jsonl


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ---- ported from jsonlReader.test.mjs ----------------------------------------------------------


def test_limit_counts_raw_lines_from_the_end(tmp_path):
    fp = write_lines(tmp_path / "sample.jsonl", [
        json.dumps({"id": 1, "label": "first"}), "{ malformed", json.dumps({"id": 2, "label": "second"}), "",
        json.dumps({"id": 3, "label": "third"}), "",
    ])
    assert [r["id"] for r in read_jsonl(fp, 3, from_end=True)] == [2, 3]


def test_limit_counts_raw_lines_from_the_start(tmp_path):
    fp = write_lines(tmp_path / "sample.jsonl", [
        json.dumps({"id": 1, "label": "first"}), "{ malformed", json.dumps({"id": 2, "label": "second"}),
        json.dumps({"id": 3, "label": "third"}),
    ])
    assert [r["id"] for r in read_jsonl(fp, 2, from_end=False)] == [1]


def test_backwards_reader_matches_a_full_read_across_block_boundaries(tmp_path, monkeypatch):
    rng = random.Random(7)
    lines = []
    for i in range(300):
        choice = rng.random()
        lines.append("" if choice < 0.1 else "{bad" if choice < 0.2 else json.dumps({"i": i, "pad": "x" * rng.randrange(0, 40)}))
    fp = tmp_path / "big.jsonl"
    fp.write_bytes(("\r\n".join(lines[:150]) + "\n" + "\n".join(lines[150:])).encode())
    non_empty = [line for line in lines if line]
    for block in (1, 7, 64, 4096):
        monkeypatch.setattr(journal, "_BLOCK", block)
        for limit in (1, 3, 50, 299, 1000):
            expected = [json.loads(line) for line in non_empty[-limit:] if not line.startswith("{bad")]
            assert read_jsonl(fp, limit, from_end=True) == expected, (block, limit)
    assert read_jsonl(tmp_path / "missing.jsonl", 5, from_end=True) == []


# ---- ported from decisionAuditStore.test.mjs ----------------------------------------------------


def test_audit_append_writes_a_line_with_the_schema(tmp_path):
    log = AuditLog(tmp_path / "audit")
    day_key = day_key_for(1700000000000, "Asia/Shanghai")
    assert day_key == "2023-11-15"
    log.append("t_001", {"cycle_number": 1, "note": "hello"}, day_key=day_key, saved_ts_ms=1700000000000)
    content = (tmp_path / "audit" / "t_001" / f"{day_key}.jsonl").read_text()
    assert "agent.decision_audit.v1" in content and '"note":"hello"' in content
    [record] = log.read_latest("t_001", 10)  # the same directory is read and written (W12)
    assert list(record)[:4] == ["schema_version", "trader_id", "day_key", "saved_ts_ms"]


# ---- decision log, latest and day reads --------------------------------------------------------


def test_decision_line_is_the_record_plus_trader_day_and_saved_ts(tmp_path):
    log = DecisionLog(tmp_path / "decisions")
    line = log.append("t_001", {"timestamp": "2026-02-17T22:51:24.735Z", "cycle_number": 1, "day_key": "spoofed"},
                      day_key="2026-02-18", saved_ts_ms=1771368684739)
    assert line == {"trader_id": "t_001", "day_key": "2026-02-18", "saved_ts_ms": 1771368684739,
                    "timestamp": "2026-02-17T22:51:24.735Z", "cycle_number": 1}
    assert log.read_day("t_001", "2026-02-18", 10) == [line]


def test_read_latest_walks_days_newest_first(tmp_path):
    log = AuditLog(tmp_path / "audit")
    for day, start in (("2026-02-12", 1000), ("2026-02-13", 2000), ("2026-02-16", 3000)):
        for k in range(3):
            log.append("t_001", {"cycle_number": k}, day_key=day, saved_ts_ms=start + k)
    (tmp_path / "audit" / "t_001" / "notes.txt").write_text("ignored")
    assert log.day_keys("t_001") == ["2026-02-16", "2026-02-13", "2026-02-12"]
    assert [r["saved_ts_ms"] for r in log.read_latest("t_001", 4)] == [3002, 3001, 3000, 2002]
    assert [r["saved_ts_ms"] for r in log.read_day("t_001", "2026-02-13", 2)] == [2000, 2001]
    assert [r["saved_ts_ms"] for r in log.read_day("t_001", "2026-02-13", 2, from_end=True)] == [2001, 2002]
    assert log.read_latest("t_404", 5) == [] and log.read_day("t_001", "2026-01-01", 5) == []


def test_node_sample_logs_read_back(tmp_path, fixtures_dir):
    for name, base in (("decisions", "decisions"), ("decision_audit", "audit")):
        target = tmp_path / base / "t_001" / "2026-02-18.jsonl"
        target.parent.mkdir(parents=True)
        shutil.copyfile(fixtures_dir / f"{name}.t_001.sample.jsonl", target)
    decisions = DecisionLog(tmp_path / "decisions")
    day = decisions.read_day("t_001", "2026-02-18", 5000)
    assert len(day) == 30 and [r["cycle_number"] for r in day[:3]] == [1, 2, 3]
    latest = decisions.read_latest("t_001", 5)
    assert [r["cycle_number"] for r in latest] == [30, 29, 28, 27, 26]
    audits = AuditLog(tmp_path / "audit").read_latest("t_001", 500)
    assert len(audits) == 12 and audits[0]["saved_ts_ms"] >= audits[-1]["saved_ts_ms"]


def test_audit_record_rebuilds_the_node_line_exactly(fixtures_dir):
    original = json.loads((fixtures_dir / "decision_audit.t_001.sample.jsonl").read_text().splitlines()[0])
    header = ("schema_version", "trader_id", "day_key", "saved_ts_ms", "timestamp", "cycle_number", "live_files")
    fields = {k: v for k, v in original.items() if k not in header}
    rebuilt = audit_record(original["trader_id"], original["day_key"], original["saved_ts_ms"], original["timestamp"],
                           original["cycle_number"], fields, original["live_files"])
    assert rebuilt == original and list(rebuilt) == list(original)
    fields.pop("hold_semantics")
    derived = audit_record("t_001", "2026-02-18", 1, "x", 1, {**fields, "position_shares_on_symbol": 100}, None)
    assert derived["hold_semantics"] == "keep_existing_position" and derived["live_files"] == {"cn_a": None, "us": None}


# ---- errors are raised, never swallowed (W20) -------------------------------------------------


def test_append_failure_raises(tmp_path):
    blocker = tmp_path / "decisions"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(OSError):
        DecisionLog(blocker).append("t_001", {"cycle_number": 1}, day_key="2026-02-12")


@pytest.mark.parametrize(("trader_id", "day_key", "code"), [("../x", "2026-02-12", "invalid_agent_id"),
                                                            ("t_001", "2026-2-12", "invalid_day_key"),
                                                            ("t_001", "../../etc", "invalid_day_key")])
def test_paths_are_validated(tmp_path, trader_id, day_key, code):
    with pytest.raises(ApiError) as exc_info:
        AuditLog(tmp_path).read_day(trader_id, day_key, 5)
    assert (exc_info.value.status, exc_info.value.code) == (400, code)
