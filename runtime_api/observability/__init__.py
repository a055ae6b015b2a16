"""Seeing the show from outside: metrics, the OpenAPI document, alerts, logs, build info, and the
process's own health (`loop_monitor` for event-loop stalls, `heap` for the collector policy).

`alerts` and `build_info` import neither Starlette nor the app, so the data jobs and the CLI use
them too; `install(ctx)` wires the rest into one app (see `runtime_api.app`).
"""
