"""The one table of the engine's integer codes and their labels.

Evaluations hold small integers in numpy arrays (ECCN, status, requirement, review policy, exception
bits); everything that stores, compares or prints them (audits, re-evaluation, explanations, reports)
turns them into labels here, so a code means the same thing everywhere.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .vocabulary import ECCNS, EXCEPTIONS, REQUIREMENTS, REVIEW_POLICIES, STATUSES

# ECCN per table row: an index into ECCNS, or one of these two.
ECCN_UNKNOWN = -1  # an input is missing (the row is indeterminate)
ECCN_NONE = len(ECCNS)  # no 3A090/4A090 paragraph is met
ECCN_CODE: dict[str, int] = {e: i for i, e in enumerate(ECCNS)} | {"none": ECCN_NONE}
# Index ECCN_NONE and index -1 (ECCN_UNKNOWN, counted from the end) both map to None.
ECCN_LABELS = np.array(list(ECCNS) + [None, None], dtype=object)

# Classification status per row: an index into STATUSES.
CONTROLLED, NOT_CONTROLLED, INDETERMINATE = (STATUSES.index(s) for s in ("controlled", "not_controlled",
                                                                          "indeterminate"))
STATUS_LABELS = np.array(STATUSES, dtype=object)

# Licence requirement per (product, destination) cell: an index into REQUIREMENTS.
LICENCE_REQUIRED, NO_LICENCE_REQUIRED, REQ_INDETERMINATE = (
    REQUIREMENTS.index(r) for r in ("license_required", "no_license_required", "indeterminate"))
REQUIREMENT_LABELS = np.array(REQUIREMENTS, dtype=object)

# Review policy per cell: an index into REVIEW_POLICIES, or one of these two.
POLICY_NONE = -1  # no rule sets a policy (or no licence is required)
POLICY_UNKNOWN = -2  # the rule that would set it depends on a missing input
# Index -2 and -1 (counted from the end) both map to None, as the API reports them.
POLICY_LABELS = np.array(list(REVIEW_POLICIES) + [None, None], dtype=object)

# Licence exceptions per cell: a bit per exception.
EXC_BIT: dict[str, int] = {e: 1 << i for i, e in enumerate(EXCEPTIONS)}

# End-user headquarters per product: a country index, or none given.
HQ_NONE = -1


def eccn_label(code: int) -> str | None:
    return ECCN_LABELS[code]  # type: ignore[no-any-return]  # an object array's element: a label or None


def policy_label(code: int) -> str | None:
    """The API's label of a review-policy code (None for 'none' and for 'unknown')."""
    return POLICY_LABELS[code]  # type: ignore[no-any-return]  # an object array's element: a label or None


def exception_names(bits: int) -> list[str]:
    return [e for e in EXCEPTIONS if bits & EXC_BIT[e]]


def bits_to_labels(bits: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Map each bitmask to a comma-joined label, computing each distinct mask once."""
    flat = bits.reshape(-1)
    uniq, inverse = np.unique(flat, return_inverse=True)
    labels = np.array([",".join(n for b, n in enumerate(names) if int(u) >> b & 1) for u in uniq], dtype=object)
    return labels[inverse].reshape(bits.shape)
