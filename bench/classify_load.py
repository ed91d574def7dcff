"""Load benchmark (not a test), issue 12 "Under load": N concurrent clients x M `POST /classify` against
gunicorn with the compose flags (--workers 2 --threads 4) on loopback, PostgreSQL behind it.

    flock /work/team/bench.lock .venv/bin/python bench/classify_load.py [--clients 50] [--requests 200]

A bounded asyncio client: one keep-alive HTTP/1.1 connection per client, each sending its requests one
after another (a closed loop: at most `clients` requests in flight). Every answer is read whole and its
status counted; latency is from sending the request to the last byte of the answer. The product is one
IC x 3 destinations (the same body as bench/classify_api.py's single classify). Prints the table and
the load average; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classify_api import AS_OF, DESTINATIONS, served, synthetic_products  # noqa: E402


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server keeps the connection) of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() != "close"


async def _client(port: int, request: bytes, count: int, latencies: list[float], statuses: Counter,
                  failures: Counter) -> None:
    reader = writer = None
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            status, _, keep = await _read_response(reader)
            latencies.append(time.perf_counter() - t0)
            statuses[status] += 1
            if not keep:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            failures[type(exc).__name__] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _load(port: int, request: bytes, clients: int, per_client: int) -> tuple[list[float], Counter, Counter, float]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    failures: Counter = Counter()
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(port, request, per_client, latencies, statuses, failures) for _ in range(clients)))
    return latencies, statuses, failures, time.perf_counter() - t0


def _request(key: str, port: int) -> bytes:
    body = json.dumps({"product": synthetic_products(2)[1], "as_of": AS_OF, "destinations": DESTINATIONS}).encode()
    return (f"POST /api/v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8151)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=200, help="requests per client")
    ap.add_argument("--runs", type=int, default=1, help="measured runs (after one warm-up run of 10 per client)")
    args = ap.parse_args()
    with served(args.port) as (key, _):
        request = _request(key, args.port)
        asyncio.run(_load(args.port, request, args.clients, 10))  # warm both workers
        print(f"python {sys.version.split()[0]}, gunicorn --workers 2 --threads 4, PostgreSQL, POST /classify "
              f"(1 product x {len(DESTINATIONS)} destinations), {args.clients} clients x {args.requests} requests, "
              f"keep-alive, loopback")
        print()
        print("| run | requests | 2xx | errors (non-2xx / failed) | calls/s | p50 ms | p90 ms | p99 ms | max ms "
              "| load average (1, 5, 15 min) before / after |")
        print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
        for run in range(1, args.runs + 1):
            before = os.getloadavg()
            lat, statuses, failures, wall = asyncio.run(_load(args.port, request, args.clients, args.requests))
            after = os.getloadavg()
            lat.sort()
            q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000  # noqa: E731
            ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
            bad = {**{str(s): n for s, n in statuses.items() if not 200 <= s < 300}, **failures}
            print(f"| {run} | {len(lat) + sum(failures.values()):,} | {ok:,} | "
                  f"{sum(bad.values())} {dict(bad) if bad else ''} | {len(lat) / wall:,.0f} | {q(.5):.1f} | "
                  f"{q(.9):.1f} | **{q(.99):.1f}** | {lat[-1] * 1000:.1f} | "
                  f"{', '.join(f'{x:.2f}' for x in before)} / {', '.join(f'{x:.2f}' for x in after)} |")
        print(f"\nmean latency {statistics.mean(lat) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
