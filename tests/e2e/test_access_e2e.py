"""The control gate under attack, against a real uvicorn process on loopback."""

from __future__ import annotations

import threading
import time

import httpx
import orjson

from .server import TOKEN, RuntimeProcess

CONTROL = "/api/agent/runtime/control"
KILL = "/api/agent/runtime/kill-switch"


def test_the_operator_is_served_during_a_wrong_token_flood_from_the_same_address(root):
    with RuntimeProcess(root) as server:
        stop = threading.Event()
        flood = {"401": 0, "429": 0, "other": 0}

        def guess() -> None:
            with server.client(timeout=10) as c:
                while not stop.is_set():
                    r = c.post(CONTROL, json={"action": "pause"}, headers={"x-control-token": "guess-" + str(time.monotonic())})
                    flood[str(r.status_code) if r.status_code in (401, 429) else "other"] += 1

        threads = [threading.Thread(target=guess) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 30
            while flood["429"] < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert flood["429"] >= 20, flood  # the limiter is engaged for 127.0.0.1...
            answered = []
            with server.client(timeout=10) as c:
                for i in range(6):  # ...and the operator's correct token, from 127.0.0.1, is always served
                    for path, body in ((KILL, {"action": "activate", "reason": f"drill-{i}"}), (KILL, {"action": "deactivate"}),
                                       (CONTROL, {"action": "pause"})):
                        r = c.post(path, json=body, headers={"authorization": f"Bearer {TOKEN}"})
                        answered.append(r.status_code)
            assert answered == [200] * 18, answered
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        assert flood["other"] == 0, flood
        with server.client() as c:
            audit = c.get("/api/ops/audit", params={"limit": 1000}, headers={"x-control-token": TOKEN}).json()["data"]["records"]
        rejected = [r for r in audit if r["action"] == "control.rejected"]
        # Thousands of rejections, a handful of lines: one per client per minute.
        assert sum(r["count"] for r in rejected) == flood["401"] + flood["429"]
        assert len(rejected) <= 3 and {r["ip"] for r in rejected} == {"127.0.0.1"}
        assert [r["holder"] for r in audit if r["action"].startswith("agent.runtime.kill_switch")] == ["control-api-token"] * 12


def test_spoofed_forwarded_for_from_an_untrusted_peer_neither_evades_the_limiter_nor_poisons_the_audit(root):
    audit_file = root / "data" / "runtime" / "control-audit.jsonl"
    with RuntimeProcess(root) as server, server.client() as c:
        codes = []
        for i in range(40):
            r = c.post(CONTROL, json={"action": "pause", "actor": f"victim-{i}"},
                       headers={"x-control-token": "bad", "x-forwarded-for": f"198.51.100.{i}", "x-request-id": "R" * 15_000})
            codes.append(r.status_code)
        assert codes[:10] == [401] * 10 and codes[10:] == [429] * 30  # rotation bought nothing
        before = audit_file.stat().st_size if audit_file.exists() else 0
        for _ in range(200):
            c.post(CONTROL, json={}, headers={"x-control-token": "bad", "x-request-id": "R" * 15_000})
        after = audit_file.stat().st_size if audit_file.exists() else 0
        assert after - before == 0  # counted in memory, no line (and no fsync) per rejection
        records = c.get("/api/ops/audit", headers={"x-control-token": TOKEN}).json()["data"]["records"]
    lines = [orjson.loads(x) for x in audit_file.read_bytes().splitlines()]
    assert audit_file.stat().st_size < 2000, audit_file.stat().st_size
    assert {l["ip"] for l in lines} == {"127.0.0.1"}
    assert sum(l.get("count", 0) for l in lines) == 240
    assert not any("victim" in orjson.dumps(l).decode() or "RRRR" in orjson.dumps(l).decode() for l in lines)
    assert records


def test_weak_tokens_are_refused_on_a_network_bind_and_only_warned_on_loopback(root):
    refused = RuntimeProcess(root, {"HOST": "0.0.0.0", "CONTROL_API_TOKEN": "changeme"})
    refused.start(wait=False)
    assert refused.proc.wait(20) == 2
    assert "refusing to bind 0.0.0.0 with a weak control token: CONTROL_API_TOKEN is a known placeholder" in refused.read_log()
    refused.stop()
    with RuntimeProcess(root, {"CONTROL_API_TOKEN": "short-token"}) as warned:
        assert "weak control token on a loopback bind" in warned.read_log()
        r = httpx.post(warned.base + CONTROL, json={"action": "pause"}, headers={"x-control-token": "short-token"})
        assert r.status_code == 200
