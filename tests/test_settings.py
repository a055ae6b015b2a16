"""Settings: one frozen table, strict parsing, env files, paths under ONLYTRADE_ROOT."""

from __future__ import annotations

import dataclasses

import pytest

from runtime_api.settings import Settings, SettingsError, read_env_file, settings_table


def load(**env):
    return Settings.from_env(env, env_files=False)


def test_defaults_favour_a_fresh_machine():
    s = load()
    assert s.runtime_data_mode == "replay" and s.strict_live_mode is False
    assert s.session_guard_enabled is False
    assert s.decision_model == "gpt-4o-mini" and s.llm_configured is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"REPLAY_SPEED": "fast"}, "REPLAY_SPEED"),
        ({"AGENT_COMMISSION_RATE": "nan"}, "AGENT_COMMISSION_RATE"),
        ({"RUNTIME_DATA_MODE": "livefile"}, "RUNTIME_DATA_MODE"),
        ({"STRICT_LIVE_MODE": "maybe"}, "STRICT_LIVE_MODE"),
        ({"STRICT_LIVE_MODE": "true"}, "STRICT_LIVE_MODE"),  # strict needs live_file
        ({"RUNTIME_DATA_MODE": "live_file", "STRICT_LIVE_MODE": "true", "MARKET_PROVIDER": "mock"}, "STRICT_LIVE_MODE"),
        ({"CONTROL_API_ALLOW_UNAUTHENTICATED": "true", "HOST": "0.0.0.0"}, "CONTROL_API_ALLOW_UNAUTHENTICATED"),
    ],
)
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(SettingsError) as err:
        load(**env)
    assert str(err.value).startswith(variable + ":")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "name, raw, attr, expected",
    [
        ("LIVE_FILE_REFRESH_MS", "10", "live_file_refresh_ms", 250),
        ("LIVE_FILE_STALE_MS", "5", "live_file_stale_ms", 10000),
        ("AGENT_RUNTIME_CYCLE_MS", "999999", "agent_runtime_cycle_ms", 120000),
        ("AGENT_DECISION_EVERY_BARS", "0", "agent_decision_every_bars", 1),
        ("REPLAY_SPEED", "5000", "replay_speed", 1000.0),
        ("AGENT_CANDIDATE_SYMBOL_LIMIT", "50", "agent_candidate_symbol_limit", 20),
        ("AGENT_PORTFOLIO_MAX_SYMBOL_CONCENTRATION_PCT", "0.01", "agent_portfolio_max_symbol_concentration_pct", 0.1),
        ("OPENING_PHASE_MAX_LOTS", "9", "opening_phase_max_lots", 3),
        ("MARKET_DAILY_HISTORY_DAYS", "5", "market_daily_history_days", 20),
        ("RUNTIME_DATA_MODE", "LIVE_FILE", "runtime_data_mode", "live_file"),
    ],
)
def test_clamps_and_case(name, raw, attr, expected):
    assert getattr(load(**{name: raw}), attr) == expected


def test_environment_wins_over_env_local_over_env(tmp_path):
    (tmp_path / ".env").write_text("PORT=1111\nOPENAI_MODEL=from-env\nAGENT_OPENAI_MODEL=decider\n")
    (tmp_path / ".env.local").write_text("# comment\nPORT=2222\nexport OPENAI_BASE_URL='http://x/v1'\nCONTROL_API_TOKEN=\"a\\nb\"\n")
    s = Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path), "PORT": "3333"})
    assert s.port == 3333
    assert s.openai_base_url == "http://x/v1" and s.openai_model == "from-env"
    assert s.decision_model == "decider"
    assert s.control_api_token == "a\nb"
    del_root = Settings.from_env({"ONLYTRADE_ROOT": str(tmp_path)})
    assert del_root.port == 2222


def test_paths_resolve_under_root(tmp_path):
    s = load(ONLYTRADE_ROOT=str(tmp_path), AGENT_MEMORY_DIR="mem", DECISION_AUDIT_BASE_DIR="/abs/audit")
    assert s.resolve(s.agent_memory_dir) == tmp_path / "mem"
    assert str(s.resolve(s.decision_audit_base_dir)) == "/abs/audit"
    assert s.daily_history_file == tmp_path / "data/replay/cn-a/history/frames.1d.111.json"
    assert load(LIVE_FRAMES_PATH="alias.json").live_frames_path_cn == "alias.json"


def test_settings_table_covers_every_field_and_marks_secrets():
    table = {row["env"]: row for row in settings_table()}
    assert len(table) == len(dataclasses.fields(Settings))
    assert table["CONTROL_API_TOKEN"]["secret"] and table["OPENAI_API_KEY"]["secret"]
    assert all(row["help"] for row in table.values())


def test_env_file_missing_is_empty(tmp_path):
    assert read_env_file(tmp_path / "nope") == {}
