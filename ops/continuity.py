"""Continuity snapshots: prove a restart (or anything else) changed no agent state.

A snapshot records the sha256 and size of every `data/agent-memory/*.json` and, when the runtime
answers, the registry (status, lobby flag, timestamps) and each registered agent's equity.
`verify(a, b)` lists what differs; an mtime alone is not a change.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from runtime_api.manifests import AGENT_ID_RE
from runtime_api.settings import Settings
from runtime_api.state.storage import CorruptFileError, read_json, write_json_atomic

from .client import Client
from .exits import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, OpsError, Outcome
from .local import display, sha256_of

SCHEMA = "onlytrade.continuity.v1"
REGISTRY_FIELDS = ("status", "show_in_lobby", "registered_at", "last_started_at", "last_stopped_at")


def memory_files(memory_dir: Path) -> dict[str, dict[str, Any]]:
    """`<id>.json` snapshot files (quarantined `.corrupt-*`, locks and temp files are not snapshots)."""
    out: dict[str, dict[str, Any]] = {}
    if not memory_dir.is_dir():
        return out
    for path in sorted(memory_dir.glob("*.json")):
        if not path.is_file() or not AGENT_ID_RE.match(path.stem):
            continue
        st = path.stat()
        out[path.name] = {"sha256": sha256_of(path), "size": st.st_size, "mtime_epoch": st.st_mtime}
    return out


def runtime_state(client: Client) -> dict[str, Any]:
    """Registry and per-agent equity from the API; `reachable: false` when the runtime does not answer."""
    try:
        registered = client.get_data("/api/agents/registered", "agents registered")
        registry = {r["agent_id"]: {k: r.get(k) for k in REGISTRY_FIELDS} for r in registered}
        equity = {}
        for agent_id in sorted(registry):
            account = client.get_data("/api/account", f"account {agent_id}", trader_id=agent_id)
            equity[agent_id] = account.get("total_equity")
    except OpsError as exc:
        return {"reachable": exc.code != EXIT_UNREACHABLE, "error": exc.message}
    return {"reachable": True, "api_base": client.base, "registry": registry, "equity": equity}


def snapshot(settings: Settings, client: Client | None, *, now_ms: int | None = None) -> dict[str, Any]:
    memory_dir = settings.resolve(settings.agent_memory_dir)
    return {
        "schema_version": SCHEMA,
        "ts_ms": int(time.time() * 1000) if now_ms is None else now_ms,
        "memory_dir": display(settings, memory_dir),
        "files": memory_files(memory_dir),
        "runtime": runtime_state(client) if client is not None else {"reachable": False, "error": "not asked"},
    }


def take(settings: Settings, client: Client | None, out: Path | None = None) -> Outcome:
    """`continuity-snapshot [out]`: print the snapshot, and write it atomically to `out` if given."""
    snap = snapshot(settings, client)
    notes = []
    if not snap["runtime"].get("reachable") or "registry" not in snap["runtime"]:
        notes.append(f"runtime state not recorded ({snap['runtime'].get('error')}); files only")
    if out is not None:
        write_json_atomic(Path(out), snap, locked=False)  # an operator file: no .lock left beside it
        notes.append(f"wrote {out}")
    return Outcome(snap, view="continuity_snapshot", notes=notes)


def load(path: Path) -> dict[str, Any]:
    try:
        snap = read_json(Path(path))
    except CorruptFileError as exc:
        raise OpsError(EXIT_USAGE, f"{path}: {exc.reason}") from None
    if snap is None:
        raise OpsError(EXIT_USAGE, f"{path}: no such file")
    if not isinstance(snap, dict) or snap.get("schema_version") != SCHEMA or not isinstance(snap.get("files"), dict):
        raise OpsError(EXIT_USAGE, f"{path}: not a continuity snapshot ({SCHEMA})")
    return snap


def _dict_diff(a: dict, b: dict) -> dict[str, list]:
    return {
        "added": sorted(set(b) - set(a)),
        "removed": sorted(set(a) - set(b)),
        "changed": sorted(k for k in set(a) & set(b) if a[k] != b[k]),
    }


def verify(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What changed from snapshot `a` to snapshot `b`; `changed` is true if anything did."""
    fa, fb = a["files"], b["files"]
    files = _dict_diff({k: (v["sha256"], v["size"]) for k, v in fa.items()}, {k: (v["sha256"], v["size"]) for k, v in fb.items()})
    file_changes = [{"file": k, "size_a": fa[k]["size"], "size_b": fb[k]["size"],
                     "sha256_a": fa[k]["sha256"][:12], "sha256_b": fb[k]["sha256"][:12]} for k in files["changed"]]
    out: dict[str, Any] = {
        "files": {"added": files["added"], "removed": files["removed"], "changed": file_changes,
                  "unchanged": len(set(fa) & set(fb)) - len(file_changes)},
        "registry": None,
        "equity": None,
        "notes": [],
    }
    ra, rb = a.get("runtime") or {}, b.get("runtime") or {}
    if "registry" in ra and "registry" in rb:
        reg = _dict_diff(ra["registry"], rb["registry"])
        out["registry"] = {
            "added": reg["added"], "removed": reg["removed"],
            "changed": [{"agent_id": k, "fields": {f: [ra["registry"][k].get(f), rb["registry"][k].get(f)]
                                                    for f in REGISTRY_FIELDS if ra["registry"][k].get(f) != rb["registry"][k].get(f)}}
                        for k in reg["changed"]],
        }
        ea, eb = ra.get("equity") or {}, rb.get("equity") or {}
        out["equity"] = [{"agent_id": k, "a": ea.get(k), "b": eb.get(k)} for k in sorted(set(ea) | set(eb)) if ea.get(k) != eb.get(k)]
    else:
        out["notes"].append("registry and equity not compared: the runtime was not reachable for "
                            + " and ".join(n for n, r in (("A", ra), ("B", rb)) if "registry" not in r))
    out["changed"] = bool(
        files["added"] or files["removed"] or file_changes
        or (out["registry"] and (out["registry"]["added"] or out["registry"]["removed"] or out["registry"]["changed"]))
        or out["equity"]
    )
    return out


def compare(path_a: Path, path_b: Path) -> Outcome:
    """`continuity-verify A B`: exit 0 when nothing changed, 1 when anything did."""
    diff = verify(load(path_a), load(path_b))
    diff["a"], diff["b"] = str(path_a), str(path_b)
    notes = list(diff["notes"]) + (["CHANGED: see above"] if diff["changed"] else ["no change"])
    return Outcome(diff, EXIT_FAILED if diff["changed"] else EXIT_OK, view="continuity_verify", notes=notes)
