"""The real client address: the TCP peer, unless the peer is a trusted proxy.

`FORWARDED_ALLOW_IPS` follows uvicorn's convention (comma list of addresses or CIDR networks,
`*` for any). Behind trusted proxies the right-most `X-Forwarded-For` hop that is not itself a
trusted proxy is the client: every hop left of it was written by someone we do not trust, so a
caller cannot choose its own address by sending the header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

MAX_HOPS = 32  # a longer header is an attack, not a proxy chain


class TrustedProxies:
    def __init__(self, spec: str | Iterable[str] = ""):
        items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
        self.any = "*" in items
        self.networks = []
        for item in items:
            if item == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"not an address or network: {item!r}") from None

    def __bool__(self) -> bool:
        return self.any or bool(self.networks)

    def trusts(self, host: str) -> bool:
        if self.any:
            return True
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client as this server should count it (limits, audit)."""
    peer = peer or "unknown"
    if not forwarded_for or not trusted.trusts(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")][-MAX_HOPS:]
    for hop in reversed(hops):
        if not hop:
            continue
        host = _strip_port(hop)
        if not trusted.trusts(host):
            return host if _is_ip(host) else peer
    return _strip_port(hops[0]) if hops and _is_ip(_strip_port(hops[0])) else peer


def _strip_port(hop: str) -> str:
    if hop.startswith("["):  # [v6]:port
        return hop[1:hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:  # v4:port
        return hop.split(":", 1)[0]
    return hop


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
