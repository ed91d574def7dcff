"""Bulk screening of a party master file as a job, with its report (embedded jobs; SQLite and PostgreSQL)."""
from __future__ import annotations

import csv
import io

import pytest

from compliance.tasks import wait_for_embedded_jobs
from tests.api.conftest import error_text

PARTIES = ("name,country,address\n"
           "Huawei Technologies Co Ltd,CN,\n"
           "Blue Sky Foods,US,1 Main St\n"
           ",DE,\n"                                  # bad: no name
           "Zhongke Shuguang,,\n"
           "Acme,Narnia,\n"                          # bad: unknown country
           "=HYPERLINK(1),DE,\n")


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


def test_a_party_file_is_screened_as_a_job_with_a_report(app, client, headers_for):
    auditor, viewer = headers_for(app, "auditor"), headers_for(app, "viewer")
    assert client.post("/api/v1/screening/jobs?format=csv", data=PARTIES,
                       headers={**viewer, "Content-Type": "text/csv"}).status_code == 403
    r = client.post("/api/v1/screening/jobs", data={"file": (io.BytesIO(PARTIES.encode()), "customers.csv")},
                    headers=auditor, content_type="multipart/form-data")
    assert r.status_code == 202, r.get_json()
    job = r.get_json()
    assert job["total"] == 4 and job["rejected"] == 2
    assert {(e["row"], e["field"]) for e in job["errors"]} == {(3, "name"), (5, "country")}
    wait_for_embedded_jobs(app, timeout=120)
    done = client.get(f"/api/v1/screening/jobs/{job['id']}", headers=viewer).get_json()
    assert done["status"] == "done" and done["screened"] == 4 and done["hits"] == 2 and done["cleared"] == 0
    assert done["lists"][0]["list"] == "csl"
    report = client.get(f"/api/v1/screening/jobs/{job['id']}/report", headers=viewer).get_json()["parties"]
    assert [(p["row"], p["status"]) for p in report] == [(1, "hit"), (2, "clear"), (4, "hit"), (6, "clear")]
    assert report[0]["hits"][0]["federal_register_notice"] == "84 FR 22961"
    r = client.get(f"/api/v1/screening/jobs/{job['id']}/report?format=csv&only_hits=true", headers=viewer)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert {row["name"] for row in rows} == {"Huawei Technologies Co Ltd", "Zhongke Shuguang"}
    assert all(row["entry_name"] and float(row["score"]) >= 88 for row in rows)
    full = client.get(f"/api/v1/screening/jobs/{job['id']}/report?format=csv", headers=viewer).get_data(as_text=True)
    assert "'=HYPERLINK(1)" in full  # formula cells neutralised
    assert client.get("/api/v1/screening/jobs/999999", headers=viewer).status_code == 404


@pytest.mark.parametrize("data, qs, field", [
    (b"\xff\xfe", "format=csv", "file"),
    (b"country\nCN\n", "format=csv", "file"),
    (b"{bad", "format=json", "file"),
    (b"name\nx\n", "", "format"),
])
def test_unreadable_party_files_are_422(client, app, headers_for, data, qs, field):
    r = client.post(f"/api/v1/screening/jobs?{qs}", data=data,
                    headers={**headers_for(app, "auditor"), "Content-Type": "application/octet-stream"})
    assert r.status_code == 422 and field in error_text(r), r.get_json()
