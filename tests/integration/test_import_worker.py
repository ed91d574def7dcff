"""Catalogue imports as jobs (issue 13) on a real Celery worker (subprocess) with Redis and PostgreSQL: the API
answers 202 at once, the stored upload is read by the worker, the report's progress moves while it runs; a
worker killed mid-import is replaced through the sweeper and the import finishes with nothing doubled."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bench.audit_pipeline import csv_bytes
from compliance.models import ImportUpload, ImportUploadPart, Product
from compliance.services.catalogues import create_catalogue
from tests.factories import api_headers
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.services


def _count(db, model, *where) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)))


def test_an_api_import_is_a_job_on_a_real_worker_with_moving_progress(worker_env, start_worker):
    app = worker_env.app
    db = app.extensions["db"]
    start_worker(concurrency=1)
    n = 30_000
    data = csv_bytes(n)
    cat = create_catalogue(db, "worker-imports", destinations=["CN"])
    client, headers = app.test_client(), api_headers(app, "auditor")
    r = client.post(f"/api/v1/catalogues/{cat.id}/imports?filename=big.csv", data=data,
                    headers={**headers, "Content-Type": "text/csv", "Prefer": "respond-async"})
    assert r.status_code == 202, r.json
    url = r.headers["Location"]
    seen: list[tuple[str, int, int]] = []

    def finished():
        rep = client.get(url, headers=headers).json
        seen.append((rep["status"], rep["progress"]["rows_read"], rep["progress"]["bytes_read"]))
        return rep if rep["status"] in ("done", "failed") else None

    rep = wait_until(finished, timeout=240, interval=0.05, message="the import to finish")
    assert rep["status"] == "done", rep
    assert (rep["rows_read"], rep["created"], rep["rejected"]) == (n, n, 0)
    running = [s for s in seen if s[0] == "running"]
    assert any(0 < rows < n for _, rows, _ in running), seen[:20]  # progress moved while it ran
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)
    assert _count(db, Product, Product.catalogue_id == cat.id) == n
    assert _count(db, ImportUpload) == 0 and _count(db, ImportUploadPart) == 0


def test_an_import_whose_worker_is_killed_finishes_on_another_with_nothing_doubled(worker_env, start_worker):
    app = worker_env.app
    db = app.extensions["db"]
    short = {"JOB_LEASE_SECONDS": "2", "JOB_SWEEP_SECONDS": "1", "JOB_REQUEUE_SECONDS": "5"}
    a = start_worker(concurrency=1, extra_env=short, slow=600)  # claims the upload, then hangs in it
    n = 3_000
    cat = create_catalogue(db, "killed-imports", destinations=["CN"])
    client, headers = app.test_client(), api_headers(app, "auditor")
    r = client.post(f"/api/v1/catalogues/{cat.id}/imports?async=true&filename=k.csv", data=csv_bytes(n),
                    headers={**headers, "Content-Type": "text/csv"})
    assert r.status_code == 202, r.json
    import_id = r.json["id"]

    def held():
        with db.session() as s:
            return s.scalar(select(ImportUpload.lease_owner).where(ImportUpload.import_id == import_id))

    wait_until(held, timeout=60, message="worker A to claim the upload")
    a.kill()
    start_worker(concurrency=1, extra_env=short, beat=True)  # worker B, with the beat sweeper

    def done():
        rep = client.get(r.headers["Location"], headers=headers).json
        return rep if rep["status"] in ("done", "failed") else None

    rep = wait_until(done, timeout=120, interval=0.2, message="the import to finish on worker B")
    assert rep["status"] == "done" and rep["rows_read"] == n and rep["imported"] == n, rep
    assert _count(db, Product, Product.catalogue_id == cat.id) == n
    assert _count(db, ImportUpload) == 0 and _count(db, ImportUploadPart) == 0
