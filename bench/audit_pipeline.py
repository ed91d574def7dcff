"""Synthetic AI-chip catalogues (deterministic by seed) for tests and benchmarks, written as CSV rows
in the import layout of compliance.services.imports."""
from __future__ import annotations

import csv
import io
import random
from typing import IO, Iterator

HEADER = ("sku", "name", "vendor", "family", "kind", "datacenter", "throughput", "die_area_mm2",
          "io_bandwidth_gb_per_s", "memory_bandwidth_gb_per_s", "package_area_mm2")
VENDORS = ("NVIDIA", "AMD", "Intel", "Acme", "Globex")
FAMILIES = ("H100", "H20", "MI308", "A800", "X1", "X2", "")


def synthetic_rows(n: int, seed: int = 7, prefix: str = "SYN") -> Iterator[tuple]:
    """n CSV rows: ICs across the 3A090 thresholds, some missing inputs, some HBM stacks."""
    rnd = random.Random(seed)
    for i in range(n):
        vendor = VENDORS[i % len(VENDORS)]
        r = rnd.random()
        if r < 0.05:  # HBM stack
            yield (f"{prefix}-{i:08d}", f"HBM {i}", vendor, "", "hbm", "", "", "", "",
                   round(rnd.uniform(200, 1400), 1), round(rnd.uniform(90, 400), 1))
            continue
        fmt, bits = rnd.choice((("fp8", 8), ("fp16", 16), ("int8", 8), ("fp4", 4)))
        tpp_target = rnd.lognormvariate(8.0, 1.0)  # median ~3000, spans the 1600/2400/4800 boundaries
        tops = round(tpp_target / bits, 2)
        die = "" if r < 0.10 else round(rnd.uniform(200, 900), 1)  # missing die area -> some indeterminate
        dc = "" if 0.10 <= r < 0.13 else rnd.choice(("true", "false"))
        io_bw = "" if r > 0.9 else round(rnd.uniform(32, 1800), 1)
        mem = round(rnd.uniform(300, 8000), 1)
        family = FAMILIES[i % len(FAMILIES)]
        yield (f"{prefix}-{i:08d}", f"Chip {i}", vendor, family, "ic", dc, f"{fmt}:{tops}", die, io_bw, mem, "")


def write_csv(out: IO[str], n: int, seed: int = 7, prefix: str = "SYN") -> None:
    w = csv.writer(out)
    w.writerow(HEADER)
    for row in synthetic_rows(n, seed, prefix):
        w.writerow(row)


def csv_bytes(n: int, seed: int = 7, prefix: str = "SYN") -> bytes:
    buf = io.StringIO()
    write_csv(buf, n, seed, prefix)
    return buf.getvalue().encode()


# ---------------------------------------------------------------- the benchmark
"""Benchmark (not a test): import a synthetic catalogue from CSV into PostgreSQL, then audit it for
5 destinations on a real Celery worker (prefork, concurrency 2) over Redis; print time per stage,
products/s, the worker's peak RSS, and each stage beside its floor (issue 8).

    .venv/bin/python bench/audit_pipeline.py --redis-db N [--sizes 100000,1000000]

PostgreSQL: --pg-admin-url (default TEST_PG_ADMIN_URL, else postgresql://postgres@127.0.0.1:5432/test); the
benchmark creates and drops its own database there. Redis: --redis-url (default TEST_REDIS_URL, else
redis://127.0.0.1:6379) and --redis-db (default BENCH_REDIS_DB): a database number of your own, not 0;
only this benchmark's queue keys are deleted from it, nothing is flushed.

Floors, measured in the same run over the same rows, in one process after the worker stopped:
* import floor: a plain COPY of the imported rows (read back from `products` with COPY TO: the column
  values the import writes) into a fresh table `LIKE products INCLUDING ALL` (same columns, defaults,
  constraints and indexes; no foreign keys), in one transaction;
* audit floor: the engine alone over the audit's chunks (evaluate() for the audit's destinations, as-of,
  headquarters and transaction type with a fresh copy of the pinned rulebook, plus the outcome codes and the
  margins/missing columns the result rows hold; loading the chunks is not timed), divided by the worker
  count, + a plain COPY of the audit's result rows (read back from `audit_results` with COPY TO) into a
  table `LIKE audit_results INCLUDING ALL`.
The ratios are import_s / import floor and audit_s / audit floor; the 1-minute load average is printed
beside them.
"""

QUEUES = ("audits", "celery")


def _rss_peak_kb(root_pid: int) -> dict[int, int]:
    """VmHWM (peak resident set) of a process and its descendants, in kB."""
    import os

    out: dict[int, int] = {}
    stack = [root_pid]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        out[pid] = int(line.split()[1])
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def copy_floor(dsn: str, table: str, columns: list[str], where: str) -> tuple[float, int, int, int]:
    """(seconds, rows, bytes, indexes): read `table`'s rows matching `where` with COPY TO (not timed), then
    time one plain COPY of them into a fresh table LIKE `table` INCLUDING ALL, committed; the table is
    dropped afterwards."""
    import time

    import psycopg

    floor = f"floor_{table}"
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        blocks: list[bytes] = []
        with cur.copy(f"COPY (SELECT {', '.join(columns)} FROM {table} WHERE {where}) TO STDOUT") as cp:
            for block in cp:
                blocks.append(bytes(block))
        rows = sum(b.count(b"\n") for b in blocks)
        cur.execute(f"DROP TABLE IF EXISTS {floor}")
        cur.execute(f"CREATE TABLE {floor} (LIKE {table} INCLUDING ALL)")
        conn.commit()
        indexes = cur.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", (floor,)).fetchone()[0]
        t0 = time.perf_counter()
        with cur.copy(f"COPY {floor} ({', '.join(columns)}) FROM STDIN") as cp:
            for block in blocks:
                cp.write(block)
        conn.commit()
        seconds = time.perf_counter() - t0
        cur.execute(f"DROP TABLE {floor}")
        conn.commit()
    return seconds, rows, sum(len(b) for b in blocks), int(indexes)


def engine_floor(db, audit_id: int) -> tuple[float, float, int]:
    """(engine seconds, of which evaluate() alone, products): the engine over the audit's own chunks in this
    process, with a fresh copy of the audit's pinned rulebook (cold model-family caches, as a new worker
    process has); loading each chunk from the database is not timed."""
    import time

    from sqlalchemy import select

    from compliance.engine import Rulebook, evaluate
    from compliance.engine.explain import margins_and_missing
    from compliance.models import Audit, AuditChunk, RuleVersion
    from compliance.services.audit_outcomes import encode_outcomes
    from compliance.services.product_columns import load_chunk

    with db.session() as s:
        audit = s.get(Audit, audit_id)
        rulebook = Rulebook(s.get(RuleVersion, audit.rule_version_id).content)
        ranges = s.execute(select(AuditChunk.lo_id, AuditChunk.hi_id).where(AuditChunk.audit_id == audit_id)
                           .order_by(AuditChunk.seq)).all()
        cat, as_of, dests = audit.catalogue_id, audit.as_of, list(audit.destinations)
        hq, tt = audit.headquarters, audit.transaction_type
    total = t_eval = 0.0
    products = 0
    for lo, hi in ranges:
        with db.session() as s:
            parts = load_chunk(s, cat, lo, hi)
        for part in parts:
            t0 = time.perf_counter()
            ev = evaluate(part.table, rulebook, as_of, dests, hq, tt)
            t1 = time.perf_counter()
            ev.top_eccn_labels(), ev.top_status_labels(), encode_outcomes(ev), margins_and_missing(ev)
            t2 = time.perf_counter()
            total += t2 - t0
            t_eval += t1 - t0
            products += len(part.ids)
    return total, t_eval, products


def run(sizes: list[int], destinations: list[str], concurrency: int, chunk_size: int, keep: bool,
        import_workers: int = 2, pg_admin_url: str = "", redis_url: str = "") -> list[dict]:
    import os
    import subprocess
    import sys
    import time
    import uuid
    from datetime import date
    from pathlib import Path

    import psycopg
    import redis

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from bench.reevaluation import _dsn, _load

    admin = pg_admin_url
    broker = redis_url
    out_dir = root / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    queues = redis.Redis.from_url(broker)
    rows = []
    for n in sizes:
        name = f"cc_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        db_url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
        queues.delete(*QUEUES)  # leftovers of an aborted run of this benchmark, in the database it was given
        settings = {"DATABASE_URL": db_url, "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker,
                    "SAMPLE_CATALOGUE": "", "AUDIT_CHUNK_SIZE": str(chunk_size), "LOG_LEVEL": "WARNING"}
        os.environ.update(settings)
        from compliance import create_app
        from compliance.cli import upgrade_database
        from compliance.services.audit_results import audit_status
        from compliance.services.audits import RESULT_FIELDS, create_audit
        from compliance.services.catalogues import create_catalogue
        from compliance.services.import_writer import PRODUCT_FIELDS
        from compliance.services.imports import import_path

        csv_path = out_dir / f"synthetic-{n}.csv"
        if not csv_path.exists():
            with csv_path.open("w", newline="") as fh:
                write_csv(fh, n)
        app = create_app(settings)
        upgrade_database(app)  # create_app neither migrates nor seeds
        db, store = app.extensions["db"], app.extensions["rulebooks"]
        worker = None
        try:
            cat = create_catalogue(db, f"bench-{n}", destinations=destinations)
            load_start = _load()
            t0 = time.perf_counter()
            rep = import_path(db, store, cat.id, str(csv_path), workers=import_workers)
            t_import = time.perf_counter() - t0
            load_import = _load()
            assert rep.imported == n, rep.as_dict()
            env = dict(os.environ, **settings, PYTHONPATH=str(root))
            log = (out_dir / f"worker-{n}.log").open("w")
            node = f"bench-audit-{os.getpid()}@host"
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=WARNING", "-P", "prefork",
                 f"--concurrency={concurrency}", "-Q", ",".join(QUEUES), "-n", node,
                 "--without-gossip", "--without-mingle"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            celery = app.extensions["celery"]
            deadline = time.monotonic() + 60
            while not celery.control.ping(destination=[node], timeout=0.5):
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise RuntimeError("worker did not start; see " + log.name)
            load_audit_start = _load()
            t1 = time.perf_counter()
            audit = create_audit(db, store, cat.id, date(2025, 6, 1), destinations, None, "bench", chunk_size)
            peak: dict[int, int] = {}
            while True:
                for pid, kb in _rss_peak_kb(worker.pid).items():
                    peak[pid] = max(peak.get(pid, 0), kb)
                st = audit_status(db, audit.id)
                if st["status"] in ("done", "failed"):
                    break
                time.sleep(0.2)
            t_audit = time.perf_counter() - t1
            load_audit = _load()
            assert st["status"] == "done", st["error"]
            assert st["counts"]["products"] == n
            for pid, kb in _rss_peak_kb(worker.pid).items():
                peak[pid] = max(peak.get(pid, 0), kb)
            os.killpg(worker.pid, 15)
            worker.wait(timeout=60)
            worker = None

            # --- floors over the same rows, one process, worker stopped
            dsn = _dsn(db_url)
            imp_floor, imp_rows, imp_bytes, imp_idx = copy_floor(dsn, "products", list(PRODUCT_FIELDS),
                                                                 f"catalogue_id = {int(cat.id)}")
            assert imp_rows == n, imp_rows
            t_engine, t_eval, engine_products = engine_floor(db, audit.id)
            assert engine_products == n, engine_products
            res_copy, res_rows, res_bytes, res_idx = copy_floor(dsn, "audit_results", list(RESULT_FIELDS),
                                                                f"audit_id = {int(audit.id)}")
            assert res_rows == n, res_rows
            audit_floor = t_engine / concurrency + res_copy
            load_end = _load()
            rows.append({
                "products": n, "destinations": len(destinations), "result_rows": n * len(destinations),
                "import_s": t_import, "import_rate": n / t_import,
                "import_parse_validate_s": rep.timings["parse_validate"], "import_write_s": rep.timings["write"],
                "import_floor_s": imp_floor, "import_x_floor": t_import / imp_floor,
                "audit_s": t_audit, "audit_rate": n / t_audit, "audit_worker_s": st["timings"]["seconds"],
                "audit_engine_s": t_engine, "audit_evaluate_s": t_eval, "audit_copy_s": res_copy,
                "audit_floor_s": audit_floor, "audit_x_floor": t_audit / audit_floor,
                "chunks": st["progress"]["chunks_total"],
                "peak_rss_mb_max_process": max(peak.values()) / 1024,
                "peak_rss_mb_sum": sum(peak.values()) / 1024,
                "end_to_end_s": t_import + t_audit,
                "import_timings": rep.timings,
                "loadavg": f"{load_import.split(',')[0]} / {load_audit.split(',')[0]}",
                "loadavg_1m_at_end": os.getloadavg()[0],
            })
            print_table(rows[-1:])
            print(f"  import stages: {rep.timings}")
            print(f"  import floor: plain COPY of the {imp_rows:,} imported rows ({len(PRODUCT_FIELDS)} columns as the "
                  f"import writes them, {imp_bytes / 1e6:,.0f} MB of COPY text) into a table LIKE products INCLUDING "
                  f"ALL ({imp_idx} indexes), one transaction: {imp_floor:.2f}s; the import took "
                  f"{t_import / imp_floor:.1f}x that")
            print(f"  audit floor: engine over {engine_products:,} products x {len(destinations)} destinations in one "
                  f"process {t_engine:.2f}s (evaluate() {t_eval:.2f}s + outcome codes and margins/missing "
                  f"{t_engine - t_eval:.2f}s) / {concurrency} workers = {t_engine / concurrency:.2f}s, + plain COPY of "
                  f"the {res_rows:,} result rows ({res_bytes / 1e6:,.0f} MB) into a table LIKE audit_results "
                  f"INCLUDING ALL ({res_idx} indexes) {res_copy:.2f}s = {audit_floor:.2f}s; the audit took "
                  f"{t_audit / audit_floor:.1f}x that (in one process the floor is {t_engine + res_copy:.2f}s)")
            print(f"  load average (1, 5, 15 min): {load_start} before the import, {load_import} after it, "
                  f"{load_audit_start} before the audit, {load_audit} after it, {load_end} after the floors")
        finally:
            if worker is not None and worker.poll() is None:
                os.killpg(worker.pid, 15)
                worker.wait(timeout=60)
            db.dispose()
            queues.delete(*QUEUES)
            if not keep:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows


def print_table(rows: list[dict]) -> None:
    cols = [("products", "{:,}"), ("import_s", "{:.1f}"), ("import_rate", "{:,.0f}"),
            ("import_parse_validate_s", "{:.1f}"), ("import_write_s", "{:.1f}"), ("import_floor_s", "{:.2f}"),
            ("import_x_floor", "{:.1f}x"), ("audit_s", "{:.1f}"), ("audit_rate", "{:,.0f}"),
            ("audit_engine_s", "{:.2f}"), ("audit_copy_s", "{:.2f}"), ("audit_floor_s", "{:.2f}"),
            ("audit_x_floor", "{:.1f}x"), ("result_rows", "{:,}"), ("chunks", "{}"),
            ("peak_rss_mb_max_process", "{:.0f}"), ("peak_rss_mb_sum", "{:.0f}"), ("loadavg", "{}")]
    print("| " + " | ".join(c for c, _ in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f.format(r[c]) for c, f in cols) + " |")
    print("(audit_engine_s: one process; audit_floor_s = audit_engine_s / workers + audit_copy_s; "
          "loadavg: 1-minute load average after the import / after the audit)")


if __name__ == "__main__":
    import argparse
    import os

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--to", default="CN,AE,DE,MO,RU")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=50000)
    ap.add_argument("--keep", action="store_true", help="Keep the benchmark database")
    ap.add_argument("--import-workers", type=int, default=2, help="Processes validating the import")
    ap.add_argument("--pg-admin-url", default=os.environ.get("TEST_PG_ADMIN_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379"))
    ap.add_argument("--redis-db", type=int, default=os.environ.get("BENCH_REDIS_DB"),
                    help="a Redis database number of your own (not 0); default BENCH_REDIS_DB")
    a = ap.parse_args()
    if a.redis_db is None or not 0 < int(a.redis_db) < 16:
        ap.error("choose a Redis database of your own with --redis-db N (1-15; not 0) or BENCH_REDIS_DB")
    result = run([int(s) for s in a.sizes.split(",")], a.to.split(","), a.concurrency, a.chunk_size, a.keep,
                 a.import_workers, a.pg_admin_url, f"{a.redis_url.rstrip('/')}/{int(a.redis_db)}")
    print()
    print_table(result)
