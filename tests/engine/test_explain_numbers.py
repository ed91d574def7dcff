"""The column-wise number formatting of explanations (`_nums`) equals `_num` value by value: same type,
same float (sign of zero included)."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.engine.explain import _num, _nums

VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.floats(min_value=-10, max_value=10, allow_nan=False),
    st.integers(-10**7, 10**7).map(lambda k: k / 10**6 + 5e-7),  # near a rounding tie at 6 decimals
    st.integers(-10**7, 10**7).map(lambda k: k / 128),  # exact binary ties
    st.sampled_from([0.0, -0.0, -1e-7, 1e-7, 0.0000005, 2.5e-6, 1234.5678905, 2**53, 2**53 + 2.0, 1e300]),
)


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b and math.copysign(1, a) == math.copysign(1, b)


@settings(max_examples=400, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=50))
def test_nums_equals_num_value_by_value(values):
    column = np.array(values, dtype=np.float64)
    got = _nums(column)
    want = [_num(v) for v in column.tolist()]
    assert all(_same(g, w) for g, w in zip(got, want)), [(g, w) for g, w in zip(got, want) if not _same(g, w)]


def test_margins_of_real_thresholds():
    values = np.array([4799.999999, 4800.0000004, 1600.1234565, -0.00000049, 0.1 + 0.2, 3.3 - 1e-12])
    for threshold in (4800.0, 1600.0, 0.0, 3.3):
        col = values - threshold
        assert all(_same(g, w) for g, w in zip(_nums(col), [_num(v) for v in col.tolist()]))
