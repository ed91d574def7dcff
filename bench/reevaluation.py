"""Benchmark: impact preview over 100k products, then re-evaluation of 1M products after a one-rule
change, on PostgreSQL with a real Celery worker (2 prefork processes) on Redis.

    .venv/bin/python bench/reevaluation.py [--products 1000000] [--preview-products 100000] [--concurrency 2]

Needs PostgreSQL (TEST_PG_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/test) and Redis
(TEST_REDIS_URL, default redis://127.0.0.1:6379). Creates and drops its own database. Products are
inserted with COPY from precomputed metric columns (setup only, not timed).
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Redis database 0 by default: the test suite uses 1-15 (one per checkout), so a benchmark never
# touches a test run's queues. Override with BENCH_REDIS_DB.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/" + os.environ.get("BENCH_REDIS_DB", "0")
DESTINATIONS = ["CN", "MO", "RU", "AE", "DE"]
# The one-rule change: the January 2026 China review policy's TPP cap 21000 -> 25000 (a change that
# keeps every pack test passing); controlled products with 21000 <= TPP < 25000 and DRAM < 6500 GB/s
# move from presumption of denial to case-by-case for CN and MO.
CHANGE = [{"op": "set_threshold", "rule_id": "us-2026-01.policy.china-case-by-case", "path": "when.all[3]",
           "value": 25000}]


def create_database() -> str:
    import psycopg

    name = f"cc_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name


def drop_database(url: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def copy_products(url: str, catalogue_id: int, start: int, n: int, seed: int) -> float:
    """COPY n synthetic products (metric columns precomputed) into the catalogue; returns seconds."""
    import psycopg

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    tpp = rng.uniform(100, 30000, n).round(1)
    area = rng.uniform(100, 900, n).round(1)
    pd_ = (tpp / area).round(4)
    dc = rng.random(n) < 0.6
    io_bw = rng.uniform(50, 1000, n).round(1)
    dram = rng.uniform(500, 8000, n).round(1)
    fam = rng.integers(0, 500, n)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    cols = ("catalogue_id", "sku", "name", "vendor", "family", "kind", "spec", "tpp", "tpp_source",
            "performance_density", "pd_na", "io_bandwidth", "dram_bandwidth", "datacenter", "model_key",
            "has_components", "created_at", "updated_at")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY products ({', '.join(cols)}) FROM STDIN") as cp:
            buf = io.StringIO()
            for i in range(n):
                k = start + i
                buf.write(f"{catalogue_id}\tSKU-{k}\tChip {k}\tBench\tfam{fam[i]}\tic\t{{}}\t{tpp[i]}\tdeclared\t"
                          f"{pd_[i]}\tf\t{io_bw[i]}\t{dram[i]}\t{'t' if dc[i] else 'f'}\t"
                          f"bench/chip {k}|bench/fam{fam[i]}\tf\tnow()\tnow()\n")
                if i % 50000 == 49999:
                    cp.write(buf.getvalue())
                    buf = io.StringIO()
            cp.write(buf.getvalue())
        conn.commit()
        cur.execute("ANALYZE products")
        conn.commit()
    return time.perf_counter() - t0


def start_worker(env: dict, concurrency: int, log_path: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=WARNING", "-P", "prefork",
         f"--concurrency={concurrency}", "-Q", "reevaluation,webhooks,celery", "-n", f"bench-{os.getpid()}@host",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--products", type=int, default=1_000_000)
    ap.add_argument("--preview-products", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=50_000)
    args = ap.parse_args()

    import redis

    redis.Redis.from_url(REDIS_URL).delete("reevaluation", "webhooks", "celery")  # leftovers of an aborted run
    url = create_database()
    settings = {"DATABASE_URL": url, "CELERY_BROKER_URL": REDIS_URL, "CELERY_RESULT_BACKEND": REDIS_URL,
                "SAMPLE_CATALOGUE": "", "AUDIT_CHUNK_SIZE": str(args.chunk_size), "LOG_LEVEL": "WARNING"}
    os.environ.update(settings)
    worker = None
    try:
        from sqlalchemy import select

        from compliance import create_app
        from compliance.cli import upgrade_database
        from compliance.models import ReevaluationChunk, ReevaluationRun
        from compliance.services import rule_versions as rv
        from compliance.services.catalogues import create_catalogue

        app = create_app(settings)
        upgrade_database(app)  # create_app neither migrates nor seeds
        db = app.extensions["db"]
        cat = create_catalogue(db, "bench", destinations=DESTINATIONS)
        print(f"database {url.rsplit('/', 1)[1]}; destinations {DESTINATIONS}")

        # --- impact preview over preview_products
        secs = copy_products(url, cat.id, 0, args.preview_products, seed=1)
        print(f"setup: COPY {args.preview_products:,} products in {secs:.1f}s")
        draft = rv.create_draft(db, "bench")
        rv.apply_edits(db, draft["id"], CHANGE, "bench")
        rv.preview_draft(app, draft["id"], date.today(), item_limit=0)  # warm-up (imports, caches)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            prev = rv.preview_draft(app, draft["id"], date.today(), item_limit=1000)
            times.append(time.perf_counter() - t0)
        print(f"impact preview, {prev['total_products']:,} products x {len(DESTINATIONS)} destinations: "
              f"best {min(times):.2f}s, median {sorted(times)[1]:.2f}s "
              f"({prev['total_products'] / min(times):,.0f} products/s); would change {prev['changed_products']:,} "
              f"products, {prev['changed_rows']:,} rows")

        # --- re-evaluation of all products
        rest = args.products - args.preview_products
        if rest > 0:
            secs = copy_products(url, cat.id, args.preview_products, rest, seed=2)
            print(f"setup: COPY {rest:,} more products in {secs:.1f}s (total {args.products:,})")
        env = dict(os.environ, **settings, PYTHONPATH=str(ROOT))
        log_path = Path("/tmp") / f"bench-worker-{os.getpid()}.log"
        worker = start_worker(env, args.concurrency, log_path)
        celery = app.extensions["celery"]
        deadline = time.monotonic() + 60
        while not celery.control.ping(destination=[f"bench-{os.getpid()}@host"], timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"worker did not start:\n{log_path.read_text()[-2000:]}")
        t0 = time.perf_counter()
        pub = rv.publish_draft(app, draft["id"], "bench", "benchmark: China review policy TPP cap 21000 -> 25000", confirm=True)
        t_pub = time.perf_counter() - t0
        while True:
            with db.session() as s:
                run = s.get(ReevaluationRun, pub["run_id"])
                status = run.status
            if status in ("done", "failed"):
                break
            if worker.poll() is not None:
                raise SystemExit(f"worker died:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        total = time.perf_counter() - t0
        with db.session() as s:
            run = s.get(ReevaluationRun, pub["run_id"])
            chunks = s.scalars(select(ReevaluationChunk).where(ReevaluationChunk.run_id == run.id)).all()
            chunk_secs = sorted(c.counts.get("seconds", 0) for c in chunks)
            print(f"re-evaluation run {run.id}: status {run.status}, {run.total:,} products, "
                  f"{run.changed_products:,} changed products, {run.change_records:,} change records")
        print(f"publish call {t_pub:.2f}s; publish -> run done {total:.1f}s with {args.concurrency} worker processes "
              f"= {run.total / total:,.0f} products/s")
        print(f"chunks: {len(chunks)} x {args.chunk_size:,}; chunk seconds min {chunk_secs[0]:.2f} "
              f"median {chunk_secs[len(chunk_secs) // 2]:.2f} max {chunk_secs[-1]:.2f}")
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, 15)
            worker.wait(30)
        try:
            app.extensions["db"].dispose()
        except Exception:
            pass
        drop_database(url)


if __name__ == "__main__":
    main()
