"""The engine is pure domain code: it imports no web, database or queue framework."""
from __future__ import annotations

import ast
from pathlib import Path

import compliance.engine

ENGINE = Path(compliance.engine.__file__).resolve().parent
FORBIDDEN = ("flask", "flask_smorest", "sqlalchemy", "alembic", "celery", "kombu", "marshmallow", "redis",
             "psycopg", "werkzeug")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a module under compliance/engine/."""
    package = "compliance.engine"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
    return out


def test_the_walker_sees_relative_and_absolute_imports():
    mods = [m for _, m in imported_modules(ENGINE / "evaluate.py")]
    assert "compliance.engine.conditions" in mods and "numpy" in mods


def test_no_engine_module_imports_a_framework_or_the_rest_of_the_package():
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) >= 8
    problems = []
    for path in files:
        for line, mod in imported_modules(path):
            top = mod.split(".")[0]
            if top in FORBIDDEN:
                problems.append(f"{path.name}:{line} imports {mod}")
            elif top == "compliance" and not (mod == "compliance.engine" or mod.startswith("compliance.engine.")):
                problems.append(f"{path.name}:{line} imports {mod} (outside compliance.engine)")
    assert problems == []
