"""Every `tests:` case of every bundled rule pack, each as its own pytest case; and `rules validate`."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from compliance.cli import main
from compliance.engine import Rulebook, load_rulebook_content
from compliance.engine.packtests import run_case

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
RULEBOOK = Rulebook(load_rulebook_content(RULES_DIR))
CASES = list(RULEBOOK.tests())


def test_every_rule_pack_file_is_loaded():
    assert len(RULEBOOK.packs) == len(list((RULES_DIR / "packs").glob("*.yaml")))
    assert len(CASES) >= 40


@pytest.mark.parametrize("pack_id, case", CASES, ids=[f"{p}::{c['name']}" for p, c in CASES])
def test_pack_case(pack_id, case):
    result = run_case(RULEBOOK, pack_id, case)
    assert result.failures == []


@pytest.mark.parametrize("pack_id, case", CASES, ids=[f"{p}::{c['name']}" for p, c in CASES])
def test_pack_case_products_satisfy_the_api_contract(pack_id, case):
    """A typo in a case's product (e.g. `die_area` for `die_area_mm2`) would otherwise pass silently."""
    from compliance.schemas.product import ProductSchema

    ProductSchema().load(case["product"])


def test_a_wrong_expectation_is_reported_not_swallowed():
    pack_id, case = CASES[0]
    wrong = dict(case, expect={"eccn": "3A090.b", "status": "controlled",
                               "licences": {case["destinations"][0]: {"requirement": "no_license_required"}}})
    failures = run_case(RULEBOOK, pack_id, wrong).failures
    assert any(f.startswith("eccn: expected '3A090.b'") for f in failures)
    assert any(".requirement: expected 'no_license_required'" in f for f in failures)


def test_a_case_that_cannot_be_evaluated_is_a_failure_not_a_crash():
    result = run_case(RULEBOOK, "x", {"name": "broken", "as_of": "2024-02-30", "product": {"name": "x"}})
    assert not result.passed and result.failures[0].startswith("could not evaluate")


def test_every_version_boundary_has_a_day_before_and_a_day_of_case():
    dates = {str(c["as_of"]) for _, c in CASES}
    for day_before, day_of in [("2022-10-06", "2022-10-07"), ("2023-01-16", "2023-01-17"),
                               ("2023-11-16", "2023-11-17"), ("2024-04-03", "2024-04-04"),
                               ("2024-12-01", "2024-12-02"), ("2025-04-08", "2025-04-09"),
                               ("2025-04-14", "2025-04-15"), ("2025-07-13", "2025-07-14"),
                               ("2026-01-14", "2026-01-15")]:
        assert day_before in dates and day_of in dates, (day_before, day_of)


# ---- compliance rules validate ----

def test_rules_validate_exits_0_on_the_bundled_rules():
    result = CliRunner().invoke(main, ["rules", "validate", str(RULES_DIR)])
    assert result.exit_code == 0, result.output
    assert f"{len(CASES)} passed, 0 failed" in result.output


def test_rules_validate_exits_non_zero_and_prints_paths_on_a_broken_copy(tmp_path):
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)
    path = copy / "packs" / "2023-11-17-advanced-computing-rewrite.yaml"
    pack = yaml.safe_load(path.read_text())
    pack["rules"][0]["when"]["all"][1]["any"][0]["metric"] = "tops"
    pack["rules"][1]["effective_to"] = "2020-01-01"
    path.write_text(yaml.safe_dump(pack))
    result = CliRunner().invoke(main, ["rules", "validate", str(copy)])
    assert result.exit_code == 1
    pid = "us-2023-10-advanced-computing-rewrite"
    i = sorted(p.name for p in (RULES_DIR / "packs").glob("*.yaml")).index(path.name)  # validation uses file order
    assert f"packs[{i}]({pid}).rules[0].when.all[1].any[0].metric: unknown metric 'tops'" in result.output
    assert f"packs[{i}]({pid}).rules[1].effective_to: 2020-01-01 is before effective_from 2023-11-17" in result.output
    assert "2 problem(s)" in result.output


def test_rules_validate_fails_when_a_pack_case_fails(tmp_path):
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)
    path = copy / "packs" / "2024-12-02-hbm.yaml"
    pack = yaml.safe_load(path.read_text())
    pack["rules"][0]["when"]["all"][2]["value"] = 20  # an MBD threshold no stack reaches
    path.write_text(yaml.safe_dump(pack))
    result = CliRunner().invoke(main, ["rules", "validate", str(copy)])
    assert result.exit_code == 1
    assert "FAIL us-2024-12-hbm: an HBM3E stack is 3A090.c and needs a licence for China" in result.output
