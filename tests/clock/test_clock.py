"""One clock: simulated start, speed and shared anchor; refusal in strict live mode; every surface shows it."""

from __future__ import annotations

import time

import pytest

from runtime_api import clock
from runtime_api.settings import Settings, SettingsError

FRI_0945 = "2026-02-13T09:45:00+08:00"
FRI_0945_MS = 1770947100000


@pytest.fixture(autouse=True)
def fresh_clock():
    clock.reset()
    yield
    clock.reset()


def test_parse_instant_forms():
    assert clock.parse_instant(FRI_0945) == FRI_0945_MS
    assert clock.parse_instant("2026-02-13T09:45:00") == FRI_0945_MS  # naive is Shanghai
    assert clock.parse_instant("2026-02-13T01:45:00Z") == FRI_0945_MS
    assert clock.parse_instant(str(FRI_0945_MS)) == FRI_0945_MS
    with pytest.raises(ValueError):
        clock.parse_instant("tomorrow morning")


def test_simulated_clock_starts_at_the_setting_and_runs_at_speed():
    sim = clock.from_values(FRI_0945, 60.0)
    first = sim.now_ms()
    assert FRI_0945_MS <= first < FRI_0945_MS + 60_000
    time.sleep(0.2)
    advanced = sim.now_ms() - first
    assert 10_000 <= advanced < 40_000, advanced  # 0.2 s real x 60 = 12 s simulated (loaded CI: a bit more)
    assert sim.status()["simulated"] is True and sim.status()["speed"] == 60.0


def test_processes_with_one_anchor_share_one_timeline():
    anchor = str(int(time.time() * 1000) - 10_000)  # the simulated clock read 09:45 ten real seconds ago
    a = clock.from_values(FRI_0945, 2.0, anchor)
    time.sleep(0.05)
    b = clock.from_values(FRI_0945, 2.0, anchor)
    assert abs(a.now_ms() - b.now_ms()) < 50
    assert 19_900 <= a.now_ms() - FRI_0945_MS < 22_000


def test_wall_clock_by_default():
    assert clock.status()["simulated"] is False
    assert abs(clock.now_ms() - time.time() * 1000) < 1000


def test_strict_live_mode_refuses_a_simulated_clock_unless_rehearsal(tmp_path):
    env = {"ONLYTRADE_ROOT": str(tmp_path), "RUNTIME_DATA_MODE": "live_file", "STRICT_LIVE_MODE": "true", "ONLYTRADE_CLOCK": FRI_0945}
    with pytest.raises(SettingsError, match="ONLYTRADE_REHEARSAL"):
        Settings.from_env(env, env_files=False)
    ok = Settings.from_env({**env, "ONLYTRADE_REHEARSAL": "true"}, env_files=False)
    assert ok.onlytrade_clock == FRI_0945
    with pytest.raises(SettingsError, match="ONLYTRADE_CLOCK"):
        Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path), "ONLYTRADE_CLOCK": "9:45 friday"}, env_files=False)


def test_configure_installs_the_settings_clock(tmp_path):
    s = Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path), "ONLYTRADE_CLOCK": FRI_0945, "ONLYTRADE_CLOCK_SPEED": "1"}, env_files=False)
    clock.configure(s)
    assert abs(clock.now_ms() - FRI_0945_MS) < 5_000
    assert clock.now_iso().startswith("2026-02-13T01:45")
