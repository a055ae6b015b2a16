"""Undo a reset: restore agent memory snapshots from a backup folder the runtime made before the reset.

A restore is a local file operation, done only while the runtime is stopped: it takes the
runtime's own instance lock (without waiting), so a runtime cannot start, or be running, while the
files change under it (the runtime caches snapshots in memory and would write its copy back). It
validates every file first, backs up the current snapshots of the same agents, then writes each
file atomically. Agents without a file in the backup are left as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from runtime_api.manifests import AGENT_ID_RE
from runtime_api.state.memory import MemoryStore
from runtime_api.settings import Settings
from runtime_api.state.storage import CorruptFileError, read_json, write_bytes_atomic

from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OpsError, Outcome
from .local import display, instance_lock_path, lock_holders, sha256_of

BACKUP_PREFIX = "agent-memory-"


def backups_dir(settings: Settings) -> Path:
    return settings.resolve(settings.backups_dir)


def list_backups(settings: Settings) -> Outcome:
    """`backups`: every backup folder, newest first, with the agents it holds."""
    root = backups_dir(settings)
    rows = []
    if root.is_dir():
        for folder in sorted(root.glob(BACKUP_PREFIX + "*"), reverse=True):
            if folder.is_dir():
                files = sorted(p.stem for p in folder.glob("*.json") if AGENT_ID_RE.match(p.stem))
                rows.append({"backup": display(settings, folder), "agents": files, "count": len(files)})
    return Outcome(rows, view="backups")


def resolve_backup(settings: Settings, backup: str) -> Path:
    """A backup given as the API prints it (root-relative), as a folder name, or as any path."""
    raw = Path(backup)
    candidates = [raw] if raw.is_absolute() else [Path.cwd() / raw, settings.root / raw, backups_dir(settings) / raw]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise OpsError(EXIT_USAGE, f"no backup folder {backup!r} (see `onlytrade-ops backups`)")


def plan(settings: Settings, folder: Path) -> list[dict[str, Any]]:
    """What a restore would write, after checking every file is a readable snapshot of the agent it names."""
    memory_dir = settings.resolve(settings.agent_memory_dir)
    rows = []
    for source in sorted(folder.glob("*.json")):
        agent_id = source.stem
        if not AGENT_ID_RE.match(agent_id):
            continue
        try:
            snap = read_json(source)
        except CorruptFileError as exc:
            raise OpsError(EXIT_USAGE, f"backup file {source.name} is not usable: {exc.reason}") from None
        if not isinstance(snap, dict) or snap.get("trader_id") not in (None, agent_id):
            raise OpsError(EXIT_USAGE, f"backup file {source.name} is not a memory snapshot of {agent_id}")
        target = memory_dir / source.name
        backup_sha = sha256_of(source)
        current_sha = sha256_of(target) if target.is_file() else None
        rows.append({
            "agent_id": agent_id,
            "source": source,
            "target": target,
            "file": display(settings, target),
            "action": "unchanged" if current_sha == backup_sha else ("create" if current_sha is None else "replace"),
            "backup_sha256": backup_sha,
            "current_sha256": current_sha,
            "size": source.stat().st_size,
        })
    if not rows:
        raise OpsError(EXIT_USAGE, f"backup {display(settings, folder)} holds no agent snapshot (<agent_id>.json)")
    return rows


def _public(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("source", "target")} for r in rows]


def describe(rows: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['action']} {r['file']}" for r in rows)


def restore(settings: Settings, backup: str, *, confirm: bool = False, dry_run: bool = False) -> Outcome:
    """`restore-backup <backup>`: dry run lists the plan; --confirm restores (refused while the runtime runs)."""
    folder = resolve_backup(settings, backup)
    rows = plan(settings, folder)
    data: dict[str, Any] = {"backup": display(settings, folder), "dry_run": dry_run, "files": _public(rows)}
    lock_path = instance_lock_path(settings)
    if dry_run:
        holders = lock_holders(lock_path) if lock_path.exists() else []
        data["runtime_pids"] = holders
        notes = ["dry run: nothing changed"]
        if holders:
            notes.append(f"the runtime is running (pid {', '.join(map(str, holders))}): stop it before the real restore")
        return Outcome(data, EXIT_OK, view="restore", notes=notes)
    if not confirm:
        raise OpsError(EXIT_USAGE, f"refused without --confirm: restore-backup would {describe(rows)} "
                       "(the current files are backed up first; the runtime must be stopped). "
                       "Rerun with --confirm, or with --dry-run to see the plan.", data)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holders = lock_holders(lock_path) or []
        who = f" (pid {', '.join(map(str, holders))})" if holders else ""
        raise OpsError(EXIT_USAGE, f"refused: the runtime is running{who} and holds {display(settings, lock_path)}; "
                       "stop it first (systemctl stop onlytrade-runtime), restore, then start it", data) from None
    try:
        changing = [r for r in rows if r["action"] != "unchanged"]
        store = MemoryStore(settings.resolve(settings.agent_memory_dir), settings=settings)
        existing = [r["agent_id"] for r in changing if r["current_sha256"] is not None]
        if existing:
            data["pre_restore_backup"] = display(settings, store.backup(existing, backups_dir(settings)))
        for row in changing:
            write_bytes_atomic(row["target"], row["source"].read_bytes())
            if sha256_of(row["target"]) != row["backup_sha256"]:
                raise OpsError(EXIT_FAILED, f"{row['file']}: written file does not match the backup")
    finally:
        lock.release()
    data["restored"] = [r["agent_id"] for r in changing]
    notes = [f"restored {len(changing)} file(s), {len(rows) - len(changing)} already identical"]
    if data.get("pre_restore_backup"):
        notes.append(f"the files it replaced are in {data['pre_restore_backup']}")
    notes.append("start the runtime to serve the restored snapshots")
    return Outcome(data, EXIT_OK, view="restore", notes=notes)
