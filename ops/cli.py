"""`onlytrade-ops`: the operator CLI, a thin shell over the runtime's HTTP API."""

from __future__ import annotations

import os
import sys

import httpx
import orjson
import typer

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

app = typer.Typer(help="Operate an onlytrade runtime.", no_args_is_help=True, add_completion=False)


def api_base() -> str:
    return os.environ.get("ONLYTRADE_API_BASE", "http://127.0.0.1:8080").rstrip("/")


def get(path: str) -> dict:
    try:
        resp = httpx.get(api_base() + path, timeout=10)
    except httpx.HTTPError as exc:
        typer.echo(f"unreachable: {api_base()} ({type(exc).__name__})", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    try:
        body = resp.json()
    except ValueError:
        typer.echo(f"non-JSON answer from {path}: HTTP {resp.status_code}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    return {"status": resp.status_code, "body": body}


def show(value) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


@app.command()
def health() -> None:
    """GET /health."""
    res = get("/health")
    show(res["body"])
    raise typer.Exit(EXIT_OK if res["status"] == 200 and res["body"].get("ok") else EXIT_FAILED)


@app.command()
def status() -> None:
    """Health, agent runtime status and replay status."""
    out = {"health": get("/health")["body"], "runtime": get("/api/agent/runtime/status")["body"].get("data"),
           "replay": get("/api/replay/runtime/status")["body"].get("data")}
    show(out)


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        sys.exit(exc.code)
