"""Benchmark (not a test): re-checking open orders after a list change, against PostgreSQL.

N open orders (default 10,000; 3 lines and 3 parties each, 10 destinations, mixed products) are written
directly as rows (an order as POST /orders would store it, without checking each), then a new custom-list
snapshot naming 1% of the end users is imported and the re-check it queues (a chunked job of services/jobs.py:
chunks of 500 open orders; per chunk one engine batch of the distinct products per date/destination/
headquarters/transaction type, one screening call for the distinct parties, bulk writes) runs on the embedded
jobs thread of this process (one process, the chunks in sequence); timed from the import to the job's end. Comparator: the same orders' lines classified in one engine batch per group with no
screening and no writes. Creates and drops its own database (bench_screening_recheck_<random>).

    flock /work/team/bench.lock .venv/bin/python bench/order_recheck.py [--orders 10000]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from classify_api import PG_ADMIN_URL, synthetic_products  # noqa: E402

DESTS = ["CN", "DE", "AE", "SG", "MY", "IN", "BR", "JP", "RU", "VN"]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=10_000)
    args = ap.parse_args()

    import psycopg
    from sqlalchemy import insert, select

    from compliance import create_app
    from compliance.models import Order, OrderLine
    from compliance.services.classification import classify_products
    from compliance.services.screening_lists import create_list, import_snapshot

    name = f"bench_screening_recheck_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    try:
        app = create_app({"DATABASE_URL": url, "CELERY_BROKER_URL": "", "SAMPLE_CATALOGUE": "", "LOG_LEVEL": "WARNING"})
        from compliance.cli import upgrade_database

        upgrade_database(app)  # create_app neither migrates nor seeds
        db, store = app.extensions["db"], app.extensions["rulebooks"]
        config = app.config["COMPLIANCE"]
        from compliance.services.screening_lists import ensure_sample
        from compliance.tasks import wait_for_embedded_jobs

        ensure_sample(db, config.SCREENING_SAMPLE)  # the sample snapshot first (its own re-check finds no order)
        wait_for_embedded_jobs(app, timeout=600)
        rng = random.Random(5)
        products = synthetic_products(200)
        version, rulebook = store.current()
        t0 = time.perf_counter()
        with db.session() as s:
            for start in range(0, args.orders, 2000):
                rows = []
                for i in range(start, min(args.orders, start + 2000)):
                    dest = DESTS[i % len(DESTS)]
                    parties = [{"role": "end_user", "name": f"Customer {i} Trading", "country": dest, "address": None},
                               {"role": "consignee", "name": f"Forwarder {i % 300} Logistics", "country": "SG",
                                "address": None},
                               {"role": "parent", "name": f"Holding {i % 1000} Group", "country": "CN", "address": None}]
                    rows.append({"reference": f"PO-{i}", "order_date": date(2026, 6, 1), "ship_to": dest,
                                 "transaction_type": "export", "headquarters": "CN", "parties": parties,
                                 "screening": [], "status": "released", "ruleset_revision": rulebook.revision,
                                 "rule_version": version.number, "list_snapshots": [], "request": {},
                                 "created_by": "bench"})
                s.execute(insert(Order), rows)
            ids = list(s.scalars(select(Order.id).order_by(Order.id)))
            for start in range(0, len(ids), 2000):
                s.execute(insert(OrderLine), [
                    {"order_id": oid, "seq": k + 1, "sku": p["sku"], "product": p, "quantity": 1, "value": 100.0,
                     "eccn": None, "classification": {}, "licences": [], "status": "released", "reasons": [],
                     "release_basis": "auto"}
                    for oid in ids[start:start + 2000]
                    for k, p in enumerate(rng.sample(products, 3))])
        setup_s = time.perf_counter() - t0
        lid = create_list(db, "bench-denied", "", "bench")["id"]
        listed = "\n".join(f"Customer {i} Trading,{DESTS[i % len(DESTS)]}" for i in range(0, args.orders, 100))
        # the import queues the re-check (the embedded jobs thread runs it): timed from the import to its end
        t0 = time.perf_counter()
        snap = import_snapshot(db, lid, ("name,country\n" + listed + "\n").encode(), "csv", "bench.csv", None,
                               "bench")
        wait_for_embedded_jobs(app, timeout=3600)
        recheck_s = time.perf_counter() - t0
        from compliance.services.order_recheck import list_changes

        counts = {"held": list_changes(db, 1, 1, kind="held", cause=f"list_snapshot:{snap['id']}").total}
        with db.session() as s:
            lines = list(s.execute(select(OrderLine.product, Order.ship_to).join(Order, Order.id == OrderLine.order_id)))
        groups: dict[str, list[dict]] = {}
        for product, dest in lines:
            groups.setdefault(dest, []).append(product)
        t0 = time.perf_counter()
        for dest, ps in groups.items():
            classify_products(store, ps, date(2026, 6, 1), [dest], "CN").all()
        classify_s = time.perf_counter() - t0
        print(f"{args.orders:,} open orders ({len(lines):,} lines, {3 * args.orders:,} parties) written in "
              f"{setup_s:.1f} s; load average {load()}")
        print(f"{'what':<62} {'seconds':>8} {'orders/s':>9}")
        print(f"{'re-check after a list change (one process, chunks of 500)':<62} {recheck_s:>8.2f} "
              f"{args.orders / recheck_s:>9,.0f}   counts {counts}")
        print(f"{'comparator: the lines classified alone (engine batches, no writes)':<62} {classify_s:>8.2f} "
              f"{args.orders / classify_s:>9,.0f}")
        print(f"target: 100,000 open orders <= 60 s on 2 workers; load average {load()}")
        db.dispose()
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
