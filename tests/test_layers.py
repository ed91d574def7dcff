"""Layers that hold (issue 8), checked by walking every module's imports with `ast`, like the engine's
purity test:

- services/ imports no Flask, no Celery and nothing of compliance.tasks (they record work on the session,
  compliance.db.enqueue_after_commit, and the app factory's sender publishes it);
- tasks/ imports only services (and config), Celery, the standard library and the exception classes it
  retries on (autoretry_for);
- only compliance/config.py reads the environment (os.environ, os.getenv).

A new rule is one more entry in RULES: (package, predicate on an imported module name, what it forbids).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "compliance"


def modules(sub: str = "") -> list[Path]:
    return sorted(p for p in (PKG / sub).rglob("*.py") if "migrations" not in p.parts or sub == "migrations")


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved; for
    `from X import y` both X and X.y are listed (y may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def _top(name: str) -> str:
    return name.split(".")[0]


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


TASKS_MAY_IMPORT = ("celery", "kombu.exceptions", "redis.exceptions", "sqlalchemy.exc", "compliance.services",
                    "compliance.config", "compliance.tasks")


def _tasks_ok(name: str) -> bool:
    return _top(name) in sys.stdlib_module_names or _top(name) == "__future__" or _within(name, *TASKS_MAY_IMPORT)


RULES = [
    ("services", lambda name: _within(name, "flask", "celery", "compliance.tasks", "kombu"),
     "services import no Flask, Celery or tasks"),
    ("tasks", lambda name: not _tasks_ok(name), "tasks import only services, config and Celery"),
]


@pytest.mark.parametrize("package,forbidden,what", RULES, ids=[r[0] for r in RULES])
def test_layer_imports(package, forbidden, what):
    bad = [f"{p.relative_to(PKG.parent)}:{line} imports {name}" for p in modules(package)
           for line, name in imported(p) if forbidden(name)]
    assert not bad, f"{what}:\n" + "\n".join(bad)


def _reads_environment(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb", "putenv") \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and {a.name for a in node.names} & {"environ", "getenv", "environb"}:
            lines.append(node.lineno)
    return lines


def test_only_config_reads_the_environment():
    bad = [f"{p.relative_to(PKG.parent)}:{line}" for p in modules() if p != PKG / "config.py"
           for line in _reads_environment(p)]
    assert not bad, "only compliance/config.py reads os.environ:\n" + "\n".join(bad)


def test_the_checks_can_fail(tmp_path):
    """The walker sees relative imports and environment reads (so the tests above cannot pass vacuously)."""
    services = PKG / "services" / "audits.py"
    assert any(name == "compliance.services.jobs" for _, name in imported(services))
    assert any(_within(name, "compliance.db") for _, name in imported(services))
    assert _reads_environment(PKG / "config.py")
    assert RULES[0][1]("compliance.tasks.audits") and RULES[0][1]("flask") and not RULES[0][1]("sqlalchemy")
    assert RULES[1][1]("flask") and RULES[1][1]("compliance.models") and not RULES[1][1]("compliance.services.jobs")
