"""Stock short names (`market.symbol_names.v1`): the shipped table of the replay pack, or the live file
the `symbol_names` data job writes. A symbol without a name shows its code, as the Node runtime did."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from runtime_api.market.live_files import WatchedFile

SCHEMA = "market.symbol_names.v1"


class SymbolNames(WatchedFile):
    """`names` of a `market.symbol_names.v1` file, hot-reloaded; a bad reload keeps the last good names."""

    def __init__(
        self,
        path: Path | str,
        *,
        now_ms: Callable[[], int] | None = None,
        check_ms: int = 10_000,
        display_path: str | None = None,
    ):
        super().__init__(path, refresh_ms=check_ms, now_ms=now_ms, display_path=display_path)
        self.names: dict[str, str] = {}
        self.refresh(force=True)

    def _accept(self, raw: bytes) -> None:
        payload = orjson.loads(raw)
        names = payload.get("names") if isinstance(payload, dict) else None
        if not isinstance(names, dict):
            raise ValueError("expected a market.symbol_names.v1 object with a names map")
        self.names = {str(k).strip().upper(): str(v).strip() for k, v in names.items() if isinstance(v, str) and v.strip()}

    def name_of(self, symbol: str) -> str:
        """The short name, else the code itself (never empty: the web client lower-cases it)."""
        self.refresh()
        return self.names.get(symbol, symbol)

    def status(self) -> dict:
        return {**self._base_status(), "count": len(self.names)}
