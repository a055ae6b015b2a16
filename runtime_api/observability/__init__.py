"""Seeing the show from outside: metrics, the OpenAPI document, alerts, logs, build info.

`alerts` and `build_info` import neither Starlette nor the app, so the data jobs and the CLI use
them too; `install(ctx)` wires the rest into one app (see `runtime_api.app`).
"""
