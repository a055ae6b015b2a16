"""The OpenAPI 3.1 document, generated from the app's route table.

One source: the paths, methods, path parameters and control-token requirement come from the
routes themselves (`control_route` marks them), the summaries from the handlers' docstrings, and
the query parameters, bodies and error codes from `api_spec.OPS`. Every route is in it, so
a new route cannot be missing from the document; a test builds it strictly from `app.routes`, so
a route without an entry fails the suite (the served document then describes it generically).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Mount, Route

from .api_spec import OPS, PATH_PARAMS, Op

_CONVERTOR = re.compile(r"{([^}:]+)(:[^}]+)?}")
# What every operation can answer, and what every control route adds (control.control_route).
COMMON_ERRORS = {500: ["internal_error"]}
CONTROL_ERRORS = {
    400: ["invalid_json"], 401: ["unauthorized_control_token"], 403: ["insufficient_role"], 413: ["payload_too_large"],
    429: ["too_many_auth_failures", "too_many_pending_approvals"], 500: ["internal_error"],
    503: ["control_token_not_configured", "state_write_failed"], 507: ["state_write_failed"],
}
STATUS_TEXT = {200: "OK", 202: "Accepted: waiting for a second admin (two-person rule)", 400: "Bad request", 401: "Missing or wrong control token", 403: "Forbidden", 404: "Not found",
               409: "Conflict", 413: "Body too large", 423: "Locked by the kill switch", 429: "Too many requests",
               500: "Unexpected server error", 502: "Upstream failed", 503: "Unavailable", 507: "Disk full"}


class MissingSpec(LookupError):
    """A route has no entry in api_spec.OPS."""


def iter_routes(routes, prefix: str = ""):
    """(full path template, route) for every Route, mounts flattened."""
    for route in routes:
        if isinstance(route, Mount):
            yield from iter_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, route


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "error"],
        "properties": {"success": {"const": False}, "error": {"type": "string", "enum": sorted(set(codes))},
                       "message": {"type": "string"}},
    }


def _success_schema(op: Op) -> dict[str, Any]:
    if not op.envelope:
        return {"type": "object"}
    return {"type": "object", "required": ["success", "data"], "properties": {"success": {"const": True}, "data": {}}}


def _content(op: Op, schema: dict[str, Any]) -> dict[str, Any]:
    if op.media == "application/json":
        return {"application/json": {"schema": schema}}
    if op.media in ("application/octet-stream",):
        return {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    return {op.media: {"schema": {"type": "string"}}}


def _responses(op: Op, control: bool) -> dict[str, Any]:
    errors: dict[int, list[str]] = {}
    for table in (COMMON_ERRORS, CONTROL_ERRORS if control else {}, op.errors):
        for status, codes in table.items():
            errors.setdefault(status, []).extend(codes)
    out: dict[str, Any] = {"200": {"description": "OK", "content": _content(op, _success_schema(op))}}
    if control:  # an admin action under the two-person rule answers 202 with the pending request
        out["202"] = {"description": STATUS_TEXT[202], "content": {"application/json": {"schema": _success_schema(Op())}}}
    for status in sorted(errors):
        codes = errors[status]
        if not codes:  # the same body as a success, with another status (e.g. /health/ready before boot)
            out[str(status)] = {"description": STATUS_TEXT.get(status, "Error"), "content": _content(op, _success_schema(op))}
            continue
        out[str(status)] = {
            "description": f"{STATUS_TEXT.get(status, 'Error')}: " + ", ".join(sorted(set(codes))),
            "content": {"application/json": {"schema": _error_schema(codes)}},
        }
    return out


def _undescribed(route: Route) -> dict[str, Any]:
    """Responses for a route missing from OPS outside strict mode: any 2xx body, any 4xx code."""
    generic = {"type": "object", "required": ["success", "error"], "properties": {"error": {"type": "string"}}}
    return {
        "200": {"description": "OK (not described yet)", "content": {"*/*": {"schema": {}}}},
        "4XX": {"description": "An error (codes not listed yet)", "content": {"application/json": {"schema": generic}}},
        "500": {"description": STATUS_TEXT[500], "content": {"application/json": {"schema": _error_schema(COMMON_ERRORS[500])}}},
    }


def operation(path: str, route: Route, method: str, *, strict: bool = True) -> dict[str, Any]:
    name = route.name
    op = OPS.get(name)
    if op is None:
        if strict:
            raise MissingSpec(f"route {name} ({method} {path}) has no entry in runtime_api/observability/api_spec.py")
        return {"operationId": name, "summary": (route.endpoint.__doc__ or name).strip().split("\n")[0],
                "tags": [_tag(path)], "responses": _undescribed(route), "x-onlytrade-undescribed": True,
                "parameters": [{"name": p, "in": "path", "required": True, "schema": PATH_PARAMS.get(p, {"type": "string"})}
                               for p, _ in _CONVERTOR.findall(path)]}
    doc = (route.endpoint.__doc__ or "").strip()
    summary, _, description = doc.partition("\n")
    control = bool(getattr(route, "control", False))
    params = [
        {"name": p, "in": "path", "required": True, "schema": PATH_PARAMS.get(p, {"type": "string"})}
        for p, _ in _CONVERTOR.findall(path)
    ]
    out: dict[str, Any] = {
        "operationId": ("onlytrade_" if path.startswith("/onlytrade/") else "") + name + ("" if method == "get" or name.startswith(("post_", "close_")) else f"_{method}"),
        "summary": summary.strip() or name,
        "tags": [_tag(path)],
        "parameters": params + [dict(p) for p in op.query],
        "responses": _responses(op, control),
    }
    if description.strip():
        out["description"] = " ".join(description.split())
    if control:
        out["security"] = [{"controlToken": []}, {"bearer": []}]
        out["description"] = (out.get("description", "") + " Requires the control token; audited.").strip()
    if op.body is not None and method != "get":
        out["requestBody"] = {"required": False, "content": {"application/json": {"schema": op.body}}}
    return out


def _tag(path: str) -> str:
    parts = [p for p in path.split("/") if p and p not in ("onlytrade", "api")]
    return parts[0] if parts else "pages"


def openapi_document(routes, build: dict | None = None, *, strict: bool = True) -> dict[str, Any]:
    """The document; `strict` (the tests) raises MissingSpec for a route missing from OPS, the
    served document describes it generically instead (a missing entry must not 500 the endpoint)."""
    paths: dict[str, dict[str, Any]] = {}
    for path, route in iter_routes(routes):
        template = _CONVERTOR.sub(lambda m: "{" + m.group(1) + "}", path)
        for method in sorted(m.lower() for m in (route.methods or ()) if m != "HEAD"):
            paths.setdefault(template, {})[method] = operation(template, route, method, strict=strict)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "onlytrade-runtime",
            "version": (build or {}).get("version", "unknown"),
            "description": "The OnlyTrade runtime's HTTP API (Node runtime-api compatible). Success bodies are "
                           '`{"success": true, "data": ...}` unless noted; errors are `{"success": false, "error": code, "message"?}`.',
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "controlToken": {"type": "apiKey", "in": "header", "name": "x-control-token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
        },
    }
