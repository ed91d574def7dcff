"""The pure rules engine: no Flask, SQLAlchemy or Celery in here (tests/engine/test_purity.py checks).

    table = build_table([{"name": "H100", "throughput": [{"format": "fp8", "dense_tops": 1979}], ...}])
    result = evaluate(table, load_rulebook("rules"), date(2024, 1, 1), ["CN", "DE"])
    classification_record(result, 0), licence_record(result, 0, 0)   # compliance.engine.explain
"""
from .errors import ComplianceError, InvalidInput, RulebookInvalid
from .evaluate import Evaluation, evaluate
from .rulebook import Rulebook, canonical_json, content_hash, load_rulebook, load_rulebook_content
from .table import ProductTable, build_table, derive_metrics
from .vocabulary import describe as describe_vocabulary

__all__ = [
    "ComplianceError", "InvalidInput", "RulebookInvalid", "Evaluation", "evaluate", "Rulebook",
    "canonical_json", "content_hash", "load_rulebook", "load_rulebook_content", "ProductTable",
    "build_table", "derive_metrics", "describe_vocabulary",
]
