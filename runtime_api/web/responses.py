"""One orjson-backed response class and the Node runtime's `{success, data}` envelope."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content, option=_OPTS)


def to_json(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTS)


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": True, "data": data}, status_code=status, headers=headers)


def ok_bytes(data_json: bytes) -> bytes:
    """Wrap already-serialised data in the success envelope without re-encoding it."""
    return b'{"success":true,"data":' + data_json + b"}"


def fail(status: int, code: str, message: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "error": code}
    if message:
        body["message"] = message
    return JSONResponse(body, status_code=status, headers=headers)
