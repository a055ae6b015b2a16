"""Does the show trade? Boot the runtime exactly as `make run` does and count what the agents do.

A fresh root (copies of the repo's `agents/` and `data/replay/`, a new `.env.local` with a random
control token, as the Makefile writes it), the Makefile's run environment (`ONLYTRADE_SEED_AGENTS=all`,
`AGENT_FLAT_ENTRY_ENABLED=true`, HOST, PORT) and the `onlytrade-runtime` entry point, on a free
loopback port. After N replay minutes (bars the replay advanced since boot) it prints, per agent:
decisions, readiness OK %, fills, closed positions and the wall time of the first fill; then the
totals and the show's targets (every pooled agent fills within 10 min of boot, >= 2 agents close a
position, readiness OK on >= 90 % of decisions). Exit 0 whatever it measures.

    .venv/bin/python bench/show_liveliness.py                       # 600 replay minutes: ~10 min at the default speed
    .venv/bin/python bench/show_liveliness.py --replay-minutes 120 --env REPLAY_SPEED=600
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import time
from pathlib import Path

from _common import REPO, Proc, clean_env, free_port, get_json, make_root

TARGET_FIRST_FILL_S = 600.0
TARGET_CLOSERS = 2
TARGET_READY_PCT = 90.0


def runtime_argv() -> list[str]:
    entry = Path(sys.executable).parent / "onlytrade-runtime"  # what `make run` starts: $(BIN)/onlytrade-runtime
    return [str(entry)] if entry.exists() else [sys.executable, "-m", "runtime_api"]


def jsonl(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def pooled_agents(root: Path) -> dict[str, bool]:
    """Every shipped agent -> whether it has a stock pool."""
    out = {}
    for manifest in sorted((root / "agents").glob("*/agent.json")):
        data = json.loads(manifest.read_text(encoding="utf-8"))
        out[str(data.get("agent_id") or manifest.parent.name)] = bool(data.get("stock_pool"))
    return out


def agent_figures(root: Path, base: str, agent_id: str, boot_ms: int) -> dict:
    decisions = jsonl(root / "data" / "decisions" / agent_id)
    audits = jsonl(root / "data" / "audit" / "decision_audit" / agent_id)
    fills = [d for d in decisions if (d.get("decisions") or [{}])[0].get("executed")]
    levels = [((a.get("data_readiness") or {}).get("level")) for a in audits]
    _, history = get_json(base, f"/api/positions/history?trader_id={agent_id}&limit=1000")
    history = history or {}
    closed = len(((history.get("data") or {}).get("positions")) or [])
    first_fill_s = (min(d["saved_ts_ms"] for d in fills) - boot_ms) / 1000 if fills else None
    holds: dict[str, int] = {}
    for audit in audits:
        if audit.get("forced_hold"):
            reason = ((audit.get("data_readiness") or {}).get("reasons") or ["?"])[0]
            holds[reason] = holds.get(reason, 0) + 1
    return {
        "decisions": len(decisions),
        "ready_ok": levels.count("OK"),
        "ready_warn": levels.count("WARN"),
        "audits": len(audits),
        "fills": len(fills),
        "buys": sum(1 for d in fills if d["decisions"][0].get("action") == "buy"),
        "sells": sum(1 for d in fills if d["decisions"][0].get("action") == "sell"),
        "closed": closed,
        "first_fill_s": first_fill_s,
        "forced_holds": holds,
    }


def replay_status(base: str) -> dict:
    code, body = get_json(base, "/api/replay/runtime/status")
    if code != 200 or not body:
        raise RuntimeError(f"/api/replay/runtime/status answered {code}")
    return body["data"]


def pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replay-minutes", type=int, default=600, help="stop after the replay advanced this many bars (default %(default)s)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra runtime env (e.g. REPLAY_SPEED=600)")
    parser.add_argument("--max-wall-s", type=float, default=1800.0, help="give up after this long (default %(default)s)")
    parser.add_argument("--keep-root", action="store_true", help="keep the temporary root (server.log, state) for inspection")
    args = parser.parse_args()

    root = make_root("onlytrade-liveliness-")
    # What the Makefile's .env.local target writes on a fresh checkout.
    (root / ".env.local").write_text(f"CONTROL_API_TOKEN={secrets.token_urlsafe(32)}\n")
    (root / ".env.local").chmod(0o600)
    port = free_port()
    extra = dict(item.split("=", 1) for item in args.env)
    env = clean_env({"ONLYTRADE_SEED_AGENTS": "all", "AGENT_FLAT_ENTRY_ENABLED": "true",
                     "HOST": "127.0.0.1", "PORT": str(port), **extra})
    base = f"http://127.0.0.1:{port}"
    server = Proc(runtime_argv(), env=env, cwd=root, log_path=root / "server.log", base=base)
    boot_ms = int(time.time() * 1000)
    server.start()
    try:
        ready_s = server.wait_ready()
        status = replay_status(base)
        length, last, advanced = status["timeline_length"], status["cursor_index"], 0
        print(f"root {root}  port {port}  ready in {ready_s:.1f}s  speed {status['speed']} bars/min  "
              f"start {status['trading_day']} bar {status['day_bar_index']}/{status['day_bar_count']}", flush=True)
        started = time.monotonic()
        while advanced < args.replay_minutes and time.monotonic() - started < args.max_wall_s:
            time.sleep(2.0)
            status = replay_status(base)
            advanced += (status["cursor_index"] - last) % length  # a loop wraps to 0
            last = status["cursor_index"]
        wall_s = time.monotonic() - started + ready_s
        agents = pooled_agents(root)
        rows = {a: agent_figures(root, base, a, boot_ms) for a in agents}
    finally:
        server.stop()
    print(f"\n{advanced} replay minutes in {wall_s:.0f}s wall; replay now at {status['trading_day']} "
          f"bar {status['day_bar_index']}/{status['day_bar_count']}\n")
    header = f"{'agent':<16}{'pool':>5}{'decisions':>10}{'ready OK %':>11}{'fills':>7}{'buy/sell':>10}{'closed':>8}{'1st fill s':>11}  forced holds"
    print(header)
    print("-" * len(header))
    for agent_id, r in rows.items():
        first = f"{r['first_fill_s']:.0f}" if r["first_fill_s"] is not None else "-"
        holds = " ".join(f"{k}={v}" for k, v in sorted(r["forced_holds"].items())) or "-"
        print(f"{agent_id:<16}{'yes' if agents[agent_id] else 'no':>5}{r['decisions']:>10}{pct(r['ready_ok'], r['audits']):>11.1f}"
              f"{r['fills']:>7}{str(r['buys']) + '/' + str(r['sells']):>10}{r['closed']:>8}{first:>11}  {holds}")
    total_decisions = sum(r["decisions"] for r in rows.values())
    total_audits = sum(r["audits"] for r in rows.values())
    total_ok = sum(r["ready_ok"] for r in rows.values())
    print("-" * len(header))
    print(f"{'total':<16}{'':>5}{total_decisions:>10}{pct(total_ok, total_audits):>11.1f}{sum(r['fills'] for r in rows.values()):>7}"
          f"{'':>10}{sum(r['closed'] for r in rows.values()):>8}")

    pooled = [a for a, has_pool in agents.items() if has_pool]
    late = [a for a in pooled if rows[a]["first_fill_s"] is None or rows[a]["first_fill_s"] > TARGET_FIRST_FILL_S]
    closers = [a for a, r in rows.items() if r["closed"] > 0]
    ready = pct(total_ok, total_audits)
    print("\ntargets:")
    print(f"  every pooled agent fills within {TARGET_FIRST_FILL_S:.0f}s of boot: {'PASS' if not late else 'MISS ' + ','.join(late)}")
    print(f"  >= {TARGET_CLOSERS} agents close a position: {'PASS' if len(closers) >= TARGET_CLOSERS else 'MISS'} ({len(closers)}: {','.join(closers) or '-'})")
    print(f"  readiness OK on >= {TARGET_READY_PCT:.0f}% of decisions: {'PASS' if ready >= TARGET_READY_PCT else 'MISS'} ({ready:.1f}%)")
    rounds = [line for line in (root / "server.log").read_text(errors="replace").splitlines() if " round " in line]
    if rounds:
        print(f"\nlast round log line ({len(rounds)} rounds):\n  {rounds[-1]}")
    if args.keep_root:
        print(f"\nkept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
