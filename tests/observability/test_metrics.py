"""GET /metrics: parses with prometheus_client, moves when a cycle runs, labels routes by template,
guards access by METRICS_ACCESS, and a scrape opens no file."""

from __future__ import annotations

import sys

import anyio
import pytest
from obs_helpers import AUTH, TOKEN, app_client, make_settings, samples, total

pytestmark = pytest.mark.anyio
AGENT = "demo_momentum"


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _start_agent(c) -> None:
    for verb in ("register", "start"):
        assert (await c.post(f"/api/agents/{AGENT}/{verb}", headers=AUTH)).status_code == 200


async def test_metrics_parse_and_move_when_a_cycle_runs(root):
    async with app_client(make_settings(root, AGENT_FLAT_ENTRY_MAX_RSI="100")) as c:
        await _start_agent(c)
        before = samples((await c.get("/metrics")).text)
        assert total(before, "onlytrade_decisions_total", agent=AGENT) == 0
        for _ in range(5):  # the flat-entry starter buy fires on the fourth cycle of this replay
            r = await c.post("/api/replay/runtime/control", json={"action": "step", "bars": 10}, headers=AUTH)
            assert r.status_code == 200, r.text
        r = await c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        after = samples(r.text)
        logged = (await c.get(f"/api/decisions/latest?trader_id={AGENT}&limit=10")).json()["data"]

    assert total(after, "onlytrade_decision_rounds_total", result="successful") == 5
    decisions = total(after, "onlytrade_decisions_total", agent=AGENT)
    assert decisions == 5
    sources = {dict(lab)["source"] for (n, lab) in after if n == "onlytrade_decisions_total"}
    assert sources <= {"llm", "heuristic", "readiness_gate"} and sources
    assert total(after, "onlytrade_readiness_total", agent=AGENT) == 5
    # fills and fees match the decision records (the flat-entry starter buy makes at least one)
    heads = [d["decisions"][0] for d in logged]
    fills = [h for h in heads if h["executed"] and h["action"] in ("buy", "sell")]
    assert len(fills) >= 1
    assert total(after, "onlytrade_fills_total", agent=AGENT) == len(fills)
    assert total(after, "onlytrade_fees_total", agent=AGENT) == pytest.approx(sum(h["fee_paid"] for h in fills))
    assert total(after, "onlytrade_snapshot_save_duration_seconds_count") == 5
    assert total(after, "onlytrade_snapshot_save_failures_total") == 0
    # HTTP by route template, never the raw path
    assert total(after, "onlytrade_http_requests_total", route="/api/agents/{agent_id}/start", method="POST", status="200") == 1
    assert not any("demo_momentum" in dict(lab).get("route", "") for (_, lab) in after)
    assert after[("onlytrade_kill_switch_active", ())] == 0
    assert ("process_resident_memory_bytes", ()) in after and ("process_open_fds", ()) in after
    assert ("onlytrade_event_loop_lag_seconds", (("stat", "p99"),)) in after
    assert total(after, "onlytrade_build_info") == 1


async def test_kill_switch_pause_and_auth_failures_show(root):
    async with app_client(make_settings(root)) as c:
        assert (await c.post("/api/agent/runtime/kill-switch", json={"action": "activate", "reason": "drill"}, headers=AUTH)).status_code == 200
        assert (await c.post("/api/agent/runtime/control", json={"action": "pause"}, headers={"x-control-token": "wrong"})).status_code == 401
        assert (await c.get("/api/traders/nobody_here/config")).status_code == 404
        assert (await c.get("/no/such/path/123")).status_code == 404
        values = samples((await c.get("/metrics")).text)
    assert values[("onlytrade_kill_switch_active", ())] == 1
    assert values[("onlytrade_kill_switch_reason", (("reason", "drill"),))] == 1
    assert values[("onlytrade_kill_switch_source", (("source", "api"),))] == 1
    assert values[("onlytrade_runtime_held", (("reason", "kill_switch"),))] == 1
    assert total(values, "onlytrade_auth_failures_total", reason="unauthorized_control_token") == 1
    assert total(values, "onlytrade_http_requests_total", route="/api/traders/{trader_id}/config", status="404") == 1
    assert total(values, "onlytrade_http_requests_total", route="unmatched", status="404") == 1


@pytest.mark.parametrize("access, host, headers, status", [
    ("loopback", "127.0.0.1", {}, 200),
    ("loopback", "203.0.113.9", {}, 403),
    ("loopback", "127.0.0.1", {"x-forwarded-for": "203.0.113.9"}, 403),  # proxied: not a local scraper
    ("token", "203.0.113.9", {}, 401),
    ("token", "203.0.113.9", {"authorization": "Bearer wrong"}, 401),
    ("token", "203.0.113.9", {"authorization": f"Bearer {TOKEN}"}, 200),
    ("public", "203.0.113.9", {}, 200),
])
async def test_metrics_access(root, access, host, headers, status):
    async with app_client(make_settings(root, METRICS_ACCESS=access), client_host=host) as c:
        r = await c.get("/metrics", headers=headers)
    assert r.status_code == status, r.text
    if status != 200:
        assert r.json()["success"] is False and TOKEN not in r.text


async def test_metrics_token_setting_wins_over_control_token(root):
    async with app_client(make_settings(root, METRICS_ACCESS="token", METRICS_TOKEN="scrape-token-0123456789abcdef")) as c:
        assert (await c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})).status_code == 401
        assert (await c.get("/metrics", headers={"authorization": "Bearer scrape-token-0123456789abcdef"})).status_code == 200


async def test_a_scrape_opens_no_file_and_reads_no_snapshot(root):
    opened: list[str] = []
    watching = [False]

    def hook(event, args):
        if watching[0] and event == "open" and args and isinstance(args[0], (str, bytes)):
            path = args[0].decode() if isinstance(args[0], bytes) else args[0]
            if not path.startswith("/proc/"):  # the process collector reads procfs: not the disk
                opened.append(path)

    sys.addaudithook(hook)  # audit hooks cannot be removed; this one is inert outside the scrape
    async with app_client(make_settings(root)) as c:
        await _start_agent(c)
        await c.post("/api/replay/runtime/control", json={"action": "step"}, headers=AUTH)
        await anyio.sleep(1.2)  # the watcher appends the gate change of the start now, not during the scrape
        watching[0] = True
        try:
            r = await c.get("/metrics")
        finally:
            watching[0] = False
    assert r.status_code == 200
    assert opened == []


async def test_llm_latency_failures_and_breaker_show(root):
    from decision.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        settings = make_settings(root, AGENT_LLM_ENABLED="true", OPENAI_API_KEY="sk-test-obs", OPENAI_BASE_URL=fake.base_url,
                                 AGENT_LLM_BREAKER_FAILURES="2")
        async with app_client(settings) as c:
            await _start_agent(c)
            fake.set("decision", delay_s=0.05)
            await c.post("/api/replay/runtime/control", json={"action": "step"}, headers=AUTH)
            fake.set("http_error", status=500, body="down", delay_s=0)
            for _ in range(3):  # two failures open the breaker; the third cycle skips the LLM
                await c.post("/api/replay/runtime/control", json={"action": "step"}, headers=AUTH)
            values = samples((await c.get("/metrics")).text)
    assert total(values, "onlytrade_llm_request_duration_seconds_count", agent=AGENT, outcome="ok") == 1
    assert total(values, "onlytrade_llm_request_duration_seconds_sum", agent=AGENT, outcome="ok") >= 0.05
    assert total(values, "onlytrade_llm_request_duration_seconds_count", agent=AGENT, outcome="failure") == 2
    assert total(values, "onlytrade_llm_failures_total", reason="openai_http_500") == 2
    assert total(values, "onlytrade_llm_calls_total") == 3
    assert total(values, "onlytrade_llm_breaker_open", agent=AGENT) == 1
    assert total(values, "onlytrade_decisions_total", agent=AGENT, source="llm") == 1
    assert total(values, "onlytrade_decisions_total", agent=AGENT, source="heuristic") == 3


async def test_answers_from_the_http_cache_count_under_their_route(root):
    """A kept answer and a 304 are sent without the router: they still count as their route
    (the /onlytrade mount included), not as `unmatched`."""
    async with app_client(make_settings(root)) as c:
        first = await c.get("/api/competition")
        for _ in range(3):
            assert (await c.get("/api/competition")).content == first.content  # kept answers
        assert (await c.get("/api/competition", headers={"if-none-match": first.headers["etag"]})).status_code == 304
        assert (await c.get("/onlytrade/api/competition")).status_code == 200
        values = samples((await c.get("/metrics")).text)
    assert total(values, "onlytrade_http_requests_total", route="/api/competition", status="200") == 4
    assert total(values, "onlytrade_http_requests_total", route="/api/competition", status="304") == 1
    assert total(values, "onlytrade_http_requests_total", route="/onlytrade/api/competition", status="200") == 1
    assert total(values, "onlytrade_http_requests_total", route="unmatched") == 0


async def test_a_made_up_method_counts_as_other(root):
    async with app_client(make_settings(root)) as c:
        for verb in ("BREW", "PROPFIND", "X-1"):
            assert (await c.request(verb, "/api/traders")).status_code == 405
        values = samples((await c.get("/metrics")).text)
    assert total(values, "onlytrade_http_requests_total", method="other", status="405") == 3
    assert not any(dict(labels).get("method") in ("BREW", "PROPFIND", "X-1") for (_, labels) in values)


async def test_http_cache_answers_are_counted_by_how_they_were_answered(root):
    async with app_client(make_settings(root)) as c:
        first = await c.get("/api/competition")
        await c.get("/api/competition")  # kept
        await c.get("/api/competition", headers={"if-none-match": first.headers["etag"]})  # 304
        after = samples((await c.get("/metrics")).text)
    assert total(after, "onlytrade_http_cache_answers_total", how="built") >= 1
    assert total(after, "onlytrade_http_cache_answers_total", how="kept") >= 1
    assert total(after, "onlytrade_http_cache_answers_total", how="not_modified") == 1
    assert ("onlytrade_http_cache_answers_total", (("how", "joined"),)) in after
