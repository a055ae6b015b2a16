"""The static viewer: prefix-safe asset links, test ids, text-only rendering, and its pure helpers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "runtime_api" / "static"
JS = (STATIC / "viewer.js").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", ["index.html", "room.html"])
def test_pages_take_a_base_and_link_assets_relatively(page):
    html = (STATIC / page).read_text(encoding="utf-8")
    assert html.count("{{BASE}}") == 1 and '<base href="{{BASE}}">' in html
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not attr.startswith(("/", "http:", "https:")), f"{page}: {attr} breaks under a path prefix"
    assert 'src="static/viewer.js"' in html and 'href="static/viewer.css"' in html


def test_every_test_id_a_browser_test_needs_is_there():
    room = (STATIC / "room.html").read_text(encoding="utf-8")
    lobby = (STATIC / "index.html").read_text(encoding="utf-8")
    for testid in ("trader-name", "equity", "pnl", "pnl-pct", "decision-list", "mode-badge", "stale-badge",
                   "kill-banner", "paused-indicator", "thinking-symbol", "positions-table", "connection-badge"):
        assert f'data-testid="{testid}"' in room, testid
    assert 'data-testid="competition-table"' in lobby
    for testid in ("decision-item", "decision-action", "decision-symbol", "decision-quantity", "decision-price",
                   "decision-confidence", "decision-reasoning", "decision-steps", "trader-row", "trader-link",
                   "running-state", "position-row"):
        assert f'"{testid}"' in JS, testid


def test_data_is_rendered_as_text_and_no_token_is_involved():
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in JS
    lowered = JS.lower()
    for secret in ("x-control-token", "control_token", "authorization", "bearer", "localstorage", "cookie"):
        assert secret not in lowered
    for url in re.findall(r'"(api/[^"]*)"', JS):
        assert not url.startswith("/")
    assert 'method: "POST"' not in JS


NODE_CHECKS = r"""
const v = require(process.argv[1]);
const out = {
  base: [v.basePath("/onlytrade/room/t_001"), v.basePath("/onlytrade/"), v.basePath("/room/t_001"), v.basePath("/")],
  room: [v.roomIdFromPath("/onlytrade/room/t_001"), v.roomIdFromPath("/room/t_002/"),
         v.roomIdFromPath("/room/%3Cb%3E"), v.roomIdFromPath("/onlytrade/")],
  merged: v.mergeDecision([{timestamp: "a", cycle_number: 1}, {timestamp: "b", cycle_number: 2}],
                          {timestamp: "b", cycle_number: 2}, 5).map(d => d.timestamp),
  capped: v.mergeDecision([1, 2, 3, 4, 5].map(n => ({timestamp: String(n)})), {timestamp: "0"}, 5).length,
  action: v.firstAction({decision_json: '{"action":"buy","symbol":"600519.SH"}'}).symbol,
  thinking: [v.thinkingSymbol({room_context: {thinking_symbol: "000001.SZ"}}, []),
             v.thinkingSymbol({room_context: {}}, [{decisions: [{symbol: "601899.SH"}]}])],
  kill: [v.killActive({runtime: {kill_switch: {active: true}}}), v.killActive({runtime: {}}),
         v.killActive({status: {market_gate: {kill_switch_active: true}}})],
  stale: [v.staleState({room_context: {data_readiness: {level: "OK"}}}),
          v.staleState({room_context: {data_readiness: {level: "ERROR", reasons: ["x"]}}}),
          v.staleState({runtime: {data_freshness: {ok: false}}}),
          v.staleState({room_context: {data_readiness: {level: "WARN"}}})],
  paused: [v.pausedState({trader: {is_running: false}}),
           v.pausedState({trader: {is_running: true}, runtime: {state: {running: false}}}),
           v.pausedState({trader: {is_running: true}, runtime: {state: {running: true}}})],
  mode: [v.modeLabel({data_mode: "live_file"}), v.modeLabel({data_mode: "replay", trading_day: "2026-02-13",
         day_index: 1, day_count: 2})],
  signed: [v.fmtSigned(12.5, 2, "%"), v.fmtSigned(-3, 2), v.fmtSigned(null, 2)],
};
process.stdout.write(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_pure_helpers_under_node():
    result = subprocess.run(["node", "-e", NODE_CHECKS, str(STATIC / "viewer.js")],
                            capture_output=True, text=True, timeout=30, check=True)
    out = json.loads(result.stdout)
    assert out["base"] == ["/onlytrade/", "/onlytrade/", "/", "/"]
    assert out["room"] == ["t_001", "t_002", None, None]
    assert out["merged"] == ["b", "a"]
    assert out["capped"] == 5
    assert out["action"] == "600519.SH"
    assert out["thinking"] == ["000001.SZ", "601899.SH"]
    assert out["kill"] == [True, False, True]
    assert out["stale"][0] is None
    assert out["stale"][1] == {"text": "数据异常", "level": "danger", "reasons": ["x"]}
    assert out["stale"][2]["level"] == "warn" and out["stale"][3]["text"] == "数据预警"
    assert out["paused"] == ["已停止", "已暂停", None]
    assert out["mode"] == [{"text": "LIVE", "cls": "live"}, {"text": "REPLAY · 2026-02-13 (1/2)", "cls": "replay"}]
    assert out["signed"] == ["+12.50%", "-3.00", "—"]
