"""GET /openapi.json: a valid OpenAPI 3.1 document listing every route of the app, and a
property-based fuzz run (schemathesis, the real CLI) against a real server from that document."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from e2e.server import TOKEN, RuntimeProcess
from openapi_spec_validator import OpenAPIV31SpecValidator
from starlette.routing import Route

from runtime_api.app import create_app
from runtime_api.observability import openapi
from runtime_api.observability.openapi import MissingSpec, iter_routes, openapi_document

from obs_helpers import make_settings

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
# Streams never end (a fuzzer would wait out its timeout), /onlytrade/ repeats the same handlers, and
# speech answers 503 tts_disabled to everything unless a TTS provider is configured (none here).
FUZZ_EXCLUDE = r"^/onlytrade/|/events$|^/api/market/stream$|^/api/chat/tts$"
FUZZ_EXAMPLES = 10  # per operation and phase: ~1,300 requests, ~40 s on a loaded 2-core machine


def test_the_document_validates_and_lists_every_route(root):
    app = create_app(make_settings(root))
    doc = openapi_document(app.routes, {"version": "test"})
    OpenAPIV31SpecValidator(doc).validate()
    assert doc["openapi"].startswith("3.1")
    listed = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    walked = set()
    for path, route in iter_routes(app.routes):
        template = openapi._CONVERTOR.sub(lambda m: "{" + m.group(1) + "}", path)
        for method in route.methods or ():
            if method != "HEAD":
                walked.add((template, method.lower()))
    assert walked and walked == listed
    op_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids))
    for ops in doc["paths"].values():
        for op in ops.values():
            assert op["summary"] and "500" in op["responses"]


def test_control_routes_list_the_token_errors_and_route_errors(root):
    doc = openapi_document(create_app(make_settings(root)).routes)
    kill = doc["paths"]["/api/agent/runtime/kill-switch"]["post"]
    assert kill["security"]
    enum = lambda status: kill["responses"][status]["content"]["application/json"]["schema"]["properties"]["error"]["enum"]  # noqa: E731
    assert enum("401") == ["unauthorized_control_token"]
    assert enum("429") == ["too_many_auth_failures", "too_many_pending_approvals"]
    assert enum("403") == ["insufficient_role"] and "202" in kill["responses"]  # roles, two-person rule
    assert set(enum("400")) == {"invalid_action", "invalid_json"}
    assert "security" not in doc["paths"]["/api/competition"]["get"]


def test_a_route_missing_from_the_spec_table_fails_the_document():
    async def get_brand_new(request):
        """A new route nobody described."""

    with pytest.raises(MissingSpec, match="get_brand_new"):
        openapi_document([Route("/api/brand-new", get_brand_new)])
    served = openapi_document([Route("/api/brand-new/{agent_id}", get_brand_new)], strict=False)  # never a 500
    op = served["paths"]["/api/brand-new/{agent_id}"]["get"]
    assert op["x-onlytrade-undescribed"] is True and "4XX" in op["responses"]
    OpenAPIV31SpecValidator(served).validate()


def test_openapi_route_serves_the_document(root):
    with RuntimeProcess(root) as server:
        r = httpx.get(server.base + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.json()["info"]["version"] and "/metrics" in r.json()["paths"]


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (pip install -e '.[test]')")
def test_fuzz_the_real_server_from_its_document(root, tmp_path):
    """0 responses 5xx, 0 responses outside their documented status, content type or schema."""
    env = {"ONLYTRADE_SEED_AGENTS": "all", "REPLAY_SPEED": "0.1", "AGENT_DECISION_EVERY_BARS": "240"}
    with RuntimeProcess(root, env) as server:
        started = time.monotonic()
        run = subprocess.run(
            [SCHEMATHESIS, "run", server.base + "/openapi.json",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
             "--phases", "examples,coverage,fuzzing", "--max-examples", str(FUZZ_EXAMPLES), "--seed", "11",
             # one worker: hypothesis describes strategies with ast.parse, which CPython 3.11 breaks across threads
             "--workers", "1", "--no-shrink", "--request-timeout", "15", "--generation-database", "none",
             "--suppress-health-check", "all", "--exclude-path-regex", FUZZ_EXCLUDE,
             "-H", f"x-control-token: {TOKEN}", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=110, cwd=tmp_path,
        )
        took = time.monotonic() - started
        log = server.read_log()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.split("Test cases:")[-1], run.stdout[-3000:]
    assert "unhandled error" not in log and "Traceback" not in log
    print(f"fuzz: {run.stdout.split('Test cases:')[-1].splitlines()[1].strip()} in {took:.1f} s")
