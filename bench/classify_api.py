"""Benchmark (not a test): POST /classify and /classify/batch over real HTTP, on gunicorn with the
compose flags (--workers 2 --threads 4), against PostgreSQL.

    flock /work/team/bench.lock .venv/bin/python bench/classify_api.py [--port 8150] [--repeat 5]

Batches are 10,000 synthetic products x 3 destinations (CN, AE, DE), the same products for every
request; `summary` and `full` answers are read whole by the client (not parsed while timed; one answer
of each is parsed and checked: 10,000 results, and summary == the projection of full). The single
classify is one product x 3 destinations, p50/p99 over sequential calls, then under 50 concurrent
clients. Beside each wall time, the web workers' CPU time (utime + stime from /proc) per request: on a
shared machine the wall time includes waiting for a core, the CPU time does not. Worker growth is the serving worker's peak RSS (VmHWM) during one full batch minus its RSS
before. Comparator: the same products through the service in-process (validation, table, evaluation,
answer, encoding: no HTTP), and the engine alone on the same table. Creates and drops its own
PostgreSQL database (bench_speed_api_<random>).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
DESTINATIONS = ["CN", "AE", "DE"]
AS_OF = "2026-06-01"
VENDORS = ("NVIDIA", "AMD", "Intel", "Acme", "Globex")
FAMILIES = ("H100", "H20", "MI308", "A800", "X1", "X2", None)


def synthetic_products(n: int, seed: int = 7) -> list[dict]:
    """ICs across the 3A090 thresholds (some inputs missing) and some HBM stacks, as API product specs."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        vendor, r = VENDORS[i % len(VENDORS)], rnd.random()
        if r < 0.05:
            out.append({"sku": f"SYN-{i:08d}", "name": f"HBM {i}", "vendor": vendor, "kind": "hbm",
                        "memory_bandwidth_gb_per_s": round(rnd.uniform(200, 1400), 1),
                        "package_area_mm2": round(rnd.uniform(90, 400), 1)})
            continue
        fmt, bits = rnd.choice((("fp8", 8), ("fp16", 16), ("int8", 8), ("fp4", 4)))
        p = {"sku": f"SYN-{i:08d}", "name": f"Chip {i}", "vendor": vendor, "kind": "ic",
             "throughput": [{"format": fmt, "dense_tops": round(rnd.lognormvariate(8.0, 1.0) / bits, 2)}],
             "memory_bandwidth_gb_per_s": round(rnd.uniform(300, 8000), 1)}
        if FAMILIES[i % len(FAMILIES)]:
            p["family"] = FAMILIES[i % len(FAMILIES)]
        if r >= 0.10:
            p["die_area_mm2"] = round(rnd.uniform(200, 900), 1)
        if not 0.10 <= r < 0.13:
            p["datacenter"] = rnd.random() < 0.5
        if r <= 0.9:
            p["io_bandwidth_gb_per_s"] = round(rnd.uniform(32, 1800), 1)
        out.append(p)
    return out


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=body, headers=self.headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # gunicorn closes a connection idle for more than its keep-alive (2 s): reconnect once
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _rss_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds used so far by the processes (their threads included)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def _reset_hwm(pid: int) -> None:
    try:  # writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _workers(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as fh:
        return [int(p) for p in fh.read().split()]


def _timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _in_process(products: list[dict], detail: str, repeat: int) -> tuple[float, float]:
    """(service in-process seconds, engine-only seconds) for the batch, best of `repeat`."""
    from compliance.api.encoding import dumps_bytes, loads, stream_object
    from compliance.engine import build_table, evaluate, load_rulebook
    from compliance.engine.explain import Explanation
    from compliance.schemas.product_loader import ProductLoader
    from compliance.services.classification import Decisions

    rulebook = load_rulebook(str(ROOT / "rules"))
    raw = dumps_bytes({"products": products}).decode()
    loader = ProductLoader()
    day = date.fromisoformat(AS_OF)

    def service():
        specs, _ = loader.load_many(loads(raw)["products"])
        ev = evaluate(build_table(specs), rulebook, day, DESTINATIONS)
        d = Decisions(Explanation.of(ev), specs, day, rulebook.revision, 1, detail)
        for _ in stream_object({"count": len(d)}, "results", d.chunks(500)):
            pass

    specs, _ = loader.load_many(products)
    table = build_table(specs)
    return (min(_timed(service, repeat)),
            min(_timed(lambda: evaluate(table, rulebook, day, DESTINATIONS), repeat)))


@contextmanager
def served(port: int):
    """A fresh PostgreSQL database (bench_speed_api_<random>) with a viewer key, served by gunicorn with the
    compose flags on 127.0.0.1:`port`: yields (key, gunicorn master pid); drops the database after."""
    import psycopg

    from compliance import create_app
    from compliance.auth import create_api_key
    from compliance.cli import upgrade_database

    name = f"bench_speed_api_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": "", "SAMPLE_CATALOGUE": "", "LOG_LEVEL": "WARNING",
           "RATE_LIMIT": ""}  # one key at full load: the per-key limit would answer 429s
    server = None
    try:
        app = create_app({"DATABASE_URL": url, "CELERY_BROKER_URL": "", "SAMPLE_CATALOGUE": "", "LOG_LEVEL": "WARNING"})
        upgrade_database(app)  # create_app neither migrates nor seeds
        _, key = create_api_key(app.extensions["db"], "bench", "viewer")
        app.extensions["db"].dispose()
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
             "--timeout", "120", "--log-level", "warning", "compliance.wsgi:app"],
            cwd=ROOT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/api/v1/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.3)
        yield key, server.pid
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8150)
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--singles", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=50)
    args = ap.parse_args()
    with served(args.port) as (key, master):
        _run(args, key, master)


def _run(args, key: str, master: int) -> None:
    n = args.products
    products = synthetic_products(n)
    bodies = {d: json.dumps({"products": products, "as_of": AS_OF, "destinations": DESTINATIONS,
                             "detail": d}).encode() for d in ("summary", "full")}
    single = json.dumps({"product": products[1], "as_of": AS_OF, "destinations": DESTINATIONS}).encode()
    print(f"python {sys.version.split()[0]}, gunicorn --workers 2 --threads 4, PostgreSQL, {n:,} products x "
          f"{len(DESTINATIONS)} destinations, request bodies {len(bodies['full']) / 1e6:.1f} MB, "
          f"load average at start {os.getloadavg()}")
    client = Client(args.port, key)
    # Warm both workers (imports, rulebook cache, proven shapes) and check the answers once.
    answers = {}
    for d in ("summary", "full"):
        for _ in range(2):
            status, raw = client.post("/api/v1/classify/batch", bodies[d])
            assert status == 200, raw[:300]
        answers[d] = json.loads(raw)
        assert answers[d]["count"] == n and len(answers[d]["results"]) == n
    from compliance.engine.explain import SUMMARY_CLASSIFICATION, SUMMARY_LICENCE

    for f, s in zip(answers["full"]["results"], answers["summary"]["results"]):
        assert s["classification"] == {k: f["classification"][k] for k in SUMMARY_CLASSIFICATION}
        assert s["licences"] == [{k: lic[k] for k in SUMMARY_LICENCE} for lic in f["licences"]]
    sizes = {d: len(json.dumps(a).encode()) for d, a in answers.items()}
    del answers

    rows = []
    pids = _workers(master)
    cpu: dict[str, float] = {}
    for d in ("summary", "full"):
        cpu0 = _cpu_s(pids)
        times = _timed(lambda: client.post("/api/v1/classify/batch", bodies[d]), args.repeat)
        cpu[d] = (_cpu_s(pids) - cpu0) / args.repeat  # the web workers' CPU per batch, whatever else runs
        service_s, engine_s = _in_process(products, d, 3)
        # two clients at once: one request in each worker
        pair: list[float] = []

        def one(d=d):
            c = Client(args.port, key)
            for _ in range(args.repeat):
                c.post("/api/v1/classify/batch", bodies[d])
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pair.append(time.perf_counter() - t0)
        rows.append((d, statistics.median(times), min(times), 2 * args.repeat * n / pair[0], service_s, engine_s,
                     sizes[d]))

    # single classify: sequential, then 50 concurrent clients
    for _ in range(50):
        client.post("/api/v1/classify", single)
    cpu0 = _cpu_s(pids)
    lat = sorted(_timed(lambda: client.post("/api/v1/classify", single), args.singles))
    cpu["single"] = (_cpu_s(pids) - cpu0) / args.singles
    p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    conc: list[float] = []
    lock = threading.Lock()

    def worker():
        c = Client(args.port, key)
        mine = _timed(lambda: c.post("/api/v1/classify", single), max(20, args.singles // args.clients))
        with lock:
            conc.extend(mine)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    conc.sort()

    # worker growth for one full batch
    before = {pid: _rss_kb(pid, "VmRSS") for pid in pids}
    for pid in pids:
        _reset_hwm(pid)
    client.post("/api/v1/classify/batch", bodies["full"])
    growth = {pid: (_rss_kb(pid, "VmHWM") - before[pid]) / 1024 for pid in pids}

    print()
    print("| what | target | measured | comparator (in-process, no HTTP) | ratio |")
    print("|---|---|---:|---:|---:|")
    for d, med, best, pair_rate, service_s, engine_s, size in rows:
        target = "≥ 100,000 products/s" if d == "summary" else "≥ 20,000 products/s"
        print(f"| batch {d}, one client (median of {args.repeat}) | {target} | **{n / med:,.0f} products/s** "
              f"({med * 1000:.0f} ms, best {best * 1000:.0f} ms; answer {size / 1e6:.1f} MB) "
              f"| service {n / service_s:,.0f}/s ({service_s * 1000:.0f} ms); engine alone {n / engine_s:,.0f}/s "
              f"({engine_s * 1000:.0f} ms) | HTTP/service {med / service_s:.2f}x |")
        print(f"| batch {d}, two clients at once (one per worker) | {target} | **{pair_rate:,.0f} products/s** "
              f"| | |")
        print(f"| batch {d}, web worker CPU per batch (utime + stime) | | {cpu[d] * 1000:.0f} ms CPU = "
              f"{n / cpu[d]:,.0f} products per worker CPU second | wall {med * 1000:.0f} ms | "
              f"wall/CPU {med / cpu[d]:.2f}x |")
    print(f"| single classify, sequential ({args.singles} calls) | p50 ≤ 3 ms | **p50 {p(lat, .5) * 1000:.2f} ms**, "
          f"p99 {p(lat, .99) * 1000:.2f} ms | | |")
    print(f"| single classify, web worker CPU per call | | {cpu['single'] * 1000:.2f} ms CPU | wall p50 "
          f"{p(lat, .5) * 1000:.2f} ms | |")
    print(f"| single classify, {args.clients} concurrent clients ({len(conc)} calls) | report p99 | p50 "
          f"{p(conc, .5) * 1000:.1f} ms, **p99 {p(conc, .99) * 1000:.1f} ms**, {len(conc) / wall:,.0f} calls/s | | |")
    print(f"| web worker growth, one full batch (VmHWM - RSS before) | ≤ 150 MB | **{max(growth.values()):.0f} MB** "
          f"(workers: {', '.join(f'{v:.0f}' for v in growth.values())} MB; RSS before "
          f"{', '.join(f'{v / 1024:.0f}' for v in before.values())} MB) | | |")
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
