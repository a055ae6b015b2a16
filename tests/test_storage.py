"""Atomic writes survive a crash at any instant; appends are whole lines; corrupt files are reported."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time

import orjson
import pytest

from runtime_api.state.storage import CorruptFileError, append_jsonl, read_json, write_json_atomic

WRITER = textwrap.dedent(
    """
    import sys
    from runtime_api.state.storage import write_json_atomic
    target = sys.argv[1]
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        # ~1 MB snapshots, like a long-running agent's memory file
        write_json_atomic(target, {"generation": i, "rows": [{"n": i, "pad": "x" * 200} for _ in range(4000)]})
    """
)


def test_sigkill_mid_write_never_leaves_a_torn_file(tmp_path):
    target = tmp_path / "snap.json"
    write_json_atomic(target, {"generation": 0, "rows": []})
    rng = random.Random(7)
    generations = []
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.01, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        snap = read_json(target)  # must parse: old or new, never torn
        rows = snap["rows"]
        assert all(r["n"] == snap["generation"] for r in rows)
        assert len(rows) in (0, 4000)
        generations.append(snap["generation"])
    assert max(generations) > 0


def test_corrupt_file_is_reported_not_defaulted(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": ')
    with pytest.raises(CorruptFileError) as err:
        read_json(bad)
    assert err.value.reason.startswith("invalid JSON")
    assert read_json(tmp_path / "missing.json", default={"d": 1}) == {"d": 1}


def test_appends_are_whole_lines(tmp_path):
    log = tmp_path / "a" / "log.jsonl"
    append_jsonl(log, {"i": 1})
    append_jsonl(log, [{"i": 2}, {"i": 3}])
    assert [orjson.loads(line)["i"] for line in log.read_bytes().splitlines()] == [1, 2, 3]
