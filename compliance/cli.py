"""The `compliance` command line: classify, rules, serve, setup, keys (and catalogue/audit commands)."""
from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from .engine.countries import COUNTRY_INDEX


def _app(web: bool = False):
    """The app the commands act through: without the HTTP layer (API, spec, console) unless they serve it."""
    from . import create_app

    return create_app(web=web)


def _load_table_products(path: Path) -> list[dict[str, Any]]:
    """Products of a CSV/TSV/XLSX file in the catalogue import's layout; systems' component SKUs are
    resolved against the file's other rows."""
    from .engine.errors import ComplianceError
    from .services.import_cells import RowError
    from .services.import_formats import detect_format, iter_rows

    fmt = detect_format(path.name)
    rows, problems = [], []
    try:
        with path.open("rb") as fh:
            for n, item in iter_rows(fh, fmt):
                if isinstance(item, RowError):
                    problems += [f"row {n}: {f}: {p}" for f, p in item.problems]
                else:
                    rows.append(item)
    except ComplianceError as exc:
        raise click.UsageError(f"{path}: {exc.message}") from None
    if problems:
        raise click.UsageError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:50]))
    by_sku = {r.get("sku") or r.get("name"): r for r in rows}
    for r in rows:
        for c in r.get("components") or []:
            ref = c.get("product", {}).get("sku") if set(c.get("product", {})) == {"sku"} else None
            if ref is not None:
                if ref not in by_sku or by_sku[ref] is r:
                    raise click.UsageError(f"{path}: {r.get('sku') or r['name']}: component {ref!r} is not in the file")
                c["product"] = by_sku[ref]
    return rows


def _load_products(path: Path) -> list[dict[str, Any]]:
    import yaml

    if path.suffix.lower() in (".csv", ".tsv", ".tab", ".xlsx", ".xlsm"):
        data = _load_table_products(path)
        if not data:
            raise click.UsageError(f"{path}: no products in the file")
        return data
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif path.suffix in (".jsonl", ".ndjson"):
            data = []
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        data.append(json.loads(line))
                    except ValueError as exc:
                        raise click.UsageError(f"{path}: line {n}: not valid JSON ({exc})") from None
        else:
            data = json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise click.UsageError(f"{path}: cannot be read as {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if isinstance(data, dict) and "products" in data:
        data = data["products"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise click.UsageError(f"{path}: expected a product, a list of products or {{'products': [...]}}")
    if not data:
        raise click.UsageError(f"{path}: no products in the file")
    return data


def _validate_products(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from marshmallow import ValidationError

    from .schemas.product import ProductSchema

    schema = ProductSchema()
    products, problems = [], []
    for i, item in enumerate(raw):
        item = {k: v for k, v in item.items()} if isinstance(item, dict) else item
        try:
            products.append(schema.load(item))
        except ValidationError as exc:
            from .api import _flatten

            problems += [f"product {i + 1}: {p}" for p in _flatten(exc.messages)]
    if problems:
        for p in problems:
            click.echo(p, err=True)
        raise SystemExit(2)
    return products


def _destinations(value: str | None, option: str = "--to") -> list[str]:
    if not value:
        return []
    codes = [c.strip().upper() for c in value.split(",") if c.strip()]
    bad = [c for c in codes if c not in COUNTRY_INDEX]
    if bad:
        raise click.BadParameter(f"unknown country code(s): {', '.join(bad)} (expected ISO 3166-1 alpha-2, "
                                 "e.g. CN,AE)", param_hint=option)
    return codes


class ComplianceGroup(click.Group):
    """The command group: a domain error (no such audit, bad input, a conflict) or a bad setting is a
    clear message and exit code 1 (2 for settings), never a traceback."""

    def invoke(self, ctx):
        from .config import ConfigError
        from .engine.errors import ComplianceError

        try:
            return super().invoke(ctx)
        except ComplianceError as exc:
            raise click.ClickException(error_line(exc)) from None
        except ConfigError as exc:
            click.echo(click.style("invalid configuration:", fg="red"), err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            raise SystemExit(2) from None
        finally:
            # Celery AsyncResults of the tasks a command sent sit in reference cycles; collected at interpreter
            # shutdown their __del__ talks to Redis and prints "Exception ignored in AsyncResult.__del__".
            # Collect them now, while the interpreter (and the Redis client) still works.
            _release_task_results()


def _release_task_results() -> None:
    """Celery keeps the AsyncResult of each task a command sent (subscribed on Redis) until the interpreter
    shuts down; their __del__ then talks to a Redis client that is half torn down and prints "Exception
    ignored in AsyncResult.__del__". Unsubscribe them now, while everything still works."""
    tasks = sys.modules.get("compliance.tasks")
    backend = getattr(getattr(tasks, "celery_app", None), "_local", None)
    backend = getattr(backend, "backend", None)
    pending = getattr(backend, "_pending_results", None)
    if backend is None or pending is None:
        return
    for mapping in pending:  # task id -> {id(result): result}
        for waiters in list(mapping.values()):
            for result in list(waiters.values()):
                try:
                    backend.remove_pending_result(result)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass


def error_line(exc) -> str:
    """A domain error as one line: the message, then each field's problems."""
    parts = [exc.message]
    errors = exc.errors
    if isinstance(errors, dict):
        for field_name, msgs in errors.items():
            msgs = msgs if isinstance(msgs, list) else [msgs]
            text = "; ".join(str(m) for m in msgs)
            if text and text not in exc.message:
                parts.append(f"{field_name}: {text}")
    elif isinstance(errors, list) and errors and not isinstance(errors[0], dict):
        parts += [str(e) for e in errors[:10]]
    return " - ".join(parts)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def echo_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], empty: str = "(none)") -> None:
    """Rows as an aligned table: `columns` are (key, heading); numbers are right-aligned."""
    if not rows:
        click.echo(empty)
        return

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
        if isinstance(v, (list, tuple)):
            return ",".join(map(str, v))
        if isinstance(v, dict):
            return ", ".join(f"{k} {n}" for k, n in sorted(v.items()))
        return str(v)

    text = [[cell(r.get(k)) for k, _ in columns] for r in rows]
    numeric = [all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) or r.get(k) is None
                   for r in rows) for k, _ in columns]
    widths = [max(len(h), *(len(t[i]) for t in text)) for i, (_, h) in enumerate(columns)]

    def line(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    click.echo(click.style(line([h for _, h in columns]), bold=True))
    for t in text:
        click.echo(line(t))


json_option = click.option("--json", "as_json", is_flag=True, help="Print the data as JSON instead of a table.")


@click.group(cls=ComplianceGroup)
@click.version_option(package_name="export-compliance-checker")
def main() -> None:
    """Export-control compliance for AI chips (ECCN 3A090/4A090). Not legal advice.

    Shell completion (bash, zsh, fish): eval "$(_COMPLIANCE_COMPLETE=bash_source compliance)"."""


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Evaluate the rules in force on this date (default today).")
@click.option("--to", "to", default="", help="Destinations, comma-separated ISO codes, e.g. CN,AE.")
@click.option("--hq", default=None, help="End user's headquarters country.")
@click.option("--rules", "rules_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Use this rules directory instead of the database's current version.")
@click.option("--json", "as_json", is_flag=True, help="Print the full decisions as JSON.")
@click.option("--transaction-type", "transaction_type", default="export", show_default=True,
              type=click.Choice(["export", "reexport", "in_country_transfer"]),
              help="Export from the US, reexport from abroad, or transfer within a country.")
def classify(file: Path, as_of, to: str, hq: str | None, rules_dir: str | None, as_json: bool,
             transaction_type: str) -> None:
    """Classify the product(s) in FILE: JSON, JSON Lines, YAML, or a CSV/TSV/XLSX in the catalogue import's
    layout (see `compliance catalogue import`)."""
    from .engine import build_table, evaluate, load_rulebook
    from .engine.explain import Explanation

    products = _validate_products(_load_products(file))
    day = as_of.date() if as_of else date.today()
    from marshmallow import ValidationError

    from .schemas.classify import supported_as_of

    try:
        supported_as_of(day)
    except ValidationError as exc:
        raise click.BadParameter(" ".join(exc.messages), param_hint="--as-of") from None
    dests = _destinations(to)
    hq_codes = _destinations(hq, "--hq")
    if hq and len(hq_codes) != 1:
        raise click.BadParameter("give one country code", param_hint="--hq")
    hq_code = hq_codes[0] if hq else None
    if rules_dir:
        rulebook = load_rulebook(str(Path(rules_dir).resolve()))
        result = evaluate(build_table(products), rulebook, day, dests, hq_code, transaction_type)
        ex = Explanation.of(result)
        decisions = [{"product": {k: p.get(k) for k in ("sku", "name", "vendor")}, "classification": c,
                      "licences": lic, "as_of": day.isoformat(), "ruleset_revision": rulebook.revision}
                     for p, c, lic in zip(products, ex.classifications(result.table.top), ex.licences())]
    else:
        from .services.classification import classify_products

        app = _app()
        decisions = classify_products(app.extensions["rulebooks"], products, day, dests, hq_code,
                                      transaction_type=transaction_type).all()
    if as_json:
        click.echo(json.dumps(decisions if len(decisions) > 1 else decisions[0], indent=2, default=str))
        return
    for d in decisions:
        click.echo(render_decision(d))


def render_decision(d: dict[str, Any]) -> str:
    """Human-readable decision: classification, reason, margins and one line per destination."""
    c = d["classification"]
    p = d["product"]
    lines = [click.style(f"{p.get('vendor', '')} {p.get('name', '')}".strip(), bold=True)
             + f"  (as of {d['as_of']}, rules {d['ruleset_revision'][:12]})"]
    status = c["status"]
    colour = {"controlled": "red", "not_controlled": "green", "indeterminate": "yellow"}[status]
    lines.append(f"  ECCN: {c['eccn'] or '-'}   status: " + click.style(status, fg=colour))
    lines.append(f"  reason: {c['reason']}")
    m = c["metrics"]
    shown = ", ".join(f"{k}={m[k]}" for k in ("tpp", "performance_density", "io_bandwidth", "dram_bandwidth",
                                              "memory_bandwidth_density", "datacenter") if m.get(k) is not None)
    lines.append(f"  metrics: {shown} (tpp from {m.get('tpp_source')})")
    for note in c.get("notes") or []:
        lines.append(f"  note: {note}")
    if c["missing"]:
        lines.append("  missing: " + ", ".join(c["missing"]))
    for lic in d["licences"]:
        req = lic["requirement"]
        colour = {"license_required": "red", "no_license_required": "green", "indeterminate": "yellow"}[req]
        extra = []
        if lic["review_policy"]:
            extra.append(lic["review_policy"])
        if lic["exceptions"]:
            extra.append("exceptions " + ",".join(lic["exceptions"]))
        if lic["flags"]:
            extra.append("flags " + ",".join(lic["flags"]))
        lines.append(f"  -> {lic['destination']}: " + click.style(req, fg=colour)
                     + (f" ({'; '.join(extra)})" if extra else "")
                     + (f"  [{'; '.join(lic['citations'])}]" if lic["citations"] else ""))
    return "\n".join(lines)


@main.group()
def rules() -> None:
    """Rule packs and the rule workflow: validate, export; draft, edit, preview, publish, rollback, diff."""


@rules.command("validate")
@click.argument("directory", type=click.Path(exists=True, file_okay=False), required=False)
@json_option
def rules_validate(directory: str | None, as_json: bool) -> None:
    """Validate a rules directory (schema + every pack's test cases). Default: RULES_DIR."""
    from .config import Config
    from .engine import Rulebook, RulebookInvalid, load_rulebook_content
    from .engine.packtests import run_pack_tests

    directory = directory or Config.from_env().RULES_DIR
    try:
        rulebook = Rulebook(load_rulebook_content(directory))
    except RulebookInvalid as exc:
        if as_json:
            echo_json({"valid": False, "errors": exc.errors})
            raise SystemExit(1) from None
        click.echo(click.style(f"{len(exc.errors)} problem(s):", fg="red"), err=True)
        for e in exc.errors:
            click.echo(f"  {e}", err=True)
        raise SystemExit(1) from None
    results = run_pack_tests(rulebook)
    failed = [r for r in results if not r.passed]
    if as_json:
        echo_json({"valid": not failed, "packs": len(rulebook.packs), "rules": len(rulebook.rules),
                   "revision": rulebook.revision, "tests": {"passed": len(results) - len(failed), "failed": len(failed)},
                   "failures": [{"pack": r.pack, "name": r.name, "failures": r.failures} for r in failed]})
        if failed:
            raise SystemExit(1)
        return
    click.echo(f"{len(rulebook.packs)} packs, {len(rulebook.rules)} rules, revision {rulebook.revision[:16]}")
    for r in failed:
        click.echo(click.style(f"FAIL {r.pack}: {r.name}", fg="red"))
        for f in r.failures:
            click.echo(f"     {f}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise SystemExit(1)


@rules.command("export")
@click.option("--version", "version_number", type=int, default=None, help="Published version number (default current).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Directory to write YAML into.")
def rules_export(version_number: int | None, out_dir: str) -> None:
    """Export a published rule version back to the rules/ YAML layout."""
    from sqlalchemy import select

    from .models import RuleVersion
    from .services.rule_export import export_rulebook

    app = _app()
    db = app.extensions["db"]
    with db.session() as s:
        if version_number is None:
            version = app.extensions["rulebooks"].current_version(s)
        else:
            version = s.scalar(select(RuleVersion).where(RuleVersion.number == version_number))
            if version is None:
                raise click.BadParameter(f"no version {version_number}", param_hint="--version")
        files = export_rulebook(version.content, Path(out_dir))
    click.echo(f"wrote {len(files)} files to {out_dir}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web service (development server; production uses gunicorn, see docker-compose.yml)."""
    app = _app(web=True)
    config = app.config["COMPLIANCE"]
    click.echo(f"Export Compliance Checker on http://{host}:{port}/api/v1/docs  "
               f"(database {app.extensions['db'].engine.dialect.name}, "
               f"{'embedded jobs' if config.embedded else 'broker ' + str(config.CELERY_BROKER_URL)})")
    app.run(host=host, port=port, threaded=True)


@main.command()
@click.option("--sample/--no-sample", default=True, help="Import the bundled sample catalogue if there is none.")
def setup(sample: bool) -> None:
    """First-run set-up: migrate, seed rules, create a first admin key (printed once), load the sample catalogue."""
    from datetime import datetime, timezone

    from sqlalchemy import func, or_, select

    from .auth import create_api_key
    from .models import ApiKey

    app = _app()
    db = app.extensions["db"]
    upgrade_database(app)
    version, rulebook = app.extensions["rulebooks"].current()
    click.echo(f"database ready ({db.engine.dialect.name}); rule version {version.number}, revision {rulebook.revision[:16]}")
    with db.session() as s:
        now = datetime.now(timezone.utc)
        has_key = s.scalar(select(func.count()).select_from(ApiKey).where(
            ApiKey.revoked_at.is_(None), or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now)))
    if not has_key and app.config["COMPLIANCE"].AUTH_MODE == "required":
        from .config import EMBEDDED_KEY_FILE, embedded_database_url

        _, plain = create_api_key(db, "first admin", "admin", actor="setup")
        if app.config["COMPLIANCE"].DATABASE_URL == embedded_database_url():
            # the key file belongs to the embedded database: another database's key never overwrites it
            EMBEDDED_KEY_FILE.parent.mkdir(exist_ok=True)
            EMBEDDED_KEY_FILE.write_text(plain + "\n", encoding="utf-8")
            EMBEDDED_KEY_FILE.chmod(0o600)
            click.echo(click.style("First admin API key (shown once; also saved to instance/admin-key.txt):", bold=True))
        else:
            click.echo(click.style("First admin API key for this database (shown once, not saved to a file: "
                                   "store it now):", bold=True))
        click.echo(f"  {plain}")
    sample_path = app.config["COMPLIANCE"].SAMPLE_CATALOGUE
    if sample and sample_path:
        try:
            from .services.catalogues import ensure_sample_catalogue
        except ImportError:
            return
        report = ensure_sample_catalogue(app, sample_path)
        if report is not None:
            click.echo(f"sample catalogue imported: {report['imported']} products, {report['rejected']} rejected")


def upgrade_database(app) -> None:
    """Migrate the schema to the latest revision and seed rules/ as version 1 if no version exists."""
    app.extensions["db"].upgrade()
    app.extensions["rulebooks"].seed()


@main.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Migrate to the latest schema and seed the bundled rules on first use (idempotent; run before starting
    web and workers, as docker-compose's migrate step does)."""
    app = _app()
    upgrade_database(app)
    click.echo(f"database at the latest schema ({app.extensions['db'].engine.dialect.name})")


@main.group()
def keys() -> None:
    """API keys (stored hashed): create, list, rotate, revoke."""


KEY_ACTOR_HELP = "Who does it (recorded in the activity log, as an API key's name is). Default: $USER (cli)."


def _key_actor(value: str | None) -> str:
    from .rules_commands import _actor

    return _actor(value)


def _timestamp(ctx, param, value: str | None):
    """--expires-at: an ISO 8601 / RFC 3339 time; without an offset it is UTC."""
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r} (e.g. 2027-01-31T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _expiry_options(fn):
    fn = click.option("--expires-at", callback=_timestamp, default=None,
                      help="The key expires at this ISO 8601 time (no offset: UTC).")(fn)
    return click.option("--expires-in-days", type=click.IntRange(1), default=None,
                        help="The key expires this many days from now.")(fn)


def _key_row(view: dict) -> dict:
    return {**view, **{k: view[k].isoformat() if view[k] is not None else None
                       for k in ("created_at", "expires_at", "revoked_at", "last_used_at")}}


@keys.command("create")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["viewer", "auditor", "admin"]), required=True)
@_expiry_options
@click.option("--actor", default=None, help=KEY_ACTOR_HELP)
@json_option
def keys_create(name: str, role: str, expires_in_days: int | None, expires_at, actor: str | None,
                as_json: bool) -> None:
    """Create a key, optionally expiring; the key is printed once."""
    from .auth import create_api_key, expiry_from, key_view

    key, plain = create_api_key(_app().extensions["db"], name, role, actor=_key_actor(actor),
                                expires_at=expiry_from(expires_in_days, expires_at))
    if as_json:
        echo_json({**_key_row(key_view(key)), "key": plain})
        return
    expiry = f"  expires {key.expires_at.isoformat()}" if key.expires_at else ""
    click.echo(f"id {key.id}  role {key.role}  prefix {key.prefix}{expiry}")
    click.echo(plain)


@keys.command("rotate")
@click.argument("key_id", type=int)
@click.option("--overlap-hours", type=int, default=None,
              help="Hours the old key keeps working beside the new one (0-720; default 24).")
@_expiry_options
@click.option("--actor", default=None, help=KEY_ACTOR_HELP)
@json_option
def keys_rotate(key_id: int, overlap_hours: int | None, expires_in_days: int | None, expires_at,
                actor: str | None, as_json: bool) -> None:
    """Rotate a key: a new key for the same holder (same name and role), printed once; the old key expires
    after the overlap. The new key gets the old key's lifetime unless --expires-in-days / --expires-at."""
    from .auth import OVERLAP_HOURS_DEFAULT, expiry_from, key_view, rotate_api_key

    kwargs = {}
    if expires_in_days is not None or expires_at is not None:
        kwargs["expires_at"] = expiry_from(expires_in_days, expires_at)
    new, plain, old = rotate_api_key(_app().extensions["db"], key_id, actor=_key_actor(actor),
                                     overlap_hours=OVERLAP_HOURS_DEFAULT if overlap_hours is None else overlap_hours,
                                     **kwargs)
    if as_json:
        echo_json({**_key_row(key_view(new)), "key": plain, "previous": _key_row(key_view(old))})
        return
    expiry = f"  expires {new.expires_at.isoformat()}" if new.expires_at else ""
    click.echo(f"id {new.id}  role {new.role}  prefix {new.prefix}{expiry}  (replaces key {old.id})")
    click.echo(plain)
    click.echo(f"key {old.id} ({old.prefix}…) keeps working until {old.expires_at.isoformat()}", err=True)


@keys.command("revoke")
@click.argument("key_id", type=int)
@click.option("--actor", default=None, help=KEY_ACTOR_HELP)
def keys_revoke(key_id: int, actor: str | None) -> None:
    """Revoke a key by id."""
    from .auth import revoke_api_key

    key = revoke_api_key(_app().extensions["db"], key_id, actor=_key_actor(actor))
    click.echo(f"revoked key {key.id} ({key.prefix}…)")


@keys.command("list")
@json_option
def keys_list(as_json: bool) -> None:
    """List keys with state, expiry and rotation links (never the keys themselves)."""
    from .auth import key_view, list_api_keys

    rows = [_key_row(key_view(k)) for k in list_api_keys(_app().extensions["db"])]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, [("id", "ID"), ("prefix", "PREFIX"), ("role", "ROLE"), ("state", "STATE"),
                          ("expires_at", "EXPIRES"), ("replaced_by", "REPLACED BY"), ("name", "NAME")])


def register_flask_commands(app) -> None:
    """Expose the same commands under `flask --app compliance` for people who expect that."""
    app.cli.add_command(main, "compliance")


for _extra in ("catalogue_commands", "determination_commands", "screening_commands", "order_commands", "rules_commands"):
    try:
        _module = __import__(f"compliance.{_extra}", fromlist=["register"])
        _module.register(main)
    except ModuleNotFoundError as _exc:
        if _exc.name != f"compliance.{_extra}":
            raise

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
