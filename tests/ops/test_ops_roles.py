"""Roles and the two-person rule through the real CLI, against a real runtime with a tokens file."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from ops_helpers import QUIET_REPLAY, make_root, ops, running

TOKENS = {
    "alice": ("admin", "alice-admin-token-7Hq2pXv9LmZr8TfW"),
    "bob": ("admin", "bob-admin-token-3Kd8sNw1QjYc5GhE"),
    "olga": ("operator", "olga-operator-token-9Zx4Bv7Mn2Lk6Pq"),
    "aude": ("auditor", "aude-auditor-token-1Rt5Yu8Io3Pa6Sd"),
    "vic": ("viewer", "vic-viewer-token-4Fg7Hj2Kl9Zx5Cv8"),
}


@pytest.fixture(scope="module")
def two_person(tmp_path_factory):
    root = make_root(tmp_path_factory.mktemp("roles-root"))
    lines = [f"{name}:{role}:{hashlib.sha256(tok.encode()).hexdigest()}" for name, (role, tok) in TOKENS.items()]
    (root / "control-tokens").write_text("\n".join(lines) + "\n")
    env = {**QUIET_REPLAY, "CONTROL_TOKENS_FILE": "control-tokens", "CONTROL_TWO_PERSON": "true"}
    with running(root, env) as server:
        yield server


def as_(name: str, *args: str, server) -> object:
    return ops("--json", *args, root=server.root, base=server.base, token=TOKENS[name][1])


def test_roles_through_the_cli(two_person):
    s = two_person
    # A viewer token opens nothing; an auditor reads the audit and the pending list only.
    refused = as_("vic", "audit", "5", server=s)
    assert refused.code == 1 and "insufficient_role" in refused.err
    assert as_("aude", "audit", "5", server=s).code == 0
    assert as_("aude", "pending", server=s).code == 0
    assert as_("aude", "pause", server=s).code == 1
    # An operator pauses, resumes and pulls the kill switch, but cannot clear it or reset.
    assert as_("olga", "pause", server=s).code == 0
    on = as_("olga", "kill-on", "drill", server=s)
    assert on.code == 0 and on.json()["kill_switch"]["active"] is True
    off = as_("olga", "kill-off", server=s)
    assert off.code == 1 and "insufficient_role" in off.err and "needs the admin role" in off.err
    reset = as_("olga", "factory-reset", "--confirm", server=s)
    assert reset.code == 1 and "insufficient_role" in reset.err
    audit = as_("aude", "audit", "50", server=s).json()["records"]
    assert {"vic", "aude", "olga"} <= {r["holder"] for r in audit if r["action"] != "control.rejected"}


def test_two_person_rule_through_the_cli(two_person):
    s = two_person
    assert as_("olga", "kill-on", "two-person drill", server=s).code == 0
    asked = as_("alice", "kill-off", "all clear", server=s)
    assert asked.code == 0 and "NOT DONE YET" in asked.err, asked
    approval_id = asked.json()["approval"]["approval_id"]
    # Nothing happened yet; the request is listed.
    status = as_("aude", "status", server=s)
    assert status.code == 0 and '"active": true' in status.out.replace("\n", "").replace("  ", "")
    listed = as_("aude", "pending", server=s).json()["pending"]
    assert [(p["approval_id"], p["requested_by"], p["action"]) for p in listed] == [
        (approval_id, "alice", "agent.runtime.kill_switch.deactivate")]
    # The requester cannot confirm herself, an operator cannot confirm at all.
    self_ok = as_("alice", "approve", approval_id, server=s)
    assert self_ok.code == 1 and "approval_needs_second_person" in self_ok.err
    assert as_("olga", "approve", approval_id, server=s).code == 1
    done = as_("bob", "approve", approval_id, server=s)
    assert done.code == 0 and done.json()["kill_switch"]["active"] is False, done
    assert "requested by alice" in done.err
    again = as_("bob", "approve", approval_id, server=s)
    assert again.code == 1 and "approval_not_found" in again.err  # single use

    # An explicit request for a factory reset, withdrawn: nothing is reset.
    req = as_("bob", "request", "factory-reset", server=s)
    assert req.code == 0 and req.json()["approval_required"] is True
    rid = req.json()["approval"]["approval_id"]
    assert as_("alice", "cancel-request", rid, server=s).code == 0
    assert as_("aude", "pending", server=s).json()["pending"] == []
    # A dry run needs no second person: it changes nothing.
    assert as_("alice", "factory-reset", "--dry-run", server=s).json()["dry_run"] is True

    lines = [orjson.loads(x) for x in (s.root / "data" / "runtime" / "control-audit.jsonl").read_bytes().splitlines()]
    trail = [(l["action"], l["result"], l["holder"], l.get("requested_by")) for l in lines if l.get("approval_id") == approval_id]
    assert trail == [
        ("agent.runtime.kill_switch.deactivate", "pending_approval", "alice", None),
        ("ops.approval.approve", "rejected", "alice", None),
        ("ops.approval.approve", "forbidden", "olga", None),
        ("agent.runtime.kill_switch.deactivate", "ok", "bob", "alice"),
        ("ops.approval.approve", "rejected", "bob", None),  # the second try: already used
    ]


def test_token_new_prints_a_usable_line(tmp_path):
    made = ops("--json", "token-new", "carol", "operator", root=tmp_path, token=None)
    assert made.code == 0
    out = made.json()
    assert out["tokens_file_line"] == f"carol:operator:{hashlib.sha256(out['token'].encode()).hexdigest()}"
    assert len(out["token"]) >= 40
