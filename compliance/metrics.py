"""Prometheus metrics at `/metrics` (prometheus_client's text format).

Two kinds:
- **Counted in the process** (prometheus_client counters and histograms): HTTP requests by method, route
  (the URL rule, not the raw path) and status, with latencies; products classified; Celery tasks run by
  the process (audit and re-evaluation chunks, finalizers, webhook deliveries) by task and outcome, with
  durations, through Celery's task signals. Several processes (gunicorn workers, Celery workers on the same
  host) add up when `PROMETHEUS_MULTIPROC_DIR` names a directory they all share (prometheus_client's
  multiprocess mode); without it each process reports its own.
- **Read from the database at scrape time**, so they are the same whichever process answers and include the
  workers' work: audits, audit chunks, re-evaluation runs and chunks and webhook deliveries by status
  (failures included), duration summaries of finished audits and re-evaluations, and the broker's queue depth.

`METRICS_TOKEN` set: a scrape needs `Authorization: Bearer <token>`.
"""
from __future__ import annotations

import hmac
import time
from typing import Iterable

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
QUEUES = ("audits", "reevaluation", "webhooks", "celery")

HTTP_REQUESTS = Counter("compliance_http_requests", "HTTP requests answered, by method, route and status",
                        ["method", "route", "status"])
HTTP_SECONDS = Histogram("compliance_http_request_duration_seconds", "Time to answer an HTTP request (until the "
                         "response starts; a streamed body is not included)", ["method", "route"],
                         buckets=LATENCY_BUCKETS)
CLASSIFICATIONS = Counter("compliance_classifications", "Products classified (POST /classify, /classify/batch, "
                          "the console and the CLI)")
TASKS = Counter("compliance_celery_tasks", "Celery tasks run in this process, by task name and outcome",
                ["task", "outcome"])
TASK_SECONDS = Histogram("compliance_celery_task_duration_seconds", "Run time of Celery tasks (chunks, finalizers, "
                         "deliveries)", ["task"], buckets=TASK_BUCKETS)

_task_started: dict[str, float] = {}


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "(unmatched)"


def init_metrics(app: Flask) -> None:
    """Time every request, serve /metrics, and count Celery tasks through their signals."""

    @app.before_request
    def _start_timer():
        g._metrics_t0 = time.perf_counter()

    @app.after_request
    def _observe(response):
        t0 = g.pop("_metrics_t0", None)
        if t0 is not None and request.path != "/metrics":
            route = _route()
            HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
            HTTP_SECONDS.labels(request.method, route).observe(time.perf_counter() - t0)
        return response

    @app.get("/metrics")
    def metrics():
        token = app.config["COMPLIANCE"].METRICS_TOKEN
        if token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return Response("metrics need Authorization: Bearer <METRICS_TOKEN>\n", status=401,
                                mimetype="text/plain", headers={"WWW-Authenticate": "Bearer"})
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(DatabaseCollector(app))
        body = generate_latest(process_registry(app.config["COMPLIANCE"].PROMETHEUS_MULTIPROC_DIR)) \
            + generate_latest(scraped)
        return Response(body, content_type=CONTENT_TYPE_LATEST)

    _connect_task_signals()
    from .services.classification import CLASSIFIED_OBSERVERS

    if count_classified not in CLASSIFIED_OBSERVERS:
        CLASSIFIED_OBSERVERS.append(count_classified)


def process_registry(directory: str | None = None):
    """The counted metrics: this process's, or (multiprocess mode) every process's that shares the directory."""
    if not directory:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return registry


def count_classified(n: int) -> None:
    CLASSIFICATIONS.inc(n)


# ---------------------------------------------------------------- Celery tasks

_connected = []


def _connect_task_signals() -> None:
    if _connected:
        return
    from celery.signals import task_postrun, task_prerun

    def started(task_id=None, task=None, **_):
        _task_started[task_id] = time.perf_counter()

    def finished(task_id=None, task=None, state=None, **_):
        t0 = _task_started.pop(task_id, None)
        name = getattr(task, "name", "unknown")
        if t0 is not None:
            TASK_SECONDS.labels(name).observe(time.perf_counter() - t0)
        TASKS.labels(name, "failure" if state == "FAILURE" else "success" if state == "SUCCESS" else
                     (state or "unknown").lower()).inc()

    task_prerun.connect(started, weak=False)
    task_postrun.connect(finished, weak=False)
    _connected.append(True)


# ---------------------------------------------------------------- read at scrape time

class DatabaseCollector:
    """Job and delivery counts by status, durations of finished jobs, and the broker's queue depth."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterable:
        from sqlalchemy import func, select

        from .models import Audit, AuditChunk, ReevaluationChunk, ReevaluationRun, WebhookDelivery

        db = self.app.extensions["db"]
        tables = (("compliance_audits", "Audits by status", Audit),
                  ("compliance_audit_chunks", "Audit chunks by status", AuditChunk),
                  ("compliance_reevaluation_runs", "Re-evaluation runs (after a publish) by status", ReevaluationRun),
                  ("compliance_reevaluation_chunks", "Re-evaluation chunks by status", ReevaluationChunk),
                  ("compliance_webhook_deliveries", "Webhook deliveries by status", WebhookDelivery))
        with db.session() as s:
            for name, doc, model in tables:
                family = GaugeMetricFamily(name, doc, labels=["status"])
                for status, n in s.execute(select(model.status, func.count()).group_by(model.status)):
                    family.add_metric([status], n)
                yield family
            for name, doc, model in (("compliance_audit_duration_seconds", "Finished audits: start to finish",
                                      Audit),
                                     ("compliance_reevaluation_duration_seconds",
                                      "Finished re-evaluations: start to finish", ReevaluationRun)):
                rows = s.execute(select(model.started_at, model.finished_at).where(
                    model.status == "done", model.started_at.is_not(None), model.finished_at.is_not(None))
                    .order_by(model.id.desc()).limit(10_000)).all()
                seconds = [max(0.0, (b - a).total_seconds()) for a, b in rows]
                family = SummaryMetricFamily(name, doc + " (the last 10,000)")
                family.add_metric([], count_value=len(seconds), sum_value=sum(seconds))
                yield family
            products = s.scalar(select(func.coalesce(func.sum(Audit.total), 0)).where(Audit.status == "done")) or 0
            family = GaugeMetricFamily("compliance_audited_products", "Products evaluated by finished audits")
            family.add_metric([], int(products))
            yield family
        depth = self._queue_depth()
        if depth is not None:
            family = GaugeMetricFamily("compliance_queue_depth", "Messages waiting in the broker, by queue",
                                       labels=["queue"])
            for queue, n in depth.items():
                family.add_metric([queue], n)
            yield family

    def _queue_depth(self) -> dict[str, int] | None:
        url = self.app.config["COMPLIANCE"].CELERY_BROKER_URL
        if not url or not url.startswith(("redis://", "rediss://")):
            return None
        import redis

        try:
            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            return {q: int(client.llen(q)) for q in QUEUES}
        except redis.RedisError:
            return None
