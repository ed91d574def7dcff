"""Contracts of party screening: parties, hits and answers; lists, snapshots, deltas, entries; hit reviews."""
from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .common import CountryCode, id_range, page_range

DECISIONS = ("cleared", "confirmed")
STATUSES = ("hit", "cleared", "clear")
BATCH_MAX = 1000


class PartySchema(Schema):
    """A party to screen: its name, and where known its country and address (supporting signals)."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=1000),
                         metadata={"description": "The party's name as you hold it"})
    country = CountryCode(allow_none=True, metadata={"description": "ISO 3166-1 alpha-2 of the party's address"})
    address = fields.String(allow_none=True, validate=validate.Length(max=2000),
                            metadata={"description": "Street, city, postal code (free text)"})

    @validates_schema
    def _name_has_letters(self, data, **kwargs):
        if "name" in data and not data["name"].strip():
            raise ValidationError("must not be blank", "name")


class ScreenRequestSchema(Schema):
    """One party (`name`, `country`, `address`) or a batch of them (`parties`)."""

    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(min=1, max=1000))
    country = CountryCode(allow_none=True)
    address = fields.String(allow_none=True, validate=validate.Length(max=2000))
    parties = fields.List(fields.Nested(PartySchema), validate=validate.Length(min=1, max=BATCH_MAX),
                          metadata={"description": f"Up to {BATCH_MAX} parties"})

    @validates_schema
    def _one_or_many(self, data, **kwargs):
        if "parties" in data and ("name" in data or "country" in data or "address" in data):
            raise ValidationError("give either name/country/address or parties, not both", "parties")
        if "parties" not in data:
            if "name" not in data:
                raise ValidationError(["missing: give a party's name (or parties: [...])"], "name")
            if not data["name"].strip():
                raise ValidationError("must not be blank", "name")


class ListAddressSchema(Schema):
    address = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    state = fields.String(allow_none=True)
    postal_code = fields.String(allow_none=True)
    country = fields.String(allow_none=True)


class ListEntrySchema(Schema):
    """One restricted party of a list snapshot."""

    id = fields.Integer(required=True)
    snapshot_id = fields.Integer()
    entity_key = fields.String(metadata={"description": "Identifies the entry across snapshots (the CSL id)"})
    source = fields.String(metadata={"description": "EL, DPL, UVL, MEU, SDN, ... or CUSTOM"})
    source_name = fields.String()
    entity_number = fields.String(allow_none=True)
    type = fields.String(allow_none=True)
    name = fields.String()
    alt_names = fields.List(fields.String())
    addresses = fields.List(fields.Nested(ListAddressSchema))
    countries = fields.List(fields.String())
    programs = fields.List(fields.String())
    federal_register_notice = fields.String(allow_none=True)
    start_date = fields.String(allow_none=True)
    end_date = fields.String(allow_none=True)
    license_requirement = fields.String(allow_none=True)
    license_policy = fields.String(allow_none=True)
    remarks = fields.String(allow_none=True)
    source_list_url = fields.String(allow_none=True)
    content_sha = fields.String()


class HitComponentsSchema(Schema):
    name = fields.Float(metadata={"description": "The name score: max(token, compact)"})
    token = fields.Float(metadata={"description": "Weighted best-pair token similarity, both directions"})
    token_sort = fields.Float(metadata={"description": "rapidfuzz token_sort_ratio (reported)"})
    jaro_winkler = fields.Float(metadata={"description": "Jaro-Winkler of the names without spaces (reported)"})
    compact = fields.Float(metadata={"description": "Indel ratio without spaces when the token counts differ"})
    country = fields.Float(metadata={"description": "Country signal added (+) or subtracted (-)"})
    address = fields.Float(metadata={"description": "Address signal added"})


class HitReviewSchema(Schema):
    """An officer's decision on a hit (immutable; a later review of the same party and entry supersedes it)."""

    id = fields.Integer(required=True)
    party = fields.Nested(PartySchema)
    party_fingerprint = fields.String()
    list_id = fields.Integer()
    entity_key = fields.String()
    entry_id = fields.Integer()
    entry_name = fields.String()
    entry_content_sha = fields.String(metadata={"description": "The entry's content when reviewed: a clearance "
                                                               "stops applying when the entry changes"})
    matched_name = fields.String()
    score = fields.Float()
    decision = fields.String(validate=validate.OneOf(DECISIONS))
    reason = fields.String()
    actor = fields.String()
    created_at = fields.DateTime()


class HitSchema(Schema):
    """One list entry a party matched."""

    list = fields.String(required=True, metadata={"description": "The list's name (csl or a custom list)"})
    source = fields.String(metadata={"description": "The source list within it (EL, DPL, SDN, ...)"})
    entry = fields.Nested(ListEntrySchema, required=True)
    matched_name = fields.String(required=True, metadata={"description": "The entry's name or alias that matched"})
    matched_kind = fields.String(validate=validate.OneOf(("name", "alias")))
    score = fields.Float(required=True, metadata={"description": "0-100, at or above the threshold"})
    components = fields.Nested(HitComponentsSchema)
    why = fields.String(metadata={"description": "How the score came about"})
    cleared = fields.Boolean(metadata={"description": "An officer cleared this hit for this party and this entry"})
    review_state = fields.String(validate=validate.OneOf(("unreviewed", "cleared", "confirmed", "stale")))
    review = fields.Nested(HitReviewSchema, allow_none=True)


class ScreeningResultSchema(Schema):
    """The screening of one party."""

    party = fields.Nested(PartySchema, required=True)
    party_fingerprint = fields.String(metadata={"description": "SHA-256 of the normalised name, country, address"})
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={
        "description": "hit: an uncleared hit; cleared: every hit cleared by an officer; clear: no hit"})
    hits = fields.List(fields.Nested(HitSchema), required=True)


class SnapshotRefSchema(Schema):
    list = fields.String()
    list_id = fields.Integer()
    snapshot_id = fields.Integer()
    version = fields.Integer()
    source_date = fields.Date()
    entries = fields.Integer()


class ScreenAnswerSchema(ScreeningResultSchema):
    """The answer of POST /screen: for one party its `party`, `status` and `hits`; for a batch, `results`."""

    party = fields.Nested(PartySchema)
    hits = fields.List(fields.Nested(HitSchema))
    results = fields.List(fields.Nested(ScreeningResultSchema))
    threshold = fields.Float(required=True)
    lists = fields.List(fields.Nested(SnapshotRefSchema), required=True,
                        metadata={"description": "The list snapshots screened against"})


class ReviewCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    party = fields.Nested(PartySchema, required=True)
    entry_id = fields.Integer(required=True, validate=id_range, metadata={"description": "The hit's entry id"})
    decision = fields.String(required=True, validate=validate.OneOf(DECISIONS))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class ScreeningPageQuery(Schema):
    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=page_range)
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class HitReviewQuerySchema(ScreeningPageQuery):
    decision = fields.String(validate=validate.OneOf(DECISIONS))
    actor = fields.String(validate=validate.Length(max=200))
    entry_id = fields.Integer(validate=id_range)


class ListRowErrorSchema(Schema):
    row = fields.Integer()
    field = fields.String()
    message = fields.String()
    kept = fields.Boolean(metadata={"description": "true: the row was kept (a warning); false: left out"})


class SnapshotDeltaSchema(Schema):
    added = fields.Integer()
    removed = fields.Integer()
    changed = fields.Integer()


class ListSnapshotSchema(Schema):
    """One import of a list: dated, immutable, with its delta against the previous snapshot."""

    id = fields.Integer(required=True)
    list_id = fields.Integer()
    list = fields.String()
    version = fields.Integer()
    source_date = fields.Date()
    previous_id = fields.Integer(allow_none=True)
    filename = fields.String()
    format = fields.String()
    sha256 = fields.String()
    rows_read = fields.Integer()
    entries = fields.Integer()
    rejected = fields.Integer()
    errors = fields.List(fields.Nested(ListRowErrorSchema))
    unknown_columns = fields.List(fields.String(), metadata={"description": "Columns the importer does not know "
                                                                             "(kept in each entry's extra)"})
    delta = fields.Nested(SnapshotDeltaSchema)
    imported_by = fields.String()
    imported_at = fields.DateTime()


class ScreeningListSchema(Schema):
    """A screening list (the CSL or a custom list) and its snapshot in force."""

    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=[validate.Length(min=1, max=100),
                                                  validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", error=(
                                                      "letters, digits, '_', '.', '-' only"))])
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    kind = fields.String(dump_only=True)
    created_by = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    snapshots = fields.Integer(dump_only=True)
    current = fields.Nested(ListSnapshotSchema, allow_none=True, dump_only=True)
    history = fields.List(fields.Nested(ListSnapshotSchema), dump_only=True)


class ListsSchema(Schema):
    items = fields.List(fields.Nested(ScreeningListSchema), required=True)


class ListImportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(validate=validate.OneOf(("csv", "tsv", "json")))
    filename = fields.String(validate=validate.Length(max=500))
    source_date = fields.Date(metadata={"description": "The date the file was published (default: today)"})


class ListChangeSchema(Schema):
    entity_key = fields.String()
    change = fields.String(validate=validate.OneOf(("added", "removed", "changed")))
    name = fields.String()
    source = fields.String()
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields")
    entry_id = fields.Integer(allow_none=True)
    previous_entry_id = fields.Integer(allow_none=True)


class ListChangeQuerySchema(ScreeningPageQuery):
    change = fields.String(validate=validate.OneOf(("added", "removed", "changed")))


class ListEntryQuerySchema(ScreeningPageQuery):
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "Name contains (case-insensitive)"})
    source = fields.String(validate=validate.Length(max=16))


class ScreeningJobSchema(Schema):
    """A bulk screening job: a party file screened on the workers, with progress and counts."""

    id = fields.Integer(required=True)
    filename = fields.String()
    status = fields.String(validate=validate.OneOf(("pending", "running", "done", "failed")))
    total = fields.Integer(metadata={"description": "Parties read from the good rows"})
    screened = fields.Integer()
    hits = fields.Integer(metadata={"description": "Parties with an uncleared hit"})
    cleared = fields.Integer(metadata={"description": "Parties whose every hit an officer cleared"})
    rejected = fields.Integer(metadata={"description": "Bad rows, left out"})
    errors = fields.List(fields.Nested(ListRowErrorSchema))
    lists = fields.List(fields.Nested(SnapshotRefSchema))
    threshold = fields.Float(allow_none=True)
    error = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class ScreeningJobReportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))
    only_hits = fields.Boolean(load_default=False, metadata={"description": "Only parties with hits"})
