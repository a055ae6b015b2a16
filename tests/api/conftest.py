"""In-process API tests: the real app (lifespan included) over httpx's ASGI transport."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from runtime_api.app import create_app
from runtime_api.settings import Settings

TOKEN = "api-test-token-0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_settings(root: Path, **env: str) -> Settings:
    base = {
        "ONLYTRADE_ROOT": str(root),
        "CONTROL_API_TOKEN": TOKEN,
        "AGENT_LLM_ENABLED": "false",
        "REPLAY_SPEED": "0.1",  # the background replay barely moves: tests drive cycles explicitly
    }
    return Settings.from_env({**base, **env}, env_files=False)


class Api:
    def __init__(self, app, client: httpx.AsyncClient):
        self.app = app
        self.client = client
        self.ctx = app.state.ctx

    async def get(self, path: str, **kw) -> httpx.Response:
        return await self.client.get(path, **kw)

    async def control(self, path: str, body: dict | None = None, token: str | None = TOKEN) -> httpx.Response:
        headers = {"x-control-token": token} if token is not None else {}
        return await self.client.post(path, json=body or {}, headers=headers)


async def open_api(settings: Settings):
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    return Api(app, client), lifespan


@pytest.fixture
async def api(root):
    handle, lifespan = await open_api(make_settings(root))
    try:
        yield handle
    finally:
        await handle.client.aclose()
        await lifespan.__aexit__(None, None, None)


def data_of(resp: httpx.Response, status: int = 200):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is True, body
    return body["data"]


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["success"] is False and body["error"] == code, body
    return body


def two_agent_root(tmp_path: Path, repo: Path) -> Path:
    """The reference's agentManagementRoutes fixture: t_001 with avatars and a 10-symbol pool, and t_002."""
    root = tmp_path / "root"
    (root / "agents").mkdir(parents=True)
    for agent_id in ("t_001", "t_002"):
        shutil.copytree(repo / "agents" / agent_id, root / "agents" / agent_id)
    manifest = (root / "agents" / "t_001" / "agent.json")
    import orjson

    m = orjson.loads(manifest.read_bytes())
    m.update(avatar_file="avatar.jpg", avatar_hd_file="avatar-hd.jpg")
    manifest.write_bytes(orjson.dumps(m))
    (root / "agents" / "t_001" / "avatar.jpg").write_bytes(b"\xff\xd8\xff\xe0 fake jpeg bytes")
    (root / "agents" / "t_001" / "avatar-hd.jpg").write_bytes(b"\xff\xd8\xff\xe0 fake hd jpeg bytes")
    shutil.copytree(repo / "data" / "replay", root / "data" / "replay")
    return root
