"""Exit codes of `onlytrade-ops` (documented in docs/runbooks/README.md)."""

from __future__ import annotations

EXIT_OK = 0  # done; the check passed
EXIT_FAILED = 1  # a check failed (unhealthy, preflight not ok, continuity changed) or the API answered an error
EXIT_USAGE = 2  # bad arguments, or refused: a destructive command without --confirm, restore while the runtime runs
EXIT_UNREACHABLE = 3  # no answer from the runtime at ONLYTRADE_API_BASE (connection refused, timeout)

# Passed through unchanged from the wrapped data jobs (data_jobs.jobrun). `check-live-freshness --strict`
# exits EXIT_FAILED (1) when a required live file fails: a failed check (the Node script used 2).
EXIT_JOB_LOCKED = 75  # another run of the same job holds its lock
EXIT_JOB_BUDGET = 124  # the job ran past its time budget


class OpsError(Exception):
    """A command could not do its job: carries the exit code, a one-line message and optional JSON detail."""

    def __init__(self, code: int, message: str, detail: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or {}


class Outcome:
    """What a command function returns: the data (printed as JSON with --json), its exit code,
    the rich view that renders it, and human notes (stderr under --json)."""

    __slots__ = ("data", "code", "view", "notes")

    def __init__(self, data, code: int = EXIT_OK, *, view: str | None = None, notes: list[str] | None = None):
        self.data = data
        self.code = code
        self.view = view
        self.notes = notes or []

    def __repr__(self) -> str:
        return f"Outcome(code={self.code}, view={self.view!r}, notes={self.notes!r})"
