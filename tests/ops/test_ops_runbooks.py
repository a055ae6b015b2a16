"""The runbooks stay true: the settings table is generated, and every command they show exists."""

from __future__ import annotations

import re

import typer

from ops import settings_doc
from ops.cli import app
from runtime_api.settings import settings_table

RUNBOOKS = settings_doc.RUNBOOK.parent
COMMANDS = typer.main.get_command(app).commands


def test_settings_runbook_table_matches_settings_table():
    text = settings_doc.RUNBOOK.read_text(encoding="utf-8")
    assert settings_doc.current_block(text) == settings_doc.block(), "run: python -m ops.settings_doc --write"
    assert settings_doc.main(["--check"]) == 0
    rows = {line.split("`")[1]: line for line in text.splitlines() if line.startswith("| `")}
    for row in settings_table():
        assert row["env"] in rows, f"{row['env']} missing from settings.md"
        if row["secret"]:
            assert "| *(secret)* |" in rows[row["env"]]


def test_a_secret_default_is_never_shown():
    rows = [{"env": "X_KEY", "default": "sk-live-abc", "help": "a | key", "secret": True},
            {"env": "X_FLAG", "default": False, "help": "flag", "secret": False}]
    text = settings_doc.table(rows)
    assert "sk-live-abc" not in text and "a \\| key" in text and "`false`" in text


def test_settings_doc_check_fails_when_the_runbook_is_stale(monkeypatch, tmp_path):
    stale = tmp_path / "settings.md"
    stale.write_text(f"# Settings\n\n{settings_doc.START}\n| old |\n{settings_doc.END}\n")
    monkeypatch.setattr(settings_doc, "RUNBOOK", stale)
    assert settings_doc.main(["--check"]) == 1
    assert settings_doc.main(["--write"]) == 0 and settings_doc.main(["--check"]) == 0
    assert "| `CONTROL_API_TOKEN` | *(secret)* |" in stale.read_text()


def test_every_command_the_runbooks_show_exists():
    used = set()
    for page in RUNBOOKS.glob("*.md"):
        for name in re.findall(r"onlytrade-ops ([a-z][a-z0-9-]+)", page.read_text(encoding="utf-8")):
            used.add((page.name, name))
    unknown = sorted((page, name) for page, name in used if name not in COMMANDS)
    assert not unknown
    assert {name for _, name in used} >= {"live-preflight", "agent-reset", "factory-reset", "restore-backup", "kill-on",
                                          "kill-off", "continuity-snapshot", "continuity-verify", "health-restart-probe"}


def test_the_command_reference_lists_every_command():
    listed = set()
    for line in (RUNBOOKS / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            first_cell = re.split(r"(?<!\\)\|", line)[1]
            for chunk in re.findall(r"`([^`]+)`", first_cell):
                listed |= set(chunk.split()[0].split("\\|"))  # `agent-start\|agent-stop <id>`
    missing = sorted(name for name, cmd in COMMANDS.items() if not cmd.hidden and name not in listed)
    assert not missing


def test_links_between_runbooks_resolve():
    for page in RUNBOOKS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).is_file(), (page.name, target)
