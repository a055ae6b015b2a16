"""Viewer sessions without accounts, and without trusting a public id (Node's W-C1).

Bootstrap hands a viewer one opaque credential, `user_session_id` = `usr_sess_<nonce><mac>`, where
the MAC is an HMAC of the nonce under a key kept in the runtime state folder. The client keeps it
(the original front end stores exactly this field) and sends it back on posts, DM reads and bets.
Everything public (message records, SSE, the packet preview, the credits leaderboard) carries a
different id derived from the nonce, `usr_<hex>`, from which the credential cannot be rebuilt. So
seeing a viewer's public id is not enough to read their DMs, post as them or replace their bet.
Sessions are stateless: nothing is stored per bootstrap, and they survive restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections import OrderedDict
from pathlib import Path

from ..state.storage import lock_for, write_bytes_atomic

PREFIX = "usr_sess_"
NONCE_HEX = 16
MAC_HEX = 32
NICKNAME_MAX = 24
_SESSION_RE = re.compile(rf"^{PREFIX}([0-9a-f]{{{NONCE_HEX}}})([0-9a-f]{{{MAC_HEX}}})$")
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def load_key(path: Path) -> bytes:
    """The HMAC key, created once (0600) on first use; every process of one root shares it."""
    path = Path(path)
    with lock_for(path):
        try:
            raw = path.read_bytes().strip()
        except FileNotFoundError:
            raw = b""
        try:
            if len(raw) >= 64:
                return bytes.fromhex(raw.decode("ascii"))
        except ValueError:
            pass  # unreadable: a new key (existing sessions must bootstrap again)
        key = secrets.token_bytes(32)
        write_bytes_atomic(path, key.hex().encode() + b"\n", locked=False)
        os.chmod(path, 0o600)
        return key


def clean_nickname(raw: object) -> str:
    """Trimmed, control/bidi characters removed, whitespace runs collapsed, at most 24 characters."""
    text = _SPACES.sub(" ", _CONTROL.sub("", str(raw or ""))).strip()
    return text[:NICKNAME_MAX].strip()


class Sessions:
    """Issues and verifies session credentials; remembers nicknames (bounded, in memory)."""

    def __init__(self, key: bytes, *, max_nicknames: int = 20000):
        self._key = key
        self._nicknames: OrderedDict[str, str] = OrderedDict()
        self.max_nicknames = max_nicknames

    def _mac(self, nonce: str) -> str:
        return hmac.new(self._key, b"session:" + nonce.encode(), hashlib.sha256).hexdigest()[:MAC_HEX]

    def _public(self, nonce: str) -> str:
        return "usr_" + hmac.new(self._key, b"public:" + nonce.encode(), hashlib.sha256).hexdigest()[:16]

    def issue(self, nickname: object = None) -> dict:
        """A new session: the credential the client keeps, its public id and nickname."""
        nonce = secrets.token_hex(NONCE_HEX // 2)
        public_id = self._public(nonce)
        name = self.set_nickname(public_id, nickname)
        return {"user_session_id": PREFIX + nonce + self._mac(nonce), "public_id": public_id, "user_nickname": name}

    def verify(self, credential: object) -> str | None:
        """The public id of a valid credential, else None (constant-time MAC compare)."""
        match = _SESSION_RE.match(str(credential or "").strip())
        if not match:
            return None
        nonce, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(nonce)):
            return None
        return self._public(nonce)

    def nickname(self, public_id: str) -> str:
        return self._nicknames.get(public_id) or default_nickname(public_id)

    def set_nickname(self, public_id: str, raw: object) -> str:
        """Store a supplied nickname (only its own session can, unlike Node); return the effective one."""
        name = clean_nickname(raw)
        if name:
            self._nicknames[public_id] = name
            self._nicknames.move_to_end(public_id)
            while len(self._nicknames) > self.max_nicknames:
                self._nicknames.popitem(last=False)
        return self.nickname(public_id)


def default_nickname(public_id: str) -> str:
    tail = "".join(c for c in public_id if c.isalnum())[-4:].upper()
    return f"User-{tail}" if tail else "User"
