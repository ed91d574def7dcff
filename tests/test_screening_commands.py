"""`compliance lists import|create|show` and `compliance screen` on a fresh SQLite database."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from compliance.cli import main


@pytest.fixture
def runner(tmp_path, monkeypatch, schema_templates):
    from compliance.config import Config

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    schema_templates.provision(url, Config.from_env({}).RULES_DIR)  # create_app() does not migrate
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SAMPLE_CATALOGUE", "")
    monkeypatch.setenv("CELERY_BROKER_URL", "")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    return CliRunner()


def test_screen_against_the_sample_prints_hits_with_citations_and_exits_1(runner):
    r = runner.invoke(main, ["screen", "Huawei Technologies Co., Ltd.", "--country", "CN"])
    assert r.exit_code == 1, r.output
    assert "Huawei Technologies Co., Ltd. [CN]: hit" in r.output and "84 FR 22961" in r.output and "why:" in r.output
    r = runner.invoke(main, ["screen", "Siemens AG", "--country", "DE"])
    assert r.exit_code == 0 and "Siemens AG [DE]: clear" in r.output
    r = runner.invoke(main, ["screen", "Acme", "--country", "Narnia"])
    assert r.exit_code == 2 and "country" in r.output


def test_lists_import_show_and_screen_a_file(runner, tmp_path):
    path = tmp_path / "csl.json"
    path.write_text(json.dumps({"results": [
        {"id": "x1", "source": "Entity List (EL) - Bureau of Industry and Security", "name": "Omega Chips Ltd",
         "addresses": [{"city": "Shenzhen", "country": "CN"}], "federal_register_notice": "90 FR 9"},
        {"id": "x2", "name": ""}]}))
    # the real list imported first: the bundled sample is never loaded
    r = runner.invoke(main, ["lists", "import", str(path), "--date", "2026-12-01"])
    assert r.exit_code == 0, r.output
    assert "csl snapshot" in r.output and "1 entries from 2 rows, 1 rejected" in r.output
    assert "row 2: name: missing" in r.output and "delta +1 -0 ~0" in r.output
    r = runner.invoke(main, ["lists", "show", "csl", "--delta", "--entries"])
    assert r.exit_code == 0, r.output
    assert "added    EL    Omega Chips Ltd" in r.output and "Omega Chips Ltd  [CN]  90 FR 9" in r.output
    parties = tmp_path / "parties.csv"
    parties.write_text("name,country,address\nOmega Chip Limited,CN,\nBlue Sky Foods,US,\n")
    r = runner.invoke(main, ["screen", "--file", str(parties), "--json"])
    assert r.exit_code == 1
    answer = json.loads(r.output)
    assert [x["status"] for x in answer["results"]] == ["hit", "clear"]
    r = runner.invoke(main, ["lists", "import", str(path), "--list", "mine"])
    assert r.exit_code == 2 and "no list named 'mine'" in r.output
    r = runner.invoke(main, ["lists", "import", str(path), "--list", "mine", "--create"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["lists", "show"])
    assert "mine" in r.output and "csl" in r.output
    r = runner.invoke(main, ["lists", "import", str(path), "--date", "yesterday"])
    assert r.exit_code == 2 and "--date" in r.output


def test_orders_check_records_the_order_and_exits_1_when_held(runner, tmp_path):
    from tests.conftest import H100

    body = {"reference": "PO-7", "date": "2025-05-01", "ship_to": "CN",
            "end_user": {"name": "Huawei Technologies Co., Ltd.", "country": "CN"},
            "lines": [{"product": dict(H100, sku="h100"), "quantity": 2, "value": 50000}]}
    path = tmp_path / "order.json"
    path.write_text(json.dumps(body))
    r = runner.invoke(main, ["orders", "check", str(path)])
    assert r.exit_code == 1, r.output
    assert "PO-7 to CN: held" in r.output and "licence_required" in r.output
    assert "screening_hit" in r.output and "[84 FR 22961]" in r.output
    r = runner.invoke(main, ["orders", "list", "--status", "held"])
    assert r.exit_code == 0 and "PO-7" in r.output and "1/1 lines held" in r.output
    path.write_text(json.dumps({**body, "lines": [{"product": dict(H100), "quantity": -2}]}))
    r = runner.invoke(main, ["orders", "check", str(path)])
    assert r.exit_code == 2 and "lines.0.quantity" in r.output
