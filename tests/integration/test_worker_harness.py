"""The real-worker harness itself: a Celery worker subprocess takes a task from Redis and answers."""
from tests.integration.conftest import wait_until


def test_a_real_worker_runs_the_sweeper_task_from_redis(worker_env, start_worker):
    start_worker(concurrency=1)
    celery = worker_env.app.extensions["celery"]
    result = celery.send_task("compliance.sweep")
    assert isinstance(result.get(timeout=60), dict)


def test_a_killed_worker_stops_answering(worker_env, start_worker):
    w = start_worker(concurrency=1)
    w.kill()
    celery = worker_env.app.extensions["celery"]
    wait_until(lambda: not celery.control.ping(destination=[w.name], timeout=0.5), timeout=20,
               message="the killed worker to stop answering")
