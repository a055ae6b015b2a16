"""The pieces of the control gate: backoff, client address, weak tokens, claims, approvals."""

from __future__ import annotations

import pytest

from runtime_api.access.approvals import Approvals
from runtime_api.access.audit_fields import claim
from runtime_api.access.client_address import TrustedProxies, client_address
from runtime_api.access.limiter import FailureLimiter
from runtime_api.access.tokens import TokenFileError, parse_tokens_file, weakness
from runtime_api.errors import ApiError


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_backoff_doubles_for_a_repeat_offender_and_forgets_a_quiet_one():
    clock = Clock()
    lim = FailureLimiter(burst=3, window_s=60, base_block_s=10, max_block_s=40, clock=clock)
    blocks = []
    for _ in range(4):
        for _ in range(3):
            blocks.append(lim.failure("a"))
        assert lim.blocked("a") and not lim.blocked("b")
        clock.now += lim.retry_after("a") + 0.1
    assert [b for b in blocks if b] == [10, 20, 40, 40]
    clock.now += 100  # quiet longer than the longest block: back to the base block
    assert [lim.failure("a") for _ in range(3)][-1] == 10
    # Failures while blocked are refused, not counted towards the next block.
    assert lim.failure("a") == 0 and lim.retry_after("a") == pytest.approx(10)


def test_an_ipv6_client_is_its_64_and_cannot_rotate_past_the_limiter():
    lim = FailureLimiter(burst=3, clock=Clock())
    for i in range(3):
        lim.failure(f"2001:db8:1:2::{i + 1:x}")
    assert lim.blocked("2001:db8:1:2:ffff::9") and not lim.blocked("2001:db8:1:3::1")
    assert lim.failure("::ffff:192.0.2.1") == 0 and lim.retry_after("192.0.2.1") == 0


@pytest.mark.parametrize("peer,xff,trusted,expected", [
    ("127.0.0.1", "6.6.6.6", "", "127.0.0.1"),  # no trusted proxies: the header is ignored
    ("203.0.113.1", "6.6.6.6", "127.0.0.1", "203.0.113.1"),  # peer not a proxy
    ("127.0.0.1", "6.6.6.6, 198.51.100.4", "127.0.0.1", "198.51.100.4"),  # right-most untrusted hop
    ("127.0.0.1", "6.6.6.6, 198.51.100.4, 10.1.2.3", "127.0.0.1,10.0.0.0/8", "198.51.100.4"),
    ("127.0.0.1", "198.51.100.4:5555", "127.0.0.1", "198.51.100.4"),
    ("127.0.0.1", "[2001:db8::1]:443", "*", "2001:db8::1"),
    ("127.0.0.1", "not-an-ip", "127.0.0.1", "127.0.0.1"),
    ("127.0.0.1", "10.1.2.3", "127.0.0.1,10.0.0.0/8", "10.1.2.3"),  # every hop trusted: the first one
])
def test_client_address(peer, xff, trusted, expected):
    assert client_address(peer, xff, TrustedProxies(trusted)) == expected


def test_trusted_proxies_refuse_garbage():
    with pytest.raises(ValueError, match="not an address"):
        TrustedProxies("127.0.0.1, proxy.local")


@pytest.mark.parametrize("token,why", [
    ("changeme", "placeholder"), ("x", "placeholder"), ("Password", "placeholder"), ("short-but-random-7f3", "shorter than 24"),
    ("a" * 40, "repeated"), ("k3P9xVq2LmZr8TfW0yHbN6sJ4dC1", None),
])
def test_weak_tokens(token, why):
    result = weakness(token)
    assert (result is None) if why is None else (why in result)


def test_tokens_file_lines():
    good = parse_tokens_file("# comment\n\nalice:admin:" + "a" * 64 + "\nbob:operator:" + "B" * 64 + "\n")
    assert [(h.name, h.role) for h in good] == [("alice", "admin"), ("bob", "operator")]
    for text, message in [("alice:admin", "expected name:role:sha256"), ("al ice:admin:" + "a" * 64, "bad name"),
                          ("a:admin:abc", "64-hex-digit"), ("a:admin:" + "a" * 64 + "\na:viewer:" + "b" * 64, "duplicate")]:
        with pytest.raises(TokenFileError, match=message):
            parse_tokens_file(text)


def test_claims_are_bounded_to_a_safe_charset():
    assert claim("ops-alice") == "ops-alice"
    assert claim("x" * 20_000) == "x" * 64
    assert claim("\n\r<>\"'") is None and claim(123) is None


def test_approvals_need_a_second_person_within_the_window():
    clock = Clock()
    approvals = Approvals(60, clock=clock)
    p = approvals.request(action="dev.factory_reset", target="all", body={"confirm": "RESET", "control_token": "s"},
                          handler=None, holder="alice")
    assert "control_token" not in p.body
    with pytest.raises(ApiError) as same:
        approvals.take(p.id, "alice")
    assert same.value.code == "approval_needs_second_person"
    assert approvals.take(p.id, "bob") is p
    with pytest.raises(ApiError, match="no pending request"):
        approvals.take(p.id, "carol")  # single use
    late = approvals.request(action="dev.factory_reset", target="all", body={}, handler=None, holder="alice")
    clock.now += 61
    assert approvals.pending() == []
    with pytest.raises(ApiError, match="no pending request"):
        approvals.take(late.id, "bob")
