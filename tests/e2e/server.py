"""A real runtime process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.processes import up_or_stopped

TOKEN = "e2e-control-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RuntimeProcess:
    """`python -m runtime_api` under a temporary ONLYTRADE_ROOT; the log goes to <root>/server.log."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, port: int | None = None,
                 command: list[str] | None = None, nofile: int | None = None):
        self.root = Path(root)
        self.command = command or [sys.executable, "-m", "runtime_api"]
        self.nofile = nofile  # RLIMIT_NOFILE for the server process (descriptor-exhaustion tests)
        self.port = port or free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CONTROL_API", "AGENT_", "RUNTIME_", "KILL_SWITCH"))},
            "ONLYTRADE_ROOT": str(self.root),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "CONTROL_API_TOKEN": TOKEN,
            "RUNTIME_DATA_MODE": "replay",
            "STRICT_LIVE_MODE": "false",
            "AGENT_LLM_ENABLED": "false",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True, timeout: float = 20.0) -> RuntimeProcess:
        self.log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            self.command, cwd=self.root, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=self._limit_descriptors if self.nofile else None,
        )
        if wait:
            up_or_stopped(lambda: self.wait_ready(timeout), lambda: self.stop(signal.SIGKILL))
        return self

    def _limit_descriptors(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                r = httpx.get(self.base + "/health/ready", timeout=1.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.read_log()}")

    def read_log(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=kw.pop("timeout", 30.0), **kw)

    def control(self, path: str, body: dict | None = None, **kw) -> httpx.Response:
        with self.client() as c:
            return c.post(path, json=body or {}, headers={"x-control-token": TOKEN}, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def __enter__(self) -> RuntimeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(signal.SIGKILL if exc[0] else signal.SIGTERM)
