"""The public reads an edge serves from the bus, with the exact queries the viewer pages send.

The runtime's own pages and the web client's polled calls (../shared/realclient/README.md): the
edge answers these from the snapshots the runtime publishes; any other read is the runtime's
(behind the nginx micro-cache). Queries are matched after sorting (keys.read_key).
"""

from __future__ import annotations

GLOBAL_READS: list[tuple[str, dict[str, str]]] = [
    ("/api/config", {}),
    ("/api/traders", {}),
    ("/api/competition", {}),
    ("/api/top-traders", {}),
    ("/api/agent/runtime/status", {}),
    ("/api/replay/runtime/status", {}),
    ("/api/symbols", {}),
    ("/api/decisions/latest", {}),
]


def trader_reads(trader_id: str) -> list[tuple[str, dict[str, str]]]:
    t = {"trader_id": trader_id}
    return [
        ("/api/status", t),
        ("/api/account", t),
        ("/api/positions", t),
        ("/api/equity-history", t),
        ("/api/positions/history", {**t, "limit": "200"}),
        ("/api/decisions/latest", t),
        ("/api/symbols", t),
        (f"/api/agents/{trader_id}/decision-audit/latest", {"limit": "10"}),
    ]


def edge_reads(lobby_ids: list[str]) -> list[tuple[str, dict[str, str]]]:
    out = list(GLOBAL_READS)
    for trader_id in lobby_ids:
        out.extend(trader_reads(trader_id))
    return out
