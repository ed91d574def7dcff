"""No link in the repository's Markdown points outside it: relative links resolve to files in the checkout, and
nothing links to a web address (the service and its docs work offline)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _markdown_files():
    return [p for p in ROOT.rglob("*.md") if not any(part.startswith(".") or part in ("node_modules", "vendor", "instance")
                                                     for part in p.relative_to(ROOT).parts)]


def _prose(text: str) -> str:
    """The text outside fenced code blocks (example output there is not a link)."""
    return "".join(part for i, part in enumerate(re.split(r"^```.*$", text, flags=re.M)) if i % 2 == 0)


def test_every_markdown_link_stays_in_the_repository():
    bad = []
    for md in _markdown_files():
        for target in LINK.findall(_prose(md.read_text(encoding="utf-8"))):
            target = target.split("#", 1)[0]
            if not target:
                continue  # an anchor on the same page
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                bad.append(f"{md.relative_to(ROOT)}: {target} (a web address)")
                continue
            resolved = (md.parent / target).resolve()
            if ROOT not in resolved.parents and resolved != ROOT or not resolved.exists():
                bad.append(f"{md.relative_to(ROOT)}: {target} (not a file in the repository)")
    assert bad == []
