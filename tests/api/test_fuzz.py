"""Issue 12's bar: schemathesis generates valid and invalid requests for every operation from the spec, on
SQLite and on PostgreSQL, with the sample catalogue loaded; no response may be a 5xx, and every response
must have a documented status, content type and body (tests/fuzzing.py). bench/fuzz.py runs it longer."""
from __future__ import annotations

import pytest

from tests.fuzzing import fuzz

EXAMPLES = 14  # per operation and mode: a little over 2,000 cases on each database


@pytest.mark.slow
def test_fuzzing_every_operation_finds_no_server_error_and_no_spec_mismatch(make_app, db_url, headers_for):
    from compliance.services.catalogues import ensure_sample_catalogue

    app = make_app(DATABASE_URL=db_url)
    ensure_sample_catalogue(app, app.config["COMPLIANCE"].SAMPLE_CATALOGUE or
                            "compliance/data/sample_catalogue.json")
    report = fuzz(app, headers_for(app, "admin"), EXAMPLES, seed=12)
    print(report.summary())
    assert report.cases >= 2000, report.summary()
    assert report.server_errors == [], "\n\n".join(report.server_errors[:10])
    assert report.mismatches == [], "\n\n".join(report.mismatches[:10])
