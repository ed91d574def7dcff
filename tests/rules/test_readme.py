"""rules/README.md stays in step with the engine's vocabulary and the bundled packs."""
from __future__ import annotations

import re
from pathlib import Path

from compliance.engine import describe_vocabulary, load_rulebook_content

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
README = (RULES_DIR / "README.md").read_text()


def vocabulary_rows() -> list[str]:
    rows = []
    for m in describe_vocabulary()["metrics"]:
        values = f" Values: {', '.join(m['values'])}." if "values" in m else ""
        ops = ", ".join(f"`{o}`" for o in m["operators"])
        rows.append(f"| `{m['name']}` | {m['type']} | {m['unit'] or '-'} | {m['scope']} | {ops} | "
                    f"{m['description']}{values} |")
    return rows


def test_the_vocabulary_table_matches_the_engine():
    block = README.split("<!-- vocabulary:start -->")[1].split("<!-- vocabulary:end -->")[0]
    table = [line for line in block.strip().splitlines()[2:]]
    assert table == vocabulary_rows(), "regenerate the table from compliance.engine.vocabulary.describe()"


def test_every_pack_file_is_listed():
    for path in (RULES_DIR / "packs").glob("*.yaml"):
        assert path.name in README, path.name


def test_every_precedence_used_by_a_bundled_rule_is_documented():
    documented = set()
    section = README.split("## Precedence numbers used by the bundled packs")[1].split("\n## ")[0]
    for cell in re.findall(r"^\| ([\d /]+) \|", section, flags=re.M):
        documented |= {int(x) for x in cell.split("/")}
    used = {r.get("precedence", 0) for p in load_rulebook_content(RULES_DIR)["packs"] for r in p["rules"]}
    assert used <= documented, used - documented
