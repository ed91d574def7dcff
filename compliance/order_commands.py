"""CLI: `compliance orders check FILE` and `compliance orders list` (registered by cli.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def register(main: click.Group) -> None:
    @main.group("orders")
    def orders_group() -> None:
        """Orders: check (classify + screen + hold), list the holds queue."""

    @orders_group.command("check")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--by", "actor", default="cli", show_default=True, help="Who enters the order (recorded).")
    @click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
    def orders_check(path, actor, as_json) -> None:
        """Check an order (the POST /orders body as JSON) and record it. Exit code 1 when it is held."""
        from marshmallow import ValidationError

        from .api import _flatten
        from .cli import _app
        from .engine.errors import ComplianceError
        from .schemas.orders import OrderCreateSchema, OrderSchema
        from .services import orders as svc

        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise click.UsageError(f"{path}: not valid JSON ({exc})") from None
        try:
            body = OrderCreateSchema().load(raw)
        except ValidationError as exc:
            for p in _flatten(exc.messages):
                click.echo(p, err=True)
            raise SystemExit(2) from None
        app = _app()
        config = app.config["COMPLIANCE"]
        try:
            view = svc.create_order(app.extensions["db"], app.extensions["rulebooks"], body, actor,
                                    config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
        except ComplianceError as exc:
            raise click.ClickException(exc.message) from None
        if as_json:
            click.echo(json.dumps(OrderSchema().dump(view), indent=2, ensure_ascii=False))
        else:
            click.echo(f"order {view['id']} {view['reference']} to {view['ship_to']}: {view['status']}")
            for ln in view["lines"]:
                c = ln["classification"]
                click.echo(f"  line {ln['seq']} {ln['sku'] or ln['product'].get('name', '')} x{ln['quantity']}: "
                           f"{c['eccn'] or c['status']} -> {ln['status']}")
                for r in ln["reasons"]:
                    click.echo(f"    {r['code']}: {r['message']}" + (f" [{r['citation']}]" if r.get("citation") else ""))
        if view["status"] == "held":
            sys.exit(1)

    @orders_group.command("list")
    @click.option("--status", type=click.Choice(["held", "released", "rejected"]), default=None)
    def orders_list(status) -> None:
        """Orders, newest first (the holds queue with --status held)."""
        from .cli import _app
        from .services import orders as svc

        page = svc.list_orders(_app().extensions["db"], 1, 500, status)
        for o in page.items:
            held = sum(1 for ln in o["lines"] if ln["status"] == "held")
            click.echo(f"{o['id']:>6}  {o['reference']:<20} {o['ship_to']}  {o['status']:<9} "
                       f"{held}/{len(o['lines'])} lines held")
