"""Large public JSON reads go out gzip-compressed to clients that accept it, once per ETag."""

from __future__ import annotations

import gzip

import orjson
import pytest

from runtime_api.web.http_cache import accepts_gzip
from tests.conftest import middleware_of

pytestmark = pytest.mark.anyio

FRAMES = "/api/market/frames"
PARAMS = {"symbol": "600519.SH", "interval": "1m", "limit": "500"}


async def _raw(api, path, params=None, headers=None):
    """The response as sent, without httpx decoding it (stream + raw bytes)."""
    request = api.client.build_request("GET", path, params=params, headers=headers or {})
    response = await api.client.send(request, stream=True)
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return response, body


async def test_frames_are_gzipped_for_a_client_that_accepts_it_and_identical_once_inflated(api):
    plain, plain_body = await _raw(api, FRAMES, PARAMS, {"accept-encoding": "identity"})
    packed, packed_body = await _raw(api, FRAMES, PARAMS, {"accept-encoding": "gzip, deflate, br"})
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) == len(packed_body) < len(plain_body) / 4
    assert gzip.decompress(packed_body) == plain_body
    assert orjson.loads(plain_body)["data"]["frames"]
    for response in (plain, packed):  # caches in between must keep the two apart
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers["cache-control"].startswith("public, max-age=")
    assert packed.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'


async def test_either_etag_revalidates_and_the_304_names_the_one_the_client_holds(api):
    plain, _ = await _raw(api, FRAMES, PARAMS, {"accept-encoding": "identity"})
    packed, _ = await _raw(api, FRAMES, PARAMS, {"accept-encoding": "gzip"})
    for held in (plain.headers["etag"], packed.headers["etag"]):
        again, body = await _raw(api, FRAMES, PARAMS, {"accept-encoding": "gzip", "if-none-match": held})
        assert again.status_code == 304 and body == b""
        assert again.headers["etag"] == held and again.headers["vary"] == "Accept-Encoding"


async def test_compressed_once_per_etag_and_small_bodies_stay_plain(api):
    for _ in range(5):
        await _raw(api, FRAMES, PARAMS, {"accept-encoding": "gzip"})
    middleware = middleware_of(api.app, "HttpCache")
    assert len(middleware._gzipped) == 1
    small, body = await _raw(api, "/api/config", None, {"accept-encoding": "gzip"})
    assert small.status_code == 200 and len(body) < 1024
    assert "content-encoding" not in small.headers


async def test_errors_and_control_routes_are_never_compressed_or_cacheable(api):
    missing, _ = await _raw(api, "/api/account", {"trader_id": "nobody"}, {"accept-encoding": "gzip"})
    assert missing.status_code == 404 and "content-encoding" not in missing.headers
    assert missing.headers["cache-control"] == "no-store"
    audit, _ = await _raw(api, "/api/ops/audit", None, {"accept-encoding": "gzip"})
    assert "content-encoding" not in audit.headers and audit.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("header, accepted", [
    ("gzip", True), ("gzip, deflate, br", True), ("br;q=1.0, gzip;q=0.8", True), ("*", True),
    ("identity", False), ("", False), (None, False), ("gzip;q=0", False), ("deflate, gzip;q=0.0", False),
])
def test_accept_encoding_parsing(header, accepted):
    assert accepts_gzip(header) is accepted
