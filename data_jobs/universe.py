"""Which CN symbols the jobs collect: the registered agents' stock pools, or every manifest's.

A fresh host has an empty registry but the runtime refuses to boot in strict live mode without
frames: with no registered CN agent the jobs collect for every manifest in AGENTS_DIR, so the
files exist before the first agent is registered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from runtime_api.manifests import discover, market_of
from runtime_api.settings import Settings
from runtime_api.state.storage import CorruptFileError, read_json

_CN_SYMBOL = re.compile(r"^\d{6}\.(SH|SZ)$")
_CN_CODE = re.compile(r"^\d{6}$")


def registered_agent_ids(settings: Settings) -> list[str]:
    """Keys of `agents` in the agent.registry.v1 file; none when it does not exist yet."""
    path = settings.resolve(settings.agent_registry_path)
    registry = read_json(path)
    if registry is None:
        return []
    if not isinstance(registry, dict) or not isinstance(registry.get("agents", {}), dict):
        raise CorruptFileError(path, "not an agent.registry.v1 object")
    return sorted(registry.get("agents", {}))


def _pools(manifests: Iterable[dict | None]) -> list[str]:
    symbols: set[str] = set()
    for manifest in manifests:
        if manifest and market_of(manifest) == "CN-A":
            symbols.update(s for s in manifest.get("stock_pool") or [] if _CN_SYMBOL.match(s))
    return sorted(symbols)


def cn_symbols(settings: Settings) -> list[str]:
    """Sorted union of the stock pools of registered CN-A agents (those with a valid manifest);
    every manifest's pool when no CN agent with a pool is registered (a fresh host)."""
    manifests = discover(settings.resolve(settings.agents_dir))
    registered = _pools(manifests.get(agent_id) for agent_id in registered_agent_ids(settings))
    return registered or _pools(manifests.values())


def all_cn_symbols(settings: Settings) -> list[str]:
    """Sorted union of the stock pools of every CN-A manifest in AGENTS_DIR (registered or not)."""
    return _pools(discover(settings.resolve(settings.agents_dir)).values())


def normalize_cn_symbols(raw: Iterable[str]) -> list[str]:
    """`600519`, `600519.sh` or `600519.SH` -> `600519.SH` (bare codes: 5/6/9 are SSE, the rest SZSE)."""
    out: list[str] = []
    for item in raw:
        symbol = str(item).strip().upper()
        if not symbol:
            continue
        if _CN_CODE.match(symbol):
            symbol = f"{symbol}.{'SH' if symbol[0] in '569' else 'SZ'}"
        if not _CN_SYMBOL.match(symbol):
            raise ValueError(f"--symbols: {item!r} is not a CN A-share symbol like 600519.SH")
        if symbol not in out:
            out.append(symbol)
    return out


def code_of(symbol: str) -> str:
    """`600519.SH` -> `600519` (the form AKShare takes)."""
    return symbol.split(".", 1)[0]
