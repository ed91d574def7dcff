"""Benchmark (not a test): the web console's pages with 100,000 products in a catalogue.

    flock /work/team/bench.lock .venv/bin/python bench/console_pages.py [--products 100000] [--repeat 7] [--pg]

Builds an app (SQLite in a temp dir, or a fresh PostgreSQL database t_console_bench_<random> with --pg),
imports N synthetic products (bench/classify_api.py's generator) into one catalogue, runs one audit over
CN, AE and DE, then times each page through the WSGI app as a signed-in admin (Flask test client: no
network), p50 and max over --repeat requests after one warm-up. Comparator: GET /api/v1/catalogues/{id}/products
(the API's own page of the same products), so the ratio says what the console adds over the API. The load
average is printed beside every figure.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.classify_api import synthetic_products  # noqa: E402

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


def timed(client, path: str, repeat: int, **kwargs) -> tuple[float, float, int]:
    client.get(path, **kwargs)  # warm-up (rulebook cache, templates)
    times = []
    status = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path, **kwargs)
        body = response.get_data()
        times.append((time.perf_counter() - t0) * 1000)
        status = response.status_code
        assert body
    return statistics.median(times), max(times), status


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = ap.parse_args()

    import json

    from compliance import create_app
    from compliance.auth import create_api_key
    from compliance.cli import upgrade_database
    from compliance.services.audits import create_audit, run_chunk
    from compliance.services.catalogues import create_catalogue
    from compliance.services.imports import import_path

    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    pg_name = None
    if args.pg:
        import psycopg

        pg_name = f"t_console_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + pg_name
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    try:
        app = create_app({"DATABASE_URL": url, "CELERY_BROKER_URL": "", "SAMPLE_CATALOGUE": "", "LOG_LEVEL": "WARNING"})
        upgrade_database(app)  # create_app neither migrates nor seeds
        db, store = app.extensions["db"], app.extensions["rulebooks"]
        _, rulebook = store.current()
        cat = create_catalogue(db, "Bench", "", ["CN", "AE", "DE"], rulebook=rulebook)
        path = tmp / "products.jsonl"
        with path.open("w") as f:
            for p in synthetic_products(args.products):
                f.write(json.dumps(p) + "\n")
        t0 = time.perf_counter()
        result = import_path(db, store, cat.id, str(path), "jsonl")
        print(f"imported {result.imported:,} products in {time.perf_counter() - t0:.1f} s")
        audit = create_audit(db, store, cat.id, __import__("datetime").date(2026, 6, 1), ["CN", "AE", "DE"], None,
                             "bench", 50_000, enqueue=False)
        from sqlalchemy import select

        from compliance.models import AuditChunk
        with db.session() as s:
            chunk_ids = list(s.scalars(select(AuditChunk.id).where(AuditChunk.audit_id == audit.id)))
        for cid in chunk_ids:
            run_chunk(db, store, audit.id, cid)  # the last one finalizes the audit
        _, key = create_api_key(db, "bench", "admin")
        client = app.test_client()
        page = client.get("/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
        assert client.post("/sign-in", data={"api_key": key, "csrf_token": token}).status_code == 302
        sku = "SYN-00000042"
        pages = [
            ("dashboard", "/"),
            ("catalogues", "/catalogues"),
            ("catalogue (chart + first page)", f"/catalogues/{cat.id}"),
            ("catalogue sorted by -tpp", f"/catalogues/{cat.id}?sort=-tpp"),
            ("catalogue filtered q=SYN-0009", f"/catalogues/{cat.id}?q=SYN-0009"),
            ("catalogue page 1000", f"/catalogues/{cat.id}?page=1000"),
            ("product (timeline)", f"/catalogues/{cat.id}/products/{sku}"),
            ("audit (done) + results", f"/audits/{audit.id}"),
            ("changes", "/changes"),
            ("rules", "/rules"),
        ]
        api = timed(client, f"/api/v1/catalogues/{cat.id}/products?per_page=50",
                    args.repeat, headers={"Authorization": f"Bearer {key}"})
        load = os.getloadavg()[0]
        print(f"\n{args.products:,} products, {'PostgreSQL' if args.pg else 'SQLite'}; p50/max of {args.repeat} "
              f"requests; comparator: API products page p50 {api[0]:.1f} ms")
        print(f"{'page':36} {'p50 ms':>8} {'max ms':>8} {'x API':>6} {'load1':>6}")
        for name, path_ in pages:
            p50, worst, status = timed(client, path_, args.repeat)
            assert status == 200, (path_, status)
            print(f"{name:36} {p50:8.1f} {worst:8.1f} {p50 / api[0]:6.1f} {os.getloadavg()[0]:6.2f}")
        print(f"{'API /catalogues/{id}/products (cmp)':36} {api[0]:8.1f} {api[1]:8.1f} {1.0:6.1f} {load:6.2f}")
        db.dispose()
    finally:
        if pg_name:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
