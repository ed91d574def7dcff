"""`compliance rules edit|publish --if-match`: the CLI sends the draft's ETag (the one given, or the one it read
when it started), prints the new one, and a stale one is refused in one line naming If-Match and the current
ETag, with nothing applied."""
from __future__ import annotations

import json

from compliance.cli import main

from .test_cli_output import env, runner  # noqa: F401  (fixtures)

A1 = "us-2023-10.3a090.a"


def _op(value) -> str:
    return json.dumps({"op": "set_threshold", "rule_id": A1, "path": "when.all[1].any[0]", "value": value})


def test_rules_edit_and_publish_send_the_etag_and_a_stale_one_is_refused(runner):  # noqa: F811
    r = runner.invoke(main, ["rules", "draft", "--title", "etag", "--actor", "Ada", "--json"])
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout)
    draft, first = created["id"], created["etag"]
    listed = json.loads(runner.invoke(main, ["rules", "drafts", "--json"]).stdout)
    assert [d["etag"] for d in listed if d["id"] == draft] == [first]
    assert first in runner.invoke(main, ["rules", "drafts"]).stdout

    r = runner.invoke(main, ["rules", "edit", str(draft), "--op", _op(4810), "--if-match", first])
    assert r.exit_code == 0, r.output
    r2 = runner.invoke(main, ["rules", "edit", str(draft), "--op", _op(4820), "--if-match", first, "--json"])
    assert r2.exit_code == 1 and "Traceback" not in r2.output
    assert len(r2.stderr.strip().splitlines()) == 1 and "If-Match" in r2.stderr
    now = json.loads(runner.invoke(main, ["rules", "drafts", "--json"]).stdout)
    current = next(d["etag"] for d in now if d["id"] == draft)
    assert current != first and current in r2.stderr and f"ETag {current}" in r.stdout

    # Without --if-match the CLI sends the ETag it read: the edit applies.
    r = runner.invoke(main, ["rules", "edit", str(draft), "--op", _op(4830), "--json"])
    assert r.exit_code == 0, r.output
    latest = json.loads(r.stdout)["etag"]
    assert latest != current

    r = runner.invoke(main, ["rules", "publish", str(draft), "--reason", "r", "--confirm", "--if-match", current])
    assert r.exit_code == 1 and "If-Match" in r.stderr and latest in r.stderr
    r = runner.invoke(main, ["rules", "publish", str(draft), "--reason", "r", "--confirm", "--if-match", latest])
    assert r.exit_code == 0 and "published version 2" in r.stdout, r.output
