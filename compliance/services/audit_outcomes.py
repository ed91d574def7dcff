"""The outcome strings of audit results (pure: no database).

`AuditResult.outcomes` encodes each destination's licence result as ``req:policy:exceptions:bits``
(integer codes of compliance.engine.codes), joined by ``;`` in the audit's destination order;
`bits` index ``rulebook.in_force(as_of).licence`` of the audit's pinned revision. Encoded from an Evaluation,
decoded back to codes, counted per ECCN, status, destination x requirement x review policy.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..engine.codes import POLICY_UNKNOWN, policy_label
from ..engine.evaluate import Evaluation
from ..engine.vocabulary import REQUIREMENTS


def encode_outcomes(ev: Evaluation) -> list[str]:
    """Per top-level product: 'req:policy:exc:bits' per destination joined by ';' (each distinct row once)."""
    k, m = ev.requirement.shape
    if k == 0:
        return []
    if m == 0:
        return [""] * k
    stacked = np.concatenate([ev.requirement.astype(np.int64), ev.policy.astype(np.int64),
                              ev.exceptions.astype(np.int64), ev.rule_bits.astype(np.int64)], axis=1)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    labels = [";".join(f"{u[j]}:{u[m + j]}:{u[2 * m + j]}:{int(np.uint64(u[3 * m + j]))}" for j in range(m))
              for u in uniq]
    return [labels[i] for i in inverse.reshape(-1)]

def decode_outcome(segment: str) -> tuple[int, int, int, int]:
    req, pol, exc, bits = segment.split(":")
    return int(req), int(pol), int(exc), int(bits)


def policy_count_key(code: int) -> str:
    """The key a review-policy code is counted under in audit counts."""
    return "unknown" if code == POLICY_UNKNOWN else (policy_label(code) or "none")


def final_counts(destinations: Sequence[str], rows: Sequence[tuple]) -> dict[str, Any]:
    """Counts per ECCN, per status and per destination x requirement x review policy."""
    by_eccn: dict[str, int] = {}
    by_status: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    licences: dict[str, dict[str, dict[str, int]]] = {d: {} for d in destinations}
    total = 0
    for eccn, status, oc, n in rows:
        total += n
        by_eccn[eccn or "none"] = by_eccn.get(eccn or "none", 0) + n
        by_status[status] = by_status.get(status, 0) + n
        outcomes[oc] = outcomes.get(oc, 0) + n
    for oc, n in outcomes.items():
        for dest, seg in zip(destinations, oc.split(";") if oc else []):
            req, pol, _, _ = decode_outcome(seg)
            bucket = licences[dest].setdefault(REQUIREMENTS[req], {})
            key = policy_count_key(pol)
            bucket[key] = bucket.get(key, 0) + n
    return {"products": total, "by_eccn": by_eccn, "by_status": by_status, "licences": licences,
            "outcomes": outcomes}
