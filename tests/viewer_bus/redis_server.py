"""Debian's real redis-server on a free loopback port in a temporary folder (no persistence, so a
restart loses every stream, as a crashed unpersisted Redis would)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.processes import stop_process, up_or_stopped


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        argv = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.folder / "redis.log")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return up_or_stopped(lambda: self._wait_ready(timeout), self.stop)

    def _wait_ready(self, timeout: float) -> RedisServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def stop(self) -> None:
        stop_process(self.proc)


class EdgeProcess:
    """The real `onlytrade-edge` console script on a free port."""

    def __init__(self, folder: Path, bus_url: str, name: str, env: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {"PATH": "/usr/bin:/bin", "ONLYTRADE_ROOT": str(self.folder), "HOST": "127.0.0.1",
                    "PORT": str(self.port), "VIEWER_BUS_URL": bus_url, "EDGE_NAME": name, "EDGE_RECONNECT_MS": "200",
                    **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> EdgeProcess:
        script = Path(sys.executable).parent / "onlytrade-edge"
        self.log = open(self.folder / "edge.log", "ab")
        self.proc = subprocess.Popen([str(script)], cwd=self.folder, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        return up_or_stopped(lambda: self._wait_ready(timeout), self.stop)

    def _wait_ready(self, timeout: float) -> EdgeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edge exited {self.proc.returncode}: {self.read_log()}")
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"edge not answering: {self.read_log()}")

    def read_log(self) -> str:
        return (self.folder / "edge.log").read_text(errors="replace")

    def health(self) -> dict:
        return httpx.get(self.base + "/health", timeout=5).json()

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()
