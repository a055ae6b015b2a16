"""Log setup: `LOG_FORMAT=text` (the default line format) or `json`, one object per line with the
request id of the HTTP request being served (set by the observability middleware)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import orjson

from .http_metrics import REQUEST_ID

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(settings) -> None:
    """Root logging for the runtime process; uvicorn's own loggers propagate to it in json mode."""
    level = settings.log_level.upper()
    if settings.log_format != "json":
        logging.basicConfig(level=level, format=TEXT_FORMAT)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def uvicorn_log_config(settings):
    """uvicorn's default config for text; None for json (its loggers then use the root handler)."""
    if settings.log_format != "json":
        import uvicorn.config

        return uvicorn.config.LOGGING_CONFIG
    return None
