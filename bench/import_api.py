"""POST /catalogues/{id}/imports of an N-row CSV (bench/audit_pipeline.csv_bytes), embedded (SQLite, the in-process
jobs thread), through the Flask test client: the synchronous answer (201) against the job (Prefer:
respond-async: the 202, then polling GET /imports/{id} until done).

    PYTHONPATH=. .venv/bin/python bench/import_api.py --rows 60000

Prints, for each way, the seconds to the answer and to the report being done, and the job's overhead against
the synchronous import (the upload stored in the database and read back, progress writes).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=60_000)
    args = ap.parse_args()
    from bench.audit_pipeline import csv_bytes
    from compliance import create_app
    from compliance.auth import create_api_key
    from compliance.cli import upgrade_database
    from compliance.services.catalogues import create_catalogue
    from compliance.tasks import wait_for_embedded_jobs

    data = csv_bytes(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{os.path.join(tmp, 'bench.db')}"
        app = create_app({"DATABASE_URL": url, "CELERY_BROKER_URL": "", "SAMPLE_CATALOGUE": "", "LOG_LEVEL": "WARNING"})
        upgrade_database(app)
        db = app.extensions["db"]
        _, key = create_api_key(db, "bench", "auditor", actor="bench")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/csv"}
        client = app.test_client()
        for mode in ("sync", "async"):
            cat = create_catalogue(db, f"bench-{mode}")
            extra = {"Prefer": "respond-async"} if mode == "async" else {}
            t0 = time.perf_counter()
            r = client.post(f"/api/v1/catalogues/{cat.id}/imports?filename=b.csv", data=data,
                            headers={**headers, **extra})
            answered = time.perf_counter() - t0
            assert r.status_code == (202 if mode == "async" else 201), r.json
            polls = 0
            while r.json["status"] not in ("done", "failed"):
                time.sleep(0.5)  # a client polling twice a second (in this process: it shares the GIL)
                polls += 1
                r = client.get(f"/api/v1/imports/{r.json['id']}", headers=headers)
            done = time.perf_counter() - t0
            assert r.json["status"] == "done" and r.json["created"] == args.rows, r.json
            print(f"{mode:5s} {args.rows} rows: answer {r.status_code if mode == 'sync' else 202} in {answered:.2f} s, "
                  f"report done in {done:.2f} s ({polls} polls)")
        wait_for_embedded_jobs(app)


if __name__ == "__main__":
    main()
