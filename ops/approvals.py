"""The two-person rule from the CLI: list pending admin requests, approve or cancel one, make tokens.

A request is made by the usual command (`kill-off`, `factory-reset --confirm`, `agent-reset
--confirm`) when the runtime has `CONTROL_TWO_PERSON=true`, or explicitly with `request ...`
(which always asks for a second admin, even with the rule off). The runtime answers 202 with the
request id; a different admin holder runs `approve <id>` within the window.
"""

from __future__ import annotations

import hashlib
import secrets

from runtime_api.access.tokens import ROLES

from .client import Client
from .exits import EXIT_OK, EXIT_USAGE, OpsError, Outcome

APPROVALS = "/api/ops/approvals"
VIEW_OF_ACTION = {"agent.runtime.kill_switch.deactivate": "kill_switch", "dev.factory_reset": "reset", "dev.reset_agent": "reset"}


def approval_flag(request_only: bool) -> dict:
    """The body field that asks for a second admin even with the two-person rule off."""
    return {"request_approval": True} if request_only else {}


def awaiting(data: dict) -> Outcome | None:
    """The outcome of a call the runtime parked for a second admin, or None when it ran."""
    if not (isinstance(data, dict) and data.get("approval_required")):
        return None
    approval = data.get("approval") or {}
    return Outcome(data, EXIT_OK, view="approval", notes=[
        f"NOT DONE YET: {approval.get('action')} waits for a second admin until {approval.get('expires_at')}: "
        f"another admin runs `onlytrade-ops approve {approval.get('approval_id')}` "
        f"(withdraw: `onlytrade-ops cancel-request {approval.get('approval_id')}`)"])


def _pending(client: Client) -> dict:
    return client.expect(client.request("GET", APPROVALS, control=True), "pending approvals")


def pending(client: Client) -> Outcome:
    data = _pending(client)
    notes = [] if data.get("two_person") else ["CONTROL_TWO_PERSON is off: only explicit `request` commands wait here"]
    return Outcome(data, view="approvals", notes=notes)


def approve(client: Client, approval_id: str) -> Outcome:
    listed = {p["approval_id"]: p for p in _pending(client).get("pending") or []}
    data = client.control(f"{APPROVALS}/{approval_id}/approve", {}, f"approve {approval_id}", timeout=120.0)
    request = listed.get(approval_id) or {}
    action = request.get("action")
    return Outcome(data, view=VIEW_OF_ACTION.get(action, "record"),
                   notes=[f"approved and done: {action or approval_id} requested by {request.get('requested_by') or '?'}"])


def cancel(client: Client, approval_id: str) -> Outcome:
    data = client.control(f"{APPROVALS}/{approval_id}/cancel", {}, f"cancel {approval_id}")
    return Outcome(data, view="record", notes=[f"withdrawn: {approval_id} (nothing was done)"])


def new_token(name: str, role: str) -> Outcome:
    """A fresh random token and its CONTROL_TOKENS_FILE line (only the digest goes in the file)."""
    if role not in ROLES:
        raise OpsError(EXIT_USAGE, f"role must be one of {', '.join(ROLES)}")
    token = secrets.token_urlsafe(32)
    line = f"{name}:{role}:{hashlib.sha256(token.encode()).hexdigest()}"
    return Outcome({"name": name, "role": role, "token": token, "tokens_file_line": line}, view="record",
                   notes=["give the token to its holder (ONLYTRADE_CONTROL_TOKEN); append the line to CONTROL_TOKENS_FILE"])
