"""CLI: `compliance lists import|create|show` and `compliance screen` (registered by cli.py)."""
from __future__ import annotations

import csv
import json
import sys
from datetime import date
from pathlib import Path

import click


def _app():
    from .cli import _app as make

    return make()


def _fail(exc) -> click.ClickException:
    errors = exc.errors if isinstance(exc.errors, dict) else {}
    problems = "; ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in errors.items())
    return click.ClickException(exc.message + (f" ({problems})" if problems else ""))


def _list_id(db, name: str, create: bool, actor: str) -> int:
    from sqlalchemy import select

    from .models import ScreeningList
    from .services import screening_lists as lists

    if name == lists.CSL_LIST:
        return lists.ensure_csl_list(db, actor)
    with db.session() as s:
        lst = s.scalar(select(ScreeningList).where(ScreeningList.name == name))
        if lst is not None:
            return lst.id
    if not create:
        raise click.BadParameter(f"no list named {name!r} (create it with `compliance lists create {name}` or "
                                 "pass --create)", param_hint="--list")
    return lists.create_list(db, name, "", actor)["id"]


def _print_snapshot(view: dict) -> None:
    d = view["delta"]
    click.echo(f"{view['list']} snapshot {view['id']} (version {view['version']}, dated {view['source_date']}): "
               f"{view['entries']} entries from {view['rows_read']} rows, {view['rejected']} rejected; "
               f"delta +{d['added']} -{d['removed']} ~{d['changed']}")
    if view["unknown_columns"]:
        click.echo(f"  columns not modelled (kept in each entry's extra): {', '.join(view['unknown_columns'])}")
    for e in view["errors"][:50]:
        kind = "kept" if e.get("kept") else "rejected"
        click.echo(f"  row {e['row']}: {e['field'] or '(row)'}: {e['message']} [{kind}]")
    if len(view["errors"]) > 50:
        click.echo(f"  ... and {len(view['errors']) - 50} more")


def _read_parties(path: Path) -> list[dict]:
    """A CSV with a name column (and optionally country, address), or JSON: a list of parties."""
    from marshmallow import ValidationError

    from .schemas.screening import PartySchema

    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        raw = json.loads(text)
        raw = raw.get("parties", raw) if isinstance(raw, dict) else raw
    else:
        raw = [{k: (v or None) for k, v in row.items() if k in ("name", "country", "address")}
               for row in csv.DictReader(text.splitlines())]
    schema = PartySchema()
    parties, problems = [], []
    for i, item in enumerate(raw if isinstance(raw, list) else [], 1):
        try:
            parties.append(schema.load(item))
        except ValidationError as exc:
            problems.append(f"party {i}: {exc.messages}")
    for p in problems:
        click.echo(p, err=True)
    if problems:
        raise SystemExit(2)
    if not parties:
        raise click.UsageError(f"{path}: no parties")
    return parties


def register(main: click.Group) -> None:
    @main.group("lists")
    def lists_group() -> None:
        """Screening lists: the Consolidated Screening List and custom lists, as dated snapshots."""

    @lists_group.command("import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--list", "name", default="csl", show_default=True, help="The list (csl or a custom list).")
    @click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "json"]), default=None,
                  help="Default: from the file name.")
    @click.option("--date", "source_date", default=None, help="Publication date of the file (YYYY-MM-DD; default today).")
    @click.option("--create", is_flag=True, help="Create the custom list if it does not exist.")
    @click.option("--by", "actor", default="cli", show_default=True, help="Who imports it (recorded).")
    def lists_import(path, name, fmt, source_date, create, actor) -> None:
        """Import a list file (CSL CSV/TSV/JSON, or a custom list) as the list's next snapshot."""
        from .engine.errors import ComplianceError
        from .services import screening_lists as lists

        try:
            when = date.fromisoformat(source_date) if source_date else None
        except ValueError:
            raise click.BadParameter(f"{source_date!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None
        app = _app()
        db = app.extensions["db"]
        try:
            fmt = fmt or lists.detect_format(path.name, None, None)
            view = lists.import_snapshot(db, _list_id(db, name, create, actor), path.read_bytes(), fmt, path.name,
                                         when, actor)
        except ComplianceError as exc:
            raise _fail(exc) from None
        _print_snapshot(view)
        from .tasks import wait_for_embedded_jobs

        wait_for_embedded_jobs(app, timeout=3600)  # embedded mode: the re-check of open orders runs in-process

    @lists_group.command("create")
    @click.argument("name")
    @click.option("--description", default="", help="What the list holds.")
    @click.option("--by", "actor", default="cli", show_default=True)
    def lists_create(name, description, actor) -> None:
        """Create a custom list (the company's own denied parties)."""
        from .engine.errors import ComplianceError
        from .services import screening_lists as lists

        try:
            view = lists.create_list(_app().extensions["db"], name, description, actor)
        except ComplianceError as exc:
            raise _fail(exc) from None
        click.echo(f"list {view['id']} {view['name']} created")

    @lists_group.command("show")
    @click.argument("name", required=False)
    @click.option("--delta", is_flag=True, help="Print the delta of the snapshot in force.")
    @click.option("--entries", is_flag=True, help="Print the entries of the snapshot in force.")
    def lists_show(name, delta, entries) -> None:
        """Every list with its snapshot in force; with NAME, that list's snapshots (and --delta / --entries)."""
        from .services import screening_lists as lists

        app = _app()
        db = app.extensions["db"]
        lists.ensure_sample(db, app.config["COMPLIANCE"].SCREENING_SAMPLE)
        items = lists.list_lists(db)
        if not name:
            for it in items:
                cur = it["current"]
                state = (f"snapshot {cur['id']} v{cur['version']} dated {cur['source_date']}, {cur['entries']} entries"
                         if cur else "no snapshot")
                click.echo(f"{it['id']:>4}  {it['name']:<20} {it['kind']:<7} {state}")
            return
        match = next((it for it in items if it["name"] == name), None)
        if match is None:
            raise click.BadParameter(f"no list named {name!r}", param_hint="NAME")
        for snap in lists.get_list(db, match["id"])["history"]:
            _print_snapshot(snap)
        cur = match["current"]
        if cur and delta:
            for c in lists.snapshot_changes(db, cur["id"], 1, 100_000).items:
                extra = f" ({', '.join(c['fields'])})" if c["fields"] else ""
                click.echo(f"  {c['change']:<8} {c['source']:<5} {c['name']}{extra}")
        if cur and entries:
            for e in lists.snapshot_entries(db, cur["id"], 1, 100_000).items:
                click.echo(f"  {e['source']:<5} {e['name']}  [{', '.join(e['countries'])}]  "
                           f"{e['federal_register_notice'] or '(no citation)'}")

    @main.command("screen")
    @click.argument("name", required=False)
    @click.option("--country", default=None, help="ISO 3166-1 alpha-2 of the party.")
    @click.option("--address", default=None, help="The party's address.")
    @click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                  help="Screen every party of a CSV (name,country,address) or JSON file instead.")
    @click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
    def screen(name, country, address, path, as_json) -> None:
        """Screen a party (or a file of parties) against every list in force. Exit code 1 when there is a hit."""
        from marshmallow import ValidationError

        from .schemas.screening import PartySchema, ScreenAnswerSchema
        from .services import screening as svc

        if path is not None:
            parties = _read_parties(path)
        elif name:
            try:
                parties = [PartySchema().load({"name": name, "country": country, "address": address})]
            except ValidationError as exc:
                raise click.UsageError(f"{exc.messages}") from None
        else:
            raise click.UsageError("give a NAME or --file")
        app = _app()
        config = app.config["COMPLIANCE"]
        answer = svc.screen_parties(app.extensions["db"], parties, config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
        if as_json:
            click.echo(json.dumps(ScreenAnswerSchema().dump(answer), indent=2, ensure_ascii=False))
        else:
            lists_txt = ", ".join(f"{x['list']} v{x['version']} ({x['source_date']}, {x['entries']} entries)"
                                  for x in answer["lists"])
            click.echo(f"screened against {lists_txt or 'no list'}; threshold {answer['threshold']:g}")
            for r in answer["results"]:
                p = r["party"]
                click.echo(f"{p['name']}" + (f" [{p['country']}]" if p.get("country") else "") + f": {r['status']}")
                for h in r["hits"]:
                    e = h["entry"]
                    flag = " (cleared)" if h["cleared"] else ""
                    click.echo(f"  {h['score']:6.1f}  {h['list']}/{h['source']}  {e['name']}  matched "
                               f"{h['matched_name']!r}  {e['federal_register_notice'] or '(no citation)'}{flag}")
                    click.echo(f"          why: {h['why']}")
        if any(r["status"] == "hit" for r in answer["results"]):
            sys.exit(1)
