"""The read-only viewer pages: the lobby at `/`, a room at `/room/<id>`, their two static files.

Every URL in the pages is relative to `<base href>`, which is filled in per request from the
path prefix the page is served under: a reverse proxy's `X-Forwarded-Prefix`, the ASGI root
path, or the `/onlytrade/` mount below. That mount serves the pages and every public read (and the
SSE streams) again under `/onlytrade/`, so a same-origin deployment needs no proxy: the original
web app opens its room stream at `/onlytrade/api/rooms/<id>/events` from `/onlytrade/` pages.
The pages never see the control token and never send anything but GETs.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from ..access.control_route import read_route
from ..errors import not_found

STATIC = Path(__file__).resolve().parent.parent / "static"
PREFIX = "/onlytrade"
ASSETS = {"viewer.js": "text/javascript; charset=utf-8", "viewer.css": "text/css; charset=utf-8"}
_PREFIX_RE = re.compile(r"^(?:/[A-Za-z0-9._~-]+)*/?$")
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


@functools.cache
def _page(name: str) -> tuple[bytes, str]:
    """A page template and the Content-Security-Policy that allows exactly its inline script."""
    raw = (STATIC / name).read_bytes()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(raw)
    )
    csp = (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data: https:; "
           "connect-src 'self'; base-uri 'self'; form-action 'none'; object-src 'none'")
    return raw, csp


@functools.cache
def _asset(name: str) -> tuple[bytes, str]:
    raw = (STATIC / name).read_bytes()
    return raw, '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


def base_href(request: Request) -> str:
    """The page's base path: `X-Forwarded-Prefix` (when it is a plain path) and the root path, then '/'."""
    root = str(request.scope.get("root_path") or "").rstrip("/")
    forwarded = request.headers.get("x-forwarded-prefix", "").strip()
    if not _PREFIX_RE.match(forwarded) or any(part in (".", "..") for part in forwarded.split("/")):
        forwarded = ""
    forwarded = forwarded.rstrip("/")
    if forwarded and not root.startswith(forwarded):
        root = forwarded + root
    return root + "/"


def _html(request: Request, name: str) -> Response:
    raw, csp = _page(name)
    body = raw.replace(b"{{BASE}}", base_href(request).encode(), 1)
    headers = {
        "Cache-Control": "no-cache",
        "Vary": "X-Forwarded-Prefix",
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


async def get_lobby_page(request: Request) -> Response:
    """The lobby page: every lobby trader's equity and P&L."""
    return _html(request, "index.html")


async def get_room_page(request: Request) -> Response:
    """A room page: one trader's account, positions and decisions, live over SSE."""
    return _html(request, "room.html")


async def get_static_asset(request: Request) -> Response:
    """The pages' script and stylesheet (nothing else is served from the static folder)."""
    name = request.path_params["name"]
    if name not in ASSETS:
        raise not_found()
    raw, etag = _asset(name)
    headers = {"Cache-Control": "no-cache", "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(raw, media_type=ASSETS[name], headers=headers)


routes = [
    read_route("/", get_lobby_page),
    read_route("/room/{room_id}", get_room_page),
    read_route("/static/{name}", get_static_asset),
]


def prefixed(api_routes: list) -> Mount:
    """The pages and every public read or stream of `api_routes`, again under `/onlytrade/`."""
    public = [r for r in api_routes if getattr(r, "read_only", False) or getattr(r, "stream", False)]
    return Mount(PREFIX, routes=[*routes, *public], name="onlytrade")
