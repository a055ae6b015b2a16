"""`ONLYTRADE_WEB_DIST=<dir>`: the runtime serves a built web front end, as production's nginx does.

The rules, in order (see docs/runbooks/web-front-end.md):
1. `/onlytrade/api/*` is the runtime's `/api/*` (the pages' SSE streams come this way);
2. `/api/*` is the runtime;
3. `/onlytrade/*` is the file from the build if it exists, else its `index.html` (client routing);
4. anything else is the build's file, `index.html` as fallback (e.g. `/room?trader=...`).
With a build configured, `/onlytrade/` belongs to it; the runtime's own viewer pages stay at
`/`, `/room/<id>` and `/static/*`, which are matched before rule 4.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route

from ..errors import not_found

PREFIX = "/onlytrade"


def _file_in(dist: Path, relative: str) -> Path | None:
    candidate = (dist / relative.lstrip("/")).resolve()
    if candidate != dist and dist not in candidate.parents:
        return None
    return candidate if candidate.is_file() else None


def build_routes(dist: Path, api_routes: list) -> list:
    """Rules 1, 3 and 4 as routes (rule 2 is the API itself, listed first by the caller)."""
    dist = dist.resolve()
    index = dist / "index.html"

    async def get_web_file(request: Request) -> Response:
        path = request.path_params.get("path", "")
        if path == "api" or path.startswith("api/"):
            raise not_found()  # an unknown /api route stays a JSON 404, never the page
        found = _file_in(dist, path) if path else None
        if found is None:
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        immutable = found.parent.name == "assets" and found.parent.parent == dist
        return FileResponse(found, headers={"Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"})

    public = [r for r in api_routes if getattr(r, "read_only", False) or getattr(r, "stream", False)
              or getattr(r, "viewer_action", False)]
    served = Route("/{path:path}", get_web_file, methods=["GET"], name="web_file")
    served.control, served.read_only = False, False
    return [Mount(PREFIX, routes=[*public, served], name="onlytrade"), served]
