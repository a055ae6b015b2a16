"""`onlytrade-ops`, the operator CLI, as plain functions returning `exits.Outcome`:

`client` (where the runtime is, the token, HTTP), `reads`, `control`, `resets`, `stream` (API
commands), `continuity`, `backups`, `probe`, `jobs`, `local` (files on the runtime's host),
`render` (rich tables), `cli` (typer wiring only), `settings_doc` (the settings runbook table).
"""
