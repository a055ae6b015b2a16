"""Prometheus metrics: a few instruments for what nothing counts yet, and one collector that reads
the runtime's own in-memory state at scrape time.

A scrape never touches the disk and never walks the snapshots: everything it reads is a counter,
a status dict or a provider's in-memory index. Each app gets its own `CollectorRegistry` (no
module-level singletons), so tests can build many apps in one process.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

NS = "onlytrade"
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 30.0)
SAVE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_REASON_MAX = 80


def decision_source(record: dict, meta: dict | None = None) -> str:
    """llm, heuristic or readiness_gate (a forced hold on data readiness ERROR)."""
    if (meta or {}).get("forced_hold"):
        return "readiness_gate"
    return "llm" if record.get("decision_source") == "llm.openai" else "heuristic"


class Instruments:
    """The counters the runtime did not keep before; updated from small hooks."""

    def __init__(self, registry: CollectorRegistry):
        self.http_requests = Counter(
            f"{NS}_http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=registry)
        self.http_duration = Histogram(
            f"{NS}_http_request_duration_seconds", "HTTP request latency by route template and status (streams: their lifetime)",
            ["route", "method", "status"], buckets=HTTP_BUCKETS, registry=registry)
        self.auth_failures = Counter(
            f"{NS}_auth_failures", "Refused control or metrics calls by reason", ["reason"], registry=registry)
        self.decisions = Counter(
            f"{NS}_decisions", "Decisions by agent, source (llm, heuristic, readiness_gate) and action",
            ["agent", "source", "action"], registry=registry)
        self.fills = Counter(f"{NS}_fills", "Executed orders by agent and side", ["agent", "side"], registry=registry)
        self.fill_notional = Counter(f"{NS}_fill_notional", "Filled notional by agent and side", ["agent", "side"], registry=registry)
        self.fees = Counter(f"{NS}_fees", "Commission plus stamp duty paid, by agent", ["agent"], registry=registry)
        self.readiness = Counter(f"{NS}_readiness", "Data readiness level per decision", ["agent", "level"], registry=registry)
        self.readiness_reasons = Counter(
            f"{NS}_readiness_reasons", "Data readiness reasons per decision", ["agent", "reason"], registry=registry)
        self.llm_duration = Histogram(
            f"{NS}_llm_request_duration_seconds", "LLM request latency by agent and outcome (ok, failure)",
            ["agent", "outcome"], buckets=LLM_BUCKETS, registry=registry)
        self.snapshot_save = Histogram(
            f"{NS}_snapshot_save_duration_seconds", "Atomic snapshot save latency", buckets=SAVE_BUCKETS, registry=registry)
        self.snapshot_save_failures = Counter(
            f"{NS}_snapshot_save_failures", "Snapshot saves that raised", ["error"], registry=registry)
        self.alerts = Counter(f"{NS}_alerts", "Webhook alerts by kind and result (sent, failed, throttled, dropped)",
                              ["kind", "result"], registry=registry)

    def on_decision(self, agent_id: str, record: dict, meta: dict) -> None:
        """Decision listener: count the decision, its fill and fees, its readiness."""
        head = (record.get("decisions") or [{}])[0]
        action = str(head.get("action") or "hold")
        self.decisions.labels(agent_id, decision_source(record, meta), action).inc()
        if head.get("executed") and action in ("buy", "sell"):
            self.fills.labels(agent_id, action).inc()
            self.fill_notional.labels(agent_id, action).inc(float(head.get("filled_notional") or 0))
            self.fees.labels(agent_id).inc(float(head.get("fee_paid") or 0))
        readiness = meta.get("data_readiness") or {}
        self.readiness.labels(agent_id, str(readiness.get("level") or "unknown")).inc()
        for reason in readiness.get("reasons") or []:
            self.readiness_reasons.labels(agent_id, str(reason)[:_REASON_MAX]).inc()
        latency = (record.get("llm") or {}).get("latency_ms")
        if isinstance(latency, (int, float)):
            outcome = "failure" if (record.get("llm") or {}).get("failure_reason") else "ok"
            self.llm_duration.labels(agent_id, outcome).observe(latency / 1000)


def timed_save(save, instruments: Instruments, on_failure=None):
    """Wrap `MemoryStore.save`: its latency, its failures (and an alert hook)."""

    def wrapper(agent_id: str, snapshot: dict, **kw: Any) -> None:
        start = time.perf_counter()
        try:
            save(agent_id, snapshot, **kw)
        except Exception as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            instruments.snapshot_save_failures.labels(str(code)).inc()
            if on_failure is not None:
                on_failure(agent_id, str(code))
            raise
        finally:
            instruments.snapshot_save.observe(time.perf_counter() - start)

    return wrapper


class RuntimeCollector:
    """Reads the runtime's counters and state at scrape time (no disk, no snapshot walk)."""

    def __init__(self, ctx, build: dict):
        self.ctx = ctx
        self.build = build

    def describe(self):
        return []  # unchecked collector: the families depend on the runtime's state

    def collect(self):
        ctx = self.ctx
        rt = ctx.runtime
        now_ms = time.time() * 1000
        yield InfoMetricFamily(f"{NS}_build", "Version and git commit", value={k: str(v) for k, v in self.build.items()})

        rounds = CounterMetricFamily(f"{NS}_decision_rounds", "Decision rounds (cycles) by result", labels=["result"])
        rounds.add_metric(["successful"], rt.metrics.get("successfulCycles", 0))
        rounds.add_metric(["failed"], rt.metrics.get("failedCycles", 0))
        yield rounds
        yield CounterMetricFamily(f"{NS}_discarded_cycles", "In-flight decisions discarded (reset or kill switch)", value=rt.discarded_cycles)
        sinks = CounterMetricFamily(f"{NS}_sink_errors", "Decision log, audit log and listener failures", labels=["sink"])
        for name, count in rt.sink_errors.items():
            sinks.add_metric([name], count)
        yield sinks
        errors = GaugeMetricFamily(f"{NS}_agent_error", "1 while an agent's last cycle failed", labels=["agent", "error"])
        for agent_id, code in rt.agent_errors.items():
            errors.add_metric([agent_id, str(code)[:_REASON_MAX]], 1)
        yield errors
        yield GaugeMetricFamily(f"{NS}_in_flight_agents", "Agents deciding now", value=len(rt.in_flight))

        yield CounterMetricFamily(f"{NS}_llm_calls", "LLM calls attempted", value=rt.llm_calls["attempted"])
        failures = CounterMetricFamily(f"{NS}_llm_failures", "LLM failures by reason", labels=["reason"])
        for reason, count in rt.llm_failures.items():
            failures.add_metric([reason], count)
        yield failures
        breaker = GaugeMetricFamily(f"{NS}_llm_breaker_open", "1 while an agent's LLM breaker is open or half-open", labels=["agent", "state"])
        for agent_id, b in rt.breakers.items():
            state = b.state
            breaker.add_metric([agent_id, state], 0 if state == "closed" else 1)
        yield breaker

        yield from self._control(ctx, rt)
        yield from self._live(ctx, now_ms)
        yield from self._viewers(ctx)
        yield from self._http_cache(ctx)

        loop = ctx.loop_monitor.status()
        lag = GaugeMetricFamily(f"{NS}_event_loop_lag_seconds", "Event-loop lag over the monitor's window", labels=["stat"])
        lag.add_metric(["p99"], loop["p99_lag_ms"] / 1000)
        lag.add_metric(["max"], loop["max_lag_ms"] / 1000)
        yield lag
        yield CounterMetricFamily(f"{NS}_event_loop_stalls", "Event-loop stalls over 20 ms", value=loop["stalls_over_20ms"])
        heap = ctx.extra.get("heap")
        if heap is not None and heap.installed:  # the server process's collector policy (runtime_api/observability/heap.py)
            gc_status = heap.status()
            yield GaugeMetricFamily(f"{NS}_gc_frozen_objects", "Objects frozen out of the collector's walk", value=gc_status["frozen_objects"])
            yield GaugeMetricFamily(f"{NS}_gc_max_pause_seconds", "Longest garbage collection since boot", value=gc_status["max_pause_ms"] / 1000)
            yield CounterMetricFamily(f"{NS}_gc_pauses_over_20ms", "Garbage collections longer than 20 ms", value=gc_status["pauses_over_20ms"])
        yield GaugeMetricFamily(f"{NS}_uptime_seconds", "Seconds since boot", value=time.monotonic() - ctx.boot_monotonic)
        yield GaugeMetricFamily(f"{NS}_ready", "1 once boot has finished", value=1 if ctx.ready else 0)

    def _control(self, ctx, rt):
        ks = ctx.svc.kill_switch
        sources = ks.sources()
        yield GaugeMetricFamily(f"{NS}_kill_switch_active", "1 while the kill switch is on", value=1 if sources else 0)
        src = GaugeMetricFamily(f"{NS}_kill_switch_source", "Kill-switch sources holding it on", labels=["source"])
        for name in sources:
            src.add_metric([name], 1)
        yield src
        reason = GaugeMetricFamily(f"{NS}_kill_switch_reason", "The kill switch's reason while on", labels=["reason"])
        if sources:
            reason.add_metric([str(ks.state.get("reason") or ",".join(sources))[:_REASON_MAX]], 1)
        yield reason
        yield GaugeMetricFamily(f"{NS}_runtime_paused", "1 while paused by an operator", value=1 if rt.paused_reason else 0)
        state = GaugeMetricFamily(f"{NS}_runtime_held", "1 while the runtime holds, with why (kill_switch, manual, market_gate, ...)",
                                  labels=["reason"])
        held = rt.state_reason()
        if held:
            state.add_metric([str(held)[:_REASON_MAX]], 1)
        yield state
        blocked = GaugeMetricFamily(f"{NS}_gate_blocked_agent", "Agents the session gate holds, with why", labels=["agent", "reason"])
        for agent_id, why in (rt.gate.get("blocked") or {}).items():
            blocked.add_metric([agent_id, str(why)[:_REASON_MAX]], 1)
        yield blocked

    def _live(self, ctx, now_ms: float):
        live = ctx.svc.live
        age = GaugeMetricFamily(f"{NS}_live_file_age_seconds", "Seconds since a live file last changed (its mtime)",
                                labels=["kind", "market"])
        stale = GaugeMetricFamily(f"{NS}_live_file_stale", "1 while a live file is stale", labels=["kind", "market"])
        bar = GaugeMetricFamily(f"{NS}_newest_bar_age_seconds", "Age of the newest bar per market", labels=["market"])
        for kind in ("frames", "overview", "news", "breadth"):
            for market, provider in (getattr(live, kind, None) or {}).items():
                st = provider.status()
                if st.get("last_mtime_ms"):
                    age.add_metric([kind, market], max(0.0, now_ms - st["last_mtime_ms"]) / 1000)
                if ctx.settings.live_mode:
                    stale.add_metric([kind, market], 1 if st.get("stale") else 0)
                if kind == "frames" and st.get("latest_ts_ms"):
                    bar.add_metric([market], max(0.0, now_ms - st["latest_ts_ms"]) / 1000)
        yield age
        yield stale
        yield bar
        replay = ctx.svc.replay
        if replay is not None and not ctx.settings.live_mode and replay.clock_ms():
            yield GaugeMetricFamily(f"{NS}_replay_clock_timestamp_seconds", "The replay cursor's bar time (replay mode)",
                                    value=replay.clock_ms() / 1000)

    def _viewers(self, ctx):
        streams = ctx.extra.get("viewer_streams")
        if streams is None:
            return
        subs = GaugeMetricFamily(f"{NS}_sse_subscribers", "SSE viewers per room (market: the market stream)", labels=["room"])
        dropped = CounterMetricFamily(f"{NS}_sse_dropped_viewers", "Slow viewers dropped per room", labels=["room"])
        hub = streams.hub
        for room_id in list(hub._rooms):
            st = hub.stats(room_id)
            if st:
                subs.add_metric([room_id], st["subscribers"])
                dropped.add_metric([room_id], st["dropped_slow_viewers"])
        subs.add_metric(["market"], streams.market.stats()["subscribers"])
        yield subs
        yield dropped


    def _http_cache(self, ctx):
        cache = ctx.extra.get("http_cache")
        if cache is None:  # no request yet: Starlette builds its middleware on the first one
            return
        answers = CounterMetricFamily(f"{NS}_http_cache_answers", "Public GETs by how the cache answered: not_modified "
                                      "(304), kept (a kept answer), joined (waited for the same read's answer), built "
                                      "(went through the route)", labels=["how"])
        answers.add_metric(["not_modified"], cache.not_modified)
        answers.add_metric(["kept"], cache.response_hits)
        answers.add_metric(["joined"], cache.response_joins)
        answers.add_metric(["built"], cache.response_misses)
        yield answers


def build_registry(ctx, build: dict) -> tuple[CollectorRegistry, Instruments]:
    registry = CollectorRegistry(auto_describe=False)
    instruments = Instruments(registry)
    registry.register(RuntimeCollector(ctx, build))
    ProcessCollector(registry=registry)  # RSS, open descriptors, CPU from /proc (not the disk)
    PlatformCollector(registry=registry)
    return registry, instruments
