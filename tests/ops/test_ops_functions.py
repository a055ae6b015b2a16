"""The plain functions behind the CLI, called directly (no runtime needed)."""

from __future__ import annotations

import os

import pytest
from filelock import FileLock

from ops import backups, client, control, probe, resets, stream
from ops.cli import normalize_argv
from ops.exits import OpsError
from ops.local import instance_lock_path, load_settings, lock_holders

# ---- where the runtime is, and the token -----------------------------------------------------


def test_token_precedence_is_the_runtimes_own(tmp_path):
    (tmp_path / ".env.local").write_text("CONTROL_API_TOKEN='from-env-local'\nPORT=18080\n")
    (tmp_path / ".env").write_text("CONTROL_API_TOKEN=from-env-file\nPORT=9999\n")
    env = {"ONLYTRADE_ROOT": str(tmp_path)}
    assert client.discover_token(env) == ("from-env-local", "CONTROL_API_TOKEN (.env.local)")
    assert client.discover_token({**env, "CONTROL_API_TOKEN": "from-process"})[0] == "from-process"
    assert client.discover_token({**env, "ONLYTRADE_CONTROL_TOKEN": "ops", "CONTROL_API_TOKEN": "x"}) == ("ops", "ONLYTRADE_CONTROL_TOKEN")
    (tmp_path / ".env.local").unlink()
    assert client.discover_token(env)[0] == "from-env-file"
    assert client.discover_token({"ONLYTRADE_ROOT": str(tmp_path / "nowhere")}) == (None, None)


def test_api_base_defaults_to_the_runtimes_port(tmp_path):
    assert client.api_base({"ONLYTRADE_ROOT": str(tmp_path)}) == "http://127.0.0.1:8080"
    (tmp_path / ".env.local").write_text("PORT=18080\n")
    assert client.api_base({"ONLYTRADE_ROOT": str(tmp_path)}) == "http://127.0.0.1:18080"
    assert client.api_base({"ONLYTRADE_ROOT": str(tmp_path), "PORT": "7000"}) == "http://127.0.0.1:7000"
    assert client.api_base({"ONLYTRADE_ROOT": str(tmp_path), "ONLYTRADE_API_BASE": "http://10.0.0.5:18080/"}) == "http://10.0.0.5:18080"
    assert client.api_port("http://h:81") == 81 and client.api_port("https://h/onlytrade/api") == 443
    assert client.is_local("http://127.0.0.1:8080") and not client.is_local("http://10.0.0.5:8080")


def test_the_token_never_appears_in_an_error_message():
    c = client.Client("http://127.0.0.1:1", "s3cret-token", token_source="ONLYTRADE_CONTROL_TOKEN")
    reply = client.Reply(401, {"success": False, "error": "unauthorized_control_token"})
    with pytest.raises(OpsError) as err:
        c.expect(reply, "pause")
    assert err.value.code == 1 and "s3cret-token" not in err.value.message
    assert "from ONLYTRADE_CONTROL_TOKEN was refused" in err.value.message


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["status", "--json"], ["--json", "status"]),
        (["--json", "status"], ["--json", "status"]),
        (["help"], ["--help"]),
        (["akshare-run-once", "--", "--json"], ["akshare-run-once", "--", "--json"]),
    ],
)
def test_normalize_argv(argv, expected):
    assert normalize_argv(argv) == expected


# ---- small parsers --------------------------------------------------------------------------


def test_on_off_scopes_and_factory_bodies():
    assert [control.parse_on_off(v) for v in ("on", "TRUE", "1", "off", "false", "0")] == [True] * 3 + [False] * 3
    assert resets.scope_of(full=False, positions_only=True, stats_only=False) == "positions"
    assert resets.factory_body(warmup=True, cursor=None, dry_run=True) == {"confirm": "RESET", "dry_run": True, "use_warmup": True}
    assert resets.factory_body(warmup=False, cursor=7, dry_run=False) == {"confirm": "RESET", "dry_run": False, "cursor_index": 7}
    for bad in (lambda: control.parse_on_off("maybe"), lambda: resets.factory_body(warmup=False, cursor=-1, dry_run=False),
                lambda: resets.scope_of(full=True, positions_only=False, stats_only=True)):
        with pytest.raises(OpsError) as err:
            bad()
        assert err.value.code == 2


def test_destructive_functions_refuse_before_touching_the_client():
    # The client is never used: a refusal happens before any request.
    with pytest.raises(OpsError) as err:
        resets.factory_reset(None, cursor=5)
    assert err.value.code == 2 and "cursor 5" in err.value.message and err.value.detail["would_send"]["dry_run"] is False
    with pytest.raises(OpsError) as err:
        resets.agent_reset(None, "t_007", "positions")
    assert err.value.code == 2 and "t_007" in err.value.message and "into cash" in err.value.message


def test_stream_freshness_labels():
    assert [stream.freshness_label(v) for v in (None, 0, 60_000, 60_001, 300_000, 300_001)] == \
        ["none", "fresh", "fresh", "warm", "warm", "stale"]


# ---- probe ----------------------------------------------------------------------------------

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1
   3: 0100007F:46A0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4 1 0 100 0 0 10 0
"""


def test_listeners_are_counted_from_the_kernel_table(tmp_path):
    lines = PROC_NET_TCP.splitlines()[1:]
    assert probe.count_listeners(lines, 8080) == 2  # two LISTEN rows; the ESTABLISHED one is not a listener
    assert probe.count_listeners(lines, 18080) == 1
    table = tmp_path / "tcp"
    table.write_text(PROC_NET_TCP)
    assert probe.proc_listeners(8080, (str(table), str(tmp_path / "missing"))) == 2
    assert probe.proc_listeners(8080, (str(tmp_path / "missing"),)) is None


@pytest.mark.skipif(not os.path.isfile("/proc/locks"), reason="no /proc/locks on this system")
def test_lock_holders_reads_proc_locks_without_taking_the_lock(tmp_path):
    path = tmp_path / "runtime.instance.lock"
    lock = FileLock(str(path), timeout=0)
    lock.acquire()
    try:
        assert lock_holders(path) == [os.getpid()]
    finally:
        lock.release()
    assert lock_holders(path) == []
    assert lock_holders(tmp_path / "missing.lock") is None


# ---- restore-backup -------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    settings = load_settings({"ONLYTRADE_ROOT": str(tmp_path)})
    memory = tmp_path / "data" / "agent-memory"
    memory.mkdir(parents=True)
    (memory / "t_001.json").write_bytes(b'{"trader_id": "t_001", "v": "now"}\n')
    (memory / "t_002.json").write_bytes(b'{"trader_id": "t_002", "v": "untouched"}\n')
    backup = tmp_path / "data" / "backups" / "agent-memory-20260101T000000000000Z"
    backup.mkdir(parents=True)
    (backup / "t_001.json").write_bytes(b'{"trader_id": "t_001", "v": "before the reset"}\n')
    (backup / "t_003.json").write_bytes(b'{"trader_id": "t_003", "v": "had a file"}\n')
    return settings, memory, backup


def test_restore_plans_refuses_and_restores(store):
    settings, memory, backup = store
    name = backup.name
    dry = backups.restore(settings, name, dry_run=True)
    assert [(f["agent_id"], f["action"]) for f in dry.data["files"]] == [("t_001", "replace"), ("t_003", "create")]
    assert (memory / "t_001.json").read_bytes() == b'{"trader_id": "t_001", "v": "now"}\n'

    with pytest.raises(OpsError) as err:
        backups.restore(settings, name)
    assert err.value.code == 2 and "replace data/agent-memory/t_001.json; create data/agent-memory/t_003.json" in err.value.message

    held = FileLock(str(instance_lock_path(settings)), timeout=0)
    instance_lock_path(settings).parent.mkdir(parents=True, exist_ok=True)
    held.acquire()
    try:
        with pytest.raises(OpsError) as err:
            backups.restore(settings, name, confirm=True)
        assert err.value.code == 2 and "runtime is running" in err.value.message
    finally:
        held.release()

    done = backups.restore(settings, f"data/backups/{name}", confirm=True)
    assert done.code == 0 and done.data["restored"] == ["t_001", "t_003"]
    for agent in ("t_001", "t_003"):
        assert (memory / f"{agent}.json").read_bytes() == (backup / f"{agent}.json").read_bytes()
    assert (memory / "t_002.json").read_bytes() == b'{"trader_id": "t_002", "v": "untouched"}\n'
    pre = settings.root / done.data["pre_restore_backup"]
    assert sorted(p.name for p in pre.iterdir()) == ["t_001.json"]  # t_003 had no file to keep
    assert (pre / "t_001.json").read_bytes() == b'{"trader_id": "t_001", "v": "now"}\n'
    listed = backups.list_backups(settings).data
    assert [r["backup"] for r in listed] == sorted((r["backup"] for r in listed), reverse=True) and len(listed) == 2


@pytest.mark.parametrize(
    "content, needle",
    [
        (b'{"trader_id": "t_001"', "not usable: invalid JSON"),
        (b'{"trader_id": "t_009"}', "not a memory snapshot of t_001"),
        (b"[1, 2]", "not a memory snapshot of t_001"),
    ],
)
def test_restore_validates_every_file_before_writing(store, content, needle):
    settings, memory, backup = store
    (backup / "t_001.json").write_bytes(content)
    with pytest.raises(OpsError) as err:
        backups.restore(settings, backup.name, confirm=True)
    assert err.value.code == 2 and needle in err.value.message
    assert not (memory / "t_003.json").exists()


def test_restore_of_an_unknown_or_empty_backup_is_a_usage_error(store, tmp_path):
    settings, _, _ = store
    (tmp_path / "empty").mkdir()
    for target, needle in (("agent-memory-nope", "no backup folder"), (str(tmp_path / "empty"), "holds no agent snapshot")):
        with pytest.raises(OpsError) as err:
            backups.restore(settings, target, dry_run=True)
        assert err.value.code == 2 and needle in err.value.message
