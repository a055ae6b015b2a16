"""Agent manifests: `agents/<agent_id>/agent.json`, parsed and normalised as the Node runtime does.

A manifest is valid when its folder name equals its `agent_id`, the id matches `AGENT_ID_RE`, and
`agent_name`, `ai_model` and `exchange_id` are non-empty strings. Optional fields are normalised
(invalid ones become null) and unknown keys pass through unchanged. Invalid manifests are skipped
by discovery, with the reason logged on `onlytrade.registry`.
"""

from __future__ import annotations

import errno
import logging
import re
from pathlib import Path
from typing import Any

import orjson

from runtime_api.errors import ApiError

log = logging.getLogger("onlytrade.registry")

AGENT_ID_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
ASSET_FILE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$")
_SLUG_RE = AGENT_ID_RE
_CN_SYMBOL_RE = re.compile(r"^\d{6}\.(SH|SZ)$")
_US_TICKER_RE = re.compile(r"^[A-Z]{1,6}$")
MANIFEST_FILE = "agent.json"


class ManifestError(ValueError):
    """A manifest folder that discovery skips; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def id_sort_key(agent_id: str) -> str:
    # JS localeCompare puts "_" before digits and letters; a space sorts the same way in code-point order.
    return agent_id.replace("_", " ")


def _text(value: Any) -> str:
    """JS `String(value || '').trim()` for the scalar values a manifest holds."""
    if not value:
        return ""
    if isinstance(value, bool):
        return "true"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _optional_text(value: Any, max_len: int = 512) -> str | None:
    return _text(value)[:max_len] or None


def _slug(value: Any) -> str | None:
    slug = _text(value).lower()
    return slug if slug and _SLUG_RE.match(slug) else None


def _asset_file(value: Any) -> str | None:
    name = _text(value)
    return name if name and ASSET_FILE_RE.match(name) else None


def normalize_stock_pool(value: Any, exchange_id: str = "") -> list[str]:
    """Upper-case, de-duplicate, keep symbols valid for the exchange, at most 100."""
    if not isinstance(value, list):
        return []
    exchange = _text(exchange_id).lower()
    seen: set[str] = set()
    out: list[str] = []
    for item in value:
        symbol = _text(item).upper()
        if not symbol:
            continue
        cn = bool(_CN_SYMBOL_RE.match(symbol))
        us = bool(_US_TICKER_RE.match(symbol))
        if "sim-cn" in exchange and not cn:
            continue
        if "sim-us" in exchange and not us:
            continue
        if not exchange and not (cn or us):
            continue
        if symbol in seen:
            continue
        seen.add(symbol)
        out.append(symbol)
        if len(out) >= 100:
            break
    return out


def parse_manifest(raw: Any, expected_id: str) -> dict:
    """Normalise one parsed agent.json; raises ManifestError when discovery must skip it."""
    if not isinstance(raw, dict):
        raise ManifestError("manifest is not a JSON object")
    agent_id = _text(raw.get("agent_id"))
    if not agent_id:
        raise ManifestError("agent_id missing")
    if not AGENT_ID_RE.match(agent_id):
        raise ManifestError(f"invalid agent_id {agent_id!r}")
    if agent_id != expected_id:
        raise ManifestError(f"agent_id {agent_id!r} does not match folder {expected_id!r}")
    required = {key: _text(raw.get(key)) for key in ("agent_name", "ai_model", "exchange_id")}
    missing = [key for key, value in required.items() if not value]
    if missing:
        raise ManifestError(f"required field(s) empty: {', '.join(missing)}")
    return {
        **raw,
        "agent_id": agent_id,
        **required,
        "avatar_file": _asset_file(raw.get("avatar_file")),
        "avatar_hd_file": _asset_file(raw.get("avatar_hd_file")),
        "avatar_url": _optional_text(raw.get("avatar_url")),
        "avatar_hd_url": _optional_text(raw.get("avatar_hd_url")),
        "trading_style": _slug(raw.get("trading_style")),
        "risk_profile": _slug(raw.get("risk_profile")),
        "personality": _optional_text(raw.get("personality"), 240),
        "style_prompt_cn": _optional_text(raw.get("style_prompt_cn"), 800),
        "stock_pool": normalize_stock_pool(raw.get("stock_pool"), required["exchange_id"]),
    }


class ManifestScanError(OSError):
    """The folder could not be read as a whole (e.g. EMFILE): what it holds is unknown, not empty."""


# Errors that say nothing about the file: the machine is short of descriptors or memory.
_TRANSIENT = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN, errno.EINTR}


def _read_manifest(folder: Path) -> dict:
    try:
        raw = (folder / MANIFEST_FILE).read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"no {MANIFEST_FILE}") from None
    except OSError as exc:
        if exc.errno in _TRANSIENT:
            raise ManifestScanError(exc.errno, f"{folder.name}/{MANIFEST_FILE}: {exc.strerror}") from None
        raise ManifestError(f"unreadable: {exc.strerror or exc}") from None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"invalid JSON: {exc}") from None
    return parse_manifest(parsed, folder.name)


def load_manifest(agents_dir: Path, agent_id: str) -> dict:
    """The manifest of one agent: 400 `invalid_agent_id`, or 404 `agent_manifest_not_found`."""
    agent_id = _text(agent_id)
    if not AGENT_ID_RE.match(agent_id):
        raise ApiError(400, "invalid_agent_id")
    try:
        return _read_manifest(Path(agents_dir) / agent_id)
    except ManifestError as exc:
        raise ApiError(404, "agent_manifest_not_found", exc.reason) from None
    except ManifestScanError as exc:
        raise ApiError(503, "agent_manifest_unreadable", f"cannot read the manifest now: {exc.strerror}") from None


def scan(agents_dir: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """(valid manifests by id in id order, skipped folder name -> reason), without logging.

    A missing folder holds no manifests; a folder that cannot be listed or a manifest that cannot
    be opened for want of resources raises ManifestScanError (the caller keeps what it had).
    """
    found: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    try:
        folders = [p for p in Path(agents_dir).iterdir() if p.is_dir()]
    except FileNotFoundError:
        return {}, {}
    except OSError as exc:
        raise ManifestScanError(exc.errno, f"{Path(agents_dir).name}/: {exc.strerror}") from None
    for folder in folders:
        try:
            manifest = _read_manifest(folder)
        except ManifestError as exc:
            skipped[folder.name] = exc.reason
            continue
        found[manifest["agent_id"]] = manifest
    ordered = {key: found[key] for key in sorted(found, key=id_sort_key)}
    return ordered, dict(sorted(skipped.items()))


def discover(agents_dir: Path) -> dict[str, dict]:
    """Every valid manifest under `agents_dir`, by id; skipped folders are logged with the reason."""
    try:
        manifests, skipped = scan(agents_dir)
    except ManifestScanError as exc:
        log.error("agent manifests unreadable at boot (%s): starting with none; the rescan retries", exc.strerror)
        return {}
    for name, reason in skipped.items():
        log.warning("agent manifest skipped: %s/%s: %s", name, MANIFEST_FILE, reason)
    return manifests


def market_of(manifest: dict | None) -> str:
    """'US' when exchange_id contains 'sim-us', else 'CN-A' (the Node rule)."""
    exchange = _text((manifest or {}).get("exchange_id")).lower()
    return "US" if "sim-us" in exchange else "CN-A"


def manifest_view(manifest: dict) -> dict:
    """One /api/agents/available item: the normalised manifest, unknown keys included."""
    view = dict(manifest)
    view["stock_pool"] = list(manifest.get("stock_pool") or [])
    return view
