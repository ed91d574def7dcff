"""CLI: `compliance determinations record|approve|list|export` (registered by cli.py)."""
from __future__ import annotations

import json
from pathlib import Path

import click


def _app():
    from .cli import _app as make

    return make()


def _catalogue_id(db, name: str) -> int:
    from .services.catalogues import catalogue_by_name

    cat = catalogue_by_name(db, name)
    if cat is None:
        raise click.BadParameter(f"no catalogue named {name!r}", param_hint="--catalogue")
    return cat.id


def _figures(values: tuple[str, ...]) -> dict:
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE, e.g. tpp=4800", param_hint="--figure")
        try:
            value: object = float(raw)
        except ValueError:
            value = raw
        out[key.strip()] = value
    return out


def _fail(exc) -> click.ClickException:
    problems = "; ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in (exc.errors or {}).items())
    return click.ClickException(exc.message + (f" ({problems})" if problems else ""))


def register(main: click.Group) -> None:
    @main.group()
    def determinations() -> None:
        """Classification determinations: record, approve, list, export."""

    @determinations.command("record")
    @click.option("--catalogue", "name", required=True, help="Catalogue name.")
    @click.option("--sku", required=True, help="The product's SKU.")
    @click.option("--eccn", required=True, help="The determined ECCN (e.g. 3A090.a), EAR99 or NOT_SUBJECT.")
    @click.option("--by", "by", required=True, help="The officer recording it (name).")
    @click.option("--datasheet", default=None, help="Datasheet reference or attachment name.")
    @click.option("--text", default=None, help="The reasoning.")
    @click.option("--figure", "figures", multiple=True, help="A spec figure used, NAME=VALUE (repeatable).")
    @click.option("--revision", default=None, help="Rule revision it is made under (default: the current one).")
    def record(name, sku, eccn, by, datasheet, text, figures, revision) -> None:
        """Record a determination for a catalogue product."""
        from .engine.errors import ComplianceError
        from .services.determinations import record_determination

        app = _app()
        db = app.extensions["db"]
        basis = {"spec_figures": _figures(figures), "datasheet": datasheet, "text": text}
        try:
            d = record_determination(db, app.extensions["rulebooks"], _catalogue_id(db, name), sku, eccn, basis,
                                     f"{by} (cli)", revision)
        except ComplianceError as exc:
            raise _fail(exc) from None
        computed = d["computed"]["eccn"] or d["computed"]["status"]
        click.echo(f"determination {d['id']}: {d['sku']} {d['eccn']} ({d['state']}); computed {computed} "
                   f"under rule version {d['rule_version']}"
                   + ("" if d["agrees_with_computed"] else " -- disagrees: needs review"))

    @determinations.command("approve")
    @click.argument("determination_id", type=int)
    @click.option("--by", "by", required=True, help="The approving officer (must differ from the recorder).")
    @click.option("--note", default=None)
    def approve(determination_id, by, note) -> None:
        """Approve a determination awaiting four eyes."""
        from .engine.errors import ComplianceError
        from .services.determinations import approve_determination

        try:
            d = approve_determination(_app().extensions["db"], determination_id, f"{by} (cli)", note)
        except ComplianceError as exc:
            raise _fail(exc) from None
        click.echo(f"determination {d['id']}: approved by {d['approval']['approved_by']} ({d['state']})")

    @determinations.command("list")
    @click.option("--catalogue", "name", required=True, help="Catalogue name.")
    @click.option("--needs-review", is_flag=True, help="Only products whose determination needs review.")
    @click.option("--json", "as_json", is_flag=True, help="JSON output.")
    def list_(name, needs_review, as_json) -> None:
        """Computed vs determined for every product of a catalogue."""
        from dataclasses import asdict

        from .services.determinations import catalogue_standings

        db = _app().extensions["db"]
        page = catalogue_standings(db, _catalogue_id(db, name), 1, 10**9, True if needs_review else None)
        if as_json:
            click.echo(json.dumps([{**asdict(x), "state": x.state} for x in page.items], indent=2, default=str))
            return
        for x in page.items:
            det = x.determination["eccn"] if x.determination else "-"
            computed = x.computed["eccn"] or x.computed["status"] or "-"
            click.echo(f"{x.sku:<30} computed {computed:<16} determined {det:<12} {x.state}")
            for reason in x.reasons:
                click.echo(f"    {reason}")
        c = page.counts
        click.echo(f"{c['products']} products, {c['needs_review']} need review")

    @determinations.command("export")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="Output file (.csv, .xlsx or .json).")
    @click.option("--catalogue", "name", default=None, help="Only this catalogue.")
    def export(out: Path, name) -> None:
        """Write every determination with its history (CSV or XLSX with formula cells neutralised, or JSON)."""
        from .services import determination_export as ex

        db = _app().extensions["db"]
        cid = _catalogue_id(db, name) if name else None
        suffix = out.suffix.lower()
        if suffix == ".xlsx":
            with out.open("wb") as fh:
                for piece in ex.iter_xlsx(db, cid):
                    fh.write(piece)
        else:
            with out.open("w", encoding="utf-8", newline="") as fh:
                for piece in (ex.iter_json if suffix == ".json" else ex.iter_csv)(db, cid):
                    fh.write(piece)
        click.echo(f"determinations written to {out}")
