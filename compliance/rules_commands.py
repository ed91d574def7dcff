"""CLI: the rule workflow, `compliance rules draft|drafts|edit|preview|publish|rollback|diff|versions`
(registered by cli.py). Each command calls the same service as the API (services/rule_*.py) and
acts as `--actor` (recorded in the audit trail like an API key's name)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

ACTOR_HELP = "Who makes the change (recorded in the audit trail). Default: $USER (cli)."


def _app():
    from .cli import _app as make

    return make()


def _actor(value: str | None) -> str:
    import getpass

    return value or f"{getpass.getuser()} (cli)"


def _ops(op_json: tuple[str, ...], ops_file: Path | None) -> list[dict]:
    """Edit operations from --op JSON objects and/or a --file holding a list (JSON or YAML)."""
    ops: list = []
    for i, text in enumerate(op_json, 1):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"op {i} is not JSON: {exc}", param_hint="--op") from None
        ops.extend(value if isinstance(value, list) else [value])
    if ops_file is not None:
        import yaml

        try:
            value = yaml.safe_load(ops_file.read_text(encoding="utf-8"))
        except (ValueError, yaml.YAMLError) as exc:
            raise click.BadParameter(f"{ops_file}: not JSON or YAML: {exc}", param_hint="--file") from None
        ops.extend(value if isinstance(value, list) else [value])
    if not ops:
        raise click.UsageError("give at least one edit operation: --op '{\"op\": ...}' or --file ops.yaml")
    bad = [i for i, o in enumerate(ops) if not isinstance(o, dict)]
    if bad:
        raise click.BadParameter(f"operation(s) {bad} are not objects", param_hint="--op")
    return ops


def _print_validation(v: dict | None) -> None:
    if not v:
        return
    tests = v.get("tests") or {}
    state = click.style("valid", fg="green") if v.get("valid") else click.style("invalid", fg="red")
    click.echo(f"  {state}: pack tests {tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed")
    for e in (v.get("errors") or [])[:20]:
        click.echo(f"    {e if isinstance(e, str) else json.dumps(e)}")


IF_MATCH_HELP = ("The draft's ETag as you read it (printed by `rules draft`, `rules drafts` and `rules edit`, e.g. "
                 "'\"7\"'): refused if the draft changed since. Default: its ETag when this command starts.")


def _if_match(app, draft_id: int, value: str | None) -> str:
    """The If-Match to send: the one given, or the draft's ETag as read now (so that the edit applies to
    the version this command read, never to one written in between)."""
    from .services import rule_drafts

    return value if value is not None else rule_drafts.current_etag(app.extensions["db"], draft_id)


def _print_draft(d: dict) -> None:
    click.echo(f"draft {d['id']} ({d['status']}) from version {d['base_version']}, by {d['author']}, "
               f"ETag {d['etag']}" + (f": {d['title']}" if d.get("title") else ""))
    _print_validation(d.get("validation"))


def _print_impact(p: dict) -> None:
    from .cli import echo_table

    click.echo(f"as of {p['as_of']}: {p['changed_products']} of {p['total_products']} products change "
               f"({p.get('changed_rows', 0)} product x destination rows)")
    rows = []
    for cat in p.get("catalogues") or []:
        for t in cat.get("transitions") or []:
            rows.append({"catalogue": cat["name"], "destination": t["destination"], "count": t["count"],
                         "from": f"{t['from']['eccn'] or '-'} {t['from']['requirement']}",
                         "to": f"{t['to']['eccn'] or '-'} {t['to']['requirement']}"})
    if rows:
        echo_table(rows, [("catalogue", "CATALOGUE"), ("destination", "DEST"), ("from", "FROM"), ("to", "TO"),
                          ("count", "ROWS")])


def wait_for_run(app, run_id: int, quiet: bool = False, timeout: float | None = None) -> dict:
    """Wait for a re-evaluation run with a progress bar (products re-evaluated); its final view."""
    from sqlalchemy import func, select

    from .catalogue_commands import progress_bar
    from .models import ReevaluationChunk
    from .services.reevaluation import get_run

    db = app.extensions["db"]
    deadline = None if timeout is None else time.monotonic() + timeout
    run = get_run(db, run_id)
    with progress_bar(max(run["total"] or 1, 1), f"re-evaluation {run_id}", quiet=quiet) as bar:
        while True:
            run = get_run(db, run_id)
            if run["total"] and bar.length != run["total"]:
                bar.length = run["total"]
            with db.session() as s:
                done = s.scalar(select(func.coalesce(func.sum(ReevaluationChunk.size), 0)).where(
                    ReevaluationChunk.run_id == run_id, ReevaluationChunk.status == "done")) or 0
            bar.update(max(0, done - bar.pos))
            if run["status"] in ("done", "failed"):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise click.ClickException(f"re-evaluation {run_id} still {run['status']} after {timeout}s")
            time.sleep(0.25)
    if run["status"] == "failed":
        raise click.ClickException(f"re-evaluation {run_id} failed: {run['error']}")
    return run


def register(main: click.Group) -> None:
    from .cli import echo_json, echo_table, json_option

    rules = main.commands["rules"]
    actor_option = click.option("--actor", default=None, help=ACTOR_HELP)
    as_of_option = click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                                help="Date the impact is measured on (default today).")

    @rules.command("versions")
    @json_option
    def versions(as_json: bool) -> None:
        """Published rule versions (newest first)."""
        from .services import rule_versions

        rows = rule_versions.list_versions(_app().extensions["db"])
        if as_json:
            echo_json(rows)
            return
        echo_table(rows, [("number", "VERSION"), ("revision", "REVISION"), ("author", "AUTHOR"),
                          ("created_at", "PUBLISHED"), ("reason", "REASON")])

    @rules.command("draft")
    @click.option("--from", "base", type=int, default=None, help="Version to start from (default the current one).")
    @click.option("--title", default="", help="What the draft is for.")
    @actor_option
    @json_option
    def draft(base, title, actor, as_json) -> None:
        """Start a draft: an editable copy of a published version."""
        from .services import rule_drafts

        d = rule_drafts.create_draft(_app().extensions["db"], _actor(actor), base, title)
        if as_json:
            echo_json({k: v for k, v in d.items() if k != "content"})
            return
        _print_draft(d)
        click.echo(f"edit it: compliance rules edit {d['id']} --op '{{\"op\": \"set_threshold\", ...}}'")

    @rules.command("drafts")
    @click.option("--status", type=click.Choice(["open", "published", "discarded"]), default=None)
    @json_option
    def drafts(status, as_json) -> None:
        """Drafts, newest first."""
        from .services import rule_drafts

        rows = rule_drafts.list_drafts(_app().extensions["db"], status)
        if as_json:
            echo_json(rows)
            return
        echo_table(rows, [("id", "DRAFT"), ("status", "STATUS"), ("etag", "ETAG"), ("base_version", "FROM"),
                          ("author", "AUTHOR"), ("updated_at", "UPDATED"), ("title", "TITLE")], empty="no drafts")

    @rules.command("edit")
    @click.argument("draft_id", type=int)
    @click.option("--op", "op_json", multiple=True, help="An edit operation as JSON (repeatable), e.g. "
                  "'{\"op\": \"set_threshold\", \"rule_id\": \"...\", \"path\": \"...\", \"value\": 4800}'.")
    @click.option("--file", "ops_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                  help="A JSON or YAML list of edit operations (the API's PATCH body ops).")
    @click.option("--if-match", "if_match", default=None, help=IF_MATCH_HELP)
    @actor_option
    @json_option
    def edit(draft_id, op_json, ops_file, if_match, actor, as_json) -> None:
        """Apply edit operations to a draft, all or none; then run the packs' own tests. Refused (the
        draft's current ETag named) if the draft changed since the ETag given with --if-match."""
        from .services import rule_drafts

        ops = _ops(op_json, ops_file)
        app = _app()
        d = rule_drafts.apply_edits(app.extensions["db"], draft_id, ops, _actor(actor), if_match=_if_match(app, draft_id, if_match))
        if as_json:
            echo_json({k: v for k, v in d.items() if k != "content"})
            return
        _print_draft(d)

    @rules.command("preview")
    @click.argument("draft_id", type=int)
    @as_of_option
    @click.option("--to", "to", default=None, help="Destinations (default each catalogue's watched ones).")
    @json_option
    def preview(draft_id, as_of, to, as_json) -> None:
        """Impact of publishing a draft: a dry run over every catalogue (nothing is stored)."""
        from .cli import _destinations
        from .services import rule_publish

        out = rule_publish.preview_draft(_app(), draft_id, as_of.date() if as_of else None, _destinations(to) or None)
        if as_json:
            echo_json(out)
            return
        click.echo(f"draft {draft_id}: version {out['base_version']} ({out['from_revision'][:12]}) -> "
                   f"{out['to_revision'][:12]}")
        _print_validation(out.get("validation"))
        _print_impact(out)

    def _published(app, result: dict, wait: bool, as_json: bool) -> None:
        run = wait_for_run(app, result["run_id"], quiet=as_json) if wait else None
        if as_json:
            echo_json(result | ({"reevaluation": run} if run else {}))
            return
        click.echo(f"published version {result['number']} (revision {result['revision'][:12]}); "
                   f"re-evaluation run {result['run_id']}")
        if result.get("impact"):
            i = result["impact"]
            click.echo(f"  impact: {i['changed_products']} of {i['total_products']} products change")
        if run:
            click.echo(f"  re-evaluated {run['total']} products: {run['changed_products']} changed, "
                       f"{run['change_records']} change records")

    publish_options = [
        click.option("--reason", required=True, help="Why the rules change (recorded with the version)."),
        as_of_option,
        click.option("--confirm", is_flag=True, help="Publish even past the storm guard (STORM_GUARD_SHARE)."),
        click.option("--wait/--no-wait", default=True, help="Wait for the re-evaluation with a progress bar."),
        actor_option, json_option]

    def with_options(f):
        for option in reversed(publish_options):
            f = option(f)
        return f

    @rules.command("publish")
    @click.argument("draft_id", type=int)
    @click.option("--if-match", "if_match", default=None, help=IF_MATCH_HELP)
    @with_options
    def publish(draft_id, if_match, reason, as_of, confirm, wait, actor, as_json) -> None:
        """Publish a draft as the next version; every catalogue is re-evaluated (409 if another publish won;
        refused if the draft changed since the ETag given with --if-match)."""
        from .services import rule_publish

        app = _app()
        result = rule_publish.publish_draft(app, draft_id, _actor(actor), reason, as_of.date() if as_of else None, confirm,
                                            if_match=_if_match(app, draft_id, if_match))
        _published(app, result, wait, as_json)

    @rules.command("rollback")
    @click.argument("version", type=int)
    @with_options
    def rollback(version, reason, as_of, confirm, wait, actor, as_json) -> None:
        """Publish an earlier version's content again, as a new version."""
        from .services import rule_publish

        app = _app()
        result = rule_publish.rollback_to(app, version, _actor(actor), reason, as_of.date() if as_of else None, confirm)
        _published(app, result, wait, as_json)

    @rules.command("diff")
    @click.argument("from_version", type=int)
    @click.argument("to_version", type=int)
    @json_option
    def diff(from_version, to_version, as_json) -> None:
        """Rule-by-rule, field-level differences between two published versions."""
        from .services import rule_diff

        out = rule_diff.diff_versions(_app().extensions["db"], from_version, to_version)
        if as_json:
            echo_json(out)
            return
        click.echo(f"version {from_version} ({out['from_revision'][:12]}) -> {to_version} ({out['to_revision'][:12]})")
        for key, items in out.items():
            if key in ("from", "to", "from_revision", "to_revision") or not items:
                continue
            click.echo(click.style(key.replace("_", " "), bold=True) + ":")
            for item in items if isinstance(items, list) else [items]:
                click.echo(f"  {item if isinstance(item, str) else json.dumps(item, default=str)}")
