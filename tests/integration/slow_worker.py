"""Test-only Celery entry point: the real worker (worker.py) with every job chunk's compute step slowed
down by SLOW_CHUNK_SECONDS, so that a test can kill the worker while a chunk is in flight.

    SLOW_CHUNK_SECONDS=0.4 celery -A tests.integration.slow_worker worker ...

It patches compliance.services.jobs._compute in this process only (the production code has no delay
setting); the sleep comes after the chunk's lease was claimed, as a slow evaluation would.
"""
import os
import time

from compliance.services import jobs

DELAY = float(os.environ.get("SLOW_CHUNK_SECONDS", "0.5"))
_compute = jobs._compute


def _slow_compute(compute, job, chunk):
    time.sleep(DELAY)
    return _compute(compute, job, chunk)


jobs._compute = _slow_compute

from worker import app, celery, flask_app  # noqa: E402,F401  (the celery command line looks for `app`)
