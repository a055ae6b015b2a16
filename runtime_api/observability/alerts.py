"""Webhook alerts: Slack-compatible (`{"text": ...}`) or a generic JSON object, per `ALERT_WEBHOOK_FORMAT`.

`AlertSender.notify` never blocks and never raises: it throttles per kind (the first alert of a
kind in a window goes out; the rest are counted and reported with the next one), drops when its
bounded queue is full, and one daemon thread posts with a timeout. A webhook that hangs or refuses
costs the event loop one `put_nowait`. The data jobs, which have no event loop, call `post`.
No Starlette here: the data jobs import this module.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("onlytrade.alerts")

SERVICE = "onlytrade-runtime"
SHUTDOWN_WAIT_S = 3.0
SEVERITY_ICON = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _slack_escape(value: Any) -> str:
    """Slack's three control characters: an operator's reason must not become `<!channel>`."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class Alert:
    kind: str  # e.g. kill_switch.on, data.stale, llm_breaker.open
    title: str
    severity: str = "warning"  # info | warning | critical
    fields: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    suppressed: int = 0  # alerts of this kind throttled since the last one sent

    def generic(self, service: str = SERVICE) -> dict:
        return {
            "schema": "onlytrade.alert.v1", "service": service, "host": socket.gethostname(),
            "kind": self.kind, "severity": self.severity, "title": self.title,
            "fields": self.fields, "ts": _iso(self.ts), "suppressed_since_last": self.suppressed,
        }

    def slack(self, service: str = SERVICE) -> dict:
        details = ", ".join(f"{k}={_slack_escape(v)}" for k, v in self.fields.items() if v not in (None, ""))
        text = f"{SEVERITY_ICON.get(self.severity, '')} [{service}] {_slack_escape(self.title)}".strip()
        if details:
            text += f" ({details})"
        if self.suppressed:
            text += f" [+{self.suppressed} more of this kind throttled]"
        return {"text": text}

    def payload(self, fmt: str, service: str = SERVICE) -> dict:
        return self.slack(service) if fmt == "slack" else self.generic(service)


def post(url: str, alert: Alert, *, fmt: str = "slack", timeout_s: float = 3.0, service: str = SERVICE,
         client: httpx.Client | None = None) -> bool:
    """One POST, bounded by `timeout_s`; True on a 2xx. Never raises."""
    try:
        if client is None:
            with httpx.Client(timeout=timeout_s) as own:
                response = own.post(url, json=alert.payload(fmt, service))
        else:
            response = client.post(url, json=alert.payload(fmt, service), timeout=timeout_s)
        if 200 <= response.status_code < 300:
            return True
        log.warning("alert webhook answered %s for %s", response.status_code, alert.kind)
    except Exception as exc:  # a dead webhook is logged, never fatal
        log.warning("alert webhook failed for %s: %s", alert.kind, type(exc).__name__)
    return False


class AlertSender:
    def __init__(self, url: str, *, fmt: str = "slack", throttle_s: float = 300.0, timeout_s: float = 3.0,
                 queue_size: int = 100, clock: Callable[[], float] = time.monotonic,
                 on_result: Callable[[str, str], None] | None = None):
        self.url = url
        self.fmt = fmt
        self.throttle_s = throttle_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.on_result = on_result or (lambda kind, result: None)
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=max(1, queue_size))
        self._last_sent: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.sent = self.failed = self.throttled = self.dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
            self._thread.start()

    def notify(self, kind: str, title: str, *, severity: str = "warning", **fields: Any) -> bool:
        """Queue an alert unless its kind is throttled or the queue is full; True when queued."""
        log.info("alert kind=%s severity=%s %s", kind, severity, title)
        if not self.enabled:
            return False
        now = self.clock()
        with self._lock:
            last = self._last_sent.get(kind)
            if last is not None and now - last < self.throttle_s:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                self.throttled += 1
                self.on_result(kind, "throttled")
                return False
            alert = Alert(kind, title, severity, {k: v for k, v in fields.items() if v is not None},
                          suppressed=self._suppressed.pop(kind, 0))
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                self.dropped += 1
                self.on_result(kind, "dropped")
                return False
            self._last_sent[kind] = now
        return True

    def _run(self) -> None:
        # One client for the thread's life: building one (its TLS context) costs tens of ms of GIL.
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                alert = self._queue.get()
                if alert is None:
                    return
                ok = post(self.url, alert, fmt=self.fmt, timeout_s=self.timeout_s, client=client)
                if ok:
                    self.sent += 1
                else:
                    self.failed += 1
                self.on_result(alert.kind, "sent" if ok else "failed")

    def close(self, timeout_s: float | None = None) -> None:
        """Send what is queued, waiting at most one POST timeout, capped at SHUTDOWN_WAIT_S (a dead
        webhook never holds a shutdown; the daemon thread dies with the process)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=0.5)
        except queue.Full:
            return
        thread.join(min(self.timeout_s, SHUTDOWN_WAIT_S) + 0.5 if timeout_s is None else timeout_s)

    def status(self) -> dict:
        return {"enabled": self.enabled, "format": self.fmt, "throttle_s": self.throttle_s, "queued": self._queue.qsize(),
                "sent": self.sent, "failed": self.failed, "throttled": self.throttled, "dropped": self.dropped}


def from_settings(settings, **kw: Any) -> AlertSender:
    return AlertSender(settings.alert_webhook_url.strip(), fmt=settings.alert_webhook_format,
                       throttle_s=settings.alert_throttle_s, timeout_s=settings.alert_timeout_ms / 1000,
                       queue_size=settings.alert_queue_size, **kw)


def post_throttled(settings, alert: Alert, stamp: Path) -> bool:
    """For processes without a sender (the data jobs): post unless `stamp` was touched within the
    throttle window, so a job failing every minute alerts once per window. Never raises."""
    url = settings.alert_webhook_url.strip()
    if not url:
        return False
    try:
        if time.time() - stamp.stat().st_mtime < settings.alert_throttle_s:
            return False
    except OSError:
        pass
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError:
        pass  # a full disk must not also silence the alert
    return post(url, alert, fmt=settings.alert_webhook_format, timeout_s=settings.alert_timeout_ms / 1000,
                service="onlytrade-data-jobs")
