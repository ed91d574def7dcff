"""Every setting, read from the environment in one table and validated at start-up."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    env: str
    default: str | None
    doc: str


# The README's settings table is generated from this list (tests/test_readme.py keeps them in step).
SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", None, "SQLAlchemy URL. Default: SQLite file `instance/compliance.db` (embedded). "
            "Production: `postgresql+psycopg://user@host/db`."),
    Setting("CELERY_BROKER_URL", None, "Redis URL of the Celery broker, e.g. `redis://127.0.0.1:6379/0`. "
            "Unset: jobs run in-process (embedded mode)."),
    Setting("CELERY_RESULT_BACKEND", None, "Celery result backend (default: the broker URL)."),
    Setting("RULES_DIR", str(REPO_ROOT / "rules"), "Bundled rule packs used to seed the database on first start."),
    Setting("SAMPLE_CATALOGUE", str(REPO_ROOT / "compliance" / "data" / "sample_catalogue.json"),
            "Catalogue imported on first start in embedded mode (empty string: none)."),
    Setting("AUTH_MODE", "required", "`required`: every /api/v1 call but health and docs needs an API key. "
            "`disabled`: no keys (trusted local use only)."),
    Setting("MAX_BODY_BYTES", str(20 * 1024 * 1024), "Largest JSON request body, in bytes (413 above it)."),
    Setting("MAX_UPLOAD_BYTES", str(1024 * 1024 * 1024), "Largest catalogue upload, in bytes."),
    Setting("BATCH_MAX_PRODUCTS", "10000", "Most products in one POST /classify/batch."),
    Setting("AUDIT_CHUNK_SIZE", "50000", "Products per audit / re-evaluation chunk task."),
    Setting("CELERY_VISIBILITY_TIMEOUT", "3600", "Seconds before Redis redelivers an unacknowledged task; keep it above the longest task."),
    Setting("JOB_LEASE_SECONDS", "30", "Lease of a running audit / re-evaluation chunk, renewed every third of it; "
            "a chunk whose worker died is re-sent by the sweeper once its lease expires."),
    Setting("JOB_SWEEP_SECONDS", "15", "Interval of the sweeper (Celery beat): expired leases, unsent chunks, lost finalizes."),
    Setting("JOB_REQUEUE_SECONDS", "300", "The sweeper re-sends a chunk still pending this long after it was sent "
            "(a lost message); chunks never sent (broker down) are sent at the next sweep."),
    Setting("IMPORT_WORKERS", "0", "Processes validating big CLI imports (0: one per CPU)."),
    Setting("STORM_GUARD_SHARE", "0.2", "A publish that would change more than this share of products needs confirm=true."),
    Setting("DRAFT_IF_MATCH", "optional", "Rule draft writes (PUT, PATCH, DELETE, publish) and their `If-Match` header: "
            "`optional`: a stale ETag is 412, none is accepted (existing clients); `required`: none is 428."),
    Setting("WEBHOOK_MAX_ATTEMPTS", "6", "Delivery attempts per webhook event before it is marked failed."),
    Setting("WEBHOOK_TIMEOUT_SECONDS", "5", "HTTP timeout of one webhook delivery."),
    Setting("WEBHOOK_BACKOFF_SECONDS", "1", "First retry delay of a failed webhook delivery; doubles per attempt (capped)."),
    Setting("WEBHOOK_ALLOWED_NETWORKS", "", "Comma-separated addresses or CIDR blocks (e.g. `10.20.0.0/16`) that webhook "
            "receivers may be on although private, loopback or link-local. Empty: webhooks go to public addresses only."),
    Setting("SCREENING_THRESHOLD", "88", "Party screening: a name score (0-100, after the country/address signals) at or "
            "above this is a hit. See docs/screening.md for precision and recall at each threshold."),
    Setting("SCREENING_SAMPLE", str(REPO_ROOT / "compliance" / "data" / "entity_list_sample.json"),
            "Screening list sample (real Entity List entries) that becomes the CSL list's first snapshot on first use "
            "(empty string: none). A sample only: import the current CSL."),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    Setting("LOG_FORMAT", "text", "`text`, or `json`: one JSON object per line (ts, level, logger, message, request_id, ...)."),
    Setting("PUBLIC_BASE_URL", "http://127.0.0.1:8000", "The service's address as callers reach it: webhook payloads link to it with absolute URLs."),
    Setting("PROMETHEUS_MULTIPROC_DIR", "", "A directory shared by the web and worker processes of one host: /metrics adds up their counters (prometheus_client's multiprocess mode; empty it at start). Empty: each process reports its own."),
    Setting("METRICS_TOKEN", "", "Set: GET /metrics needs `Authorization: Bearer <token>`. Empty: /metrics is open (keep it on a private network)."),
    Setting("RATE_LIMIT", "600/minute", "Requests per API key to /api/v1 (health and docs exempt; calls without a valid "
            "key count per client address), as Flask-Limiter limits: `600/minute`, `10/second;600/minute`. A call over "
            "it is a 429 with `Retry-After`. Empty: no limit."),
    Setting("RATE_LIMIT_STORAGE_URL", "", "Where the rate limiter counts: `redis://host:port/db` (shared by every web "
            "process), or `memory://` (each process its own). Empty: the broker's Redis when `CELERY_BROKER_URL` is a "
            "Redis URL, else in memory (embedded). If Redis stops answering, counting goes on in memory until it is back."),
)


EMBEDDED_KEY_FILE = REPO_ROOT / "instance" / "admin-key.txt"  # `compliance setup` of the embedded database


def embedded_database_url() -> str:
    """The embedded database (DATABASE_URL unset): a SQLite file in instance/."""
    return f"sqlite:///{REPO_ROOT / 'instance' / 'compliance.db'}"


class ConfigError(ValueError):
    """Invalid settings: `problems` lists every one (the CLI prints them as a list, without a traceback)."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


# (lowest, highest) allowed for numeric settings; None: unbounded on that side.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "MAX_BODY_BYTES": (1, None), "MAX_UPLOAD_BYTES": (1, None), "BATCH_MAX_PRODUCTS": (1, 1_000_000),
    "AUDIT_CHUNK_SIZE": (1, 10_000_000), "CELERY_VISIBILITY_TIMEOUT": (1, None), "AUDIT_STALE_SECONDS": (0, None),
    "IMPORT_WORKERS": (0, 1024), "TEST_CHUNK_DELAY_SECONDS": (0, 3600), "WEBHOOK_MAX_ATTEMPTS": (1, 100),
    "WEBHOOK_TIMEOUT_SECONDS": (0.1, 300), "WEBHOOK_BACKOFF_SECONDS": (0, 3600), "REEVALUATION_STALL_SECONDS": (0, None),
}
def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else str(x)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RATE_LIMIT_STORES = ("memory://", "redis://", "rediss://", "redis+unix://")


def _rate_limit_problems(typed: dict) -> list[str]:
    problems = []
    value = typed.get("RATE_LIMIT") or ""
    if value.strip():
        from limits import parse_many

        try:
            if any(item.amount < 1 for item in parse_many(value)):
                raise ValueError("a limit of 0")
        except ValueError:
            problems.append(f"RATE_LIMIT: not a rate limit such as '600/minute' or '10/second;600/minute', got {value!r}")
    store = typed.get("RATE_LIMIT_STORAGE_URL") or ""
    if store and not store.startswith(RATE_LIMIT_STORES):
        problems.append(f"RATE_LIMIT_STORAGE_URL: must start with {', '.join(RATE_LIMIT_STORES)}, got {store!r}")
    return problems


@dataclass(frozen=True)
class Config:
    """Validated settings. Build with `Config.from_env()`, or pass overrides (tests)."""

    DATABASE_URL: str
    CELERY_BROKER_URL: str | None
    CELERY_RESULT_BACKEND: str | None
    RULES_DIR: str
    SAMPLE_CATALOGUE: str
    AUTH_MODE: str
    MAX_BODY_BYTES: int
    MAX_UPLOAD_BYTES: int
    BATCH_MAX_PRODUCTS: int
    AUDIT_CHUNK_SIZE: int
    CELERY_VISIBILITY_TIMEOUT: int
    JOB_LEASE_SECONDS: float
    JOB_SWEEP_SECONDS: float
    JOB_REQUEUE_SECONDS: float
    IMPORT_WORKERS: int
    STORM_GUARD_SHARE: float
    DRAFT_IF_MATCH: str
    WEBHOOK_MAX_ATTEMPTS: int
    WEBHOOK_TIMEOUT_SECONDS: float
    WEBHOOK_BACKOFF_SECONDS: float
    WEBHOOK_ALLOWED_NETWORKS: str
    SCREENING_THRESHOLD: float
    SCREENING_SAMPLE: str
    LOG_LEVEL: str
    LOG_FORMAT: str
    PUBLIC_BASE_URL: str
    PROMETHEUS_MULTIPROC_DIR: str
    METRICS_TOKEN: str
    RATE_LIMIT: str
    RATE_LIMIT_STORAGE_URL: str
    extra: dict = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        """No broker: Celery tasks run in-process."""
        return not self.CELERY_BROKER_URL

    @property
    def webhook_allowed_networks(self) -> list:
        """WEBHOOK_ALLOWED_NETWORKS as ip_network objects."""
        return [ipaddress.ip_network(p.strip(), strict=False) for p in self.WEBHOOK_ALLOWED_NETWORKS.split(",")
                if p.strip()]

    @property
    def rate_limit_storage_url(self) -> str:
        """RATE_LIMIT_STORAGE_URL, or the broker's Redis (production), or memory:// (embedded)."""
        if self.RATE_LIMIT_STORAGE_URL:
            return self.RATE_LIMIT_STORAGE_URL
        broker = self.CELERY_BROKER_URL or ""
        return broker if broker.startswith(RATE_LIMIT_STORES[1:]) else "memory://"

    @property
    def import_workers(self) -> int:
        """Processes validating big CLI imports (IMPORT_WORKERS; 0: one per CPU)."""
        return max(1, self.IMPORT_WORKERS or (os.cpu_count() or 1))

    @classmethod
    def from_env(cls, overrides: dict | None = None, environ: dict | None = None) -> "Config":
        env = dict(os.environ if environ is None else environ)
        env.update({k: v for k, v in (overrides or {}).items() if v is not None or k in env})
        raw = {s.env: env.get(s.env, s.default) for s in SETTINGS}
        for key, value in (overrides or {}).items():
            raw[key] = value
        if not raw["DATABASE_URL"]:
            (REPO_ROOT / "instance").mkdir(exist_ok=True)
            raw["DATABASE_URL"] = embedded_database_url()
        if raw["DATABASE_URL"].startswith("postgresql://"):
            raw["DATABASE_URL"] = "postgresql+psycopg://" + raw["DATABASE_URL"][len("postgresql://"):]
        if raw["CELERY_BROKER_URL"] == "":
            raw["CELERY_BROKER_URL"] = None
        problems = []
        typed: dict = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            value = raw.get(f.name)
            try:
                if f.type in ("int",) and value is not None:
                    value = int(value)
                elif f.type in ("float",) and value is not None:
                    value = float(value)
            except (TypeError, ValueError):
                problems.append(f"{f.name}: expected a number, got {value!r}")
            typed[f.name] = value
        if typed["AUTH_MODE"] not in ("required", "disabled"):
            problems.append(f"AUTH_MODE: must be 'required' or 'disabled', got {typed['AUTH_MODE']!r}")
        if not Path(str(typed["RULES_DIR"])).is_dir():
            problems.append(f"RULES_DIR: {typed['RULES_DIR']!r} is not a directory")
        if isinstance(typed.get("STORM_GUARD_SHARE"), float) and not 0 < typed["STORM_GUARD_SHARE"] <= 1:
            problems.append(f"STORM_GUARD_SHARE: must be in (0, 1], got {typed['STORM_GUARD_SHARE']!r}")
        if isinstance(typed.get("SCREENING_THRESHOLD"), float) and not 50 <= typed["SCREENING_THRESHOLD"] <= 100:
            problems.append(f"SCREENING_THRESHOLD: must be in [50, 100], got {typed['SCREENING_THRESHOLD']!r}")
        for name, (low, high) in RANGES.items():
            value = typed.get(name)
            if not isinstance(value, (int, float)):
                continue
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"at least {_num(low)}" if high is None else f"between {_num(low)} and {_num(high)}"
                problems.append(f"{name}: must be {span}, got {value!r}")
        if str(typed.get("LOG_LEVEL") or "").upper() not in LOG_LEVELS:
            problems.append(f"LOG_LEVEL: must be one of {', '.join(LOG_LEVELS)}, got {typed.get('LOG_LEVEL')!r}")
        else:
            typed["LOG_LEVEL"] = typed["LOG_LEVEL"].upper()
        if not str(typed.get("PUBLIC_BASE_URL") or "").startswith(("http://", "https://")):
            problems.append(f"PUBLIC_BASE_URL: must be an http:// or https:// URL, got {typed.get('PUBLIC_BASE_URL')!r}")
        for part in str(typed.get("WEBHOOK_ALLOWED_NETWORKS") or "").split(","):
            try:
                if part.strip():
                    ipaddress.ip_network(part.strip(), strict=False)
            except ValueError:
                problems.append(f"WEBHOOK_ALLOWED_NETWORKS: not an IP address or CIDR block: {part.strip()!r}")
        problems += _rate_limit_problems(typed)
        if typed.get("DRAFT_IF_MATCH") not in ("optional", "required"):
            problems.append(f"DRAFT_IF_MATCH: must be 'optional' or 'required', got {typed.get('DRAFT_IF_MATCH')!r}")
        if typed.get("LOG_FORMAT") not in ("text", "json"):
            problems.append(f"LOG_FORMAT: must be 'text' or 'json', got {typed.get('LOG_FORMAT')!r}")
        if problems:
            raise ConfigError(problems)
        extra = {k: v for k, v in (overrides or {}).items() if k not in typed}
        return cls(**typed, extra=extra)
