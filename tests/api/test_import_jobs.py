"""Issue 13: a catalogue import through the API as a job (SQLite embedded and PostgreSQL): `Prefer:
respond-async` or `async=true` answers 202 with a Location whose status and progress move to the full report;
the upload is stored in the database until the import finishes; Idempotency-Key as for audits; an unreadable
file is a 422 at once; the sweeper sends a stalled import again. Without the preference the answer stays the
synchronous 201 (tests/api/test_catalogues_api.py)."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from compliance.models import ImportReport, ImportUpload, ImportUploadPart, Product
from compliance.services import import_jobs
from compliance.tasks import wait_for_embedded_jobs
from tests.api.test_catalogues_api import CSV_GOOD_AND_BAD, catalogue, upload  # noqa: F401  (fixture)


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


def _count(app, model) -> int:
    with app.extensions["db"].session() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def _csv(n: int, start: int = 0) -> bytes:
    rows = "".join(f"SKU-{i},Chip {i},Acme,ic,true,fp16:{100 + i % 900}\n" for i in range(start, start + n))
    return ("sku,name,vendor,kind,datacenter,throughput\n" + rows).encode()


def _post(client, headers, cid, data: bytes, filename: str, extra: dict | None = None, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(f"/api/v1/catalogues/{cid}/imports" + (f"?{qs}" if qs else ""),
                       headers={**headers, **(extra or {})},
                       data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def test_prefer_respond_async_is_a_job_whose_report_matches_the_synchronous_one(app, client, auditor_headers,
                                                                                catalogue):  # noqa: F811
    r = _post(client, auditor_headers, catalogue, CSV_GOOD_AND_BAD.encode(), "acme.csv",
              {"Prefer": "respond-async, wait=0"})
    assert r.status_code == 202, r.json
    assert r.headers["Preference-Applied"] == "respond-async"
    assert r.headers["Location"].endswith(f"/api/v1/imports/{r.json['id']}") and r.json["url"] == r.headers["Location"]
    assert r.json["status"] in ("pending", "running", "done")
    assert r.json["progress"]["bytes_total"] == len(CSV_GOOD_AND_BAD.encode())
    wait_for_embedded_jobs(app)
    rep = client.get(r.headers["Location"], headers=auditor_headers).json
    assert rep["status"] == "done" and rep["error"] is None, rep
    assert (rep["rows_read"], rep["imported"], rep["rejected"], rep["created"]) == (9, 4, 5, 4)
    assert sorted(e["row"] for e in rep["errors"]) == [3, 4, 7, 8, 9]
    assert rep["progress"] == {"rows_read": 9, "bytes_read": len(CSV_GOOD_AND_BAD.encode()),
                               "bytes_total": len(CSV_GOOD_AND_BAD.encode()), "percent": 100.0}
    assert rep["started_at"] and rep["finished_at"] >= rep["started_at"]
    # the stored upload is gone once the import is done
    assert _count(app, ImportUpload) == 0 and _count(app, ImportUploadPart) == 0
    # the synchronous answer of the same file (re-import: every row updated) has the same shape
    sync = upload(client, auditor_headers, catalogue, CSV_GOOD_AND_BAD.encode(), "acme.csv")
    assert sync.status_code == 201 and sync.json["status"] == "done"
    assert (sync.json["rows_read"], sync.json["imported"], sync.json["updated"]) == (9, 4, 4)
    assert set(sync.json) == set(rep)


def test_async_query_flag_and_a_raw_body_upload(app, client, auditor_headers, catalogue):  # noqa: F811
    data = _csv(120)
    r = client.post(f"/api/v1/catalogues/{catalogue}/imports?async=true&filename=big.csv", data=data,
                    headers={**auditor_headers, "Content-Type": "text/csv"})
    assert r.status_code == 202, r.json
    wait_for_embedded_jobs(app)
    rep = client.get(r.headers["Location"], headers=auditor_headers).json
    assert rep["status"] == "done" and rep["filename"] == "big.csv" and rep["created"] == 120
    assert _count(app, Product) == 120
    listed = client.get(f"/api/v1/catalogues/{catalogue}/imports", headers=auditor_headers).json
    assert listed["items"][0]["id"] == rep["id"] and listed["items"][0]["status"] == "done"


@pytest.mark.parametrize("data,filename,field", [
    (b"name,bogus\nx,y\n", "bad.csv", "header"),
    (b"\xff\xfe\x00garbage", "bad.csv", "file"),
    (b"[{\"name\": ", "bad.json", "file"),
    (b"not a zip", "bad.xlsx", "file"),
])
def test_an_unreadable_file_is_422_at_once_and_makes_no_job(app, client, auditor_headers, catalogue,  # noqa: F811
                                                            data, filename, field):
    r = _post(client, auditor_headers, catalogue, data, filename, {"Prefer": "respond-async"})
    assert r.status_code == 422 and field in r.json["errors"], r.json
    assert _count(app, ImportReport) == 0 and _count(app, ImportUpload) == 0 and _count(app, ImportUploadPart) == 0


def test_bad_async_flag_is_422_naming_it(client, auditor_headers, catalogue):  # noqa: F811
    r = _post(client, auditor_headers, catalogue, _csv(1), "a.csv", **{"async": "maybe"})
    assert r.status_code == 422 and "async" in str(r.json["errors"]), r.json


def test_idempotency_key_on_async_and_synchronous_imports(app, client, auditor_headers, catalogue):  # noqa: F811
    data = _csv(30)
    prefer = {"Prefer": "respond-async"}
    first = _post(client, auditor_headers, catalogue, data, "a.csv", {**prefer, "Idempotency-Key": "imp-1"})
    again = _post(client, auditor_headers, catalogue, data, "a.csv", {**prefer, "Idempotency-Key": "imp-1"})
    assert first.status_code == again.status_code == 202
    assert again.json["id"] == first.json["id"] and again.headers["Location"] == first.headers["Location"]
    other = _post(client, auditor_headers, catalogue, _csv(31), "a.csv", {**prefer, "Idempotency-Key": "imp-1"})
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"], other.json
    bad = _post(client, auditor_headers, catalogue, data, "a.csv", {**prefer, "Idempotency-Key": " "})
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json["errors"]
    wait_for_embedded_jobs(app)
    assert _count(app, ImportReport) == 1 and _count(app, ImportUpload) == 0
    # synchronous with a key: the import runs in the request (201); a retry answers with it, imports nothing
    sync = _post(client, auditor_headers, catalogue, _csv(5, 100), "b.csv", {"Idempotency-Key": "imp-2"})
    assert sync.status_code == 201 and sync.json["status"] == "done" and sync.json["created"] == 5, sync.json
    retry = _post(client, auditor_headers, catalogue, _csv(5, 100), "b.csv", {"Idempotency-Key": "imp-2"})
    assert retry.status_code == 201 and retry.json["id"] == sync.json["id"]
    assert _count(app, ImportReport) == 2 and _count(app, Product) == 35


def test_progress_moves_while_the_import_runs(app, catalogue, monkeypatch):  # noqa: F811
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    monkeypatch.setattr(import_jobs, "JOB_BATCH_ROWS", 10)
    monkeypatch.setattr(import_jobs, "PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(import_jobs, "PART_BYTES", 256)  # several parts: progress counts bytes across them
    data = _csv(60)
    import_id = import_jobs.create_import(db, catalogue, io.BytesIO(data), "csv", "p.csv", enqueue=False)
    with db.session() as s:
        assert s.get(ImportReport, import_id).status == "pending"
        assert s.scalar(select(func.count()).select_from(ImportUploadPart)) == -(-len(data) // 256)
    seen = []
    real = import_jobs.load_file

    def watching(*args, progress, **kwargs):
        def spy(result):
            progress(result)
            with db.session() as s:
                rep = s.get(ImportReport, import_id)
                seen.append((rep.status, rep.rows_read, rep.bytes_read, rep.bytes_total))
        return real(*args, progress=spy, **kwargs)

    monkeypatch.setattr(import_jobs, "load_file", watching)
    with db.session() as s:
        (upload_id,) = import_jobs.jobs.undone_chunk_ids(s, import_jobs.IMPORT_JOB, import_id)
    out = import_jobs.run_import(db, store, import_id, upload_id)
    assert out["rows_read"] == 60 and out["finalized"] is True
    assert [s[0] for s in seen] == ["running"] * 6
    assert [s[1] for s in seen] == [10, 20, 30, 40, 50, 60]
    assert all(0 < b <= t == len(data) for _, _, b, t in seen)
    assert [s[2] for s in seen] == sorted(s[2] for s in seen)
    with db.session() as s:
        rep = s.get(ImportReport, import_id)
        assert (rep.status, rep.rows_read, rep.created, rep.bytes_read) == ("done", 60, 60, len(data))
        assert s.scalar(select(func.count()).select_from(ImportUpload)) == 0


def test_the_sweeper_sends_a_stalled_import_again(app, client, auditor_headers, catalogue):  # noqa: F811
    db = app.extensions["db"]
    data = _csv(40)
    import_id = import_jobs.create_import(db, catalogue, io.BytesIO(data), "csv", "s.csv", enqueue=False)
    with db.session() as s:  # a worker claimed it and died: its lease expired
        past = datetime.now(timezone.utc) - timedelta(minutes=5)
        s.execute(update(ImportUpload).values(status="running", lease_owner="dead:1:x", lease_expires_at=past,
                                              enqueued_at=past, attempts=1))
        s.execute(update(ImportReport).where(ImportReport.id == import_id).values(status="running"))
    out = app.extensions["celery"].tasks["compliance.sweep"].apply().result
    assert out["imports"] == {"finalized": 0, "enqueued_chunks": 1}
    wait_for_embedded_jobs(app)
    rep = client.get(f"/api/v1/imports/{import_id}", headers=auditor_headers).json
    assert rep["status"] == "done" and rep["created"] == 40, rep
    assert app.extensions["celery"].tasks["compliance.sweep"].apply().result["imports"] == {
        "finalized": 0, "enqueued_chunks": 0}


def test_an_import_that_fails_while_running_is_failed_with_its_error(app, client, auditor_headers, catalogue,  # noqa: F811
                                                                     monkeypatch):
    from compliance.engine.errors import InvalidInput

    def broken(*args, **kwargs):
        raise InvalidInput("the sheet went away", {"file": ["unreadable"]})

    monkeypatch.setattr(import_jobs, "load_file", broken)
    r = _post(client, auditor_headers, catalogue, _csv(3), "f.csv", {"Prefer": "respond-async"})
    assert r.status_code == 202
    wait_for_embedded_jobs(app)
    rep = client.get(r.headers["Location"], headers=auditor_headers).json
    assert rep["status"] == "failed" and "the sheet went away" in rep["error"], rep
    assert _count(app, ImportUpload) == 0 and _count(app, ImportUploadPart) == 0
    # any other error that fails the task for good (retries exhausted) fails the import the same way
    monkeypatch.undo()
    db = app.extensions["db"]
    import_id = import_jobs.create_import(db, catalogue, io.BytesIO(_csv(2)), "csv", "g.csv", enqueue=False)
    with db.session() as s:
        (upload_id,) = import_jobs.jobs.undone_chunk_ids(s, import_jobs.IMPORT_JOB, import_id)
    app.extensions["celery"].tasks["compliance.imports.run"].on_failure(
        ValueError("bug"), "task-id", [import_id, upload_id], {}, None)
    rep = client.get(f"/api/v1/imports/{import_id}", headers=auditor_headers).json
    assert rep["status"] == "failed" and rep["error"] == "ValueError: bug" and rep["finished_at"]
    assert _count(app, ImportUpload) == 0
