"""Benchmark (not a test): POST /orders over real HTTP, one order of 10 lines and 3 parties, on gunicorn with
the compose flags (--workers 2 --threads 4), against PostgreSQL, screening against the bundled list sample.

    flock /work/team/bench.lock .venv/bin/python bench/orders_api.py [--port 8130] [--orders 300]

Each order has 10 inline product lines (the synthetic products of bench/classify_api.py, to CN) and 3 parties
(end user, consignee, parent); sequential requests on one keep-alive connection, p50/p90/p99 after 20 warm-up
orders. The service keeps the decisions of lines it classified before (same rules, date, destination,
headquarters and product), so the same 10 products are classified once; a second series sends 10 products
never seen before in every order (every line classified by the engine). Comparators: POST /classify/batch of
the same 10 products over the same HTTP (the classification part alone), and the order through the service
in-process (no HTTP). Creates and drops its own PostgreSQL database
(bench_screening_orders_<random>).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from classify_api import PG_ADMIN_URL, Client, synthetic_products  # noqa: E402


def order_body(i: int, products: list[dict]) -> dict:
    return {"reference": f"PO-{i}", "date": "2026-06-01", "ship_to": "CN", "transaction_type": "export",
            "end_user": {"name": f"Blue River Labs {i % 97}", "address": "1 Lake Rd, Hangzhou", "country": "CN",
                         "parent": {"name": "Blue River Holdings", "headquarters": "CN"}},
            "consignees": [{"name": "Harbour Freight Pte Ltd", "country": "SG"}], "end_use": "research",
            "lines": [{"product": p, "quantity": 1 + k, "value": 1000.0 * (k + 1)} for k, p in enumerate(products)]}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8130)
    ap.add_argument("--orders", type=int, default=300)
    args = ap.parse_args()

    import psycopg

    from compliance import create_app
    from compliance.auth import create_api_key

    name = f"bench_screening_orders_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    settings = {"DATABASE_URL": url, "CELERY_BROKER_URL": "", "SAMPLE_CATALOGUE": "", "LOG_LEVEL": "WARNING",
                "RATE_LIMIT": ""}  # one key at full load: the per-key limit would answer 429s
    env = {**os.environ, **settings}
    server = None
    try:
        app = create_app(settings)
        from compliance.cli import upgrade_database

        upgrade_database(app)  # create_app neither migrates nor seeds
        _, key = create_api_key(app.extensions["db"], "bench", "auditor")
        products = synthetic_products(10)
        from compliance.schemas.orders import OrderCreateSchema
        from compliance.services.orders import create_order

        config = app.config["COMPLIANCE"]
        schema = OrderCreateSchema()
        inproc = []
        for i in range(60):
            body = schema.load(order_body(10_000 + i, products))
            t0 = time.perf_counter()
            create_order(app.extensions["db"], app.extensions["rulebooks"], body, "bench", config.SCREENING_THRESHOLD,
                         config.SCREENING_SAMPLE)
            inproc.append(time.perf_counter() - t0)
        app.extensions["db"].dispose()
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{args.port}", "--workers", "2", "--threads", "4",
             "--timeout", "120", "--log-level", "warning", "compliance.wsgi:app"],
            cwd=ROOT, env=env, start_new_session=True)
        import http.client

        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
                c.request("GET", "/api/v1/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.3)
        client = Client(args.port, key)
        bodies = [json.dumps(order_body(i, products)).encode() for i in range(args.orders + 20)]
        fresh = synthetic_products(10 * (args.orders + 20), seed=99)
        fresh_bodies = [json.dumps(order_body(50_000 + i, [{**p, "sku": f"NEW-{i}-{k}"}
                                                           for k, p in enumerate(fresh[10 * i:10 * i + 10])])).encode()
                        for i in range(args.orders + 20)]
        times, fresh_times = [], []
        for series, out in ((bodies, times), (fresh_bodies, fresh_times)):
            for i, body in enumerate(series):
                t0 = time.perf_counter()
                status, data = client.post("/api/v1/orders", body)
                dt = time.perf_counter() - t0
                if status != 201:
                    raise SystemExit(f"POST /orders answered {status}: {data[:500]!r}")
                if i >= 20:
                    out.append(dt)
        answer = json.loads(data)
        assert len(answer["lines"]) == 10 and len(answer["screening"]) == 3, answer.keys()
        batch = json.dumps({"products": products, "as_of": "2026-06-01", "destinations": ["CN"]}).encode()
        ctimes = []
        for i in range(args.orders + 20):
            t0 = time.perf_counter()
            status, _ = client.post("/api/v1/classify/batch", batch)
            dt = time.perf_counter() - t0
            assert status == 200, status
            if i >= 20:
                ctimes.append(dt)
        ms = 1000.0
        print(f"python {sys.version.split()[0]}, gunicorn --workers 2 --threads 4, PostgreSQL; {date.today()}; "
              f"load average {load()}")
        print(f"{'what':<58} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
        print(f"{'POST /orders, 10 lines x 3 parties (status ' + answer['status'] + ')':<58} "
              f"{statistics.median(times) * ms:>8.1f} {pct(times, .9) * ms:>8.1f} {pct(times, .99) * ms:>8.1f}")
        print(f"{'POST /orders, 10 products never seen before every order':<58} "
              f"{statistics.median(fresh_times) * ms:>8.1f} {pct(fresh_times, .9) * ms:>8.1f} "
              f"{pct(fresh_times, .99) * ms:>8.1f}")
        print(f"{'comparator: POST /classify/batch of the same 10 products':<58} "
              f"{statistics.median(ctimes) * ms:>8.1f} {pct(ctimes, .9) * ms:>8.1f} {pct(ctimes, .99) * ms:>8.1f}")
        print(f"{'comparator: the order in-process (service, no HTTP)':<58} "
              f"{statistics.median(inproc[10:]) * ms:>8.1f} {pct(inproc[10:], .9) * ms:>8.1f} "
              f"{pct(inproc[10:], .99) * ms:>8.1f}")
        print(f"target: p50 <= 20 ms over HTTP; {len(times)} orders; load average {load()}")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
