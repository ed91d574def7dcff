"""The console's upload is an import job (issue 13): a small file's report is shown at once; while an import
runs, the catalogue page shows its progress panel (polled by console.js, or a reload) until the report."""
from __future__ import annotations

import io

from compliance.services import import_jobs
from compliance.services.catalogues import create_catalogue
from compliance.tasks import wait_for_embedded_jobs
from tests.console.conftest import csrf_of

CSV = b"sku,name,vendor,datacenter,throughput\nA1,Chip A,Acme,true,fp8:100\nB2,Chip B,Acme,maybe,fp8:10\n"


def test_an_upload_runs_as_a_job_and_the_page_shows_its_report(app, signed_in):
    cat = create_catalogue(app.extensions["db"], "console-jobs")
    auditor = signed_in("auditor")
    token = csrf_of(auditor.get(f"/catalogues/{cat.id}"))
    r = auditor.post(f"/catalogues/{cat.id}/upload", data={"csrf_token": token, "file": (io.BytesIO(CSV), "c.csv")},
                     content_type="multipart/form-data")
    assert r.status_code == 302 and "report=" in r.headers["Location"]
    wait_for_embedded_jobs(app)
    page = auditor.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="import-report"' in page and "2 rows read" in page and "1 imported (1 new" in page and "must be true or false" in page
    assert "data-poll" not in page.split('id="upload"')[1].split("</section>")[0]


def test_a_running_import_shows_its_progress_until_done(app, signed_in):
    db = app.extensions["db"]
    cat = create_catalogue(db, "console-progress")
    import_id = import_jobs.create_import(db, cat.id, io.BytesIO(CSV), "csv", "queued.csv", enqueue=False)
    viewer = signed_in("auditor")
    page = viewer.get(f"/catalogues/{cat.id}?report={import_id}").get_data(as_text=True)
    assert f'data-poll="/imports/{import_id}/progress"' in page and 'data-busy="yes"' in page
    assert "queued.csv" in page and "pending" in page and 'id="import-report"' not in page
    panel = viewer.get(f"/imports/{import_id}/progress").get_data(as_text=True)
    assert 'data-status="pending"' in panel and f"of {len(CSV):,} bytes" in panel
    import_jobs.start_import(db, import_id)
    wait_for_embedded_jobs(app)
    panel = viewer.get(f"/imports/{import_id}/progress").get_data(as_text=True)
    assert 'data-busy="no"' in panel and 'data-done="yes"' in panel and "2 rows read" in panel
    page = viewer.get(f"/catalogues/{cat.id}?report={import_id}").get_data(as_text=True)
    assert 'id="import-report"' in page and "2 rows read" in page and "1 imported (1 new" in page
