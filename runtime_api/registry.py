"""The agent registry: which manifests are registered, running and shown in the lobby.

The file is `agent.registry.v1`, byte-compatible with the Node runtime's (2-space JSON, no trailing
newline). State is loaded once; every mutation re-reads the file under its lock, applies the change
and writes it atomically, so neither threads nor a second process lose updates. A corrupt file
raises `CorruptFileError` and is never overwritten. Registered entries whose manifest folder is
gone are kept (reported unavailable, left out of the registered views) until `reconcile()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime_api.state import storage
from runtime_api.errors import ApiError
from runtime_api.manifests import AGENT_ID_RE, ManifestScanError, id_sort_key, load_manifest, manifest_view, scan

log = logging.getLogger("onlytrade.registry")

SCHEMA_VERSION = "agent.registry.v1"


def now_iso() -> str:
    """Wall clock as the Node runtime prints it: `2026-02-13T01:50:18.407Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _normalize_record(raw: Any) -> dict:
    record = raw if isinstance(raw, dict) else {}

    def text_or_none(key: str) -> str | None:
        value = record.get(key)
        return value if isinstance(value, str) else None

    return {
        "registered_at": text_or_none("registered_at"),
        "status": "running" if record.get("status") == "running" else "stopped",
        "show_in_lobby": record.get("show_in_lobby") is not False,
        "last_started_at": text_or_none("last_started_at"),
        "last_stopped_at": text_or_none("last_stopped_at"),
    }


def _parse_registry(path: Path, raw: Any) -> tuple[str, dict[str, dict]]:
    if raw is None:
        return SCHEMA_VERSION, {}
    if not isinstance(raw, dict) or not isinstance(raw.get("agents", {}), dict):
        raise storage.CorruptFileError(path, "not an agent.registry.v1 object")
    schema = raw.get("schema_version")
    agents: dict[str, dict] = {}
    for key, record in raw.get("agents", {}).items():
        agent_id = str(key).strip()
        if not AGENT_ID_RE.match(agent_id):
            log.warning("registry entry dropped: invalid agent id %r", key)
            continue
        agents[agent_id] = _normalize_record(record)
    return (schema if isinstance(schema, str) else SCHEMA_VERSION), agents


def _check_id(agent_id: str) -> str:
    agent_id = str(agent_id or "").strip()
    if not AGENT_ID_RE.match(agent_id):
        raise ApiError(400, "invalid_agent_id")
    return agent_id


class AgentRegistry:
    """Registry state in memory, persisted to `registry_path`; every method blocks (file I/O)."""

    def __init__(self, agents_dir: Path, registry_path: Path, *, clock: Callable[[], str] = now_iso):
        self.agents_dir = Path(agents_dir)
        self.path = Path(registry_path)
        self._clock = clock
        self._lock = threading.RLock()
        self.version = 0
        try:
            self._manifests, self._skipped = scan(self.agents_dir)
        except ManifestScanError as exc:
            log.error("agent manifests unreadable at boot (%s): starting with none; the rescan retries", exc.strerror)
            self._manifests, self._skipped = {}, {}
        for name, reason in self._skipped.items():
            log.warning("agent manifest skipped: %s: %s", name, reason)
        self._schema, self._agents = _parse_registry(self.path, storage.read_json(self.path))

    # ---- reads (in memory) -------------------------------------------------------------------

    def available(self) -> list[dict]:
        """Every valid manifest, sorted by id (/api/agents/available)."""
        with self._lock:
            return [manifest_view(m) for m in self._manifests.values()]

    def registered(self) -> list[dict]:
        """Registered agents that have a manifest, sorted by id (/api/agents/registered)."""
        with self._lock:
            ids = sorted((i for i in self._agents if i in self._manifests), key=id_sort_key)
            return [self._view(i) for i in ids]

    def get(self, agent_id: str) -> dict | None:
        """The registered view of one agent, or None when unregistered or without a manifest."""
        with self._lock:
            agent_id = str(agent_id or "").strip()
            if agent_id in self._agents and agent_id in self._manifests:
                return self._view(agent_id)
            return None

    def has(self, agent_id: str) -> bool:
        """`get(agent_id)` would answer (registered, with a manifest), without building the view."""
        agent_id = str(agent_id or "").strip()
        return agent_id in self._agents and agent_id in self._manifests  # two dict reads: no lock needed

    def manifest(self, agent_id: str) -> dict | None:
        with self._lock:
            found = self._manifests.get(str(agent_id or "").strip())
            return manifest_view(found) if found else None

    def record(self, agent_id: str) -> dict | None:
        """The raw registry record (even for an unavailable agent), or None."""
        with self._lock:
            found = self._agents.get(str(agent_id or "").strip())
            return dict(found) if found else None

    def unavailable_ids(self) -> list[str]:
        """Registered ids whose manifest folder is missing or invalid (dropped by `reconcile`)."""
        with self._lock:
            return sorted((i for i in self._agents if i not in self._manifests), key=id_sort_key)

    def running_ids(self) -> list[str]:
        with self._lock:
            return self._ids(lambda r: r["status"] == "running")

    def lobby_ids(self) -> list[str]:
        with self._lock:
            return self._ids(lambda r: r["show_in_lobby"])

    def _ids(self, keep: Callable[[dict], bool]) -> list[str]:
        ids = (i for i, r in self._agents.items() if i in self._manifests and keep(r))
        return sorted(ids, key=id_sort_key)

    def _view(self, agent_id: str) -> dict:
        return {"agent_id": agent_id, **manifest_view(self._manifests[agent_id]), **self._agents[agent_id], "available": True}

    # ---- mutations (read-modify-write under both locks) ---------------------------------------

    def _mutate(self, change: Callable[[dict[str, dict]], bool]) -> None:
        """Re-read the file, apply `change` (returns whether it changed anything), write if so."""
        with self._lock, storage.lock_for(self.path):
            schema, agents = _parse_registry(self.path, storage.read_json(self.path))
            changed = change(agents)
            if changed:
                payload = {"schema_version": schema, "agents": agents}
                storage.write_bytes_atomic(self.path, storage.dumps(payload), locked=False)
            if changed or agents != self._agents:
                self.version += 1
            self._schema, self._agents = schema, agents

    def register(self, agent_id: str) -> dict:
        """Register a manifest folder (idempotent: an existing record is kept)."""
        agent_id = _check_id(agent_id)
        manifest = load_manifest(self.agents_dir, agent_id)
        with self._lock:
            if self._manifests.get(agent_id) != manifest:
                self._manifests[agent_id] = manifest
                self._manifests = {k: self._manifests[k] for k in sorted(self._manifests, key=id_sort_key)}
                self.version += 1

            def change(agents: dict[str, dict]) -> bool:
                if agent_id in agents:
                    return False
                agents[agent_id] = {
                    "registered_at": self._clock(),
                    "status": "stopped",
                    "show_in_lobby": True,
                    "last_started_at": None,
                    "last_stopped_at": None,
                }
                return True

            self._mutate(change)
            return self._view(agent_id)

    def unregister(self, agent_id: str) -> dict:
        """Remove a registration; `removed` is False (not an error) when it was not registered."""
        agent_id = _check_id(agent_id)
        removed = False

        def change(agents: dict[str, dict]) -> bool:
            nonlocal removed
            removed = agents.pop(agent_id, None) is not None
            return removed

        with self._lock:
            self._mutate(change)
            return {"agent_id": agent_id, "removed": removed, "running_agent_ids": self.running_ids()}

    def start(self, agent_id: str) -> dict:
        """Set status running; `last_started_at` changes only on a real transition. 409 if unregistered."""
        return self._set_status(agent_id, "running", "last_started_at")

    def stop(self, agent_id: str) -> dict:
        return self._set_status(agent_id, "stopped", "last_stopped_at")

    def _set_status(self, agent_id: str, status: str, stamp_key: str) -> dict:
        agent_id = _check_id(agent_id)

        def change(agents: dict[str, dict]) -> bool:
            record = agents.get(agent_id)
            if record is None:
                raise ApiError(409, "agent_not_registered")
            if record["status"] == status:
                return False
            agents[agent_id] = {**record, "status": status, stamp_key: self._clock()}
            return True

        with self._lock:
            self._mutate(change)
            return {"agent_id": agent_id, **self._agents[agent_id]}

    def reconcile(self) -> dict:
        """Re-scan manifests and drop registrations whose folder is gone. Explicit only (never on a GET)."""
        removed: list[str] = []

        def change(agents: dict[str, dict]) -> bool:
            for agent_id in list(agents):
                if agent_id not in self._manifests:
                    removed.append(agent_id)
                    del agents[agent_id]
            return bool(removed)

        with self._lock:
            self.rescan()
            self._mutate(change)
            if removed:
                log.info("registry reconcile removed %s", ", ".join(sorted(removed)))
            return {"removed": sorted(removed, key=id_sort_key), "remaining_count": len(self._agents)}

    def rescan(self) -> bool:
        """Re-read every manifest (call on a timer or file watch); returns whether anything changed."""
        try:
            manifests, skipped = scan(self.agents_dir)
        except ManifestScanError as exc:
            log.warning("manifest rescan failed (%s); keeping the last good %d manifests", exc.strerror, len(self._manifests))
            return False
        with self._lock:
            for name, reason in skipped.items():
                if self._skipped.get(name) != reason:
                    log.warning("agent manifest skipped: %s: %s", name, reason)
            self._skipped = skipped
            if manifests == self._manifests:
                return False
            self._manifests = manifests
            self.version += 1
            return True

    def reload(self) -> bool:
        """Re-read the registry file (changed by another process); CorruptFileError keeps the old state."""
        with self._lock:
            schema, agents = _parse_registry(self.path, storage.read_json(self.path))
            if agents == self._agents and schema == self._schema:
                return False
            self._schema, self._agents = schema, agents
            self.version += 1
            return True

    def seed(self, ids: Iterable[str] | str) -> list[str]:
        """First boot only (no registry file yet): register and start `ids`, or every manifest for 'all'."""
        with self._lock, storage.lock_for(self.path):
            if self.path.exists():
                return []
            if isinstance(ids, str):
                wanted = list(self._manifests) if ids.strip().lower() == "all" else [p.strip() for p in ids.split(",")]
            else:
                wanted = [str(i).strip() for i in ids]
            seeded: list[str] = []
            for agent_id in wanted:
                if not agent_id or agent_id in seeded:
                    continue
                if agent_id not in self._manifests:
                    log.warning("seed: no valid manifest for %r, skipped", agent_id)
                    continue
                seeded.append(agent_id)
            if not seeded:
                return []
            stamp = self._clock()
            agents = {
                agent_id: {
                    "registered_at": stamp,
                    "status": "running",
                    "show_in_lobby": True,
                    "last_started_at": stamp,
                    "last_stopped_at": None,
                }
                for agent_id in seeded
            }
            payload = {"schema_version": SCHEMA_VERSION, "agents": agents}
            storage.write_bytes_atomic(self.path, storage.dumps(payload), locked=False)
            self._schema, self._agents = SCHEMA_VERSION, agents
            self.version += 1
            return seeded
