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
products/s and the worker's peak RSS.

    .venv/bin/python bench/audit_pipeline.py --sizes 100000,1000000

Needs PostgreSQL (TEST_PG_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/test) and Redis
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/14). Creates and drops its own database.
"""


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


def run(sizes: list[int], destinations: list[str], concurrency: int, chunk_size: int, keep: bool,
        import_workers: int = 2) -> list[dict]:
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
    admin = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
    broker = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    out_dir = root / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        name = f"cc_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        db_url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
        redis.Redis.from_url(broker).flushdb()
        settings = {"DATABASE_URL": db_url, "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker,
                    "SAMPLE_CATALOGUE": "", "AUDIT_CHUNK_SIZE": str(chunk_size), "LOG_LEVEL": "WARNING"}
        os.environ.update(settings)
        from compliance import create_app
        from compliance.cli import upgrade_database
        from compliance.services.audit_results import audit_status
        from compliance.services.audits import create_audit
        from compliance.services.catalogues import create_catalogue
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
            t0 = time.perf_counter()
            rep = import_path(db, store, cat.id, str(csv_path), workers=import_workers)
            t_import = time.perf_counter() - t0
            assert rep.imported == n, rep.as_dict()
            env = dict(os.environ, **settings, PYTHONPATH=str(root))
            log = (out_dir / f"worker-{n}.log").open("w")
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=WARNING", "-P", "prefork",
                 f"--concurrency={concurrency}", "-Q", "audits,celery", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
                 "--without-gossip", "--without-mingle"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            celery = app.extensions["celery"]
            deadline = time.monotonic() + 60
            while not celery.control.ping(timeout=0.5):
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise RuntimeError("worker did not start; see " + log.name)
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
            assert st["status"] == "done", st["error"]
            assert st["counts"]["products"] == n
            for pid, kb in _rss_peak_kb(worker.pid).items():
                peak[pid] = max(peak.get(pid, 0), kb)
            rows.append({
                "products": n, "destinations": len(destinations), "result_rows": n * len(destinations),
                "import_s": t_import, "import_rate": n / t_import,
                "import_parse_validate_s": rep.timings["parse_validate"], "import_write_s": rep.timings["write"],
                "audit_s": t_audit, "audit_rate": n / t_audit, "audit_worker_s": st["timings"]["seconds"],
                "chunks": st["progress"]["chunks_total"],
                "peak_rss_mb_max_process": max(peak.values()) / 1024,
                "peak_rss_mb_sum": sum(peak.values()) / 1024,
                "end_to_end_s": t_import + t_audit,
                "import_timings": rep.timings,
                "loadavg_1m_at_end": os.getloadavg()[0],
            })
            print_table(rows[-1:])
            print(f"  import stages: {rep.timings}; 1-min load average at the end: {os.getloadavg()[0]:.2f}")
        finally:
            if worker is not None and worker.poll() is None:
                os.killpg(worker.pid, 15)
                worker.wait(timeout=60)
            db.dispose()
            if not keep:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows


def print_table(rows: list[dict]) -> None:
    cols = [("products", "{:,}"), ("import_s", "{:.1f}"), ("import_rate", "{:,.0f}"),
            ("import_parse_validate_s", "{:.1f}"), ("import_write_s", "{:.1f}"), ("audit_s", "{:.1f}"),
            ("audit_rate", "{:,.0f}"), ("result_rows", "{:,}"), ("chunks", "{}"),
            ("peak_rss_mb_max_process", "{:.0f}"), ("peak_rss_mb_sum", "{:.0f}")]
    print("| " + " | ".join(c for c, _ in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f.format(r[c]) for c, f in cols) + " |")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--to", default="CN,AE,DE,MO,RU")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=50000)
    ap.add_argument("--keep", action="store_true", help="Keep the benchmark database")
    ap.add_argument("--import-workers", type=int, default=2, help="Processes validating the import")
    a = ap.parse_args()
    result = run([int(s) for s in a.sizes.split(",")], a.to.split(","), a.concurrency, a.chunk_size, a.keep, a.import_workers)
    print()
    print_table(result)
