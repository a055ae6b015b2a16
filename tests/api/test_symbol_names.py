"""/api/symbols names each symbol as the Node runtime did: the pack's table in replay, the job's file live."""

from __future__ import annotations

import pytest

from data_jobs import symbol_names
from data_jobs.vendor import RecordedVendor

from .conftest import make_settings, open_api
from .live_files import write_live_files

pytestmark = pytest.mark.anyio

NODE_NAMES = {  # the Node runtime's table (node-chat-bets.md §5) for the 14 symbols of the pack
    "002050.SZ": "三花智控", "002131.SZ": "利欧股份", "002195.SZ": "岩山科技", "002342.SZ": "巨力索具",
    "300058.SZ": "蓝色光标", "300059.SZ": "东方财富", "600519.SH": "贵州茅台", "600089.SH": "特变电工",
    "600986.SH": "浙文互联", "601899.SH": "紫金矿业", "601318.SH": "中国平安", "600036.SH": "招商银行",
    "300750.SZ": "宁德时代", "000858.SZ": "五粮液",
}
FIXTURES = __import__("pathlib").Path(__file__).parents[1] / "data_jobs" / "fixtures" / "akshare"


async def symbols(api, **params) -> list[dict]:
    resp = await api.get("/api/symbols", params=params)
    assert resp.status_code == 200
    return resp.json()["symbols"]


async def test_replay_names_every_pack_symbol_like_node(api):
    rows = await symbols(api)  # nobody registered: the replay pack's symbols
    assert {r["symbol"] for r in rows} == set(NODE_NAMES)
    assert {r["symbol"]: r["name"] for r in rows} == NODE_NAMES
    assert all(r["category"] == "stock" for r in rows)
    await api.control("/api/agents/t_001/register")
    pool = await symbols(api, trader_id="t_001")
    assert [r["name"] for r in pool][:4] == ["利欧股份", "蓝色光标", "巨力索具", "贵州茅台"]


async def test_a_symbol_without_a_name_shows_its_code(root):
    table = root / "data/replay/cn-a/symbol_names.json"
    table.write_text('{"schema_version": "market.symbol_names.v1", "names": {"600519.SH": "贵州茅台"}}', encoding="utf-8")
    api, lifespan = await open_api(make_settings(root))
    try:
        names = {r["symbol"]: r["name"] for r in await symbols(api)}
        assert names["600519.SH"] == "贵州茅台" and names["601318.SH"] == "601318.SH"
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_live_mode_reads_the_names_the_job_wrote_never_the_replay_table(root):
    write_live_files(root, symbols=("600519.SH", "601899.SH"))
    settings = make_settings(root, RUNTIME_DATA_MODE="live_file")
    api, lifespan = await open_api(settings)
    try:  # before the job ran: codes only (the replay table is not live data)
        names = {r["symbol"]: r["name"] for r in await symbols(api)}
        assert len(names) == 14 and all(name == symbol for symbol, name in names.items())
        assert api.ctx.svc.names.status()["last_error"] == "file_not_found"
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)

    assert symbol_names.run(settings, vendor=RecordedVendor(FIXTURES)).status == "ok"
    api, lifespan = await open_api(settings)
    try:
        assert {r["symbol"]: r["name"] for r in await symbols(api)} == NODE_NAMES  # the recorded spot list has them all
    finally:
        await api.client.aclose()
        await lifespan.__aexit__(None, None, None)
