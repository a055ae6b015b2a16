"""Run the installed `onlytrade-ops` as a subprocess against real runtimes (imported as `ops_helpers`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import orjson

from e2e.server import TOKEN, RuntimeProcess, free_port

REPO = Path(__file__).resolve().parents[2]
OPS = shutil.which("onlytrade-ops", path=str(Path(sys.executable).parent)) or shutil.which("onlytrade-ops")
# Replay barely moves and never reaches the bar cadence on its own: only the tests' steps make decisions.
QUIET_REPLAY = {"REPLAY_SPEED": "0.1", "AGENT_DECISION_EVERY_BARS": "240",
                "AGENT_FLAT_ENTRY_ENABLED": "true", "AGENT_FLAT_ENTRY_MIN_CYCLES": "1"}


def make_root(path: Path) -> Path:
    """A runtime root with the shipped agents and replay data (as the suite's `root` fixture)."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "agents", path / "agents")
    shutil.copytree(REPO / "data" / "replay", path / "data" / "replay")
    return path


@contextmanager
def running(root: Path, env: dict[str, str] | None = None, port: int | None = None):
    server = RuntimeProcess(root, env, port).start()
    try:
        yield server
    finally:
        server.stop()


class Ran:
    """One finished `onlytrade-ops` run."""

    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return orjson.loads(self.out)

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def ops(*args: str, root: Path, base: str | None = None, token: str | None = TOKEN,
        env: dict[str, str] | None = None, timeout: float = 60) -> Ran:
    """Run the CLI hermetically: only PATH, the root, the API base and the token come from the test.

    Every run is also checked for what must never happen: the token in the output, a traceback.
    """
    assert OPS, "onlytrade-ops is not installed next to the interpreter"
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "ONLYTRADE_ROOT": str(root),
               "PYTHONUTF8": "1", "COLUMNS": "200"}
    if base:
        environ["ONLYTRADE_API_BASE"] = base
    if token:
        environ["ONLYTRADE_CONTROL_TOKEN"] = token
    environ.update(env or {})
    proc = subprocess.run([OPS, *args], env=environ, cwd=root, capture_output=True, text=True, timeout=timeout)
    ran = Ran(proc)
    assert TOKEN not in ran.out and TOKEN not in ran.err, f"the control token was printed:\n{ran!r}"
    assert "Traceback" not in ran.err, repr(ran)
    return ran


def ops_all(commands: list[tuple[str, ...]], **kw) -> list[Ran]:
    """Several independent runs at once (each CLI start costs about half a second)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: ops(*args, **kw), commands))


def closed_base() -> str:
    """An API base on a loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


__all__ = ["TOKEN", "QUIET_REPLAY", "REPO", "Ran", "closed_base", "make_root", "ops", "ops_all", "running"]
