"""Long fuzzing runs of the whole API (schemathesis, in process), on SQLite or PostgreSQL.

    .venv/bin/python bench/fuzz.py --db sqlite --examples 100
    .venv/bin/python bench/fuzz.py --db postgresql --examples 100 --seed 7

Prints the cases, statuses, server errors and spec mismatches, and the load average. It creates its own
database (a temporary SQLite file, or a new PostgreSQL database that it drops afterwards)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--examples", type=int, default=50, help="cases per operation and mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="only operations whose path contains this")
    parser.add_argument("--show", type=int, default=20, help="failures to print")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    from compliance import create_app
    from compliance.config import Config
    from compliance.services.catalogues import ensure_sample_catalogue
    from tests.conftest import _migrate_and_seed, create_pg_database, drop_pg_database
    from tests.factories import api_headers
    from tests.fuzzing import fuzz

    url = create_pg_database() if args.db == "postgresql" else f"sqlite:///{tempfile.mkdtemp()}/fuzz.db"
    try:
        _migrate_and_seed(url, "rules")
        app = create_app(Config.from_env({"DATABASE_URL": url, "CELERY_BROKER_URL": "", "SAMPLE_CATALOGUE": "",
                                          "RATE_LIMIT": ""}))  # thousands of cases with one key
        ensure_sample_catalogue(app, "compliance/data/sample_catalogue.json")
        report = fuzz(app, api_headers(app, "admin"), args.examples, seed=args.seed, only=args.only)
        from compliance.tasks import wait_for_embedded_jobs

        wait_for_embedded_jobs(app, timeout=300, cancel_timers=True)
        app.extensions["db"].dispose()
    finally:
        if args.db == "postgresql":
            drop_pg_database(url)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print("| database | examples/op/mode | seed | operations | cases | 5xx | spec mismatches | seconds | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.db} | {args.examples} | {args.seed} | {report.operations} | {report.cases} | "
          f"{len(report.server_errors)} | {len(report.mismatches)} | {report.seconds:.0f} | {load} |")
    print("statuses:", dict(sorted(report.by_status.items())))
    for line in (report.server_errors + report.mismatches)[: args.show]:
        print("\n" + line)
    sys.exit(1 if report.server_errors or report.mismatches else 0)


if __name__ == "__main__":
    main()
