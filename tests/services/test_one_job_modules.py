"""One job per module (issue 8): the rule workflow's modules, the audit job's and the import's each say what
they do in a docstring with no "and"; every function lives in one home within its group (no re-export left
behind); the pure modules (the edit language, validation, the outcome codec, the import's readers, cell
grammar and row validation) never touch the database."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "compliance" / "services"
ONE_JOB = ["rule_versions.py", "rule_drafts.py", "rule_edits.py", "rule_validation.py", "rule_publish.py",
           "rule_diff.py", "rule_export.py", "activity_log.py", "audits.py", "audit_outcomes.py", "audit_results.py"]
IMPORT_MODULES = ["imports.py", "import_formats.py", "import_cells.py", "import_rows.py", "import_writer.py",
                  "import_jobs.py"]
GROUPS = {"rules and audits": ONE_JOB, "imports": IMPORT_MODULES}


def _tree(name: str) -> ast.Module:
    return ast.parse((SERVICES / name).read_text(encoding="utf-8"), name)


@pytest.mark.parametrize("name", ONE_JOB + IMPORT_MODULES)
def test_the_module_docstring_names_one_job(name):
    doc = ast.get_docstring(_tree(name))
    assert doc, f"{name} has no docstring"
    assert not re.search(r"\band\b", doc, flags=re.I), f"{name}'s docstring needs an 'and': {doc!r}"


@pytest.mark.parametrize("group", GROUPS)
def test_every_function_has_one_home(group):
    homes: dict[str, list[str]] = {}
    for name in GROUPS[group]:
        tree = _tree(name)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                homes.setdefault(node.name, []).append(name)
    assert {n: h for n, h in homes.items() if len(h) > 1} == {}


def test_rule_versions_re_exports_nothing_of_its_siblings():
    """`from .rule_drafts import x` in rule_versions.py would make x importable from two places."""
    tree = _tree("rule_versions.py")
    siblings = {n[:-3] for n in ONE_JOB} - {"rule_versions"}
    leaked = [f"{node.module}.{a.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
              and node.level == 1 and node.module in siblings for a in node.names]
    assert leaked == []


@pytest.mark.parametrize("name", ["rule_edits.py", "rule_validation.py", "audit_outcomes.py",
                                  "import_formats.py", "import_cells.py", "import_rows.py"])
def test_the_pure_modules_touch_no_database(name):
    """The edit language, validation, the outcome codec, the import's readers, cell grammar and row validation
    work on values alone: no database, no models, no SQLAlchemy (only import_writer, imports, import_jobs write)."""
    tree = _tree(name)
    mods = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    mods += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [m for m in mods if m.split(".")[0] in ("sqlalchemy", "db", "models")]


def test_reading_audits_does_not_import_running_them():
    """audit_results.py (reading) never imports audits.py (running): the dependency goes one way."""
    tree = _tree("audit_results.py")
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module == "audits"]
