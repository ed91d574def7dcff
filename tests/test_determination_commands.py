"""`compliance determinations record|approve|list|export` on a fresh SQLite database."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from compliance.cli import main
from tests.conftest import H20, H100


@pytest.fixture
def runner(tmp_path, monkeypatch, schema_templates):
    from compliance.config import Config

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    schema_templates.provision(url, Config.from_env({}).RULES_DIR)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SAMPLE_CATALOGUE", "")
    monkeypatch.setenv("CELERY_BROKER_URL", "")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    runner = CliRunner()
    path = tmp_path / "chips.json"
    path.write_text(json.dumps([dict(H100, sku="h100"), dict(H20, sku="h20")]))
    r = runner.invoke(main, ["catalogue", "import", str(path), "--catalogue", "chips"])
    assert r.exit_code == 0, r.output
    return runner


def test_record_list_and_export_determinations(runner, tmp_path):
    r = runner.invoke(main, ["determinations", "record", "--catalogue", "chips", "--sku", "h100", "--eccn", "EAR99",
                             "--by", "Ada", "--text", "=1+1", "--figure", "tpp=15832", "--datasheet", "DS-1"])
    assert r.exit_code == 0, r.output
    assert "h100 EAR99 (in_force); computed 3A090.a under rule version 1 -- disagrees: needs review" in r.output
    r = runner.invoke(main, ["determinations", "record", "--catalogue", "chips", "--sku", "h20", "--eccn", "ear99",
                             "--by", "Ada", "--text", "below 3A090"])
    assert r.exit_code == 0 and "h20 EAR99 (in_force)" in r.output and "disagrees" not in r.output
    r = runner.invoke(main, ["determinations", "list", "--catalogue", "chips"])
    assert r.exit_code == 0, r.output
    assert "h100" in r.output and "needs_review" in r.output and "computed 3A090.a under revision" in r.output
    assert "2 products, 1 need review" in r.output
    r = runner.invoke(main, ["determinations", "list", "--catalogue", "chips", "--needs-review", "--json"])
    assert [x["sku"] for x in json.loads(r.output)] == ["h100"]
    out = tmp_path / "dets.csv"
    r = runner.invoke(main, ["determinations", "export", "--out", str(out), "--catalogue", "chips"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(x["sku"], x["eccn"], x["needs_review"]) for x in rows] == [("h100", "EAR99", "true"),
                                                                          ("h20", "EAR99", "false")]
    assert rows[0]["basis_text"] == "'=1+1" and rows[0]["recorded_by"] == "Ada (cli)"
    out_json = tmp_path / "dets.json"
    runner.invoke(main, ["determinations", "export", "--out", str(out_json)])
    assert [x["sku"] for x in json.loads(out_json.read_text())["items"]] == ["h100", "h20"]
    out_xlsx = tmp_path / "dets.xlsx"
    assert runner.invoke(main, ["determinations", "export", "--out", str(out_xlsx)]).exit_code == 0
    from openpyxl import load_workbook

    ws = load_workbook(out_xlsx).active
    header = [c.value for c in ws[1]]
    assert ws.max_row == 3 and ws.cell(2, header.index("basis_text") + 1).value == "=1+1"  # a string, not a formula
    assert ws.cell(2, header.index("basis_text") + 1).data_type == "s"


def test_bad_input_exits_non_zero_naming_the_field(runner):
    r = runner.invoke(main, ["determinations", "record", "--catalogue", "chips", "--sku", "h100", "--eccn", "3A090.q",
                             "--by", "Ada", "--text", "x"])
    assert r.exit_code == 1 and "eccn" in r.output and "3A090 has the paragraphs" in r.output
    r = runner.invoke(main, ["determinations", "record", "--catalogue", "chips", "--sku", "h100", "--eccn", "EAR99",
                             "--by", "Ada"])
    assert r.exit_code == 1 and "basis" in r.output
    r = runner.invoke(main, ["determinations", "record", "--catalogue", "nope", "--sku", "h100", "--eccn", "EAR99",
                             "--by", "Ada", "--text", "x"])
    assert r.exit_code == 2 and "--catalogue" in r.output
    r = runner.invoke(main, ["determinations", "record", "--catalogue", "chips", "--sku", "h100", "--eccn", "EAR99",
                             "--by", "Ada", "--text", "x", "--figure", "tpp"])
    assert r.exit_code == 2 and "--figure" in r.output


def test_four_eyes_from_the_command_line(runner, tmp_path):
    from compliance import create_app
    from compliance.services.catalogues import catalogue_by_name
    from compliance.services.determinations import set_policy

    app = create_app()
    db = app.extensions["db"]
    set_policy(db, catalogue_by_name(db, "chips").id, True, "admin")
    r = runner.invoke(main, ["determinations", "record", "--catalogue", "chips", "--sku", "h20", "--eccn", "EAR99",
                             "--by", "Ada", "--text", "x"])
    assert "(pending_approval)" in r.output
    det_id = r.output.split()[1].rstrip(":")
    r = runner.invoke(main, ["determinations", "approve", det_id, "--by", "Ada"])
    assert r.exit_code == 1 and "approved_by" in r.output
    r = runner.invoke(main, ["determinations", "approve", det_id, "--by", "Grace"])
    assert r.exit_code == 0 and "approved by Grace (cli) (in_force)" in r.output
