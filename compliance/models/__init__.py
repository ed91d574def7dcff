"""SQLAlchemy 2 models. One module per area; import everything here for Alembic."""
from .base import Base, utcnow
from .auth import ApiKey
from .rules import AuditEvent, RuleDraft, RuleVersion
from .catalogue import Catalogue, ImportReport, Product
from .audits import Audit, AuditChunk, AuditResult
from .changes import ChangeRecord, ReevaluationChunk, ReevaluationRun, WebhookDelivery, WebhookSubscription
from .decisions import DecisionRecord

__all__ = [
    "Base", "utcnow", "ApiKey", "AuditEvent", "RuleDraft", "RuleVersion", "Catalogue", "ImportReport",
    "Product", "Audit", "AuditChunk", "AuditResult", "ChangeRecord", "ReevaluationChunk",
    "ReevaluationRun", "WebhookDelivery", "WebhookSubscription", "DecisionRecord",
]
