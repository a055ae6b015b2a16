"""Who may call the control plane, from where, and how much of the machine any caller may hold.

`client_address` (trusted proxies), `limiter` (failed-auth backoff), `tokens` (named tokens and
roles), `audit_fields` (claimed fields, aggregated rejections), `approvals` (two-person rule) and
`connections` (descriptor budget, read timeouts, connection cap, stalled writers); `control_route`
builds every mutating route on them, and `viewer_actions` lists the few a viewer may call without
a token.
"""
