"""Import service and CLI: the CSV layout, counts that always add up, upsert, the sample catalogue."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bench.audit_pipeline import csv_bytes
from compliance.models import ImportReport, Product
from compliance.services.catalogues import create_catalogue, ensure_sample_catalogue
from compliance.services.import_cells import RowError, csv_row_to_spec
from compliance.services.imports import import_file


def test_csv_layout_maps_to_the_product_schema_fields():
    spec = csv_row_to_spec({"name": "X", "throughput": "fp8:1979; fp16:989.5;int8:10:sparse", "dense_fp4_tops": "5",
                            "logic_dies": "814:np;120:planar;50", "components": "A*8;B", "datacenter": "TRUE",
                            "die_area_mm2": "", "tpp": "4800", "source_url": "https://x"})
    assert spec == {"name": "X", "tpp": 4800, "datacenter": True,
                    "throughput": [{"format": "fp8", "dense_tops": 1979}, {"format": "fp16", "dense_tops": 989.5},
                                   {"format": "int8", "sparse_tops": 10}, {"format": "fp4", "dense_tops": 5}],
                    "logic_dies": [{"area_mm2": 814, "non_planar": True}, {"area_mm2": 120, "non_planar": False},
                                   {"area_mm2": 50}],
                    "components": [{"product": {"sku": "A"}, "count": 8}, {"product": {"sku": "B"}, "count": 1}],
                    "sources": [{"url": "https://x"}]}


@pytest.mark.parametrize("row,field", [
    ({"name": "X", "tpp": "1,000"}, "tpp"),
    ({"name": "X", "throughput": "fp8"}, "throughput"),
    ({"name": "X", "logic_dies": "800:finfet"}, "logic_dies"),
    ({"name": "X", "components": "A*two"}, "components"),
    ({"name": "X", "datacenter": "yes"}, "datacenter"),
    ({"name": "X", "tpp": "nan"}, "tpp"),
])
def test_bad_csv_cells_name_their_column(row, field):
    with pytest.raises(RowError) as exc:
        csv_row_to_spec(row)
    assert exc.value.field == field


def test_counts_add_up_and_reimport_creates_no_duplicates(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = create_catalogue(db, "syn")
    data = csv_bytes(3000) + b"BROKEN,Broken,Acme,,ic,maybe,fp8:1,1,1,1,\n"
    first = import_file(db, store, cat.id, io.BytesIO(data), "csv", "s.csv", batch_rows=700)
    assert (first.rows_read, first.imported, first.rejected, first.created) == (3001, 3000, 1, 3000)
    again = import_file(db, store, cat.id, io.BytesIO(data), "csv", "s.csv", batch_rows=700)
    assert (again.created, again.updated, again.rejected) == (0, 3000, 1)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Product).where(Product.catalogue_id == cat.id)) == 3000
        assert s.scalar(select(func.count()).select_from(Product).where(Product.status.is_(None))) == 0
        reps = s.scalars(select(ImportReport).order_by(ImportReport.id)).all()
        assert [(r.rows_read, r.imported, r.rejected) for r in reps] == [(3001, 3000, 1)] * 2
        assert reps[0].errors == [{"row": 3001, "field": "datacenter", "problem": "must be true or false, got 'maybe'"}]


def test_parallel_import_stores_exactly_what_a_serial_import_stores(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    data = csv_bytes(2500) + b"BAD,Bad,Acme,,ic,true,fp8:x,1,1,1,\n" + b"\n".join(csv_bytes(30, seed=9).splitlines()[1:])
    reports, stored = [], []
    for workers in (1, 2):
        cat = create_catalogue(db, f"w{workers}")
        rep = import_file(db, store, cat.id, io.BytesIO(data), "csv", "s.csv", batch_rows=600, workers=workers)
        reports.append((rep.rows_read, rep.imported, rep.rejected, rep.created, rep.duplicates, rep.errors, rep.warnings))
        with db.session() as s:
            stored.append(s.execute(select(Product.sku, Product.spec, Product.tpp, Product.performance_density,
                                           Product.eccn, Product.status).where(Product.catalogue_id == cat.id)
                                    .order_by(Product.sku)).all())
    assert reports[0] == reports[1] and reports[0][:5] == (2531, 2530, 1, 2500, 30)
    assert stored[0] == stored[1] and len(stored[0]) == 2500


def test_sample_catalogue_is_imported_once(make_app):
    app = make_app()
    path = str(Path(app.config["COMPLIANCE"].RULES_DIR).parent / "compliance" / "data" / "sample_catalogue.json")
    rep = ensure_sample_catalogue(app, path)
    assert rep["rejected"] == 0 and rep["imported"] == len(json.load(open(path))["products"])
    assert ensure_sample_catalogue(app, path) is None


def test_cli_imports_then_audits_a_file_and_writes_the_report(tmp_path, monkeypatch, schema_templates):
    from compliance.cli import main

    _provision(schema_templates, f"sqlite:///{tmp_path / 'cli.db'}")  # create_app() does not migrate
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CELERY_BROKER_URL", "")
    monkeypatch.setenv("SAMPLE_CATALOGUE", "")
    src = tmp_path / "cat.csv"
    src.write_bytes(csv_bytes(500) + b"BAD,Bad,Acme,,ic,true,fp8:x,1,1,1,\n")
    out = tmp_path / "report.csv"
    runner = CliRunner()
    r = runner.invoke(main, ["audit", "run", str(src), "--catalogue", "cli", "--as-of", "2025-06-01", "--to", "CN,AE",
                             "--wait", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "500 imported" in r.output and "1 rejected" in r.output and "row 501: throughput" in r.output
    assert "done: 500 products" in r.output
    assert len(out.read_text().splitlines()) == 1 + 500 * 2
    r = runner.invoke(main, ["audit", "wait", "1", "--out", str(tmp_path / "r.json")])
    assert r.exit_code == 0 and len(json.loads((tmp_path / "r.json").read_text())["results"]) == 1000
    r = runner.invoke(main, ["audit", "run", "--catalogue", "nope", "--to", "CN"])
    assert r.exit_code != 0 and "no catalogue named 'nope'" in r.output


def test_validation_fast_path_agrees_with_marshmallow_on_every_row():
    """Differential test: for many rows (valid and invalid, every shape the fast path accepts and
    edge values), the loader gives exactly ProductSchema.load's result or its error."""
    import random

    from marshmallow import ValidationError

    from compliance.schemas.product import ProductSchema
    from compliance.schemas.product_loader import ProductLoader

    loader = ProductLoader()
    schema = ProductSchema()
    rnd = random.Random(3)
    numbers = [0, 0.0, -1, -0.5, 1, 2.5, 1e308, 10**400, float("nan"), float("inf"), True, "5", None]
    rows = []
    for i in range(6000):
        r = {"sku": f"S{i}", "name": rnd.choice(["n", "x" * 300, "x" * 301, "", "Chip"]) if i % 7 == 0 else f"Chip {i}"}
        for f in ("tpp", "die_area_mm2", "io_bandwidth_gb_per_s", "memory_bandwidth_gb_per_s", "package_area_mm2",
                  "transistors"):
            if rnd.random() < 0.3:
                r[f] = rnd.choice(numbers) if rnd.random() < 0.3 else rnd.uniform(1, 5000)
        if rnd.random() < 0.5:
            r["kind"] = rnd.choice(["ic", "hbm", "system", "gpu"])
        if rnd.random() < 0.5:
            r["datacenter"] = rnd.choice([True, False, "true", 1, None])
        if rnd.random() < 0.6:
            r["throughput"] = [{"format": rnd.choice(["fp8", "fp16", "fp99"]),
                                rnd.choice(["dense_tops", "sparse_tops"]): rnd.choice(numbers + [rnd.uniform(1, 900)] * 8)}
                               for _ in range(rnd.choice([1, 1, 2]))]
            if rnd.random() < 0.05:
                r["throughput"][0]["dense_tops"] = r["throughput"][0]["sparse_tops"] = 1
        if rnd.random() < 0.4:
            r["logic_dies"] = [{"area_mm2": rnd.choice([rnd.uniform(1, 900)] * 5 + numbers[:6])}
                               | ({"non_planar": rnd.choice([True, False, "no"])} if rnd.random() < 0.5 else {})]
        if rnd.random() < 0.05:
            r["vendor"] = rnd.choice(["", "NVIDIA", None, "v" * 201])
        rows.append(r)
    rows += rows[:3000]  # repeated shapes exercise the fast path
    fast_used = 0
    for r in rows:
        try:
            expected = ("ok", schema.load(dict(r)))
        except ValidationError as exc:
            expected = ("error", exc.messages)
        before = loader.stats["fast"]
        try:
            got = ("ok", loader.load(dict(r)))
        except ValidationError as exc:
            got = ("error", exc.messages)
        fast_used += loader.stats["fast"] - before
        assert got == expected, r
    assert fast_used > 300  # the fast path really was taken, and agreed every time


def test_rows_whose_derived_metrics_overflow_are_rejected_even_on_the_validation_fast_path(make_app):
    """A row of an already-proven shape (same fields, same signs) but with magnitudes that make
    TPP / die area overflow must be rejected, not stored with performance_density = Infinity."""
    from compliance.schemas import product_loader

    product_loader.default_loader().proven.clear()
    app = make_app()
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = create_catalogue(db, "overflow")
    rows = [{"sku": "OK", "name": "ok", "tpp": 4800.0, "die_area_mm2": 814.0},
            {"sku": "OK2", "name": "ok", "tpp": 4800.0, "die_area_mm2": 814.0},
            {"sku": "BIG", "name": "big", "tpp": 1e308, "die_area_mm2": 1e-300}]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    result = import_file(db, store, cat.id, io.BytesIO(data), "jsonl", "o.jsonl")
    assert (result.imported, result.rejected) == (2, 1)
    with db.session() as s:
        rep = s.get(ImportReport, result.report_id)
        assert rep.errors[0]["row"] == 3 and rep.errors[0]["field"] == "die_area_mm2"
        assert "overflows" in rep.errors[0]["problem"]


def test_a_row_error_survives_pickling_to_the_validation_pool():
    import pickle

    err = pickle.loads(pickle.dumps(RowError("_row", "invalid JSON")))
    assert (err.field, err.problem) == ("_row", "invalid JSON")


def test_a_parallel_import_of_a_file_with_unparseable_rows_finishes_and_reports_them(make_app):
    """`compliance catalogue import` validates with a process pool: a JSON Lines file with a line
    that is not JSON used to kill the pool worker and hang the import for ever."""
    import threading

    app = make_app()
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = create_catalogue(db, "pool")
    data = b'{"sku": "A", "name": "a", "tpp": 100}\nnot json at all\n[1, 2]\n{"sku": "B", "name": "b", "tpp": 5000}\n'
    done = {}
    worker = threading.Thread(target=lambda: done.update(
        result=import_file(db, store, cat.id, io.BytesIO(data), "jsonl", "p.jsonl", workers=2)), daemon=True)
    worker.start()
    worker.join(60)
    assert "result" in done, "the parallel import hung"
    result = done["result"]
    assert (result.rows_read, result.imported, result.rejected) == (4, 2, 2)


@pytest.mark.parametrize("name, content, fragment", [
    ("garbage.csv", b"\xff\xfe\x00binary", "not UTF-8 text"),
    ("garbage.bin", b"sku,name\nA,B\n", "cannot tell the file format"),
    ("bad.csv", b"sku,name,colour\nA,B,red\n", "bad CSV header"),
])
def test_cli_import_of_an_unreadable_file_is_a_one_line_error_not_a_traceback(tmp_path, monkeypatch, schema_templates, name, content,
                                                                             fragment):
    from compliance.cli import main

    _provision(schema_templates, f"sqlite:///{tmp_path / 'cli.db'}")  # create_app() does not migrate
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CELERY_BROKER_URL", "")
    monkeypatch.setenv("SAMPLE_CATALOGUE", "")
    src = tmp_path / name
    src.write_bytes(content)
    r = CliRunner().invoke(main, ["catalogue", "import", str(src), "--catalogue", "cli"])
    assert r.exit_code == 1, r.output
    assert f"Error: {src}: " in r.output and fragment in r.output, r.output


def test_rejected_rows_are_reported_in_file_order_even_when_a_system_row_is_resolved_last(make_app):
    app = make_app()
    db, store = app.extensions["db"], app.extensions["rulebooks"]
    cat = create_catalogue(db, "order")
    data = (b"sku,name,kind,tpp,components\n"
            b"A,a,ic,100,\n"
            b"S,s,system,,NOPE*8\n"
            b"B,b,ic,-1,\n")
    result = import_file(db, store, cat.id, io.BytesIO(data), "csv", "o.csv")
    with db.session() as s:
        rep = s.get(ImportReport, result.report_id)
        assert [(e["row"], e["field"]) for e in rep.errors] == [(2, "components"), (3, "tpp")]


def _provision(schema_templates, url: str) -> None:
    from compliance.config import Config

    schema_templates.provision(url, Config.from_env({}).RULES_DIR)
