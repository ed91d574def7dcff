"""The README stays true: its settings table matches config, and its quickstart is the two make commands."""
from __future__ import annotations

import re
from pathlib import Path

from compliance.config import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table_and_nothing_else_is():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.M))
    assert documented == {s.env for s in SETTINGS}


def test_the_quickstart_is_exactly_two_commands_and_ci_runs_the_test_one():
    block = README.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_cli_command_the_readme_names_exists():
    from click.testing import CliRunner

    from compliance.cli import main

    block = README.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    runner = CliRunner()
    for line in block.strip().splitlines():
        words = [w for w in line.split("#")[0].split() if not w.startswith(("-", "[")) and w.isidentifier()]
        path = words[1:3] if words[1] in ("rules", "catalogue", "audit", "keys") else words[1:2]
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (line, result.output)
