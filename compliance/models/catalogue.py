from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, JobChunkColumns, Json, utcnow


class Catalogue(Base):
    __tablename__ = "catalogues"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Destinations watched by re-evaluation after a rule change (ISO codes).
    destinations: Mapped[list] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Product(Base):
    """A catalogue entry: the validated spec (JSON) plus the engine's metric columns, so batch
    jobs load columns straight into numpy without parsing specs."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("catalogue_id", "sku"),
        Index("ix_products_catalogue_id_id", "catalogue_id", "id"),
        # A catalogue's counts by status and its chart's (tpp, performance density) come from these
        # indexes without reading the wide rows (100k products: 318 -> 24 ms, 156 -> 14 ms on SQLite).
        Index("ix_products_catalogue_status", "catalogue_id", "status"),
        Index("ix_products_catalogue_metrics", "catalogue_id", "tpp", "performance_density"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("catalogues.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    vendor: Mapped[str] = mapped_column(String(200), default="", index=True)
    family: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    spec: Mapped[dict] = mapped_column(Json)
    # Engine metric columns (NULL = missing). pd_na marks "no non-planar die" (PD undefined).
    tpp: Mapped[float | None] = mapped_column(Float)
    tpp_source: Mapped[str | None] = mapped_column(String(32))
    performance_density: Mapped[float | None] = mapped_column(Float)
    pd_na: Mapped[bool] = mapped_column(Boolean, default=False)
    io_bandwidth: Mapped[float | None] = mapped_column(Float)
    memory_bandwidth_density: Mapped[float | None] = mapped_column(Float)
    dram_bandwidth: Mapped[float | None] = mapped_column(Float)
    transistors: Mapped[float | None] = mapped_column(Float)
    datacenter: Mapped[bool | None] = mapped_column(Boolean)
    model_key: Mapped[str] = mapped_column(String(500), default="")
    # Licence inputs of the spec, as columns so batch jobs need not parse it: the first and last possible day
    # (date ordinals) of release_date (NULL: not given), and hbm_packaging (index into HBM_PACKAGINGS).
    release_first: Mapped[int | None] = mapped_column(Integer)
    release_last: Mapped[int | None] = mapped_column(Integer)
    hbm_packaging: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    has_components: Mapped[bool] = mapped_column(Boolean, default=False)
    # Current standing (today, current rules), kept for listing filters; refreshed by re-evaluation.
    eccn: Mapped[str | None] = mapped_column(String(16), index=True)
    status: Mapped[str | None] = mapped_column(String(16), index=True)
    classified_revision: Mapped[str | None] = mapped_column(String(64))
    classified_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ImportReport(Base):
    """One bulk import as a job (compliance.services.jobs): its status, progress, counts, rejected rows."""

    __tablename__ = "import_reports"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("catalogues.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500), default="")
    format: Mapped[str] = mapped_column(String(8))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(Json, default=list)  # [{"row": n, "field": "...", "problem": "..."}]
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the job (issue 13): a synchronous import is stored finished ("done")
    status: Mapped[str] = mapped_column(String(16), default="done", server_default="done")  # pending|running|done|failed
    error: Mapped[str | None] = mapped_column(Text)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    requested_by: Mapped[str] = mapped_column(String(200), default="", server_default="")


class ImportUpload(JobChunkColumns, Base):
    """The uploaded file of a queued import, kept in the database until the import finishes (so a worker on
    another machine reads it); the job's one chunk (lease columns: compliance.services.jobs)."""

    __tablename__ = "import_uploads"
    __table_args__ = (UniqueConstraint("import_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("import_reports.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    sheet: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger, default=0)


class ImportUploadPart(Base):
    """One piece (at most 8 MiB) of an upload's bytes, in order of `seq`."""

    __tablename__ = "import_upload_parts"
    __table_args__ = (UniqueConstraint("upload_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("import_uploads.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


ProductIdType = BigInteger
