"""Every error is JSON; unknown traders are 404; GETs are read-only and leak no paths or secrets."""

from __future__ import annotations

import hashlib
import os

import pytest
from starlette.routing import Route

from .conftest import TOKEN, assert_error, data_of, make_settings, open_api

pytestmark = pytest.mark.anyio

TRADER_READS = [
    "/api/status", "/api/account", "/api/positions", "/api/equity-history", "/api/positions/history",
    "/api/decisions/latest",
]


async def test_unknown_paths_and_methods_are_json(api):
    assert_error(await api.get("/api/nope"), 404, "not_found")
    assert_error(await api.get("/not-api"), 404, "not_found")
    assert_error(await api.client.delete("/api/traders"), 405, "method_not_allowed")
    assert_error(await api.get("/api/my-traders"), 404, "not_found")


async def test_bodies_are_validated_after_auth(api):
    headers = {"x-control-token": TOKEN, "content-type": "application/json"}
    bad = await api.client.post("/api/agent/runtime/control", content=b"{not json", headers=headers)
    body = assert_error(bad, 400, "invalid_json")
    assert "Traceback" not in bad.text and "message" in body
    huge = await api.client.post("/api/agent/runtime/control", content=b"[" + b"1," * 60000 + b"1]", headers=headers)
    assert_error(huge, 413, "payload_too_large")
    not_object = await api.client.post("/api/equity-history-batch", content=b"[1]", headers={"content-type": "application/json"})
    assert_error(not_object, 400, "invalid_json")


@pytest.mark.parametrize("path", TRADER_READS)
async def test_unknown_trader_is_404_not_another_traders_data(api, path):
    assert_error(await api.get(path, params={"trader_id": "t_999"}), 404, "trader_not_found")


async def test_memory_of_an_unknown_agent_is_node_404_and_a_new_agent_gets_its_initial_snapshot(api, root):
    assert_error(await api.get("/api/agent/memory", params={"trader_id": "t_999"}), 404, "memory_not_found")
    data_of(await api.control("/api/agents/t_002/register"))
    snap = data_of(await api.get("/api/agent/memory", params={"trader_id": "t_002"}))
    assert snap["trader_id"] == "t_002" and snap["stats"]["decisions"] == 0 and snap["holdings"] == []
    assert snap["stats"]["initial_balance"] == 100000 and snap["trader_name"]
    assert not (root / "data" / "agent-memory" / "t_002.json").exists()  # a read writes nothing


async def test_memory_of_a_corrupt_snapshot_is_409_not_a_fresh_agent(root):
    (root / "data" / "agent-memory").mkdir(parents=True)
    (root / "data" / "agent-memory" / "t_002.json").write_text('{"schema_version": "agent.memory.v2", "trader_id": ')
    handle, lifespan = await open_api(make_settings(root))
    try:
        data_of(await handle.control("/api/agents/t_002/register"))
        assert_error(await handle.get("/api/agent/memory", params={"trader_id": "t_002"}), 409, "agent_memory_corrupt")
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_trader_config_unknown_is_404(api):
    assert_error(await api.get("/api/traders/t_999/config"), 404, "trader_not_found")


async def test_equity_batch_is_bounded(api):
    ids = [f"t_{i:03d}" for i in range(51)]
    assert_error(await api.client.post("/api/equity-history-batch", json={"trader_ids": ids}), 400, "too_many_trader_ids")
    assert data_of(await api.client.post("/api/equity-history-batch", json={"trader_ids": ["t_999"]})) == {"histories": {}}


def _tree_digest(root) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if name.endswith(".lock"):
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


async def test_every_get_is_side_effect_free_and_leaks_no_path(api, root):
    for agent_id in ("t_001", "demo_momentum"):
        data_of(await api.control(f"/api/agents/{agent_id}/register"))
        data_of(await api.control(f"/api/agents/{agent_id}/start"))
    data_of(await api.control("/api/replay/runtime/control", {"action": "pause"}))
    data_of(await api.control("/api/agent/runtime/control", {"action": "step"}))
    data_of(await api.control("/api/agent/runtime/control", {"action": "pause"}))
    watcher = api.ctx.extra["observability"].watcher
    watcher.check()
    await watcher.flush()  # the pause's gate-events line is written now, not during the GETs
    before_tree = _tree_digest(root)
    before_state = (api.ctx.runtime.state(), api.ctx.svc.replay.status())

    gets = [r.path for r in api.app.routes if isinstance(r, Route) and getattr(r, "read_only", False) and "GET" in (r.methods or set())]
    assert len(gets) >= 25
    params = {"trader_id": "t_001", "symbol": "600519.SH", "day_key": "2026-02-13"}
    for template in gets:
        path = template.replace("{agent_id}", "t_001").replace("{trader_id}", "t_001").replace("{file_name}", "none.jpg")
        resp = await api.get(path, params=params)
        assert resp.status_code < 500, (path, resp.text)
        text = resp.text
        assert str(root) not in text, f"{path} leaks an absolute path"
        assert TOKEN not in text, f"{path} leaks the control token"
        if resp.headers.get("content-type", "").startswith("application/json"):
            assert '"file_path"' not in text, path
    assert _tree_digest(root) == before_tree
    assert (api.ctx.runtime.state(), api.ctx.svc.replay.status()) == before_state


async def test_unexpected_failure_is_json_500_without_traceback(api, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /srv/onlytrade/data")

    import httpx

    api.ctx.svc.market.get_frames = broken
    # Starlette re-raises after rendering the 500 so the server can log it; a real server sends the body.
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        resp = await client.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "1m"})
    body = assert_error(resp, 500, "internal_error")
    assert "Traceback" not in resp.text and "secret internals" not in resp.text and "/srv" not in resp.text
    assert body["message"]
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)  # the log has it


async def test_an_unexpected_failure_is_measured_and_carries_a_request_id(api):
    """The cache and metrics layers sit outside Starlette's error layer (app.RuntimeApp): the JSON
    500 still passes them, so it is counted, tagged and never marked cacheable."""
    import httpx

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    api.ctx.svc.market.get_frames = broken
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        resp = await client.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "1m", "limit": "7"})
        again = await client.get("/api/market/frames", params={"symbol": "600519.SH", "interval": "1m", "limit": "7"})
        metrics = (await client.get("/metrics")).text
    for r in (resp, again):  # never kept: the second one failed afresh
        assert_error(r, 500, "internal_error")
        assert r.headers["cache-control"] == "no-store" and "etag" not in r.headers
        assert r.headers["x-request-id"].startswith("req_")
    assert resp.headers["x-request-id"] != again.headers["x-request-id"]
    assert 'route="/api/market/frames",status="500"} 2.0' in metrics
