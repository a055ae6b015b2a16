"""Named control tokens with roles.

Roles nest: `viewer` < `auditor` (audit and ops reads) < `operator` (pause, resume, step, kill
switch on, agent lifecycle, replay control) < `admin` (kill switch off, resets). Tokens come from
`CONTROL_TOKENS_FILE` (`name:role:sha256-hex` lines, `#` comments) and from `CONTROL_API_TOKEN`,
kept as one admin token named `control-api-token` for compatibility. Only digests are held; a
presented token is hashed and compared (constant time) against every entry, so neither the
match position nor the token leaks. The file is re-read when it changes; a broken edit keeps the
last good set and says why in the log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("onlytrade.access")

ROLES = ("viewer", "auditor", "operator", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
LEGACY_NAME = "control-api-token"
MIN_TOKEN_LENGTH = 24
PLACEHOLDERS = frozenset({
    "x", "xx", "xxx", "test", "testing", "test-token", "testtoken", "token", "changeme", "change-me", "change_me",
    "changeit", "password", "passw0rd", "secret", "admin", "default", "example", "placeholder", "replace-me",
    "replaceme", "your-token", "your-token-here", "control-token", "onlytrade", "123456", "12345678", "letmein",
    "dev", "devtoken", "dev-token", "none", "null", "todo",
})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
RELOAD_CHECK_S = 2.0


class TokenFileError(ValueError):
    """CONTROL_TOKENS_FILE cannot be used (message names the line)."""


@dataclass(frozen=True)
class Holder:
    name: str
    role: str
    digest: bytes

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_PLACEHOLDER_DIGESTS = frozenset(digest(p) for p in PLACEHOLDERS)


def weakness(token: str) -> str | None:
    """Why a control token is too weak to face a network, or None."""
    if token.strip().lower() in PLACEHOLDERS:
        return "a known placeholder"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"shorter than {MIN_TOKEN_LENGTH} characters"
    if len(set(token)) <= 2:
        return "one or two repeated characters"
    return None


def parse_tokens_file(text: str) -> list[Holder]:
    holders: list[Holder] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3:
            raise TokenFileError(f"line {number}: expected name:role:sha256")
        name, role, hexdigest = (p.strip() for p in parts)
        if not _NAME.match(name):
            raise TokenFileError(f"line {number}: bad name {name[:64]!r} (letters, digits, . _ @ -; at most 64)")
        if role not in RANK:
            raise TokenFileError(f"line {number}: role must be one of {', '.join(ROLES)}")
        if not _HEX.match(hexdigest):
            raise TokenFileError(f"line {number}: the third field must be a 64-hex-digit sha256 of the token")
        if name in seen:
            raise TokenFileError(f"line {number}: duplicate name {name!r}")
        seen.add(name)
        holders.append(Holder(name, role, bytes.fromhex(hexdigest)))
    return holders


class TokenStore:
    def __init__(self, legacy_token: str = "", tokens_file: Path | None = None, clock=time.monotonic):
        self._legacy = [Holder(LEGACY_NAME, "admin", digest(legacy_token))] if legacy_token else []
        self.tokens_file = tokens_file
        self._clock = clock
        self._lock = threading.Lock()
        self._file_holders: list[Holder] = []
        self._stamp: tuple | None = None
        self._checked = 0.0
        if tokens_file is not None:
            self._file_holders, self._stamp = self._load()  # at boot a broken file is fatal

    def _load(self) -> tuple[list[Holder], tuple]:
        try:
            st = os.stat(self.tokens_file)
            text = Path(self.tokens_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenFileError(f"cannot read: {exc.strerror or exc}") from None
        holders = parse_tokens_file(text)
        if self._legacy and any(h.name == LEGACY_NAME for h in holders):
            raise TokenFileError(f"the name {LEGACY_NAME!r} is reserved for CONTROL_API_TOKEN")
        return holders, (st.st_mtime_ns, st.st_size, st.st_ino)

    def _maybe_reload(self) -> None:
        now = self._clock()
        if self.tokens_file is None or now - self._checked < RELOAD_CHECK_S:
            return
        self._checked = now
        try:
            st = os.stat(self.tokens_file)
            if (st.st_mtime_ns, st.st_size, st.st_ino) == self._stamp:
                return
            holders, stamp = self._load()
        except (OSError, TokenFileError) as exc:
            log.error("CONTROL_TOKENS_FILE %s: %s; keeping the %d tokens loaded before",
                      Path(self.tokens_file).name, exc, len(self._file_holders))
            return
        self._file_holders, self._stamp = holders, stamp
        log.warning("CONTROL_TOKENS_FILE reloaded: %d tokens (%s)", len(holders),
                    ", ".join(f"{h.name}:{h.role}" for h in holders))

    @property
    def holders(self) -> list[Holder]:
        with self._lock:
            self._maybe_reload()
            return self._legacy + self._file_holders

    @property
    def configured(self) -> bool:
        return bool(self.holders)

    def lookup(self, token: str) -> Holder | None:
        if not token:
            return None
        given = digest(token)
        found = None
        for holder in self.holders:  # every entry compared: the time does not depend on which matched
            if hmac.compare_digest(given, holder.digest) and found is None:
                found = holder
        return found

    def problems(self) -> list[str]:
        """Weak entries, for the boot check (file entries: only placeholders can be recognised)."""
        out = []
        for holder in self.holders:
            if holder.name == LEGACY_NAME:
                continue
            if holder.digest in _PLACEHOLDER_DIGESTS:
                out.append(f"CONTROL_TOKENS_FILE {holder.name}: the token is a known placeholder")
        return out

    def admins(self) -> list[str]:
        return [h.name for h in self.holders if h.role == "admin"]
