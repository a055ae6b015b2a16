"""Market data: bar files and their index, the replay engine, live files, daily history and frame resolution.

Plain Python (no Starlette): the API layer and the agent runtime both call it. `calendar` holds the
exchange sessions, `session_gate` which agents may decide now, `freshness` how old each live file's
newest data is.
"""

from runtime_api.market.bars import INTERVALS, FrameIndex, aggregate, load_batch, load_frames, to_kline
from runtime_api.market.daily import DailyHistory
from runtime_api.market.live_files import LiveFileFrameProvider, LiveJsonFileProvider
from runtime_api.market.replay import ReplayEngine
from runtime_api.market.service import MarketDataError, MarketDataService

__all__ = [
    "INTERVALS",
    "DailyHistory",
    "FrameIndex",
    "LiveFileFrameProvider",
    "LiveJsonFileProvider",
    "MarketDataError",
    "MarketDataService",
    "ReplayEngine",
    "aggregate",
    "load_batch",
    "load_frames",
    "to_kline",
]
