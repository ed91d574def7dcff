"""SQLAlchemy 2 models. One module per area; import everything here for Alembic."""
from .activity import ActivityEvent
from .audits import Audit, AuditChunk, AuditResult
from .auth import ApiKey, ConsoleSession
from .base import Base, utcnow
from .catalogue import Catalogue, ImportReport, ImportUpload, ImportUploadPart, Product
from .changes import ChangeRecord, ReevaluationChunk, ReevaluationRun
from .decisions import DecisionRecord
from .determinations import Determination, DeterminationPolicy, DeterminationReview
from .idempotency import IdempotencyKey
from .orders import Licence, LicenceDrawdown, Order, OrderChange, OrderLine, OrderRecheck, OrderRecheckChunk
from .rules import RuleDraft, RuleVersion
from .screening import (
    HitReview,
    ListEntry,
    ListSnapshot,
    ScreeningJob,
    ScreeningJobChunk,
    ScreeningList,
    SnapshotChange,
)
from .webhooks import WebhookDelivery, WebhookSubscription

__all__ = [
    "Base", "utcnow", "ApiKey", "ConsoleSession", "ActivityEvent", "RuleDraft", "RuleVersion", "Catalogue", "ImportReport",
    "ImportUpload", "ImportUploadPart",
    "Product", "Audit", "AuditChunk", "AuditResult", "ChangeRecord", "ReevaluationChunk",
    "ReevaluationRun", "WebhookDelivery", "WebhookSubscription", "DecisionRecord",
    "Determination", "DeterminationPolicy", "DeterminationReview",
    "ScreeningList", "ListSnapshot", "ListEntry", "SnapshotChange", "HitReview", "ScreeningJob", "ScreeningJobChunk",
    "Order", "OrderLine", "OrderChange", "OrderRecheck", "OrderRecheckChunk", "Licence", "LicenceDrawdown",
    "IdempotencyKey",
]
