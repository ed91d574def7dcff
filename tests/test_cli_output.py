"""The command line for people: --json on data commands, tables (not dicts), one-line errors with exit 1,
settings refused as a list, CSV into classify, the rule workflow (draft -> edit -> preview -> publish ->
diff -> rollback), progress bars on stderr, and no AsyncResult noise after sending work to a real Redis."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from compliance.cli import main

ROOT = Path(__file__).resolve().parents[1]
FOUR = ("sku,name,vendor,tpp,die_area_mm2,datacenter\nA,Chip A,Acme,4800,814,true\nB,Chip B,Acme,100,50,false\n"
        "C,Chip C,Acme,2400,400,true\nD,Chip D,Acme,5000,900,true\n")


@pytest.fixture
def env(tmp_path, monkeypatch, schema_templates):
    from compliance.config import Config

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    values = {"DATABASE_URL": url, "SAMPLE_CATALOGUE": "", "CELERY_BROKER_URL": "", "LOG_LEVEL": "WARNING"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    schema_templates.provision(url, Config.from_env().RULES_DIR)
    return values


@pytest.fixture
def runner(env):
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart already
        return CliRunner()


@pytest.fixture
def four(tmp_path):
    path = tmp_path / "four.csv"
    path.write_text(FOUR)
    return path


def test_import_and_list_print_tables_or_json(runner, four):
    r = runner.invoke(main, ["catalogue", "import", str(four), "--catalogue", "chips"])
    assert r.exit_code == 0, r.output
    assert "4 rows read, 4 imported" in r.stdout and r.stdout.count("4 rows read") == 1
    r = runner.invoke(main, ["catalogue", "import", str(four), "--catalogue", "chips", "--json"])
    report = json.loads(r.stdout)
    assert (report["imported"], report["updated"], report["rejected"]) == (4, 4, 0)
    r = runner.invoke(main, ["catalogue", "list"])
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "PRODUCTS", "CONTROLLED", "NOT", "CONTROLLED", "INDETERMINATE"]
    assert lines[1].split()[1:3] == ["chips", "4"] and "{" not in r.stdout
    rows = json.loads(runner.invoke(main, ["catalogue", "list", "--json"]).stdout)
    assert rows[0]["name"] == "chips" and rows[0]["products"] == 4
    keys = json.loads(runner.invoke(main, ["keys", "list", "--json"]).stdout)
    assert isinstance(keys, list)


def test_audit_show_of_a_missing_audit_is_one_line_and_exit_1(runner):
    r = runner.invoke(main, ["audit", "show", "999"])
    assert r.exit_code == 1
    assert r.stderr.strip() == "Error: no audit 999" and "Traceback" not in r.output


def test_audit_run_waits_with_a_bar_on_stderr_and_json_on_stdout(runner, four, tmp_path):
    out = tmp_path / "r.xlsx"
    r = runner.invoke(main, ["audit", "run", str(four), "--catalogue", "c", "--as-of", "2025-06-01", "--to", "CN,DE",
                             "--json", "--out", str(out)])
    assert r.exit_code == 0, r.output
    status = json.loads(r.stdout)
    assert status["status"] == "done" and status["counts"]["products"] == 4
    assert out.stat().st_size > 0
    r = runner.invoke(main, ["audit", "show", str(status["id"])])
    assert r.exit_code == 0 and "DESTINATION" in r.stdout and "license_required" in r.stdout
    assert json.loads(runner.invoke(main, ["audit", "show", str(status["id"]), "--json"]).stdout)["id"] == status["id"]


def test_classify_reads_the_catalogue_csv_layout(runner, four, tmp_path):
    r = runner.invoke(main, ["classify", str(four), "--as-of", "2025-06-01", "--to", "CN", "--json"])
    assert r.exit_code == 0, r.output
    answers = json.loads(r.stdout)
    assert [a["classification"]["eccn"] for a in answers] == ["3A090.a", None, "3A090.a", "3A090.a"]
    bad = tmp_path / "bad.csv"
    bad.write_text("name,tpp,datacenter\nX,lots,maybe\n")
    r = runner.invoke(main, ["classify", str(bad), "--to", "CN"])
    assert r.exit_code == 2 and "row 1: tpp" in r.output and "row 1: datacenter" in r.output


def test_invalid_settings_are_listed_without_a_traceback(runner, monkeypatch):
    monkeypatch.setenv("AUDIT_CHUNK_SIZE", "-5")
    monkeypatch.setenv("BATCH_MAX_PRODUCTS", "0")
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    r = runner.invoke(main, ["catalogue", "list"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = r.stderr.splitlines()
    assert lines[0] == "invalid configuration:"
    assert any(x.strip().startswith("AUDIT_CHUNK_SIZE: must be between 1 and") and "-5" in x for x in lines)
    assert any(x.strip().startswith("BATCH_MAX_PRODUCTS:") for x in lines)
    assert any(x.strip().startswith("LOG_LEVEL:") for x in lines)


def test_the_rule_workflow_from_the_command_line(runner, tmp_path):
    r = runner.invoke(main, ["rules", "draft", "--title", "lower TPP", "--actor", "Ada", "--json"])
    assert r.exit_code == 0, r.output
    draft = json.loads(r.stdout)["id"]
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"op": "end_rule", "rule_id": "no.such.rule", "effective_to": "2025-01-01"}]))
    r = runner.invoke(main, ["rules", "edit", str(draft), "--file", str(ops)])
    assert r.exit_code == 1 and "no.such.rule" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    from compliance.engine import load_rulebook_content

    content = load_rulebook_content(str(ROOT / "rules"))
    rule = next(x for p in content["packs"] for x in p["rules"] if x.get("kind") == "licence")
    r = runner.invoke(main, ["rules", "edit", str(draft), "--op",
                             json.dumps({"op": "end_rule", "rule_id": rule["id"], "effective_to": "2025-01-01"})])
    assert r.exit_code == 0, r.output
    assert f"draft {draft} (open)" in r.stdout
    r = runner.invoke(main, ["rules", "preview", str(draft), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["draft"] == draft
    r = runner.invoke(main, ["rules", "publish", str(draft), "--reason", "cli test", "--actor", "Ada", "--confirm"])
    assert r.exit_code == 0, r.output
    assert "published version 2" in r.stdout
    r = runner.invoke(main, ["rules", "publish", str(draft), "--reason", "again"])
    assert r.exit_code == 1 and "draft" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(main, ["rules", "diff", "1", "2", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["to"] == 2
    assert rule["id"] in runner.invoke(main, ["rules", "diff", "1", "2"]).stdout
    r = runner.invoke(main, ["rules", "rollback", "1", "--reason", "undo", "--confirm", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["number"] == 3 and out["reevaluation"]["status"] == "done"
    versions = json.loads(runner.invoke(main, ["rules", "versions", "--json"]).stdout)
    assert [v["number"] for v in versions] == [3, 2, 1] and versions[1]["author"] == "Ada"


def test_shell_completion_is_click_s(runner):
    r = CliRunner().invoke(main, [], env={"_COMPLIANCE_COMPLETE": "bash_source"}, prog_name="compliance")
    assert r.exit_code == 0 and "_COMPLIANCE_COMPLETE" in r.output and "complete" in r.output


@pytest.mark.services
def test_audit_run_against_redis_exits_without_async_result_noise(env, four, redis_url, tmp_path):
    """`audit run` sends the chunks to a real Redis broker (no worker here) and exits cleanly."""
    run_env = {**os.environ, **env, "CELERY_BROKER_URL": redis_url, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "compliance.cli"]
    subprocess.run(cmd + ["catalogue", "import", str(four), "--catalogue", "q"], env=run_env, check=True,
                   capture_output=True, timeout=120)
    p = subprocess.run(cmd + ["audit", "run", "--catalogue", "q", "--to", "CN", "--no-wait"], env=run_env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "queued on Celery" in p.stdout
    assert "Exception ignored" not in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_classify_refuses_dates_outside_the_rules(runner, four):
    r = runner.invoke(main, ["classify", str(four), "--as-of", "2020-01-01", "--to", "CN"])
    assert r.exit_code == 2 and "outside the supported range 2022-10-07" in r.output
