"""The `compliance` command line: classify, rules validate, rules export."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from compliance.cli import main
from compliance.engine import Rulebook, load_rulebook_content
from tests.conftest import H20, H100

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"


@pytest.fixture
def runner(tmp_path, monkeypatch, schema_templates):
    """A CliRunner whose app uses a fresh SQLite database (no sample catalogue, no broker)."""
    from compliance.config import Config

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SAMPLE_CATALOGUE", "")
    monkeypatch.setenv("CELERY_BROKER_URL", "")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    schema_templates.provision(url, Config.from_env().RULES_DIR)
    return CliRunner()


@pytest.fixture
def products_file(tmp_path):
    path = tmp_path / "products.json"
    path.write_text(json.dumps([H100, H20]))
    return path


def test_classify_prints_a_readable_decision(runner, products_file):
    r = runner.invoke(main, ["classify", str(products_file), "--as-of", "2025-05-01", "--to", "CN,AE"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "NVIDIA H100 SXM5  (as of 2025-05-01" in out
    assert "ECCN: 3A090.a   status: controlled" in out
    # the AI Diffusion notice: codified, not enforced, shown as a flag on every 3A090.a answer
    assert "-> CN: license_required (presumption_of_denial; flags ai_diffusion_not_applied)" in out
    assert "-> AE: license_required (presumption_of_approval; flags ai_diffusion_not_applied)" in out
    assert "NVIDIA H20" in out and "ECCN: -   status: not_controlled" in out
    assert "tpp=15832" in out and "tpp from throughput:fp8" in out


def test_classify_json_prints_full_decisions(runner, products_file):
    r = runner.invoke(main, ["classify", str(products_file), "--as-of", "2025-05-01", "--to", "cn,ae", "--json"])
    assert r.exit_code == 0, r.output
    decisions = json.loads(r.stdout)
    assert [d["classification"]["eccn"] for d in decisions] == ["3A090.a", None]
    h20_cn = decisions[1]["licences"][0]
    assert (h20_cn["destination"], h20_cn["requirement"]) == ("CN", "license_required")
    assert h20_cn["rule_ids"] == ["us-2025-04.overlay.nvidia-h20"]
    assert decisions[0]["as_of"] == "2025-05-01"


def test_classify_with_a_rules_directory_gives_the_same_answers(runner, products_file):
    args = ["classify", str(products_file), "--as-of", "2025-05-01", "--to", "CN", "--json"]
    from_db = json.loads(runner.invoke(main, args).stdout)
    from_dir = json.loads(runner.invoke(main, args + ["--rules", str(RULES_DIR)]).stdout)
    for a, b in zip(from_db, from_dir):
        assert a["classification"] == b["classification"] and a["licences"] == b["licences"]
        assert a["ruleset_revision"] == b["ruleset_revision"]


def test_classify_a_single_yaml_product_with_headquarters(runner, tmp_path):
    path = tmp_path / "h100.yaml"
    path.write_text(yaml.safe_dump(H100))
    r = runner.invoke(main, ["classify", str(path), "--as-of", "2024-06-01", "--to", "DE", "--hq", "cn", "--json"])
    assert r.exit_code == 0, r.output
    decision = json.loads(r.stdout)
    assert decision["licences"][0]["rule_ids"] == ["us-2023-10.licence.headquarters"]


def test_a_bad_country_code_exits_non_zero_with_a_clear_message(runner, products_file):
    r = runner.invoke(main, ["classify", str(products_file), "--to", "CN,XX"])
    assert r.exit_code == 2
    assert "unknown country code(s): XX" in r.output and "--to" in r.output


def test_an_invalid_product_exits_2_naming_the_field(runner, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([H100, {**H20, "tpp": -1, "datacenter": "yes"}]))
    r = runner.invoke(main, ["classify", str(path), "--as-of", "2024-06-01"])
    assert r.exit_code == 2
    assert "product 2: tpp: must be 0 or more" in r.output
    assert "product 2: datacenter: Not a valid boolean." in r.output


def test_an_impossible_date_is_rejected(runner, products_file):
    r = runner.invoke(main, ["classify", str(products_file), "--as-of", "2023-02-30"])
    assert r.exit_code == 2 and "--as-of" in r.output


def test_rules_validate_on_the_bundled_rules(runner):
    r = runner.invoke(main, ["rules", "validate", str(RULES_DIR)])
    assert r.exit_code == 0, r.output
    assert " failed" in r.stdout and ", 0 failed" in r.stdout


def test_rules_export_round_trips_to_the_same_revision(runner, tmp_path):
    out = tmp_path / "exported"
    r = runner.invoke(main, ["rules", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "country_groups.yaml").exists()
    exported = Rulebook(load_rulebook_content(out))
    bundled = Rulebook(load_rulebook_content(RULES_DIR))
    assert exported.revision == bundled.revision
    # ...and the exported directory validates, pack test cases included.
    assert runner.invoke(main, ["rules", "validate", str(out)]).exit_code == 0


def test_rules_export_of_an_unknown_version_fails_clearly(runner, tmp_path):
    r = runner.invoke(main, ["rules", "export", "--version", "99", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no version 99" in r.output


def test_a_bad_headquarters_code_names_the_hq_option(runner, products_file):
    r = runner.invoke(main, ["classify", str(products_file), "--hq", "ZZ"])
    assert r.exit_code == 2
    assert "--hq" in r.output and "unknown country code(s): ZZ" in r.output


@pytest.mark.parametrize("name, content, message", [
    ("broken.json", '[{"name": "H100"', "cannot be read as json"),
    ("broken.yaml", "name: [unclosed", "cannot be read as yaml"),
    ("broken.jsonl", '{"name": "a"}\n{"name": ', "line 2: not valid JSON"),
    ("empty.json", "[]", "no products in the file"),
    ("scalar.json", "42", "expected a product, a list of products"),
])
def test_an_unreadable_file_exits_2_with_a_clear_message(runner, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    r = runner.invoke(main, ["classify", str(path)])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_create_app_leaves_the_schema_to_db_upgrade(tmp_path, monkeypatch):
    """create_app() neither migrates nor seeds (web, workers and tests start fast); `compliance db upgrade`
    (and `compliance setup`) migrate and seed rules/ once; a second upgrade changes nothing."""
    from sqlalchemy import inspect

    from compliance import create_app

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    for key, value in {"DATABASE_URL": url, "SAMPLE_CATALOGUE": "", "CELERY_BROKER_URL": "",
                       "LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(key, value)
    app = create_app()
    assert inspect(app.extensions["db"].engine).get_table_names() == []
    runner = CliRunner()
    for _ in range(2):
        r = runner.invoke(main, ["db", "upgrade"])
        assert r.exit_code == 0, r.output
        assert "latest schema" in r.output
    assert "audit_chunks" in inspect(app.extensions["db"].engine).get_table_names()
    version, _ = app.extensions["rulebooks"].current()
    assert version.number == 1
    app.extensions["db"].dispose()
