"""Countries and dated country-group membership (15 CFR 740 Supplement No. 1)."""
from __future__ import annotations

from datetime import date
from typing import Any, Mapping

import numpy as np

# ISO 3166-1 alpha-2 (249 assigned codes) plus XK (Kosovo, user-assigned but in common use).
ISO_COUNTRIES: tuple[str, ...] = tuple(sorted("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
VG VI VN VU WF WS XK YE YT ZA ZM ZW
""".split()))
COUNTRY_INDEX: dict[str, int] = {c: i for i, c in enumerate(ISO_COUNTRIES)}


def _d(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


class CountryGroups:
    """Dated group membership, resolved for one date into a [group x country] boolean matrix."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self.aliases: dict[str, str] = {k: v["treated_as"] for k, v in (data.get("aliases") or {}).items()}
        self.names: list[str] = list(data["groups"])
        self.index = {g: i for i, g in enumerate(self.names)}
        self._cache: dict[date, np.ndarray] = {}
        self._notes: list[tuple[str, date | None, date | None, str]] = [
            (n["country"], _d(n.get("from")), _d(n.get("to")), n["note"]) for n in data.get("country_notes") or ()]

    def matrix(self, as_of: date) -> np.ndarray:
        """Membership in force on `as_of`, aliases applied (HK rows copy CN)."""
        if as_of in self._cache:
            return self._cache[as_of]
        mat = np.zeros((len(self.names), len(ISO_COUNTRIES)), dtype=bool)
        for g, spec in self.data["groups"].items():
            gi = self.index[g]
            for entry in spec["members"]:
                if isinstance(entry, str):
                    entry = {"country": entry}
                start = _d(entry.get("from")) or _d(spec.get("effective_from"))
                end = _d(entry.get("to"))
                if (start is None or start <= as_of) and (end is None or as_of <= end):
                    mat[gi, COUNTRY_INDEX[entry["country"]]] = True
        for alias, target in self.aliases.items():
            mat[:, COUNTRY_INDEX[alias]] = mat[:, COUNTRY_INDEX[target]]
        self._cache[as_of] = mat
        return mat

    def members(self, group: str, as_of: date) -> list[str]:
        row = self.matrix(as_of)[self.index[group]]
        return [ISO_COUNTRIES[i] for i in np.nonzero(row)[0]]

    def groups_of(self, country: str, as_of: date) -> list[str]:
        col = self.matrix(as_of)[:, COUNTRY_INDEX[country]]
        return [self.names[i] for i in np.nonzero(col)[0]]

    def notes(self, country: str, as_of: date) -> list[str]:
        """Dated remarks on a country's membership in force on `as_of` (e.g. an unsourced change date)."""
        return [text for c, start, end, text in self._notes
                if c == country and (start is None or start <= as_of) and (end is None or as_of <= end)]

    def resolve(self, country: str) -> str:
        """The country a code is evaluated as (HK -> CN)."""
        return self.aliases.get(country, country)


MEMBER_KEYS = {"country", "from", "to", "note", "citation"}
NOTE_KEYS = {"country", "from", "to", "note"}


def _dated_entry(entry: dict[str, Any], ep: str, keys: set[str], errors: list[str]) -> None:
    """Check an entry's keys and its inclusive from/to dates."""
    for k in sorted(set(entry) - keys):
        errors.append(f"{ep}.{k}: unknown key; use {sorted(keys)}")
    bounds: dict[str, date] = {}
    for k in ("from", "to"):
        if entry.get(k) is not None:
            try:
                bound = _d(entry[k])
                assert bound is not None  # _d gives None only for None, excluded above
                bounds[k] = bound
            except ValueError:
                errors.append(f"{ep}.{k}: not a date: {entry[k]!r}")
    if len(bounds) == 2 and bounds["to"] < bounds["from"]:
        errors.append(f"{ep}.to: {bounds['to']} is before from {bounds['from']}")


def validate_country_groups(data: Any, path: str = "country_groups") -> list[str]:
    """Every problem in a country-groups document, with paths."""
    errors: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("groups"), dict):
        return [f"{path}.groups: required mapping of group name -> {{members: [...]}}"]
    notes = data.get("country_notes") or []
    if not isinstance(notes, list):
        errors.append(f"{path}.country_notes: must be a list of {{country, from, to, note}}")
        notes = []
    for i, note in enumerate(notes):
        np_ = f"{path}.country_notes[{i}]"
        if not isinstance(note, dict) or note.get("country") not in COUNTRY_INDEX or not isinstance(
                note.get("note"), str) or not note.get("note"):
            errors.append(f"{np_}: needs an ISO country code and a note")
            continue
        _dated_entry(note, np_, NOTE_KEYS, errors)
    for alias, spec in (data.get("aliases") or {}).items():
        if alias not in COUNTRY_INDEX or not isinstance(spec, dict) or spec.get("treated_as") not in COUNTRY_INDEX:
            errors.append(f"{path}.aliases.{alias}: needs an ISO code and treated_as: <ISO code>")
    for g, spec in data["groups"].items():
        gp = f"{path}.groups.{g}"
        if not isinstance(spec, dict) or not isinstance(spec.get("members"), list):
            errors.append(f"{gp}.members: required list")
            continue
        for i, entry in enumerate(spec["members"]):
            code = entry if isinstance(entry, str) else (entry or {}).get("country")
            if code not in COUNTRY_INDEX:
                errors.append(f"{gp}.members[{i}]: unknown country code {code!r}")
            if isinstance(entry, dict):
                _dated_entry(entry, f"{gp}.members[{i}]", MEMBER_KEYS, errors)
    return errors
