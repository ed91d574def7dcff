"""Property-based fuzzing of the whole API from its own OpenAPI spec (schemathesis), in process.

`fuzz(app, headers, examples)` generates cases for every operation (valid ones, and invalid ones that the
API must refuse with a 4xx), sends them through the app's WSGI interface, and checks each response:
no 5xx, a documented status, a documented content type and a body that matches its schema. It returns a
`FuzzReport` rather than raising, so that the suite (tests/api/test_fuzz.py) and the long-run benchmark
(bench/fuzz.py) print and count the same things."""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

# Operations that end or replace the fuzzer's own access, or that sleep on purpose: they are fuzzed by
# their own tests, not here (a DELETE of the key the fuzzer uses would turn every later case into a 401).
SKIP = {("DELETE", "/api/v1/keys/{key_id}")}


@dataclass
class FuzzReport:
    cases: int = 0
    by_status: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    operations: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.cases} cases over {self.operations} operations in {self.seconds:.1f} s: "
                f"{len(self.server_errors)} server errors, {len(self.mismatches)} spec mismatches; "
                f"statuses {dict(sorted(self.by_status.items()))}")


def fuzz(app, headers: dict[str, str], examples: int, *, seed: int = 0, modes=("positive", "negative"),
         only: str | None = None) -> FuzzReport:
    """Up to `examples` cases per operation per mode (positive: valid input; negative: invalid input)."""
    import schemathesis
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    _register_yaml_stream()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    report = FuzzReport()
    started = time.perf_counter()
    logging.disable(logging.WARNING)  # thousands of access-log lines would hide the report
    try:
        _run_all(schema, report, app, headers, examples, seed, modes, only, checks)
    finally:
        logging.disable(logging.NOTSET)
    report.seconds = time.perf_counter() - started
    return report


def _run_all(schema, report, app, headers, examples, seed, modes, only, checks) -> None:
    import hypothesis
    from schemathesis.generation import GenerationMode

    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP or (only and only not in operation.path):
            continue
        report.operations += 1
        for mode in modes:
            run = _runner(operation.as_strategy(generation_mode=GenerationMode(mode)), mode, report, app, headers,
                          examples, seed, checks)
            try:
                run()
            except hypothesis.errors.Unsatisfiable:  # e.g. no invalid input exists for an operation without inputs
                pass


def _runner(strategy, mode: str, report: FuzzReport, app, headers, examples: int, seed: int, checks):
    """A Hypothesis test that sends `examples` cases of one operation and mode and records each outcome."""
    import hypothesis
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @hypothesis.seed(seed)
    @given(case=strategy)
    def run(case):
        response = case.call(app=app, headers=headers)
        report.cases += 1
        report.by_status[response.status_code] += 1
        label = f"{case.operation.label} [{mode}] -> {response.status_code}"
        if response.status_code >= 500:
            report.server_errors.append(f"{label}: {case.as_curl_command(headers=headers)}\n{response.text[:300]}")
            return
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # a check's failure group: record it and keep fuzzing
            report.mismatches.append(f"{label}: {case.as_curl_command(headers=headers)}\n{str(exc)[:600]}")

    return run


def _register_yaml_stream() -> None:
    """A rule version's YAML export is a YAML stream, one document per pack (RFC 9512 lets application/yaml hold
    several); schemathesis would read it as one document. Check that it parses as a stream, then validate it as
    what the spec documents for a download: a string."""
    import schemathesis
    import yaml
    from schemathesis.core import media_types

    @schemathesis.deserializer(*media_types.YAML_MEDIA_TYPES)  # every YAML type: any one may match first
    def yaml_stream(ctx, response):
        text = response.content.decode("utf-8")
        list(yaml.safe_load_all(text))  # raises on anything that is not YAML
        return text
