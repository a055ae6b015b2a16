"""Where the runtime is, the control token, and the HTTP calls to it.

The CLI looks a variable up the way the runtime under the same `ONLYTRADE_ROOT` would see it:
the environment first, then `<root>/.env.local`, then `<root>/.env`. So on a host configured by
`.env.local` (as `make run` writes it) or by the systemd env file, `onlytrade-ops` finds the port
and the token without any extra setup. The token is only ever sent in `x-control-token`; it is
never printed, logged or put in an error message.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from runtime_api.settings import read_env_file

from .exits import EXIT_FAILED, EXIT_UNREACHABLE, OpsError

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_S = 60.0  # a forced step may wait for one LLM round per agent
CONNECT_TIMEOUT_S = 5.0


def ops_root(environ: Mapping[str, str] | None = None) -> Path:
    """The runtime root: `ONLYTRADE_ROOT`, default the current directory."""
    env = os.environ if environ is None else environ
    return Path(env.get("ONLYTRADE_ROOT") or ".")


def runtime_var(name: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """(value, where it came from) with the runtime's precedence: env, `.env.local`, `.env`."""
    env = os.environ if environ is None else environ
    if (env.get(name) or "").strip():
        return env[name].strip(), "env"
    root = ops_root(env)
    for file_name in (".env.local", ".env"):
        value = read_env_file(root / file_name).get(name, "").strip()
        if value:
            return value, file_name
    return None, None


def api_base(environ: Mapping[str, str] | None = None) -> str:
    """`ONLYTRADE_API_BASE`, else the runtime's own `PORT` on loopback, else http://127.0.0.1:8080."""
    env = os.environ if environ is None else environ
    explicit = (env.get("ONLYTRADE_API_BASE") or "").strip()
    if explicit:
        return explicit.rstrip("/")
    port, _ = runtime_var("PORT", env)
    return f"http://127.0.0.1:{port or DEFAULT_PORT}"


def discover_token(environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """(token, source): `ONLYTRADE_CONTROL_TOKEN`, else the runtime's `CONTROL_API_TOKEN` (env, .env.local, .env)."""
    env = os.environ if environ is None else environ
    if (env.get("ONLYTRADE_CONTROL_TOKEN") or "").strip():
        return env["ONLYTRADE_CONTROL_TOKEN"].strip(), "ONLYTRADE_CONTROL_TOKEN"
    value, where = runtime_var("CONTROL_API_TOKEN", env)
    return value, (f"CONTROL_API_TOKEN ({where})" if value else None)


def default_actor() -> str:
    """Who the control audit records: `onlytrade-ops:<login>` (the runtime logs it with the client IP)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"onlytrade-ops:{user}"


def api_port(base: str) -> int:
    parts = urlsplit(base)
    return parts.port or (443 if parts.scheme == "https" else 80)


def is_local(base: str) -> bool:
    host = (urlsplit(base).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


@dataclass
class Reply:
    """One HTTP answer: status and parsed JSON body (None when the body is not JSON)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        if self.status >= 400:
            return False
        return not (isinstance(self.body, dict) and self.body.get("success") is False)

    @property
    def data(self) -> Any:
        """The envelope's `data`, or the whole body for the unwrapped endpoints (/health)."""
        if isinstance(self.body, dict) and "success" in self.body:
            return self.body.get("data")
        return self.body

    @property
    def error(self) -> str:
        if isinstance(self.body, dict) and self.body.get("error"):
            return str(self.body["error"])
        return f"http_{self.status}"

    @property
    def message(self) -> str | None:
        return self.body.get("message") if isinstance(self.body, dict) else None


class Client:
    """Calls to one runtime; raises OpsError(EXIT_UNREACHABLE) when it does not answer. `http`: any httpx.Client."""

    def __init__(self, base: str, token: str | None = None, *, token_source: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, http: httpx.Client | None = None, actor: str | None = None):
        self.base = base.rstrip("/")
        self._token = token
        self.token_source = token_source
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S))
        self.actor = actor or default_actor()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kw: Any) -> Client:
        token, source = discover_token(environ)
        return cls(api_base(environ), token, token_source=source, **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None,
                control: bool = False, timeout: float | None = None) -> Reply:
        """Send one request; raises OpsError(EXIT_UNREACHABLE) when the runtime does not answer."""
        headers = {"accept": "application/json"}
        if control:
            headers["x-control-actor"] = self.actor
            if self._token:
                headers["x-control-token"] = self._token
        kw: dict[str, Any] = {"params": {k: v for k, v in (params or {}).items() if v not in (None, "")}, "headers": headers}
        if body is not None:
            kw["json"] = body
        if timeout is not None:
            kw["timeout"] = timeout
        try:
            resp = self._http.request(method, self.base + path, **kw)
        except httpx.TimeoutException:
            raise OpsError(EXIT_UNREACHABLE, f"no answer from the runtime at {self.base} ({method} {path} timed out)") from None
        except httpx.HTTPError as exc:
            raise OpsError(EXIT_UNREACHABLE, f"cannot reach the runtime at {self.base} ({type(exc).__name__})") from None
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        return Reply(resp.status_code, parsed)

    def sse_probe(self, path: str, params: dict | None = None, *, seconds: float = 5.0) -> dict[str, Any]:
        """Open an SSE stream for at most `seconds`: status, content type and the first event's name."""
        out: dict[str, Any] = {"status": None, "content_type": None, "first_event": None, "error": None}
        started = time.monotonic()
        try:
            with self._http.stream("GET", self.base + path, params=params or {}, headers={"accept": "text/event-stream"},
                                   timeout=httpx.Timeout(seconds, connect=CONNECT_TIMEOUT_S)) as resp:
                out["status"] = resp.status_code
                out["content_type"] = resp.headers.get("content-type")
                if resp.status_code == 200 and (out["content_type"] or "").startswith("text/event-stream"):
                    for line in resp.iter_lines():
                        if line.startswith("event:"):
                            out["first_event"] = line[len("event:"):].strip()
                            break
                        if time.monotonic() - started > seconds:
                            break
                else:
                    resp.read()
                    try:
                        body = resp.json()
                    except ValueError:
                        body = None
                    out["error"] = body.get("error") if isinstance(body, dict) else f"http_{resp.status_code}"
        except httpx.TimeoutException:
            out["error"] = out["error"] or "timeout"
        except httpx.HTTPError as exc:
            out["error"] = type(exc).__name__
        out["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        return out

    def get(self, path: str, **params: Any) -> Reply:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict | None = None, *, timeout: float | None = None) -> Reply:
        """A control call: JSON body, token in `x-control-token`."""
        return self.request("POST", path, body=body or {}, control=True, timeout=timeout)

    def expect(self, reply: Reply, what: str) -> Any:
        """The reply's data, or OpsError(EXIT_FAILED) naming the error code (and how to fix a token problem)."""
        if reply.ok:
            return reply.data
        raise OpsError(EXIT_FAILED, f"{what}: {self.describe(reply)}", {"status": reply.status, "error": reply.error,
                                                                           "message": reply.message})

    def describe(self, reply: Reply) -> str:
        text = f"HTTP {reply.status} {reply.error}"
        if reply.message:
            text += f" ({reply.message})"
        if reply.error in ("unauthorized_control_token", "control_token_not_configured"):
            text += "; " + self.token_hint()
        return text

    def token_hint(self) -> str:
        if not self._token:
            return "no control token found: set ONLYTRADE_CONTROL_TOKEN, or CONTROL_API_TOKEN in $ONLYTRADE_ROOT/.env.local"
        return f"the token from {self.token_source} was refused"

    def get_data(self, path: str, what: str, **params: Any) -> Any:
        return self.expect(self.get(path, **params), what)

    def control(self, path: str, body: dict | None, what: str, *, timeout: float | None = None) -> Any:
        return self.expect(self.post(path, body, timeout=timeout), what)
