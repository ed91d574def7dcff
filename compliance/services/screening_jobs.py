"""Bulk screening of a party master file (CSV: name, country, address per row; or JSON: a list of parties)
as a job on the workers: bad rows are reported and left out, the good ones screened 1,000 at a time against
the lists in force, and the report lists every party with its status and hits."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone

from marshmallow import ValidationError

from ..db import enqueue_after_commit
from ..engine.errors import InvalidInput, NotFound
from ..models import ActivityEvent, ScreeningJob
from .screening import screen_parties

CHUNK = 1000
BULK_TASK = "compliance.screening.bulk"
MAX_PARTIES = 1_000_000


def parse_parties(data: bytes, fmt: str) -> tuple[list[dict], list[dict]]:
    """(good parties with their row numbers, bad rows with the field and problem)."""
    from ..api import _flatten
    from ..schemas.screening import PartySchema

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the file is not UTF-8 ({exc})", {"file": ["not UTF-8"]}) from None
    if fmt == "json":
        try:
            raw = json.loads(text) if text.strip() else []
        except ValueError as exc:
            raise InvalidInput(f"the file is not valid JSON ({exc})", {"file": ["not valid JSON"]}) from None
        raw = raw.get("parties", raw) if isinstance(raw, dict) else raw
        if not isinstance(raw, list):
            raise InvalidInput("a JSON party file is a list of parties", {"file": ["expected a list"]})
    elif fmt in ("csv", "tsv"):
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
        if reader.fieldnames is None or "name" not in reader.fieldnames:
            raise InvalidInput("the file has no 'name' column", {"file": [f"columns are {reader.fieldnames}"]})
        raw = [{k: (v if v != "" else None) for k, v in row.items() if k in ("name", "country", "address")}
               for row in reader]
    else:
        raise InvalidInput(f"unknown format {fmt!r}", {"format": ["give csv, tsv or json"]})
    if len(raw) > MAX_PARTIES:
        raise InvalidInput(f"too many parties: {len(raw)} > {MAX_PARTIES}", {"file": ["too many parties"]})
    schema = PartySchema()
    good, bad = [], []
    for n, item in enumerate(raw, 1):
        try:
            party = schema.load(item if isinstance(item, dict) else {"name": item})
        except ValidationError as exc:
            for problem in _flatten(exc.messages):
                field, _, message = problem.partition(": ")
                bad.append({"row": n, "field": field, "message": message})
            continue
        good.append({"row": n, "name": party["name"], "country": party.get("country"),
                     "address": party.get("address")})
    return good, bad


def create_job(db, data: bytes, fmt: str, filename: str, actor: str) -> dict:
    parties, errors = parse_parties(data, fmt)
    with db.session() as s:
        job = ScreeningJob(filename=filename[:500], status="pending", total=len(parties), rejected=len(errors),
                           errors=errors, parties=parties, results=[], created_by=actor)
        s.add(job)
        s.flush()
        s.add(ActivityEvent(actor=actor, action="screening.bulk_start", target=f"screening_job:{job.id}",
                            detail={"filename": job.filename, "parties": job.total, "rejected": job.rejected}))
        s.flush()
        view = job_view(job)
        enqueue_after_commit(s, BULK_TASK, [job.id])
    return view


def run_job(db, job_id: int, threshold: float, sample_path: str | None) -> dict:
    """Screen the job's parties a chunk at a time, saving progress after each chunk."""
    now = datetime.now(timezone.utc)
    with db.session() as s:
        job = s.get(ScreeningJob, job_id)
        if job is None or job.status in ("done", "failed"):
            return {"job": job_id, "skipped": True}
        job.status, job.started_at, job.results, job.screened, job.hits, job.cleared = "running", now, [], 0, 0, 0
        parties = list(job.parties)
    results: list[dict] = []
    try:
        for start in range(0, len(parties), CHUNK):
            chunk = parties[start:start + CHUNK]
            answer = screen_parties(db, [{k: p[k] for k in ("name", "country", "address")} for p in chunk],
                                    threshold, sample_path)
            for p, r in zip(chunk, answer["results"]):
                results.append({"row": p["row"], "name": p["name"], "country": p["country"], "address": p["address"],
                                "status": r["status"],
                                "hits": [{"list": h["list"], "source": h["source"], "entry_id": h["entry"]["id"],
                                          "entry_name": h["entry"]["name"], "matched_name": h["matched_name"],
                                          "score": h["score"], "cleared": h["cleared"],
                                          "federal_register_notice": h["entry"].get("federal_register_notice")}
                                         for h in r["hits"]]})
            with db.session() as s:
                job = s.get(ScreeningJob, job_id)
                job.screened = len(results)
                job.hits = sum(1 for r in results if r["status"] == "hit")
                job.cleared = sum(1 for r in results if r["status"] == "cleared")
                job.lists = [{**sn, "source_date": sn["source_date"].isoformat()} for sn in answer["lists"]]
                job.threshold = threshold
        with db.session() as s:
            job = s.get(ScreeningJob, job_id)
            job.results, job.status, job.finished_at = results, "done", datetime.now(timezone.utc)
    except Exception as exc:
        with db.session() as s:
            job = s.get(ScreeningJob, job_id)
            job.status, job.error, job.finished_at = "failed", str(exc)[:2000], datetime.now(timezone.utc)
        raise
    return {"job": job_id, "screened": len(results)}


def job_view(job: ScreeningJob) -> dict:
    return {"id": job.id, "filename": job.filename, "status": job.status, "total": job.total,
            "screened": job.screened, "hits": job.hits, "cleared": job.cleared, "rejected": job.rejected,
            "errors": job.errors,
            "lists": [{**sn, "source_date": date.fromisoformat(sn["source_date"])} for sn in job.lists], "threshold": job.threshold, "error": job.error,
            "created_by": job.created_by, "created_at": job.created_at, "started_at": job.started_at,
            "finished_at": job.finished_at}


def get_job(db, job_id: int) -> dict:
    with db.session() as s:
        job = s.get(ScreeningJob, job_id)
        if job is None:
            raise NotFound(f"no screening job {job_id}")
        return job_view(job)


def job_report(db, job_id: int, only_hits: bool = False) -> list[dict]:
    with db.session() as s:
        job = s.get(ScreeningJob, job_id)
        if job is None:
            raise NotFound(f"no screening job {job_id}")
        rows = list(job.results)
    return [r for r in rows if r["status"] != "clear"] if only_hits else rows


def report_csv(rows: list[dict]) -> str:
    """One line per hit (a party without hits: one line with empty hit columns); formula cells neutralised."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["row", "name", "country", "address", "status", "list", "source", "entry_id", "entry_name",
                "matched_name", "score", "cleared", "federal_register_notice"])

    def safe(v):
        text = "" if v is None else str(v)
        return "'" + text if text[:1] in ("=", "+", "-", "@") else text

    for r in rows:
        base = [r["row"], safe(r["name"]), r["country"] or "", safe(r["address"]), r["status"]]
        if not r["hits"]:
            w.writerow(base + [""] * 8)
        for h in r["hits"]:
            w.writerow(base + [h["list"], h["source"], h["entry_id"], safe(h["entry_name"]), safe(h["matched_name"]),
                               h["score"], h["cleared"], h["federal_register_notice"] or ""])
    return out.getvalue()
