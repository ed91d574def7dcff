"""Benchmark: impact preview over 100k products, then re-evaluation of 1M products after a one-rule
change, on PostgreSQL with a real Celery worker (2 prefork processes) on Redis, printed beside its floors.

    .venv/bin/python bench/reevaluation.py --redis-db N [--products 1000000] [--preview-products 100000]
        [--concurrency 2] [--chunk-size 50000] [--pg-admin-url URL] [--redis-url URL]

PostgreSQL: --pg-admin-url (default TEST_PG_ADMIN_URL, else postgresql://postgres@127.0.0.1:5432/test); the
benchmark creates and drops its own database there. Redis: --redis-url (default TEST_REDIS_URL, else
redis://127.0.0.1:6379) and --redis-db (default BENCH_REDIS_DB): a database number of your choosing, not 0;
only this benchmark's queue keys are deleted from it, nothing is flushed.

Setup (not timed): synthetic products are COPYed with precomputed metric columns and the standing an import
stores (ECCN and status under the version in force, computed by the engine), as imported catalogues have.

Printed beside the run (same rows, one process, after the worker stopped):
* engine only: the two evaluations (old and new revision, cold model-family caches) and their comparison;
* COPY/UPDATE floor: a plain COPY out of the columns a chunk reads, a plain COPY of the run's change
  records into a table shaped and indexed like change_records, and a plain UPDATE of the products whose
  standing changed;
* the 1-minute load average before and after the run.
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

DESTINATIONS = ["CN", "MO", "RU", "AE", "DE"]
# The one-rule change: the January 2026 China review policy's TPP cap 21000 -> 25000 (a change that
# keeps every pack test passing); controlled products with 21000 <= TPP < 25000 and DRAM < 6500 GB/s
# move from presumption of denial to case-by-case for CN and MO.
CHANGE = [{"op": "set_threshold", "rule_id": "us-2026-01.policy.china-case-by-case", "path": "when.all[3]",
           "value": 25000}]
QUEUES = ("reevaluation", "webhooks", "celery")
PG_ADMIN_URL = ""  # set by main() from --pg-admin-url


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


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def standing(rulebook, columns: dict[str, np.ndarray], keys: np.ndarray, day: date):
    """(eccn, status) labels of synthetic ICs under `rulebook` on `day`: what an import stores."""
    from compliance.engine import ProductTable, evaluate
    from compliance.engine.codes import ECCN_LABELS, STATUS_LABELS

    n = len(keys)
    table = ProductTable.from_columns(
        {"tpp": columns["tpp"], "performance_density": columns["performance_density"],
         "performance_density__na": np.zeros(n, dtype=bool), "io_bandwidth": columns["io_bandwidth"],
         "memory_bandwidth_density": np.full(n, np.nan), "dram_bandwidth": columns["dram_bandwidth"],
         "transistors": np.full(n, np.nan), "datacenter": columns["datacenter"].astype(np.float64)},
        kind=np.full(n, "ic", dtype=object), model=keys)
    ev = evaluate(table, rulebook, day, [])
    return ECCN_LABELS[ev.eccn[ev.table.top]], STATUS_LABELS[ev.status[ev.table.top]]


def copy_products(url: str, catalogue_id: int, start: int, n: int, seed: int, rulebook, revision: str) -> float:
    """COPY n synthetic products (metric columns and standing precomputed) into the catalogue; returns seconds."""
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
    # Every product has its own model name: the worst case for model-family resolution.
    keys = np.array([f"bench/chip {start + i}|bench/fam{fam[i]}" for i in range(n)], dtype=object)
    today = date.today()
    eccn, status = standing(rulebook, {"tpp": tpp, "performance_density": pd_, "io_bandwidth": io_bw,
                                                 "dram_bandwidth": dram, "datacenter": dc}, keys, today)
    cols = ("catalogue_id", "sku", "name", "vendor", "family", "kind", "spec", "tpp", "tpp_source",
            "performance_density", "pd_na", "io_bandwidth", "dram_bandwidth", "datacenter", "model_key",
            "has_components", "eccn", "status", "classified_revision", "classified_on", "created_at", "updated_at")
    with psycopg.connect(_dsn(url)) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY products ({', '.join(cols)}) FROM STDIN") as cp:
            buf = io.StringIO()
            for i in range(n):
                k = start + i
                e = "\\N" if eccn[i] is None else eccn[i]
                buf.write(f"{catalogue_id}\tSKU-{k}\tChip {k}\tBench\tfam{fam[i]}\tic\t{{}}\t{tpp[i]}\tdeclared\t"
                          f"{pd_[i]}\tf\t{io_bw[i]}\t{dram[i]}\t{'t' if dc[i] else 'f'}\t{keys[i]}\tf\t"
                          f"{e}\t{status[i]}\t{revision}\t{today.isoformat()}\tnow()\tnow()\n")
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
         f"--concurrency={concurrency}", "-Q", ",".join(QUEUES), "-n", f"bench-{os.getpid()}@host",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    return proc


def read_columns() -> list[str]:
    """The columns a re-evaluation chunk reads of a plain product (product_columns.load_chunk)."""
    from compliance.services.product_columns import PLAIN_COLUMNS

    return [c.name for c in PLAIN_COLUMNS]


def read_floor(url: str, catalogue_id: int) -> float:
    """A plain COPY out of the columns every chunk reads, for the whole catalogue."""
    import psycopg

    with psycopg.connect(_dsn(url)) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        with cur.copy(f"COPY (SELECT {', '.join(read_columns())} FROM products WHERE catalogue_id = {int(catalogue_id)} "
                      "ORDER BY id) TO STDOUT") as cp:
            for _ in cp:
                pass
        return time.perf_counter() - t0


def write_floor(url: str, run_id: int) -> tuple[float, float, int, int]:
    """(COPY seconds, UPDATE seconds, records, products): a plain COPY of the run's change records into a
    table shaped and indexed like change_records, and a plain UPDATE of the products whose standing changed
    (rolled back)."""
    import psycopg

    with psycopg.connect(_dsn(url)) as conn, conn.cursor() as cur:
        cols = [r[0] for r in cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'change_records' "
            "AND column_name <> 'id' ORDER BY ordinal_position").fetchall()]
        data = bytearray()
        with cur.copy(f"COPY (SELECT {', '.join(cols)} FROM change_records WHERE run_id = {int(run_id)}) "
                      "TO STDOUT") as cp:
            for block in cp:
                data += block
        records = cur.execute("SELECT count(*) FROM change_records WHERE run_id = %s", (run_id,)).fetchone()[0]
        ids = [r[0] for r in cur.execute(
            "SELECT DISTINCT product_id FROM change_records WHERE run_id = %s AND (old_eccn IS DISTINCT FROM "
            "new_eccn OR old_status IS DISTINCT FROM new_status)", (run_id,)).fetchall()]
        cur.execute("CREATE TABLE floor_change_records (LIKE change_records INCLUDING ALL)")
        conn.commit()
        t0 = time.perf_counter()
        with cur.copy(f"COPY floor_change_records ({', '.join(cols)}) FROM STDIN") as cp:
            cp.write(bytes(data))
        conn.commit()
        t_copy = time.perf_counter() - t0
        t0 = time.perf_counter()
        cur.execute("UPDATE products SET eccn = eccn, status = status, classified_revision = classified_revision, "
                    "classified_on = classified_on, updated_at = now() WHERE id = ANY(%s)", (ids,))
        t_update = time.perf_counter() - t0
        conn.rollback()
        cur.execute("DROP TABLE floor_change_records")
        conn.commit()
    return t_copy, t_update, records, len(ids)


def engine_only(db, catalogue_id: int, ranges: list[tuple[int, int]], old_content: dict, new_content: dict,
                as_of: date) -> float:
    """Seconds of the two evaluations and their comparison over the same chunks, cold model-family caches."""
    from compliance.engine import Rulebook, evaluate
    from compliance.services.product_columns import load_chunk
    from compliance.services.reevaluation import compare

    old_rb, new_rb = Rulebook(old_content), Rulebook(new_content)  # fresh: nothing resolved yet
    total = 0.0
    for lo, hi in ranges:
        with db.session() as s:
            parts = load_chunk(s, catalogue_id, lo, hi)
        t0 = time.perf_counter()
        for part in parts:
            compare(evaluate(part.table, old_rb, as_of, DESTINATIONS), evaluate(part.table, new_rb, as_of, DESTINATIONS))
        total += time.perf_counter() - t0
    return total


def _load() -> str:
    return "{:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def main() -> None:
    global PG_ADMIN_URL
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--products", type=int, default=1_000_000)
    ap.add_argument("--preview-products", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=50_000)
    ap.add_argument("--pg-admin-url", default=os.environ.get("TEST_PG_ADMIN_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379"))
    ap.add_argument("--redis-db", type=int, default=os.environ.get("BENCH_REDIS_DB"),
                    help="a Redis database number of your own (not 0); default BENCH_REDIS_DB")
    args = ap.parse_args()
    if args.redis_db is None or not 0 < int(args.redis_db) < 16:
        ap.error("choose a Redis database of your own with --redis-db N (1-15; not 0) or BENCH_REDIS_DB")
    PG_ADMIN_URL = args.pg_admin_url
    redis_url = f"{args.redis_url.rstrip('/')}/{int(args.redis_db)}"

    import redis

    broker = redis.Redis.from_url(redis_url)
    broker.delete(*QUEUES)  # leftovers of an aborted run of this benchmark, in the database it was given
    url = create_database()
    settings = {"DATABASE_URL": url, "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url,
                "SAMPLE_CATALOGUE": "", "AUDIT_CHUNK_SIZE": str(args.chunk_size), "LOG_LEVEL": "WARNING"}
    os.environ.update(settings)
    worker = None
    app = None
    try:
        from sqlalchemy import select

        from compliance import create_app
        from compliance.cli import upgrade_database
        from compliance.models import ReevaluationChunk, ReevaluationRun, RuleVersion
        from compliance.services import rule_drafts, rule_publish, rule_versions
        from compliance.services.catalogues import create_catalogue

        app = create_app(settings)
        upgrade_database(app)  # create_app neither migrates nor seeds
        db = app.extensions["db"]
        store = app.extensions["rulebooks"]
        cat = create_catalogue(db, "bench", destinations=DESTINATIONS)
        with db.session() as s:
            v1 = rule_versions.current_version(s)
            s.expunge(v1)
        print(f"database {url.rsplit('/', 1)[1]}; redis db {args.redis_db}; destinations {DESTINATIONS}")

        # --- impact preview over preview_products
        secs = copy_products(url, cat.id, 0, args.preview_products, 1, store.rulebook_for(v1), v1.revision)
        print(f"setup: COPY {args.preview_products:,} products in {secs:.1f}s")
        draft = rule_drafts.create_draft(db, "bench")
        rule_drafts.apply_edits(db, draft["id"], CHANGE, "bench")
        rule_publish.preview_draft(app, draft["id"], date.today(), item_limit=0)  # warm-up (imports, caches)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            prev = rule_publish.preview_draft(app, draft["id"], date.today(), item_limit=1000)
            times.append(time.perf_counter() - t0)
        print(f"impact preview, {prev['total_products']:,} products x {len(DESTINATIONS)} destinations: "
              f"best {min(times):.2f}s, median {sorted(times)[1]:.2f}s "
              f"({prev['total_products'] / min(times):,.0f} products/s); would change {prev['changed_products']:,} "
              f"products, {prev['changed_rows']:,} rows")

        # --- re-evaluation of all products
        rest = args.products - args.preview_products
        if rest > 0:
            secs = copy_products(url, cat.id, args.preview_products, rest, 2, store.rulebook_for(v1), v1.revision)
            print(f"setup: COPY {rest:,} more products in {secs:.1f}s (total {args.products:,})")
        env = dict(os.environ, **settings, PYTHONPATH=str(ROOT))
        log_path = Path("/tmp") / f"bench-worker-{os.getpid()}.log"
        worker = start_worker(env, args.concurrency, log_path)
        celery = app.extensions["celery"]
        deadline = time.monotonic() + 60
        while not celery.control.ping(destination=[f"bench-{os.getpid()}@host"], timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"worker did not start:\n{log_path.read_text()[-2000:]}")
        load_before = _load()
        t0 = time.perf_counter()
        pub = rule_publish.publish_draft(app, draft["id"], "bench", "benchmark: China review policy TPP cap 21000 -> 25000", confirm=True)
        t_pub = time.perf_counter() - t0
        while True:
            with db.session() as s:
                status = s.get(ReevaluationRun, pub["run_id"]).status
            if status in ("done", "failed"):
                break
            if worker.poll() is not None:
                raise SystemExit(f"worker died:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        total = time.perf_counter() - t0
        load_after = _load()
        os.killpg(worker.pid, 15)
        worker.wait(30)
        worker = None
        with db.session() as s:
            run = s.get(ReevaluationRun, pub["run_id"])
            chunks = s.scalars(select(ReevaluationChunk).where(ReevaluationChunk.run_id == run.id)
                               .order_by(ReevaluationChunk.seq)).all()
            chunk_secs = sorted(c.counts.get("seconds", 0) for c in chunks)
            phases = {k: float(np.median([c.counts[k] for c in chunks])) for k in ("load_seconds", "evaluate_seconds")
                      if all(k in c.counts for c in chunks)}  # the compute step's parts (before the write)
            updated = sum(int(c.counts.get("updated_products", 0)) for c in chunks) if all(
                "updated_products" in c.counts for c in chunks) else None
            ranges = [(c.lo_id, c.hi_id) for c in chunks]
            old_content = s.get(RuleVersion, run.from_version_id).content
            new_content = s.get(RuleVersion, run.to_version_id).content
            as_of = run.as_of
            print(f"re-evaluation run {run.id}: status {run.status}, {run.total:,} products, "
                  f"{run.changed_products:,} changed products, {run.change_records:,} change records"
                  + ("" if updated is None else f", {updated:,} products' standing updated"))
            run_total, run_id = run.total, run.id
            # the run's timeline, from the rows' own timestamps (seconds after the run was created)
            t_created = run.created_at
            spans = sorted(((c.started_at - t_created).total_seconds(), (c.finished_at - t_created).total_seconds())
                           for c in chunks if c.started_at and c.finished_at)
            timeline = (f"timeline (s after the run row was created): run started {(run.started_at - t_created).total_seconds():.2f}"
                        if run.started_at else "timeline (s after the run row was created):")
            if spans:
                walls = sorted(b - a for a, b in spans)
                timeline += (f"; first chunk started {spans[0][0]:.2f}; last chunk finished {max(b for _, b in spans):.2f}; "
                             f"chunk wall (claim -> finished) min {walls[0]:.2f} median {walls[len(walls) // 2]:.2f} "
                             f"max {walls[-1]:.2f}")
            if run.finished_at:
                timeline += f"; run finished {(run.finished_at - t_created).total_seconds():.2f}"
        print(f"publish call {t_pub:.2f}s; publish -> run done {total:.1f}s with {args.concurrency} worker processes "
              f"= {run_total / total:,.0f} products/s; load average (1, 5, 15 min) {load_before} before, "
              f"{load_after} after")
        print(f"chunks: {len(chunks)} x {args.chunk_size:,}; chunk seconds min {chunk_secs[0]:.2f} "
              f"median {chunk_secs[len(chunk_secs) // 2]:.2f} max {chunk_secs[-1]:.2f}"
              + "".join(f"; median {k} {phases[k]:.2f}" for k in sorted(phases)))
        print(timeline)

        # --- comparators over the same rows, one process, worker stopped
        t_engine = engine_only(db, cat.id, ranges, old_content, new_content, as_of)
        t_read = read_floor(url, cat.id)
        t_copy, t_update, n_records, n_updated = write_floor(url, run_id)
        floor = t_read + t_engine + t_copy + t_update
        ideal = floor / args.concurrency
        print(f"engine only (two evaluations + comparison, one process): {t_engine:.2f}s "
              f"= {t_engine / args.concurrency:.2f}s on {args.concurrency} workers")
        print(f"COPY/UPDATE floor (one process): COPY out {len(read_columns())} columns of {run_total:,} products "
              f"{t_read:.2f}s; COPY {n_records:,} change records {t_copy:.2f}s; UPDATE {n_updated:,} products "
              f"{t_update:.2f}s")
        print(f"floor = read + engine + write = {floor:.2f}s in one process = {ideal:.2f}s on {args.concurrency} "
              f"workers; the run took {total / ideal:.1f}x that (load average {_load()} after the comparators)")
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, 15)
            worker.wait(30)
        if app is not None:
            app.extensions["db"].dispose()
        drop_database(url)
        broker.delete(*QUEUES)


if __name__ == "__main__":
    main()
