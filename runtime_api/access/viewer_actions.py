"""Viewer actions: the few non-GET routes a viewer may call without the control token.

Posting a chat message, placing a (virtual-points) bet, bootstrapping a chat session and asking
for speech are what the show's audience does; requiring the operator's control token for them
would make the front end useless. Each is still protected, by its own means, and says so in
`route.protections` (the route-table test walks them): a feature switch, a session credential
checked by HMAC, per-session and per-address rate limits, and the 100 kB body cap.
"""

from __future__ import annotations

from starlette.routing import Route


def viewer_route(path: str, endpoint, *, protections: str, methods: list[str] | None = None) -> Route:
    route = Route(path, endpoint, methods=methods or ["POST"], name=endpoint.__name__)
    route.control = False
    route.read_only = False
    route.viewer_action = True
    route.protections = protections
    return route
