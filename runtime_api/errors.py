"""One error hierarchy: an ApiError carries its HTTP status and machine-readable code."""

from __future__ import annotations


class ApiError(Exception):
    """Rendered as `{"success": false, "error": code[, "message": ...]}` with `status`."""

    def __init__(self, status: int, code: str, message: str | None = None):
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message


def bad_request(code: str, message: str | None = None) -> ApiError:
    return ApiError(400, code, message)


def not_found(code: str = "not_found", message: str | None = None) -> ApiError:
    return ApiError(404, code, message)


def conflict(code: str, message: str | None = None) -> ApiError:
    return ApiError(409, code, message)


def unavailable(code: str, message: str | None = None) -> ApiError:
    return ApiError(503, code, message)
