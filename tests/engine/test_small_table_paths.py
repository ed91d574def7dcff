"""Shortcuts for tables of one row (a single classify) give what the general path gives."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.engine import explain
from compliance.engine.evaluate import _key, _member

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**60, 2**60).map(float),
                   st.floats(-1e10, 1e10).map(lambda v: round(v, 7)))


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS, min_size=0, max_size=explain._NUMS_PYTHON))
def test_nums_of_a_short_column_is_the_numpy_path(values):
    arr = np.array(values, dtype=np.float64)
    padded = np.concatenate([arr, np.zeros(explain._NUMS_PYTHON + 1)])  # long enough for the numpy path
    short, long = explain._nums(arr), explain._nums(padded)[:len(arr)]
    assert [repr(v) for v in short] == [repr(v) for v in long]
    assert [type(v) for v in short] == [type(v) for v in long]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=20), st.lists(st.integers(0, 30), max_size=5))
def test_member_is_isin(codes, targets):
    arr = np.array(codes, dtype=np.int64)
    assert (_member(arr, targets, 31) == np.isin(arr, targets)).all()
    assert _member(arr, targets, 31).shape == arr.shape


def test_a_leaf_key_is_computed_once_per_node_and_follows_the_node():
    a = {"metric": "tpp", "op": ">=", "value": 4800}
    b = {"metric": "tpp", "op": ">=", "value": 1600}
    assert _key(a) == _key(dict(a)) != _key(b)
    assert _key(a) is _key(a)
