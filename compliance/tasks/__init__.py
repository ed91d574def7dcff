"""Celery wiring. Tasks are thin: they take ids and revisions, call a service, return small counts.

With no broker configured (embedded mode) tasks run in-process: `dispatch()` starts the work on a
background thread with Celery's eager execution, so the API contract (202 + progress) is unchanged.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from celery import Celery, Task
from celery.signals import worker_process_init

log = logging.getLogger(__name__)
TASK_MODULES = ("audits", "reevaluation", "webhooks", "orders")


class FlaskTask(Task):
    """Runs every task inside the Flask app context of the process."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.flask_app.app_context():
            return self.run(*args, **kwargs)


celery_app = Celery("compliance", task_cls=FlaskTask)
celery_app.flask_app = None  # set by init_celery
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-jobs")
_timers: set[threading.Timer] = set()


def init_celery(app, config) -> Celery:
    broker = config.CELERY_BROKER_URL
    celery_app.conf.update(
        broker_url=broker or "memory://",
        result_backend=config.CELERY_RESULT_BACKEND or broker or "cache+memory://",
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_store_eager_result=False,
        worker_prefetch_multiplier=1,
        task_reject_on_worker_lost=True,
        broker_connection_retry_on_startup=True,
        # Above the longest task (a 50k-product chunk takes seconds; a full finalize well under a minute).
        broker_transport_options=_transport_options(config.CELERY_VISIBILITY_TIMEOUT),
        result_backend_transport_options={"visibility_timeout": config.CELERY_VISIBILITY_TIMEOUT},
        result_expires=24 * 3600,
        task_routes={
            "compliance.audits.*": {"queue": "audits"},
            "compliance.reeval.*": {"queue": "reevaluation"},
            "compliance.webhooks.*": {"queue": "webhooks"},
        },
        task_default_queue="celery",
        beat_schedule={
            "sweep-stalled-work": {"task": "compliance.sweep", "schedule": 60.0},
        },
    )
    _forget_connections()
    celery_app.flask_app = app
    app.extensions["celery"] = celery_app
    for name in TASK_MODULES:
        try:
            __import__(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    return celery_app


def _forget_connections() -> None:
    """Drop the broker pool, producer pool, control and result backend built for a previous
    configuration (several apps in one process, e.g. embedded tests then real-worker tests)."""
    import threading

    celery_app._pool = None  # not closed: work already running may still hold it
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    celery_app.__dict__.pop("control", None)
    celery_app._backend_cache = None
    celery_app._local = threading.local()


def _transport_options(vt: int) -> dict:
    opts: dict[str, Any] = {"visibility_timeout": vt}
    if vt < 60:  # short timeouts (tests): scan for abandoned messages every second
        opts.update(unacked_restore_interval=1, unacked_restore_throttle=1)
    return opts


def dispatch(start: Callable[[], Any]) -> None:
    """Enqueue work after the caller's transaction has committed.

    Broker mode: `start()` publishes to Redis. Embedded mode: `start()` runs eagerly on a
    background thread, so the request still answers 202 at once.
    """
    if celery_app.conf.task_always_eager:
        _executor.submit(_run_logged, start)
    else:
        start()


def _run_logged(start: Callable[[], Any]) -> None:
    try:
        start()
    except Exception:
        log.exception("embedded job failed")


def dispatch_later(delay: float, start: Callable[[], Any]) -> None:
    """Embedded mode: dispatch `start` after `delay` seconds without holding the jobs thread."""
    timer = threading.Timer(delay, lambda: (_timers.discard(timer), dispatch(start)))
    timer.daemon = True
    _timers.add(timer)
    timer.start()


def wait_for_embedded_jobs(timeout: float = 60.0, cancel_timers: bool = False) -> None:
    """Block until queued embedded jobs have run (used by the CLI and tests).

    With cancel_timers, pending delayed dispatches (webhook retries) are dropped first: the app is
    going away, and the sweeper picks such deliveries up again on the next start."""
    if cancel_timers:
        for timer in list(_timers):
            timer.cancel()
        _timers.clear()
    _executor.submit(lambda: None).result(timeout=timeout)


@worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:
    """Forked worker processes must not share the parent's database connections."""
    app = celery_app.flask_app
    if app is not None:
        app.extensions["db"].engine.dispose(close=False)


@celery_app.task(name="compliance.sweep")
def sweep() -> dict:
    """Periodic sweeper: re-enqueue work left pending by a crash (each module registers its own)."""
    out: dict[str, Any] = {}
    for fn in SWEEPERS:
        out[fn.__name__] = fn()
    return out


SWEEPERS: list[Callable[[], Any]] = []
