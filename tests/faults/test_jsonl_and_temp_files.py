"""JSONL appends on a full disk and after a torn line; temp files of killed writers; backup retention."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from runtime_api.state.journal import read_jsonl
from runtime_api.state.housekeeping import prune_backups, remove_stale_temp_files
from runtime_api.state.storage import append_jsonl, write_json_atomic
from tests.e2e.server import RuntimeProcess


def test_a_torn_last_line_never_swallows_the_next_record(tmp_path):
    log = tmp_path / "day.jsonl"
    log.write_bytes(b'{"n":1}\n{"n":2,"torn":tr')  # a crash mid-append
    append_jsonl(log, {"n": 3})
    lines = log.read_bytes().split(b"\n")
    assert lines[1] == b'{"n":2,"torn":tr' and orjson.loads(lines[2]) == {"n": 3}
    assert [r["n"] for r in read_jsonl(log, 10)] == [1, 3]  # the acknowledged record is there


def test_a_failed_append_on_a_full_disk_is_truncated_back(small_disk):
    log = small_disk.path / "audit.jsonl"
    append_jsonl(log, {"n": 1})
    size = log.stat().st_size
    small_disk.fill()
    big = {"n": 2, "pad": "x" * 20000}  # part of it fits in the file's last page, then ENOSPC
    with pytest.raises(OSError) as caught:
        append_jsonl(log, big)
    assert caught.value.errno == errno.ENOSPC
    assert log.stat().st_size == size  # no torn line left behind
    small_disk.free()
    append_jsonl(log, {"n": 3})
    assert [r["n"] for r in read_jsonl(log, 10)] == [1, 3]
    assert log.read_bytes().count(b"\n") == 2


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp(small_disk):
    target = small_disk.path / "state.json"
    write_json_atomic(target, {"v": 1})
    small_disk.fill()
    with pytest.raises(OSError):
        write_json_atomic(target, {"v": 2, "pad": "x" * 20000})
    assert orjson.loads(target.read_bytes()) == {"v": 1}
    assert not [p for p in small_disk.path.iterdir() if p.name.endswith(".tmp")]


WRITER = """
import os, sys, time
from pathlib import Path
from runtime_api.state import storage
os.replace = lambda *a: (print("tmp-written", flush=True), time.sleep(60))  # killed before the rename
storage.write_json_atomic(Path(sys.argv[1]), {"v": 2})
"""


def _killed_writer_leaves_temp(target: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[2])
    with proc.stdout:
        try:
            assert proc.stdout.readline().strip() == b"tmp-written"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)


def test_temp_files_of_sigkilled_writers_are_removed_at_boot(root):
    state = root / "data" / "agent-memory"
    runtime_dir = root / "data" / "runtime"
    state.mkdir(parents=True)
    runtime_dir.mkdir(parents=True)
    write_json_atomic(state / "t_001.json", {"v": 1})
    for target in (state / "t_001.json", state / "t_001.json", runtime_dir / "kill-switch.json"):
        _killed_writer_leaves_temp(target)
    assert len([p for p in root.rglob("*.tmp")]) == 3
    # A temp of a live writer (this test process, not the booting one) is young: left alone.
    mine = state / f".t_002.json.{os.getpid()}.0123abcd.tmp"
    mine.write_bytes(b"{}")
    other = state / "notes.tmp"  # not the atomic-write naming: never touched
    other.write_bytes(b"x")
    with RuntimeProcess(root) as server:
        assert "removed 3 stale temp file(s)" in server.read_log()
    assert sorted(p.name for p in state.iterdir() if p.name.endswith(".tmp")) == sorted([mine.name, "notes.tmp"])
    assert not list(runtime_dir.glob("*.tmp"))
    assert orjson.loads((state / "t_001.json").read_bytes()) == {"v": 1}
    # Old enough, a live writer's temp goes too.
    old = time.time() - 7200
    os.utime(mine, (old, old))
    assert remove_stale_temp_files([state], now=time.time() + 1) == []  # our own pid: never
    assert mine.exists()


def _backups(root: Path, count: int, *, start_age_days: float = 0.0) -> list[Path]:
    folders = []
    now = time.time()
    for i in range(count):
        folder = root / f"agent-memory-20260101T{i:06d}000000Z"
        folder.mkdir(parents=True)
        (folder / "t_001.json").write_text("{}")
        age = now - (start_age_days + (count - i)) * 86400
        os.utime(folder, (age, age))
        folders.append(folder)
    return folders


def test_backup_retention_keeps_the_newest_n(tmp_path):
    folders = _backups(tmp_path / "b", 12)
    removed = prune_backups(tmp_path / "b", keep_last=5, max_age_days=0)
    assert len(removed) == 7
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [f.name for f in folders[-5:]]


def test_backup_retention_by_age_always_keeps_the_newest(tmp_path):
    folders = _backups(tmp_path / "b", 6, start_age_days=30)  # every folder is 31..36 days old
    prune_backups(tmp_path / "b", keep_last=0, max_age_days=7)
    assert [p.name for p in (tmp_path / "b").iterdir()] == [folders[-1].name]
    assert prune_backups(tmp_path / "b", keep_last=0, max_age_days=0) == []  # both rules off
