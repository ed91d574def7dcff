"""One job per module (issue 8) for the import: services/imports.py was split into modules that each say what
they do in a docstring with no "and"; every public function has one home; the readers, the cell grammar and
validation never write (no database session), only import_writer.py, imports.py and import_jobs.py do."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "compliance" / "services"
IMPORT_MODULES = ["imports.py", "import_formats.py", "import_cells.py", "import_rows.py", "import_writer.py",
                  "import_jobs.py"]


def _tree(name: str) -> ast.Module:
    return ast.parse((SERVICES / name).read_text(encoding="utf-8"), name)


@pytest.mark.parametrize("name", IMPORT_MODULES)
def test_the_module_docstring_names_one_job(name):
    doc = ast.get_docstring(_tree(name))
    assert doc, f"{name} has no docstring"
    assert not re.search(r"\band\b", doc, flags=re.I), f"{name}'s docstring needs an 'and': {doc!r}"


def test_every_function_has_one_home():
    homes: dict[str, list[str]] = {}
    for name in IMPORT_MODULES:
        for node in _tree(name).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                homes.setdefault(node.name, []).append(name)
    assert {n: h for n, h in homes.items() if len(h) > 1} == {}


@pytest.mark.parametrize("name", ["import_formats.py", "import_cells.py", "import_rows.py"])
def test_reading_and_validating_touch_no_database(name):
    tree = _tree(name)
    mods = [("." * node.level) + (node.module or "") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    mods += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [m for m in mods if m.lstrip(".").split(".")[0] in ("sqlalchemy", "db", "models")], mods
