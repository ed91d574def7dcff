"""CLI: `compliance catalogue import|list` and `compliance audit run|wait|show` (registered by cli.py)."""
from __future__ import annotations

import contextlib
import sys
import time
from datetime import date
from pathlib import Path

import click

from .engine.vocabulary import TRANSACTION_TYPES


def _app():
    from .cli import _app as make

    return make()


def _print_import(rep: dict, max_errors: int = 20, to_stderr: bool = False) -> None:
    click.echo(f"{rep['filename'] or 'upload'}: {rep['rows_read']} rows read, {rep['imported']} imported "
               f"({rep['created']} new, {rep['updated']} updated), {rep['rejected']} rejected, "
               f"{rep['duplicates']} duplicate SKUs (last row wins) in {rep['seconds']:.2f}s", err=to_stderr)
    for e in rep["errors"][:max_errors]:
        click.echo(f"  row {e['row']}: {e['field']}: {e['problem']}", err=True)
    if rep["rejected"] > max_errors:
        click.echo(f"  ... {rep['rejected'] - max_errors} more rejected rows (see GET /api/v1/imports/{rep['id']})",
                   err=True)


# Below this size a file is validated in this process: starting a pool of spawned workers costs
# seconds, more than validating a few thousand rows takes.
POOL_MIN_BYTES = 4 << 20


def _import(app, file: Path, catalogue: str, fmt: str | None, sheet: str | None = None,
            as_json: bool = False, to_stderr: bool = False) -> tuple[int, dict]:
    """Import FILE into the catalogue (created if needed); print the report (as JSON with as_json, on
    stderr with to_stderr); returns (catalogue id, report)."""
    from .services.catalogues import catalogue_by_name, create_catalogue
    from .services.imports import import_path

    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = catalogue_by_name(db, catalogue)
    if cat is None:
        _, rulebook = store.current()
        cat = create_catalogue(db, catalogue, rulebook=rulebook)
        click.echo(f"created catalogue {catalogue!r} (id {cat.id})", err=as_json or to_stderr)
    from .engine.errors import ComplianceError

    try:
        workers = app.config["COMPLIANCE"].import_workers if file.stat().st_size >= POOL_MIN_BYTES else 1
        size = max(file.stat().st_size, 1)
        with progress_bar(size, f"import {file.name}", quiet=as_json) as bar:
            result = import_path(db, store, cat.id, str(file), fmt, workers=workers, sheet=sheet,
                                 progress=lambda done: bar.update(max(0, min(done, size) - bar.pos)))
    except ComplianceError as exc:  # an unreadable file (not UTF-8, bad JSON, unknown columns, ...)
        raise click.ClickException(f"{file}: {exc.message}") from None
    if as_json:
        from .cli import echo_json

        echo_json(result.as_dict())
    else:
        _print_import(result.as_dict(), to_stderr=to_stderr)
    return cat.id, result.as_dict()


class _NoBar:
    pos = 0

    def update(self, n: int) -> None:
        self.pos += n


@contextlib.contextmanager
def progress_bar(length: int, label: str, quiet: bool = False):
    """A click progress bar on stderr (stdout stays data), with INFO log lines held back while it is
    drawn (warnings still print, on their own line). `quiet` (--json): no bar."""
    import logging

    if quiet:
        yield _NoBar()
        return
    root = logging.getLogger()
    levels = [(h, h.level) for h in root.handlers]
    for h, level in levels:
        h.setLevel(max(level, logging.WARNING))
    try:
        with click.progressbar(length=length, label=label, show_pos=False, show_percent=True, show_eta=True,
                               file=sys.stderr) as bar:
            yield bar
    finally:
        for h, level in levels:
            h.setLevel(level)


def register(main: click.Group) -> None:
    from .cli import json_option

    @main.group()
    def catalogue() -> None:
        """Catalogues: import files, list."""

    @catalogue.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--catalogue", "name", required=True, help="Catalogue name (created if it does not exist).")
    @click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "xlsx", "json", "jsonl"]), default=None,
                  help="Default: from the file extension.")
    @click.option("--sheet", default=None, help="XLSX: the sheet to read (default: the first).")
    @json_option
    def catalogue_import(file: Path, name: str, fmt: str | None, sheet: str | None, as_json: bool) -> None:
        """Import FILE (CSV/TSV, XLSX, JSON or JSON Lines) into a catalogue; bad rows are listed, good rows kept."""
        _import(_app(), file, name, fmt, sheet, as_json)

    @catalogue.command("list")
    @json_option
    def catalogue_list(as_json: bool) -> None:
        """Catalogues with their product counts."""
        from .cli import echo_json, echo_table
        from .services.catalogues import catalogue_summary, list_catalogues

        db = _app().extensions["db"]
        rows = [catalogue_summary(db, c) for c in list_catalogues(db)]
        if as_json:
            echo_json(rows)
            return
        for r in rows:
            for st in ("controlled", "not_controlled", "indeterminate"):
                r[st] = (r.get("by_status") or {}).get(st, 0)
        echo_table(rows, [("id", "ID"), ("name", "NAME"), ("products", "PRODUCTS"), ("controlled", "CONTROLLED"),
                          ("not_controlled", "NOT CONTROLLED"), ("indeterminate", "INDETERMINATE")],
                   empty="no catalogues")

    @main.group()
    def audit() -> None:
        """Catalogue audits: run, wait, show."""

    @audit.command("run")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
    @click.option("--catalogue", "name", required=True, help="Catalogue name (FILE is imported into it first).")
    @click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                  help="Rules in force on this date (default today).")
    @click.option("--to", "to", required=True, help="Destinations, comma-separated ISO codes, e.g. CN,AE.")
    @click.option("--hq", default=None, help="End user's headquarters country.")
    @click.option("--transaction-type", "transaction_type", default="export", show_default=True,
                  type=click.Choice(list(TRANSACTION_TYPES)),
                  help="Every product as an export from the US, a reexport from abroad, or a transfer within a country.")
    @click.option("--wait/--no-wait", default=False, help="Show a progress bar until the audit finishes.")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write the report here when done (.csv, .xlsx, .json or .jsonl); implies --wait.")
    @json_option
    def audit_run(file, name, as_of, to, hq, transaction_type, wait, out, as_json) -> None:
        """Audit a catalogue (importing FILE first, if given) for destinations as of a date."""
        from .cli import _destinations
        from .services.audits import create_audit
        from .services.catalogues import catalogue_by_name

        app = _app()
        db, store = app.extensions["db"], app.extensions["rulebooks"]
        dests = _destinations(to)
        hq_code = _destinations(hq)[0] if hq else None
        report = None
        if file is not None:
            cid, report = _import(app, file, name, None, to_stderr=as_json)
        else:
            cat = catalogue_by_name(db, name)
            if cat is None:
                raise click.BadParameter(f"no catalogue named {name!r}", param_hint="--catalogue")
            cid = cat.id
        day = as_of.date() if as_of else date.today()
        config = app.config["COMPLIANCE"]
        a = create_audit(db, store, cid, day, dests, hq_code, "cli", config.AUDIT_CHUNK_SIZE,
                         transaction_type=transaction_type)  # sent after commit
        click.echo(f"audit {a.id}: {a.total} products x {len(dests)} destinations as of {day}, {transaction_type} "
                   f"(rules {a.ruleset_revision[:12]}, {'in-process' if config.embedded else 'queued on Celery'})",
                   err=as_json)
        if wait or out or config.embedded:  # embedded: the work lives in this process, so stay for it
            _wait(app, a.id, out, as_json=as_json, extra={"import": report} if report else None)
        elif as_json:
            from .cli import echo_json
            from .services.audit_results import audit_status

            echo_json(audit_status(db, a.id) | ({"import": report} if report else {}))

    @audit.command("wait")
    @click.argument("audit_id", type=int)
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write the report here when done (.csv, .xlsx, .json or .jsonl).")
    @click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
    @json_option
    def audit_wait(audit_id: int, out, timeout, as_json) -> None:
        """Wait for an audit with a progress bar; print its counts (and write the report)."""
        _wait(_app(), audit_id, out, timeout, as_json)

    @audit.command("show")
    @click.argument("audit_id", type=int)
    @json_option
    def audit_show(audit_id: int, as_json: bool) -> None:
        """An audit's status, progress and counts (--json: everything the API shows)."""
        from .cli import echo_json
        from .services.audit_results import audit_status

        st = audit_status(_app().extensions["db"], audit_id)
        if as_json:
            echo_json(st)
            return
        p = st["progress"]
        click.echo(f"audit {st['id']}: {st['status']}, catalogue {st['catalogue_id']}, as of {st['as_of']}, "
                   f"rules {str(st.get('ruleset_revision') or '')[:12]}")
        click.echo(f"  progress: {p['products_done']}/{p['products_total']} products, "
                   f"{p.get('chunks_done', '-')}/{p.get('chunks_total', '-')} chunks")
        if st.get("error"):
            click.echo(f"  error: {st['error']}")
        _print_counts(st)


def _print_counts(st: dict) -> None:
    from .cli import echo_table

    c = st.get("counts") or {}
    if c.get("by_eccn"):
        click.echo("  by ECCN:   " + ", ".join(f"{k} {v}" for k, v in sorted(c["by_eccn"].items())))
    if c.get("by_status"):
        click.echo("  by status: " + ", ".join(f"{k} {v}" for k, v in sorted(c["by_status"].items())))
    rows = [{"destination": dest, "requirement": req, "review_policy": pol, "products": n}
            for dest, per in (c.get("licences") or {}).items()
            for req, pols in sorted(per.items()) for pol, n in sorted(pols.items())]
    if rows:
        echo_table(rows, [("destination", "DESTINATION"), ("requirement", "REQUIREMENT"),
                          ("review_policy", "REVIEW POLICY"), ("products", "PRODUCTS")])


def _wait(app, audit_id: int, out: Path | None, timeout: float | None = None, as_json: bool = False,
          extra: dict | None = None) -> None:
    from .services.audit_report import iter_report
    from .services.audit_results import audit_status

    db = app.extensions["db"]
    st = audit_status(db, audit_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    with progress_bar(max(st["progress"]["products_total"], 1), f"audit {audit_id}", quiet=as_json) as bar:
        shown = 0
        while True:
            st = audit_status(db, audit_id)
            done = st["progress"]["products_done"]
            if done > shown:
                bar.update(done - shown)
                shown = done
            if st["status"] in ("done", "failed"):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise click.ClickException(f"audit {audit_id} still {st['status']} after {timeout}s")
            time.sleep(0.25)
    if st["status"] == "failed":
        raise click.ClickException(f"audit {audit_id} failed: {st['error']}")
    c, t = st["counts"], st["timings"]
    if as_json:
        from .cli import echo_json

        echo_json(st | (extra or {}))
    else:
        click.echo(f"done: {c['products']} products in {t.get('seconds')}s ({t.get('products_per_second')} products/s)")
        _print_counts(st)
    if out is not None:
        fmt = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}.get(out.suffix.lower(), "csv")
        with out.open("wb") as fh:
            for piece in iter_report(db, app.extensions["rulebooks"], audit_id, fmt):
                fh.write(piece if isinstance(piece, bytes) else piece.encode("utf-8"))
        click.echo(f"report written to {out}", err=as_json)
