"""HTTP caching of public reads: strong ETags from state versions, Cache-Control, 304s.

One pure-ASGI middleware, configured with a table of public GET routes. Each entry names its
`max-age` class (a setting) and how to compute the version of the state the response depends on;
the ETag is a hash of (boot, path, query, version), so `If-None-Match` is answered with a 304
*before* the route builds anything. A version function with no cheap version at the moment
returns `BODY` (the room packet while its next build is due): the ETag is then hashed from the body
the route produces, still strong, still a 304, but after the build. Anything not in the table —
control routes, ops reads, health probes, errors, routes added later — is `Cache-Control:
no-store`, so nothing private or token-dependent is ever marked public by accident. The `/onlytrade` mount shares the un-prefixed routes' policies.

The ETag stands for the whole answer, so a GET whose ETag was answered less than the route's
max-age ago gets the same headers and body again straight from here, as the nginx micro-cache in
front would serve it: no router, no route, no response object (most of what a read cost). A
version function that missed some state could make an answer at most max-age stale, never more.
Kept answers are filed per URL, so a newer version replaces the older one instead of piling up.

A public JSON body of a kilobyte or more goes out gzip-compressed to a client that accepts it (every
browser does), compressed once per ETag: 500 bars of frames are 69 KB as JSON and about a tenth of
that compressed, and a read's cost is its bytes. Such routes say `Vary: Accept-Encoding`, and the
compressed representation has its own strong ETag (`"<digest>-gz"`); If-None-Match accepts either,
since both stand for the same state version.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import re
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ApiError

PREFIX = "/onlytrade"
NO_STORE = b"no-store"
GZIP_MIN_BYTES = 1024  # below a packet or so, compression saves nothing worth its CPU
GZIP_LEVEL = 5
GZIP_CACHE_ENTRIES = 256
RESPONSE_CACHE_ENTRIES = 1024
RESPONSE_CACHE_BYTES = 64 << 20
MEMO_ENTRIES = 1024  # parsed query strings, ETags: cleared when full (a scan of random URLs)
BODY = object()  # policy.version, or what it returns: hash the response body instead of a state version

VersionFn = Callable[[Any, dict[str, str], dict[str, str]], Hashable]


@dataclass(frozen=True)
class Policy:
    max_age: str  # "status" | "list" | "asset": which max-age setting applies
    version: VersionFn | object


def max_age_of(settings, kind: str) -> int:
    return {
        "status": settings.http_cache_status_max_age_s,
        "list": settings.http_cache_list_max_age_s,
        "asset": settings.http_cache_asset_max_age_s,
    }[kind]


def time_bucket(seconds: float) -> int:
    """A version that changes every `seconds` (state read from the clock: sessions, live files)."""
    return int(time.time() / max(0.25, seconds))


def etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison over a comma list, or `*`."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


@functools.lru_cache(maxsize=64)
def accepts_gzip(header: str | None) -> bool:
    """Accept-Encoding names gzip (or `*`) with a non-zero q."""
    for item in (header or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.", "0.0", "0.00", "0.000"))
    return False


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


@dataclass(slots=True)
class _Read:
    """What one public GET or HEAD resolved to, kept in the scope between `answer` and `__call__`."""

    label: str  # the route template (with the mount prefix): what the request metrics count it as
    max_age: int
    cache_control: bytes
    if_none_match: str | None
    gzip_ok: bool
    url: tuple[str, bytes] = ("", b"")  # (path, raw query): what the kept answers are filed under
    etag: bytes | None = None  # from the state version, before the build
    from_body: bool = False  # no cheap version: the ETag is hashed from the body after the build
    # neither: the version function refused the request (e.g. an unknown trader), the route answers


_READ = "http_cache.read"


class HttpCache:
    """ASGI middleware: `policies` maps route templates (without the /onlytrade prefix) to Policy.

    `answer(scope)` is the part that needs no await: a 304 or a kept answer, or None. The request
    metrics layer in front asks it first (its answer then costs no further layer or send wrapper);
    whatever it resolved stays in the scope, so `__call__` does not compute it twice.
    """

    def __init__(self, app: ASGIApp, policies: dict[str, Policy], ctx_of: Callable[[Scope], Any] | None = None,
                 boot_tag: str = "", found_in: dict | None = None):
        self.app = app
        if found_in is not None:  # where the metrics collector finds this instance
            found_in["http_cache"] = self
        self._exact = {path: (path, p) for path, p in policies.items() if "{" not in path}
        self._patterns = [(_compile(path), path, p) for path, p in policies.items() if "{" in path]
        self._ctx_of = ctx_of or (lambda scope: scope["app"].state.ctx)
        self._boot = boot_tag or str(time.time_ns())
        # One entry per URL (path, raw query), never per version: a new version replaces the old
        # one, so a read whose state moves ten times a second (frames under a fast replay) holds
        # one body here, not the last thousand.
        self._gzipped: dict[tuple[str, bytes], tuple[bytes, bytes]] = {}  # URL -> (gzip ETag, compressed body)
        # (URL, gzip?) -> (ETag, kept at, headers, body): a repeat GET is answered here, without
        # the router, the route or a response object, for at most the route's max-age.
        self._responses: dict[tuple[str, bytes, bool], tuple[bytes, float, list, bytes]] = {}
        self._response_bytes = 0
        self._ages_of: Any = None
        self._ages: dict[str, tuple[int, bytes]] = {}
        self._queries: dict[bytes, dict[str, str]] = {}
        self._etags: dict[tuple, bytes] = {}
        # (URL, gzip?) -> (ETag, the answer once kept) of a GET on its way through the app: a GET
        # for the same URL and ETag meanwhile waits for that answer instead of taking the whole
        # way itself (after every state change, each waiting viewer would otherwise rebuild its
        # own request, response and headers for the same bytes).
        self._flights: dict[tuple[str, bytes, bool], tuple[bytes, asyncio.Future]] = {}
        self.response_hits = 0
        self.response_misses = 0
        self.response_joins = 0
        self.not_modified = 0

    def match(self, path: str) -> tuple[str, Policy, dict[str, str]] | None:
        """(route template, policy, path params) of a public read, else None."""
        if path.startswith(PREFIX + "/"):
            path = path[len(PREFIX):]
        found = self._exact.get(path)
        if found is not None:
            return found[0], found[1], {}
        for pattern, template, policy in self._patterns:
            m = pattern.match(path)
            if m:
                return template, policy, m.groupdict()
        return None

    def answer(self, scope: Scope) -> tuple[int, list, bytes] | None:
        """(status, headers, body) of a request answerable without the app, else None."""
        read = scope[_READ] = self._resolve(scope)
        if read is None or read.etag is None:
            return None
        matched = self._matching(read.if_none_match, read.etag)
        if matched is not None:
            self.not_modified += 1
            scope["route_label"] = read.label
            return _not_modified(matched, read.cache_control)
        if scope["method"] != "GET" or read.max_age <= 0:
            return None
        stored = self._responses.get((*read.url, read.gzip_ok))
        if stored is None or stored[0] != read.etag or time.monotonic() - stored[1] >= read.max_age:
            return None
        self.response_hits += 1
        scope["route_label"] = read.label  # no router ran: what the request metrics count it as
        return 200, stored[2], stored[3]

    def _resolve(self, scope: Scope) -> _Read | None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        path = scope["path"]
        found = self.match(path)
        if found is None:
            return None
        template, policy, params = found
        ctx = self._ctx_of(scope)
        max_age, cache_control = self._max_age(ctx.settings, policy.max_age)
        if_none_match, accept_encoding = _request_headers(scope)
        mounted = path.startswith(PREFIX + "/")
        raw_query = scope.get("query_string", b"")
        read = _Read(PREFIX + template if mounted else template, max_age, cache_control, if_none_match,
                     accepts_gzip(accept_encoding), (path, raw_query))
        if policy.version is BODY:
            read.from_body = True
            return read
        try:
            version = policy.version(ctx, params, self._query(raw_query))  # type: ignore[operator]
        except ApiError:  # e.g. an unknown trader: the route answers its own 404
            return read
        if version is BODY:  # no cheap version right now: hashed from the body
            read.from_body = True
            return read
        read.etag = self._etag(path[len(PREFIX):] if mounted else path, raw_query, version)
        return read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _READ not in scope:  # not asked in front: ask now
            answered = self.answer(scope)
            if answered is not None:
                await _send_answer(send, answered)
                return
        read: _Read | None = scope.pop(_READ)
        if read is None or (read.etag is None and not read.from_body):
            await self.app(scope, receive, _with_headers(send, None, NO_STORE))
            return
        if scope["method"] != "GET":  # HEAD: answered by the route, never kept or joined
            await self._through_app(scope, receive, send, read, None)
            return
        key = (*read.url, read.gzip_ok)
        flight = self._flights.get(key)
        if flight is not None and flight[0] == read.etag:  # the same version (or both hashed from the body)
            joined = await asyncio.shield(flight[1])
            if joined is not None:  # the answer the first request got, sent as a repeat would get it
                self.response_joins += 1
                scope["route_label"] = read.label
                etag, headers, body = joined
                matched = self._matching(read.if_none_match, etag)
                await _send_answer(send, _not_modified(matched, read.cache_control) if matched else (200, headers, body))
                return
            # the first request got no answer to share (an error, a stream, a disconnect): go the whole way
            await self._through_app(scope, receive, send, read, None)
            return
        landed: asyncio.Future = asyncio.get_running_loop().create_future()
        self._flights[key] = (read.etag, landed)
        self.response_misses += 1
        try:
            await self._through_app(scope, receive, send, read, landed)
        finally:
            if self._flights.get(key, (None, None))[1] is landed:
                del self._flights[key]
            if not landed.done():
                landed.set_result(None)

    async def _through_app(self, scope: Scope, receive: Receive, send: Send, read: _Read,
                           landed: asyncio.Future | None) -> None:
        """The route builds the answer; `landed` gets it for the requests that joined this one."""
        if read.from_body:
            await self._body_hashed(scope, receive, send, read, landed)
            return
        assert read.etag is not None
        keep = (*read.url, read.gzip_ok) if scope["method"] == "GET" and read.max_age > 0 else None
        await self.app(scope, receive, self._encoding_send(self._recording(send, read.etag, landed, keep), read, read.etag))

    def _max_age(self, settings, kind: str) -> tuple[int, bytes]:
        """(max-age, Cache-Control) of a class; settings are frozen, so computed once per settings."""
        if self._ages_of is not settings:
            self._ages = {}
            self._ages_of = settings
        found = self._ages.get(kind)
        if found is None:
            age = max_age_of(settings, kind)
            found = self._ages[kind] = (age, b"public, max-age=%d" % age)
        return found

    def _query(self, raw: bytes) -> dict[str, str]:
        """The parsed query string; viewers repeat a few, so parses are memoised (bounded).
        Version functions only read it."""
        parsed = self._queries.get(raw)
        if parsed is None:
            if len(self._queries) >= MEMO_ENTRIES:
                self._queries.clear()
            parsed = self._queries[raw] = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
        return parsed

    def _etag(self, path: str, raw_query: bytes, version: Hashable) -> bytes:
        """hash(boot, path, sorted query, version), memoised per (path, raw query, version)."""
        key = (path, raw_query, version)
        try:
            etag = self._etags.get(key)
        except TypeError:  # an unhashable version: hash it every time
            key, etag = None, None
        if etag is None:
            query = sorted(self._query(raw_query).items())
            digest = hashlib.blake2b(repr((self._boot, path, query, version)).encode(), digest_size=16)
            etag = b'"' + digest.hexdigest().encode() + b'"'
            if key is not None:
                if len(self._etags) >= MEMO_ENTRIES:
                    self._etags.clear()
                self._etags[key] = etag
        return etag

    def _recording(self, send: Send, etag: bytes, landed: asyncio.Future | None,
                   keep: tuple[str, bytes, bool] | None) -> Send:
        """Pass the response on; a 200 sent in one body message is kept as the answer for its ETag
        (`keep`) and handed to the requests that joined this one (`landed`)."""
        head: Message | None = None

        async def recording(message: Message) -> None:
            nonlocal head
            if message["type"] == "http.response.start":
                head = message if message["status"] == 200 else None
            elif message["type"] == "http.response.body" and head is not None:
                if not message.get("more_body"):
                    headers, body = list(head.get("headers", [])), message.get("body", b"")
                    if keep is not None:
                        self._keep(keep, etag, headers, body)
                    if landed is not None and not landed.done():
                        landed.set_result((etag, headers, body))
                head = None
            await send(message)

        return recording

    def _keep(self, key: tuple[str, bytes, bool], etag: bytes, headers: list, body: bytes) -> None:
        old = self._responses.get(key)
        if old is None and (len(self._responses) >= RESPONSE_CACHE_ENTRIES
                            or self._response_bytes + len(body) > RESPONSE_CACHE_BYTES):
            self._responses.clear()  # a scan of distinct URLs: start again
            self._response_bytes = 0
        self._response_bytes += len(body) - (len(old[3]) if old else 0)
        self._responses[key] = (etag, time.monotonic(), headers, body)

    def _matching(self, if_none_match: str | None, etag: bytes) -> bytes | None:
        """The representation's ETag (identity or gzip) that If-None-Match names, if any."""
        if not if_none_match:
            return None
        for candidate in (etag, _gz_etag(etag)):
            if etag_matches(if_none_match, candidate.decode()):
                return candidate
        return None

    def _encoding_send(self, send: Send, read: _Read, etag: bytes) -> Send:
        """Headers of a public read; a large JSON 200 in one body message is gzipped when accepted."""
        start: Message | None = None
        cache_control, gzip_ok = read.cache_control, read.gzip_ok

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] == 200 and _compressible(message):
                    start = message  # held until the body decides the encoding
                    return
                await _with_headers(send, etag, cache_control)(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            head, start = start, None
            body = message.get("body", b"")
            headers = [*head.get("headers", []), (b"vary", b"Accept-Encoding")]
            if not gzip_ok or message.get("more_body") or len(body) < GZIP_MIN_BYTES:
                await _with_headers(send, etag, cache_control)({**head, "headers": headers})
                await send(message)
                return
            tag = _gz_etag(etag)
            found = self._gzipped.get(read.url)
            if found is not None and found[0] == tag:
                packed = found[1]
            else:
                packed = gzip.compress(body, GZIP_LEVEL, mtime=0)
                if found is None and len(self._gzipped) >= GZIP_CACHE_ENTRIES:
                    self._gzipped.clear()
                self._gzipped[read.url] = (tag, packed)
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers += [(b"content-encoding", b"gzip"), (b"content-length", str(len(packed)).encode())]
            await _with_headers(send, tag, cache_control)({**head, "headers": headers})
            await send({"type": "http.response.body", "body": packed})

        return wrapped

    async def _body_hashed(self, scope: Scope, receive: Receive, send: Send, read: _Read,
                           landed: asyncio.Future | None) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            assert start is not None
            body = b"".join(chunks)
            if start["status"] != 200:
                await _with_headers(send, None, NO_STORE)(start)
                await send({"type": "http.response.body", "body": body})
                return
            etag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
            matched = self._matching(read.if_none_match, etag)
            if matched is not None:
                await _send_answer(send, _not_modified(matched, read.cache_control))
                return
            encoding_send = self._encoding_send(self._recording(send, etag, landed, None), read, etag)
            await encoding_send(start)
            await encoding_send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def _request_headers(scope: Scope) -> tuple[str | None, str | None]:
    """(If-None-Match, Accept-Encoding) in one pass over the headers."""
    if_none_match = accept_encoding = None
    for key, value in scope["headers"]:
        if key == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif key == b"accept-encoding":
            accept_encoding = value.decode("latin-1")
    return if_none_match, accept_encoding


def _not_modified(etag: bytes, cache_control: bytes) -> tuple[int, list, bytes]:
    return 304, [(b"etag", etag), (b"cache-control", cache_control), (b"vary", b"Accept-Encoding")], b""


async def _send_answer(send: Send, answered: tuple[int, list, bytes]) -> None:
    status, headers, body = answered
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _with_headers(send: Send, etag: bytes | None, cache_control: bytes) -> Send:
    """Add ETag and Cache-Control to a 200 (a route's own Cache-Control wins, our ETag replaces
    the route's); errors are no-store."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {k.lower() for k, _ in headers}
            ok = message["status"] == 200
            if b"cache-control" not in names:
                headers.append((b"cache-control", cache_control if ok else NO_STORE))
            if ok and etag is not None:  # ours is the one a 304 is judged on
                headers = [(k, v) for k, v in headers if k.lower() != b"etag"] + [(b"etag", etag)]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _gz_etag(etag: bytes) -> bytes:
    return etag[:-1] + b'-gz"'


def _compressible(start: Message) -> bool:
    """JSON not already encoded (avatars and other files are left as they are)."""
    kind = encoding = b""
    for key, value in start.get("headers", []):
        key = key.lower()
        if key == b"content-type":
            kind = value
        elif key == b"content-encoding":
            encoding = value
    return kind.startswith(b"application/json") and not encoding
