"""Data jobs that keep the live files fresh: CN 1m frames, market overview, news digest, breadth.

Plain Python (no Starlette): each job module has a pure core (a transform on DataFrames), a
`run(settings, now_ms=..., vendor=...)` that does the I/O, the lock and the atomic write, and a
thin `main(argv)` so it runs as `python -m data_jobs.<job>`. Shared mechanics (lock, time budget,
exit codes, summary line) live in `data_jobs.jobrun`; the market-data source in `data_jobs.vendor`.
"""
