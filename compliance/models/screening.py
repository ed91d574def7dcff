"""Restricted-party screening: lists, their dated immutable snapshots and deltas, and hit reviews."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, JobChunkColumns, Json, utcnow


class ScreeningList(Base):
    """A list that parties are screened against: the Consolidated Screening List ("csl") or a custom list
    (the company's own denied parties). Its content lives in snapshots; the newest one is in force."""

    __tablename__ = "screening_lists"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # csl | custom
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ListSnapshot(Base):
    """One import of a list: immutable once written. `delta` counts what changed against the previous one."""

    __tablename__ = "list_snapshots"
    __table_args__ = (UniqueConstraint("list_id", "version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("screening_lists.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source_date: Mapped[date]  # the date the file was published (or downloaded)
    previous_id: Mapped[int | None] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(500), default="")
    format: Mapped[str] = mapped_column(String(8))  # csv | tsv | json
    sha256: Mapped[str] = mapped_column(String(64))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(Json, default=list)  # [{"row": n, "field": ..., "message": ...}]
    unknown_columns: Mapped[list] = mapped_column(Json, default=list)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class ListEntry(Base):
    """One restricted party of one snapshot. `entity_key` identifies it across snapshots (the CSL's own id
    where given); `content_sha` changes whenever anything that matters for screening changes."""

    __tablename__ = "list_entries"
    __table_args__ = (UniqueConstraint("snapshot_id", "entity_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("list_snapshots.id", ondelete="CASCADE"), index=True)
    entity_key: Mapped[str] = mapped_column(String(200))
    content_sha: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), index=True)  # EL, DPL, UVL, MEU, SDN, ... or CUSTOM
    source_name: Mapped[str] = mapped_column(String(300), default="")
    entity_number: Mapped[str | None] = mapped_column(String(100))
    type: Mapped[str | None] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(1000))
    alt_names: Mapped[list] = mapped_column(Json, default=list)
    addresses: Mapped[list] = mapped_column(Json, default=list)  # [{"address", "city", "state", "postal_code", "country"}]
    countries: Mapped[list] = mapped_column(Json, default=list)  # ISO alpha-2 codes from the addresses
    programs: Mapped[list] = mapped_column(Json, default=list)
    federal_register_notice: Mapped[str | None] = mapped_column(String(500))
    start_date: Mapped[str | None] = mapped_column(String(32))
    end_date: Mapped[str | None] = mapped_column(String(32))
    license_requirement: Mapped[str | None] = mapped_column(Text)
    license_policy: Mapped[str | None] = mapped_column(Text)
    remarks: Mapped[str | None] = mapped_column(Text)
    source_list_url: Mapped[str | None] = mapped_column(String(2000))
    extra: Mapped[dict] = mapped_column(Json, default=dict)  # the columns the importer does not model


class SnapshotChange(Base):
    """The delta of a snapshot against the previous one of its list: one row per added, removed or changed entry."""

    __tablename__ = "list_snapshot_changes"
    __table_args__ = (Index("ix_list_snapshot_changes_snapshot_id_id", "snapshot_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("list_snapshots.id", ondelete="CASCADE"))
    entity_key: Mapped[str] = mapped_column(String(200))
    change: Mapped[str] = mapped_column(String(8))  # added | removed | changed
    name: Mapped[str] = mapped_column(String(1000))
    source: Mapped[str] = mapped_column(String(16))
    fields: Mapped[list] = mapped_column(Json, default=list)  # for "changed": the fields that differ
    entry_id: Mapped[int | None] = mapped_column(BigInteger)  # the entry in this snapshot (None if removed)
    previous_entry_id: Mapped[int | None] = mapped_column(BigInteger)


class HitReview(Base):
    """An officer's decision on one hit: `cleared` (a false positive for this party) or `confirmed`.

    Bound to the party's fingerprint (normalised name, country, address) and to the entry's entity_key and
    content_sha: a clearance stops applying as soon as the party or the list entry changes. Never updated;
    a later review of the same pair supersedes it."""

    __tablename__ = "screening_hit_reviews"
    __table_args__ = (Index("ix_screening_hit_reviews_party_entity", "party_fingerprint", "entity_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    party_fingerprint: Mapped[str] = mapped_column(String(64))
    party: Mapped[dict] = mapped_column(Json)  # {"name", "country", "address"} as given
    list_id: Mapped[int] = mapped_column(ForeignKey("screening_lists.id", ondelete="CASCADE"))
    entity_key: Mapped[str] = mapped_column(String(200))
    entry_id: Mapped[int] = mapped_column(BigInteger)
    entry_content_sha: Mapped[str] = mapped_column(String(64))
    entry_name: Mapped[str] = mapped_column(String(1000))
    matched_name: Mapped[str] = mapped_column(String(1000))
    score: Mapped[float]
    decision: Mapped[str] = mapped_column(String(16))  # cleared | confirmed
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScreeningJob(Base):
    """Bulk screening of a party master file (a CSV or JSON of customers) on the workers, with its report."""

    __tablename__ = "screening_jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    filename: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | running | done | failed
    total: Mapped[int] = mapped_column(Integer, default=0)
    screened: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)  # parties with an uncleared hit
    cleared: Mapped[int] = mapped_column(Integer, default=0)  # parties whose every hit is cleared
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(Json, default=list)  # bad rows: {"row", "field", "message"}
    parties: Mapped[list] = mapped_column(Json, default=list)  # [{"row", "name", "country", "address"}]
    results: Mapped[list] = mapped_column(Json, default=list)  # per party: {"row", "status", "hits": [...]}
    lists: Mapped[list] = mapped_column(Json, default=list)  # the snapshots screened against
    threshold: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ScreeningJobChunk(JobChunkColumns, Base):
    """Parties [lo_id, hi_id] (positions in the job's party list, from 0) of a bulk screening job: the unit of
    Celery work of compliance.services.jobs; its results are kept here until the job is finalized."""

    __tablename__ = "screening_job_chunks"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("screening_jobs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    lo_id: Mapped[int] = mapped_column(BigInteger)
    hi_id: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(Integer)
    results: Mapped[list] = mapped_column(Json, default=list)
