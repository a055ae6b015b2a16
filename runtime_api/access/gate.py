"""The access state of one app: tokens, trusted proxies, the failure limiter, pending approvals."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from .approvals import Approvals
from .client_address import TrustedProxies, client_address
from .limiter import FailureLimiter
from .tokens import TokenFileError, TokenStore


class AccessConfigError(ValueError):
    """The token or proxy configuration cannot be used (boot refuses)."""


@dataclass
class Access:
    tokens: TokenStore
    trusted: TrustedProxies
    limiter: FailureLimiter
    approvals: Approvals
    two_person: bool
    allow_unauthenticated: bool

    def client_of(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), self.trusted)


def build_access(settings, limiter: FailureLimiter | None = None) -> Access:
    try:
        tokens = TokenStore(settings.control_api_token,
                            settings.resolve(settings.control_tokens_file) if settings.control_tokens_file else None)
    except TokenFileError as exc:
        raise AccessConfigError(f"CONTROL_TOKENS_FILE: {exc}") from None
    try:
        trusted = TrustedProxies(settings.forwarded_allow_ips)
    except ValueError as exc:
        raise AccessConfigError(f"FORWARDED_ALLOW_IPS: {exc}") from None
    if settings.control_two_person and len(tokens.admins()) < 2:
        raise AccessConfigError("CONTROL_TWO_PERSON=true needs at least two admin tokens in CONTROL_TOKENS_FILE "
                                "(CONTROL_API_TOKEN counts as one)")
    return Access(tokens=tokens, trusted=trusted, limiter=limiter or FailureLimiter(),
                  approvals=Approvals(settings.control_two_person_window_s), two_person=settings.control_two_person,
                  allow_unauthenticated=settings.control_api_allow_unauthenticated)


def weak_token_report(settings) -> list[str]:
    """Why the configured control tokens are too weak for a network bind (empty: fine)."""
    from .tokens import weakness

    problems = []
    if settings.control_api_token:
        why = weakness(settings.control_api_token)
        if why:
            problems.append(f"CONTROL_API_TOKEN is {why}")
    try:
        problems += build_access(settings).tokens.problems()
    except AccessConfigError:
        pass  # reported by the boot itself
    return problems
