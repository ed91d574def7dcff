"""Bulk screening runs on the chunked-job mechanism (services/jobs.py): one chunk per CHUNK parties, progress
from each chunk's fenced write, the report assembled once in party order, a duplicate chunk message writes
nothing, the sweeper re-sends an unsent chunk, a job queued as one task by the older code still runs; the
migration matches the model (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from compliance.models import ScreeningJob, ScreeningJobChunk
from compliance.services import jobs, screening_jobs
from compliance.tasks import wait_for_embedded_jobs

PARTIES = ("name,country,address\n"
           "Huawei Technologies Co Ltd,CN,\n"
           "Blue Sky Foods,US,1 Main St\n"
           "Zhongke Shuguang,,\n"
           "Acme Tools,DE,\n"
           "Inspur Group,CN,\n")


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


def _chunks(db, job_id):
    with db.session() as s:
        return list(s.scalars(select(ScreeningJobChunk).where(ScreeningJobChunk.job_id == job_id)
                              .order_by(ScreeningJobChunk.seq)))


def _submit(client, headers):
    r = client.post("/api/v1/screening/jobs?format=csv", data=PARTIES, headers={**headers, "Content-Type": "text/csv"})
    assert r.status_code == 202, r.get_json()
    return r.get_json()


def test_a_party_file_is_screened_in_chunks_and_reported_in_order(app, client, headers_for, monkeypatch):
    monkeypatch.setattr(screening_jobs, "CHUNK", 2)
    auditor = headers_for(app, "auditor")
    job = _submit(client, auditor)
    wait_for_embedded_jobs(app, timeout=120)
    db = app.extensions["db"]
    chunks = _chunks(db, job["id"])
    assert [(c.lo_id, c.hi_id, c.size, c.status, c.attempts) for c in chunks] == [
        (0, 1, 2, "done", 1), (2, 3, 2, "done", 1), (4, 4, 1, "done", 1)]
    done = client.get(f"/api/v1/screening/jobs/{job['id']}", headers=auditor).get_json()
    assert done["status"] == "done" and done["screened"] == 5 and done["hits"] == 3 and done["finished_at"]
    report = client.get(f"/api/v1/screening/jobs/{job['id']}/report", headers=auditor).get_json()["parties"]
    assert [(p["row"], p["status"]) for p in report] == [(1, "hit"), (2, "clear"), (3, "hit"), (4, "clear"),
                                                       (5, "hit")]
    # a duplicate message for a done chunk is skipped: nothing counted twice
    config = app.config["COMPLIANCE"]
    again = screening_jobs.run_chunk(db, job["id"], chunks[0].id, config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
    assert again == {"chunk": chunks[0].id, "skipped": True}
    assert client.get(f"/api/v1/screening/jobs/{job['id']}", headers=auditor).get_json()["screened"] == 5


def test_the_sweeper_sends_a_lost_chunk_and_the_job_finishes(app, client, headers_for, monkeypatch):
    auditor = headers_for(app, "auditor")
    real = jobs.enqueue_chunks
    monkeypatch.setattr(jobs, "enqueue_chunks", lambda *a: None)  # the broker lost the messages
    job = _submit(client, auditor)
    monkeypatch.setattr(jobs, "enqueue_chunks", real)
    db = app.extensions["db"]
    assert client.get(f"/api/v1/screening/jobs/{job['id']}", headers=auditor).get_json()["status"] == "pending"
    out = screening_jobs.sweep_screening_jobs(db, 60)
    assert out["enqueued_chunks"] == 1
    wait_for_embedded_jobs(app, timeout=120)
    assert client.get(f"/api/v1/screening/jobs/{job['id']}", headers=auditor).get_json()["status"] == "done"


def test_a_job_queued_as_one_task_by_the_older_code_still_runs(app):
    db = app.extensions["db"]
    parties, _ = screening_jobs.parse_parties(PARTIES.encode(), "csv")
    with db.session() as s:  # as the code before the chunked jobs stored it: no chunk rows
        job = ScreeningJob(filename="old.csv", status="pending", total=len(parties), rejected=0, errors=[],
                           parties=parties, results=[], created_by="tests")
        s.add(job)
        s.flush()
        job_id = job.id
    config = app.config["COMPLIANCE"]
    assert screening_jobs.run_job(db, job_id, config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE) == {
        "job": job_id, "screened": 5}
    view = screening_jobs.get_job(db, job_id)
    assert view["status"] == "done" and view["screened"] == 5 and view["hits"] == 3
    assert screening_jobs.run_job(db, job_id, 88, None) == {"job": job_id, "skipped": True}


def test_an_empty_party_file_is_done_at_once(app, client, headers_for):
    auditor = headers_for(app, "auditor")
    r = client.post("/api/v1/screening/jobs?format=csv", data="name,country\n,DE\n",
                    headers={**auditor, "Content-Type": "text/csv"})
    assert r.status_code == 202, r.get_json()
    with app.extensions["db"].session() as s:
        assert s.get(ScreeningJob, r.get_json()["id"]).status == "done"


def test_the_migration_matches_the_model_and_goes_down_and_up(make_app, db_url):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from compliance.db import alembic_config
    from compliance.models import Base

    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    flat = [d for d in diffs if isinstance(d, tuple)] + [x for d in diffs if isinstance(d, list) for x in d]
    assert [d for d in flat if "screening_job_chunks" in repr(d)] == []
    db.dispose()
    url = app.config["COMPLIANCE"].DATABASE_URL
    command.downgrade(alembic_config(url), "0019_order_recheck_jobs")
    command.upgrade(alembic_config(url), "head")
    with db.session() as s:
        s.execute(update(ScreeningJobChunk).values(status="done"))  # the table is back
