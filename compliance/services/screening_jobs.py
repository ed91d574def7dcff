"""Bulk screening of a party master file (CSV: name, country, address per row; or JSON: a list of parties)
as a chunked job of services/jobs.py: bad rows are reported and left out, the good ones screened in chunks of
1,000 (one task each, on any worker) against the lists in force, and the report lists every party with its
status and hits."""
from __future__ import annotations

import csv
import io
import json
from datetime import date

from marshmallow import ValidationError
from sqlalchemy import select, update

from ..engine.errors import InvalidInput, NotFound
from ..models import ActivityEvent, ScreeningJob, ScreeningJobChunk
from . import jobs
from .screening import screen_parties

CHUNK = 1000
BULK_TASK = "compliance.screening.bulk"  # a job queued as one task by the code before the chunked jobs
BULK_CHUNK_TASK = "compliance.screening.bulk_chunk"
BULK_JOB = jobs.JobKind("screening", ScreeningJob, ScreeningJobChunk, "job_id", BULK_CHUNK_TASK)
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
    """The job and one chunk per CHUNK parties (a chunked job of services/jobs.py), sent after commit."""
    parties, errors = parse_parties(data, fmt)
    with db.session() as s:
        job = ScreeningJob(filename=filename[:500], status="pending", total=len(parties), rejected=len(errors),
                           errors=errors, parties=parties, results=[], created_by=actor)
        s.add(job)
        s.flush()
        s.add(ActivityEvent(actor=actor, action="screening.bulk_start", target=f"screening_job:{job.id}",
                            detail={"filename": job.filename, "parties": job.total, "rejected": job.rejected}))
        chunks = [ScreeningJobChunk(job_id=job.id, seq=i, lo_id=lo, hi_id=min(lo + CHUNK, len(parties)) - 1,
                                    size=min(lo + CHUNK, len(parties)) - lo, status="pending", attempts=0, results=[])
                  for i, lo in enumerate(range(0, len(parties), CHUNK))]
        s.add_all(chunks)
        s.flush()
        if chunks:
            jobs.enqueue_chunks(s, BULK_JOB, job.id, [c.id for c in chunks])
        else:
            jobs.finalize_in(s, BULK_JOB, job.id, _finalize)
        view = job_view(job)
    return view


def _result_row(p: dict, r: dict) -> dict:
    return {"row": p["row"], "name": p["name"], "country": p["country"], "address": p["address"],
            "status": r["status"],
            "hits": [{"list": h["list"], "source": h["source"], "entry_id": h["entry"]["id"],
                      "entry_name": h["entry"]["name"], "matched_name": h["matched_name"], "score": h["score"],
                      "cleared": h["cleared"], "federal_register_notice": h["entry"].get("federal_register_notice")}
                     for h in r["hits"]]}


def run_chunk(db, job_id: int, chunk_id: int, threshold: float, sample_path: str | None,
              lease_seconds: float = 30.0) -> dict:
    """Claim and screen one chunk of the job's parties; its results and the job's progress are written in the
    fenced transaction (once); the last chunk assembles the report (finalize once)."""
    def compute(job: ScreeningJob, chunk: ScreeningJobChunk) -> jobs.ChunkWork:
        part = list(job.parties[chunk.lo_id:chunk.hi_id + 1])
        answer = screen_parties(db, [{k: p[k] for k in ("name", "country", "address")} for p in part],
                                threshold, sample_path)
        rows = [_result_row(p, r) for p, r in zip(part, answer["results"])]
        hits = sum(1 for r in rows if r["status"] == "hit")
        cleared = sum(1 for r in rows if r["status"] == "cleared")
        lists = [{**sn, "source_date": sn["source_date"].isoformat()} for sn in answer["lists"]]

        def write(s) -> None:  # progress as atomic increments: chunks finish in any order, on any worker
            J = ScreeningJob
            s.execute(update(J).where(J.id == job.id)
                      .values(screened=J.screened + len(rows), hits=J.hits + hits, cleared=J.cleared + cleared,
                              lists=lists, threshold=threshold)
                      .execution_options(synchronize_session=False))

        return jobs.ChunkWork(write, values={"results": rows}, result={"screened": len(rows)})

    return jobs.run_chunk(db, BULK_JOB, job_id, chunk_id, compute, _finalize, lease_seconds)


def _finalize(s, job: ScreeningJob) -> None:
    """The report: every chunk's results in party order; the counts from them (not from task results)."""
    results: list[dict] = []
    for rows in s.scalars(select(ScreeningJobChunk.results).where(ScreeningJobChunk.job_id == job.id)
                          .order_by(ScreeningJobChunk.seq)):
        results += rows or []
    job.results = results
    job.screened = len(results)
    job.hits = sum(1 for r in results if r["status"] == "hit")
    job.cleared = sum(1 for r in results if r["status"] == "cleared")
    job.error = None


def fail_chunk(db, job_id: int, chunk_id: int, error: str) -> None:
    jobs.fail_chunk(db, BULK_JOB, job_id, chunk_id, error)


def sweep_screening_jobs(db, requeue_after: float) -> dict[str, int]:
    """Finalize complete bulk screenings; re-enqueue chunks whose lease expired or whose message may be lost."""
    return jobs.sweep(db, BULK_JOB, _finalize, requeue_after)


def run_job(db, job_id: int, threshold: float, sample_path: str | None) -> dict:
    """A job queued as one task before the chunked jobs (compliance.screening.bulk): its chunks are run here,
    in sequence, through the same mechanism (a job created since has its chunks sent as tasks)."""
    with db.session() as s:
        chunk_ids = list(s.scalars(select(ScreeningJobChunk.id).where(ScreeningJobChunk.job_id == job_id)
                                   .order_by(ScreeningJobChunk.seq)))
        job = s.get(ScreeningJob, job_id)
        if job is None or job.status in ("done", "failed"):
            return {"job": job_id, "skipped": True}
        if not chunk_ids:  # planned by the old code: plan its chunks now
            n = len(job.parties)
            chunks = [ScreeningJobChunk(job_id=job_id, seq=i, lo_id=lo, hi_id=min(lo + CHUNK, n) - 1,
                                        size=min(lo + CHUNK, n) - lo, status="pending", attempts=0, results=[])
                      for i, lo in enumerate(range(0, n, CHUNK))]
            s.add_all(chunks)
            s.flush()
            chunk_ids = [c.id for c in chunks]
            job.screened = job.hits = job.cleared = 0
            if not chunk_ids:
                jobs.finalize_in(s, BULK_JOB, job_id, _finalize)
    screened = 0
    for cid in chunk_ids:
        screened += run_chunk(db, job_id, cid, threshold, sample_path).get("screened", 0)
    return {"job": job_id, "screened": screened}


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
