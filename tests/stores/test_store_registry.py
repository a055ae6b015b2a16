"""Manifests and the agent registry (ports agentRegistryStore, plus W3/W4/W5 fixes)."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import pytest

from runtime_api.errors import ApiError
from runtime_api.manifests import discover, load_manifest, market_of
from runtime_api.registry import AgentRegistry
from runtime_api.state.storage import CorruptFileError


def write_manifest(agents_dir: Path, folder_name: str, **override) -> None:
    folder = agents_dir / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"agent_id": folder_name, "agent_name": f"Agent {folder_name}", "ai_model": "qwen", "exchange_id": "sim-cn", **override}
    (folder / "agent.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    agents = tmp_path / "agents"
    agents.mkdir()
    return agents, tmp_path / "data" / "agents" / "registry.json"


def assert_api_error(exc_info, status: int, code: str) -> None:
    assert (exc_info.value.status, exc_info.value.code) == (status, code)


# ---- ported from agentRegistryStore.test.mjs ---------------------------------------------------


def test_discovery_finds_manifests_sorted_and_normalised(paths):
    agents, registry_path = paths
    write_manifest(agents, "t_001", agent_name="HS300 Momentum")
    write_manifest(
        agents, "t_002", agent_name="Value Rebound", avatar_file="avatar.jpg", avatar_hd_file="avatar-hd.jpg",
        trading_style=" mean_reversion ", risk_profile=" balanced ", personality=" 冷静耐心，偏逆向思考。 ",
        style_prompt_cn=" 弱势分批吸纳，强势分批止盈。 ",
        stock_pool=["600519.SH", "601318.sh", "invalid", "300750.SZ", "600519.SH"],
    )
    available = AgentRegistry(agents, registry_path).available()
    assert [a["agent_id"] for a in available] == ["t_001", "t_002"]
    second = available[1]
    assert second["avatar_file"] == "avatar.jpg"
    assert second["avatar_hd_file"] == "avatar-hd.jpg"
    assert second["trading_style"] == "mean_reversion"
    assert second["risk_profile"] == "balanced"
    assert second["personality"] == "冷静耐心，偏逆向思考。"
    assert second["style_prompt_cn"] == "弱势分批吸纳，强势分批止盈。"
    assert second["stock_pool"] == ["600519.SH", "601318.SH", "300750.SZ"]
    assert available[0]["avatar_url"] is None and available[0]["trading_style"] is None


def test_register_persists_and_unregister_removes(paths):
    agents, registry_path = paths
    write_manifest(agents, "t_001")
    registry = AgentRegistry(agents, registry_path)
    assert not registry_path.exists()  # a missing file is empty and not written until a mutation
    registered = registry.register("t_001")
    assert (registered["agent_id"], registered["status"], registered["show_in_lobby"]) == ("t_001", "stopped", True)
    assert registered["available"] is True and registered["agent_name"] == "Agent t_001"
    on_disk = json.loads(registry_path.read_text())
    assert on_disk["schema_version"] == "agent.registry.v1"
    assert isinstance(on_disk["agents"]["t_001"]["registered_at"], str)

    result = registry.unregister("t_001")
    assert result == {"agent_id": "t_001", "removed": True, "running_agent_ids": []}
    assert "t_001" not in json.loads(registry_path.read_text())["agents"]
    assert registry.unregister("t_001")["removed"] is False


def test_start_stop_are_idempotent(paths):
    agents, registry_path = paths
    write_manifest(agents, "t_001")
    stamps = iter(f"2026-02-13T01:50:{s:02d}.000Z" for s in range(10))
    registry = AgentRegistry(agents, registry_path, clock=lambda: next(stamps))
    registry.register("t_001")
    started = registry.start("t_001")
    assert started["status"] == "running" and isinstance(started["last_started_at"], str)
    assert "agent_name" not in started
    assert registry.start("t_001")["last_started_at"] == started["last_started_at"]
    stopped = registry.stop("t_001")
    assert stopped["status"] == "stopped" and isinstance(stopped["last_stopped_at"], str)
    assert registry.stop("t_001")["last_stopped_at"] == stopped["last_stopped_at"]


def test_register_missing_manifest_is_rejected(paths):
    registry = AgentRegistry(*paths)
    with pytest.raises(ApiError) as exc_info:
        registry.register("t_missing")
    assert_api_error(exc_info, 404, "agent_manifest_not_found")


def test_reconcile_drops_registrations_whose_folder_was_deleted(paths):
    agents, registry_path = paths
    write_manifest(agents, "t_001")
    write_manifest(agents, "t_002")
    registry = AgentRegistry(agents, registry_path)
    registry.register("t_001")
    registry.register("t_002")
    shutil.rmtree(agents / "t_002")
    assert registry.reconcile()["removed"] == ["t_002"]
    ids = [a["agent_id"] for a in registry.registered()]
    assert "t_001" in ids and "t_002" not in ids
    assert "t_002" not in json.loads(registry_path.read_text())["agents"]


# ---- errors, validation, discovery logging ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "agent_id", "status", "code"),
    [
        ("register", "T_001", 400, "invalid_agent_id"),
        ("register", "../etc", 400, "invalid_agent_id"),
        ("unregister", "x", 400, "invalid_agent_id"),
        ("start", "t_404", 409, "agent_not_registered"),
        ("stop", "t_404", 409, "agent_not_registered"),
    ],
)
def test_registry_errors(paths, method, agent_id, status, code):
    with pytest.raises(ApiError) as exc_info:
        getattr(AgentRegistry(*paths), method)(agent_id)
    assert_api_error(exc_info, status, code)


def test_invalid_manifests_are_skipped_and_logged(paths, caplog):
    agents, _ = paths
    write_manifest(agents, "t_001")
    write_manifest(agents, "t_002", agent_id="t_999")
    write_manifest(agents, "t_003", ai_model="  ")
    (agents / "t_004").mkdir()
    (agents / "t_004" / "agent.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="onlytrade.registry"):
        found = discover(agents)
    assert list(found) == ["t_001"]
    text = caplog.text
    assert "does not match folder" in text and "ai_model" in text and "invalid JSON" in text
    with pytest.raises(ApiError) as exc_info:
        load_manifest(agents, "t_004")
    assert_api_error(exc_info, 404, "agent_manifest_not_found")


def test_us_manifest_pool_and_market(paths):
    agents, _ = paths
    write_manifest(agents, "us_001", exchange_id="sim-us", stock_pool=["aapl", "MSFT", "600519.SH", "TOOLONGX"])
    manifest = load_manifest(agents, "us_001")
    assert manifest["stock_pool"] == ["AAPL", "MSFT"]
    assert market_of(manifest) == "US" and market_of({"exchange_id": "sim-cn"}) == "CN-A"


# ---- W3: a corrupt registry is never overwritten ---------------------------------------------


def test_corrupt_registry_raises_and_file_is_untouched(paths):
    agents, registry_path = paths
    write_manifest(agents, "t_001")
    registry_path.parent.mkdir(parents=True)
    registry_path.write_bytes(b'{"schema_version": "agent.registry.v1", "agents": {')
    before = registry_path.read_bytes()
    with pytest.raises(CorruptFileError):
        AgentRegistry(agents, registry_path)
    assert registry_path.read_bytes() == before


def test_registry_corrupted_after_load_refuses_mutations(paths):
    agents, registry_path = paths
    write_manifest(agents, "t_001")
    registry = AgentRegistry(agents, registry_path)
    registry.register("t_001")
    registry_path.write_bytes(b"[garbage")
    with pytest.raises(CorruptFileError):
        registry.start("t_001")
    assert registry_path.read_bytes() == b"[garbage"
    assert registry.get("t_001")["status"] == "stopped"  # the in-memory state survives


# ---- the Node registry file --------------------------------------------------------------------


def test_node_registry_loads_and_round_trips_byte_identical(root, fixtures_dir):
    registry_path = root / "data" / "agents" / "registry.json"
    registry_path.parent.mkdir(parents=True)
    shutil.copyfile(fixtures_dir / "node-registry.json", registry_path)
    original = registry_path.read_bytes()
    registry = AgentRegistry(root / "agents", registry_path)

    assert [a["agent_id"] for a in registry.registered()] == ["t_001", "t_003"]
    assert registry.unavailable_ids() == ["t_017", "t_018", "t_019", "t_020", "t_021", "t_022"]
    assert registry.running_ids() == ["t_001"]
    assert registry.record("t_017")["status"] == "running"  # kept on load, just not available
    assert registry.get("t_001")["last_started_at"] == "2026-02-17T22:51:19.460Z"

    registry.start("t_001")  # already running: nothing is written
    assert registry_path.read_bytes() == original
    registry.register("t_002")
    assert registry_path.read_bytes() != original
    registry.unregister("t_002")
    assert registry_path.read_bytes() == original


def test_seed_only_when_no_registry_file(paths):
    agents, registry_path = paths
    for agent_id in ("t_001", "t_002", "t_003"):
        write_manifest(agents, agent_id)
    registry = AgentRegistry(agents, registry_path)
    assert registry.seed(["t_002", "t_404"]) == ["t_002"]
    assert registry.running_ids() == ["t_002"]
    assert registry.seed("all") == []  # a registry file exists now
    other = registry_path.with_name("other.json")
    assert AgentRegistry(agents, other).seed("all") == ["t_001", "t_002", "t_003"]
    assert json.loads(other.read_text())["agents"]["t_003"]["status"] == "running"


def test_version_moves_on_every_change_and_rescan(paths):
    agents, registry_path = paths
    write_manifest(agents, "t_001")
    registry = AgentRegistry(agents, registry_path)
    v0 = registry.version
    registry.register("t_001")
    registry.start("t_001")
    v1 = registry.version
    assert v1 > v0
    registry.start("t_001")
    assert registry.version == v1
    assert registry.rescan() is False and registry.version == v1
    write_manifest(agents, "t_001", agent_name="Renamed")
    assert registry.rescan() is True and registry.version > v1
    assert registry.get("t_001")["agent_name"] == "Renamed"
    assert registry.lobby_ids() == ["t_001"]


# ---- W4: concurrent mutations lose nothing ----------------------------------------------------


def test_concurrent_mutations_from_threads_lose_no_update(paths):
    agents, registry_path = paths
    ids = [f"t_{i:03d}" for i in range(24)]
    for agent_id in ids:
        write_manifest(agents, agent_id)
    first = AgentRegistry(agents, registry_path)
    second = AgentRegistry(agents, registry_path)  # a second process on the same file
    errors: list[BaseException] = []

    def work(registry: AgentRegistry, agent_id: str) -> None:
        try:
            registry.register(agent_id)
            registry.start(agent_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(first if i % 2 else second, a)) for i, a in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    on_disk = json.loads(registry_path.read_text())["agents"]
    assert sorted(on_disk) == ids
    assert all(r["status"] == "running" for r in on_disk.values())
    assert second.reload() in (True, False) and sorted(second.running_ids()) == ids
