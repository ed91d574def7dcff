"""Celery wiring (Flask's celery_init_app pattern). Tasks are thin: ids in, a service call, small counts out.

`init_celery(app, config)` builds a Celery app for this Flask app and keeps it in
`app.extensions["celery"]`; tasks are `shared_task`s whose class runs them inside that Flask app's context
and reaches its extensions through `self.ext(...)`. Services never send tasks themselves: they record
"send task X after commit" on their database session (compliance.db.enqueue_after_commit) and the sender
installed here publishes it. With no broker configured (embedded mode) a sent task runs eagerly on the
app's background jobs thread (`app.extensions["jobs"]`), so the API contract (202 + progress) is unchanged.
"""
from __future__ import annotations

import contextvars
import importlib
import logging
import threading
from collections import deque
from typing import Any, Callable

from celery import Celery, Task
from celery.signals import worker_process_init

log = logging.getLogger(__name__)
BROKER_CONNECT_TIMEOUT = 2.0  # seconds: a request that enqueues work must not hang on a dead broker
QUEUES = {"compliance.audits.*": "audits", "compliance.reeval.*": "reevaluation",
          "compliance.webhooks.*": "webhooks"}


TASK_MODULES = ("audits", "imports", "orders", "reevaluation", "screening", "sweep", "webhooks")


def register_tasks() -> None:
    """Import the task modules: their shared_task decorators register the tasks on every Celery app.

    The first send runs this inside a session's after_commit dispatch: a module imported here must not add
    Session listeners then (SQLAlchemy is iterating them). services/committed.py is the one that adds them
    on import, so init_celery imports it first."""
    for name in TASK_MODULES:
        importlib.import_module(f"{__name__}.{name}")


class ComplianceCelery(Celery):
    """Registers the tasks when they are first looked up (`tasks`: the worker, a send, a test), so a command
    that starts no job (the CLI's catalogue import) imports neither every job's services nor Redis."""

    @property  # type: ignore[override]
    def tasks(self):
        register_tasks()
        return super().tasks


def init_celery(app, config) -> Celery:
    """The Celery app of `app` (in app.extensions["celery"]), its task sender and, embedded, its jobs thread."""

    class AppTask(Task):
        """Runs inside `app`'s context. A chunk task (with `fail_chunk`) fails its job when it fails for good."""

        fail_chunk: Callable[..., None] | None = None

        def ext(self, name: str) -> Any:
            """An extension of the Flask app ("config": its Config)."""
            return app.config["COMPLIANCE"] if name == "config" else app.extensions[name]

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

        def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
            if self.fail_chunk is None:
                return
            log.error("%s%s failed: %s: %s", self.name, tuple(args), type(exc).__name__, exc)
            with app.app_context():
                self.fail_chunk(app.extensions["db"], *args, f"{type(exc).__name__}: {exc}")

    broker = config.CELERY_BROKER_URL
    celery = ComplianceCelery(app.import_name, task_cls=AppTask)
    celery.conf.update(
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
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT,
        # Above the longest task (a 50k-product chunk takes seconds). A chunk whose worker died is
        # picked up by the sweeper once its lease expires, long before this.
        broker_transport_options=_transport_options(config.CELERY_VISIBILITY_TIMEOUT),
        result_backend_transport_options={"visibility_timeout": config.CELERY_VISIBILITY_TIMEOUT,
                                          "socket_connect_timeout": BROKER_CONNECT_TIMEOUT},
        redis_socket_connect_timeout=BROKER_CONNECT_TIMEOUT,
        result_expires=24 * 3600,
        task_routes={pattern: {"queue": queue} for pattern, queue in QUEUES.items()},
        task_default_queue="celery",
        beat_schedule={
            "sweep-stalled-work": {"task": "compliance.sweep", "schedule": float(config.JOB_SWEEP_SECONDS)},
        },
    )
    celery.set_default()
    celery.finalize()  # the tasks are registered on first lookup (ComplianceCelery.tasks)
    importlib.import_module("compliance.services.committed")  # its Session listeners, before any commit (above)
    app.extensions["celery"] = celery
    runner = EmbeddedJobs() if not broker else None
    app.extensions["jobs"] = runner

    def send(name: str, args: list) -> None:
        task = celery.tasks[name]
        if runner is not None:
            runner.submit(lambda: task.apply_async(args=args))
        else:  # raises at once if the broker is unreachable (no retries: the sweeper sends it later)
            task.apply_async(args=args, retry=False, ignore_result=True)

    app.extensions["db"].sender = send

    def fresh_connections(**_kwargs) -> None:
        """Forked worker processes must not share the parent's database connections."""
        app.extensions["db"].engine.dispose(close=False)

    celery.fresh_connections = fresh_connections  # the signal holds it weakly: it lives as long as `celery`
    worker_process_init.connect(fresh_connections)
    return celery


def _transport_options(vt: int) -> dict:
    opts: dict[str, Any] = {"visibility_timeout": vt, "socket_connect_timeout": BROKER_CONNECT_TIMEOUT}
    if vt < 60:  # short timeouts (tests): scan for abandoned messages every second
        opts.update(unacked_restore_interval=1, unacked_restore_throttle=1)
    return opts


class EmbeddedJobs:
    """Embedded mode: tasks sent after commit run one at a time on a background thread of the app."""

    def __init__(self) -> None:
        self._queue: deque[Callable[[], Any]] = deque()
        self._cv = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._timers: set[threading.Timer] = set()

    def submit(self, start: Callable[[], Any]) -> None:
        # in a copy of the caller's context: the job's log lines keep the request id (compliance/logs.py)
        context = contextvars.copy_context()
        with self._cv:
            self._queue.append(lambda: context.run(start))
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="embedded-jobs", daemon=True)
                self._thread.start()

    def later(self, delay: float, start: Callable[[], Any]) -> None:
        """Submit `start` after `delay` seconds without holding the jobs thread (webhook retries)."""
        timer = threading.Timer(delay, lambda: (self._timers.discard(timer), self.submit(start)))
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _loop(self) -> None:
        while True:
            with self._cv:
                if not self._queue:
                    self._thread = None
                    return
                start = self._queue.popleft()
            try:
                start()
            except Exception:
                log.exception("embedded job failed")
            finally:
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()

    def wait(self, timeout: float = 60.0, cancel_timers: bool = False) -> None:
        """Block until submitted jobs (and what they submitted) have run (the CLI and tests).

        With cancel_timers, pending delayed submits (webhook retries) are dropped first: the app is going
        away, and the sweeper picks such deliveries up again on the next start."""
        if cancel_timers:
            for timer in list(self._timers):
                timer.cancel()
            self._timers.clear()
        with self._cv:
            if not self._cv.wait_for(lambda: self._busy == 0, timeout=timeout):
                raise TimeoutError(f"embedded jobs still running after {timeout}s")


def wait_for_embedded_jobs(app, timeout: float = 60.0, cancel_timers: bool = False) -> None:
    """Wait for `app`'s embedded jobs (no-op with a broker)."""
    runner = app.extensions.get("jobs")
    if runner is not None:
        runner.wait(timeout, cancel_timers)
