"""Debian's real nginx running deploy/nginx/onlytrade.conf from a temporary prefix.

The shipped file is used as is, except the lines an installation changes anyway: the upstream
`server` lines, `listen`, the cache path, the web root and the include path. nginx runs in the
foreground without a master process (no user switch, nothing written outside the prefix: pid,
temp paths, cache, error and access logs all live there) on a free loopback port.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.processes import stop_process, up_or_stopped

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "deploy" / "nginx" / "onlytrade.conf"
MICRO = REPO / "deploy" / "nginx" / "onlytrade-micro-cache.conf"
WEB_DIST = REPO.parent / "shared" / "realclient" / "onlytrade-web-dist"
# One line per request: enough to tell whether the runtime was reached and what the cache did.
LOG_FORMAT = "$request_method $request_uri $status cache=$upstream_cache_status upstream=$upstream_addr"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_conf(prefix: Path, *, port: int, runtime: str, viewers: list[str], web_root: Path) -> str:
    text = CONF.read_text()
    upstreams = {"onlytrade_runtime": [runtime], "onlytrade_viewers": viewers}
    for name, servers in upstreams.items():
        lines = "".join(f"    server {s};\n" for s in servers)
        text, n = re.subn(rf"(upstream {name} \{{\n)    server [^\n]+\n", lambda m: m.group(1) + lines, text)
        assert n == 1, name
    replacements = [
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("/var/cache/nginx/onlytrade", str(prefix / "cache")),
        ("root /srv/onlytrade/web;", f"root {web_root};"),
        ("alias /srv/onlytrade/web/;", f"alias {web_root}/;"),
        ("/etc/nginx/onlytrade-micro-cache.conf", str(prefix / "onlytrade-micro-cache.conf")),
    ]
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


class Nginx:
    def __init__(self, prefix: Path, *, runtime: str, viewers: list[str] | None = None, web_root: Path = WEB_DIST):
        self.prefix = Path(prefix)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.runtime, self.viewers, self.web_root = runtime, viewers or [runtime], web_root
        self.proc: subprocess.Popen | None = None

    def write_conf(self) -> Path:
        p = self.prefix
        for sub in ("tmp", "cache", "logs"):
            (p / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(MICRO, p / "onlytrade-micro-cache.conf")
        (p / "onlytrade.conf").write_text(site_conf(p, port=self.port, runtime=self.runtime, viewers=self.viewers,
                                                    web_root=self.web_root))
        temp = "".join(f"    {kind}_temp_path {p / 'tmp' / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        main = (
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            f"pid {p / 'nginx.pid'};\nerror_log {p / 'logs' / 'error.log'} warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n    include /etc/nginx/mime.types;\n"
            f"{temp}"
            f"    log_format onlytrade_test '{LOG_FORMAT}';\n"
            f"    access_log {p / 'logs' / 'access.log'} onlytrade_test;\n"
            "    log_subrequest on;\n"
            f"    include {p / 'onlytrade.conf'};\n}}\n"
        )
        conf = p / "nginx.conf"
        conf.write_text(main)
        return conf

    def start(self, timeout: float = 10.0) -> Nginx:
        conf = self.write_conf()
        binary = nginx_binary()
        check = subprocess.run([binary, "-t", "-p", str(self.prefix), "-c", str(conf)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        self.proc = subprocess.Popen([binary, "-p", str(self.prefix), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return up_or_stopped(lambda: self._wait_ready(timeout), self.stop)

    def _wait_ready(self, timeout: float) -> Nginx:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited {self.proc.returncode}:\n{self.error_log()}")
            try:
                httpx.get(self.base + "/onlytrade/", timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx not answering:\n{self.error_log()}")

    def access_lines(self) -> list[str]:
        path = self.prefix / "logs" / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
