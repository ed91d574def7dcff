"""The engine against a hand-coded NumPy evaluation of the same bundled rules (issue 7: engine <= 1.25x).

    flock /work/team/bench.lock taskset -c 0 .venv/bin/python bench/engine_comparator.py
    flock /work/team/bench.lock taskset -c 0 .venv/bin/python bench/engine_comparator.py --sizes 100000 --repeat 5

`numpy_evaluate` is what a person would write by hand for one date: the 6 classification and 19 licence
rules in force on 2026-06-01 written out as NumPy expressions over the table's columns, with Kleene
three-valued logic as (definitely true, definitely false) pairs, product parts as (k, 1) columns and
destination parts as (1, m) rows. It reads the same `ProductTable` (values, states, kind, packaging,
release range, model keys) and the same data the rules refer to (country-group membership on the date,
the rulebook's model-family resolutions); it does not walk condition trees. Both are timed on the same
table, the model-key pass counted in every run of both (the per-key resolutions stay cached on the
rulebook, as in production), and they must agree on every cell: ECCN, status, and per (product,
destination) the requirement, review policy, exceptions, the rules that decided the answer (`rule_bits`) and
the notices (`notice_bits`). The ratio is
engine time / comparator time. `tests/engine/test_engine_comparator.py` runs the same agreement check,
so the two cannot drift apart.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compliance.engine import ProductTable, evaluate, load_rulebook  # noqa: E402
from compliance.engine.codes import (  # noqa: E402
    CONTROLLED,
    ECCN_CODE,
    ECCN_NONE,
    ECCN_UNKNOWN,
    EXC_BIT,
    HQ_NONE,
    INDETERMINATE,
    LICENCE_REQUIRED,
    NO_LICENCE_REQUIRED,
    NOT_CONTROLLED,
    POLICY_NONE,
    POLICY_UNKNOWN,
    REQ_INDETERMINATE,
)
from compliance.engine.countries import COUNTRY_INDEX, ISO_COUNTRIES  # noqa: E402
from compliance.engine.table import KIND_CODE, KNOWN, NOT_APPLICABLE, PACKAGING_CODE  # noqa: E402
from compliance.engine.vocabulary import REVIEW_POLICIES, TRANSACTION_TYPES  # noqa: E402

AS_OF = date(2026, 6, 1)
DESTINATIONS = ["CN", "AE", "DE", "MO", "SG"]
HQ = "SG"
# The rules hand-coded below, in the engine's order (classification: precedence; licences: precedence, high
# first). If the bundled rules in force on AS_OF change, `check_rules` says so and this file must follow.
CLASSIFICATION_IDS = ["us-2023-10.3a090.a", "us-2024-12.3a090.c", "us-2024-12.3a090.c.hbm-assembly",
                      "us-2023-10.3a090.b", "us-2023-10.4a090.a", "us-2023-10.4a090.b"]
LICENCE_IDS = ["us-746.embargo.e1-e2", "us-746.8.belarus.ccl", "us-746.8.russia.ccl",
               "us-2026-01.policy.china-case-by-case", "us-2025-07.overlay.h20-mi308-approval",
               "us-2025-04.overlay.amd-mi308", "us-2025-04.overlay.nvidia-h20", "us-2023-10.licence.d5-macau",
               "us-2023-10.licence.headquarters", "us-2024-12.licence.hbm", "us-2023-10.licence.d1-d4-d5",
               "us-2024-04.exception.aca", "us-2024-04.exception.nac", "us-2024-04.notice.review-policy-uncertain",
               "us-2024-12.exception.hbm",
               "us-2025-01.notice.ai-diffusion", "us-2026-01.notice.system-caps-per-chip",
               "us-746.flag.belarus", "us-746.flag.russia-belarus"]
DENIAL, APPROVAL, CASE = (np.int8(REVIEW_POLICIES.index(p)) for p in
                          ("presumption_of_denial", "presumption_of_approval", "case_by_case"))


def check_rules(rulebook, as_of: date = AS_OF) -> None:
    live = rulebook.in_force(as_of)
    got = ([r.id for r in live.classification], [r.id for r in live.licence])
    if got != (CLASSIFICATION_IDS, LICENCE_IDS):
        raise SystemExit(f"the rules in force on {as_of} are not the ones bench/engine_comparator.py hand-codes: "
                         f"{got}")


# ---------------------------------------------------------------- Kleene pairs (t, f)

def AND(*xs):
    t, f = xs[0]
    for a, b in xs[1:]:
        t, f = t & a, f | b
    return t, f


def OR(*xs):
    t, f = xs[0]
    for a, b in xs[1:]:
        t, f = t | a, f & b
    return t, f


def numpy_evaluate(table: ProductTable, rulebook, destinations, headquarters=None, transaction_type="export",
                   as_of: date = AS_OF) -> dict[str, np.ndarray]:
    """The rules in force on 2026-06-01, hand-coded. Top-level products only (no systems' components)."""
    assert not table.has_components, "the comparator covers tables of top-level products"
    n, k, m = table.n, table.n, len(destinations)
    v, s = table.values, table.states

    def num(metric, op, threshold):
        x, st = v[metric], s[metric]
        known = st == KNOWN
        with np.errstate(invalid="ignore"):
            met = {">=": x >= threshold, ">": x > threshold, "<": x < threshold, "<=": x <= threshold,
                   "==": x == threshold}[op]
        return known & met, (known & ~met) | (st == NOT_APPLICABLE)

    # ---- classification
    kind = table.kind
    ic = kind == KIND_CODE["ic"]
    hbm = kind == KIND_CODE["hbm"]
    system = kind == KIND_CODE["system"]
    tpp4800 = num("tpp", ">=", 4800)
    tpp1600 = num("tpp", ">=", 1600)
    datacenter_note = OR(num("datacenter", "==", 1.0), tpp4800)
    pd592 = num("performance_density", ">=", 5.92)
    pd_below = num("performance_density", "<", 5.92)
    a = AND((ic, ~ic), OR(tpp4800, AND(tpp1600, pd592)), datacenter_note)
    packaging = np.isin(table.hbm_packaging, [PACKAGING_CODE["standalone"], PACKAGING_CODE["interface_logic_die"]])
    c = AND((packaging & hbm, ~packaging | ~hbm), num("memory_bandwidth_density", ">", 2))
    b = AND((ic, ~ic), OR(AND(num("tpp", ">=", 2400), num("tpp", "<", 4800), num("performance_density", ">=", 1.6),
                              pd_below),
                          AND(tpp1600, num("performance_density", ">=", 3.2), pd_below)), datacenter_note)
    # The HBM-assembly and 4A090 rules need a system (kind == system): definitely not met for any other row.
    no_system = (np.zeros(n, dtype=bool), ~system)
    order = [(a, ECCN_CODE["3A090.a"]), (c, ECCN_CODE["3A090.c"]), (no_system, ECCN_CODE["3A090.c"]),
             (b, ECCN_CODE["3A090.b"]), (no_system, ECCN_CODE["4A090.a"]), (no_system, ECCN_CODE["4A090.b"])]
    eccn = np.full(n, ECCN_NONE, dtype=np.int8)
    status = np.full(n, NOT_CONTROLLED, dtype=np.int8)
    open_ = np.ones(n, dtype=bool)
    for (t, f), code in order:
        new = open_ & t
        eccn[new], status[new] = code, CONTROLLED
        blocked = open_ & ~(t | f)
        eccn[blocked], status[blocked] = ECCN_UNKNOWN, INDETERMINATE
        open_ &= ~(new | blocked)

    # ---- licences: product parts (k, 1), destination parts (1, m)
    groups = rulebook.country_groups
    matrix = groups.matrix(as_of)
    alias = np.arange(len(ISO_COUNTRIES))
    for x, target in groups.aliases.items():
        alias[COUNTRY_INDEX[x]] = COUNTRY_INDEX[target]
    dest = alias[np.array([COUNTRY_INDEX[d] for d in destinations], dtype=np.int64)]

    def d_group(*names):
        r = matrix[[groups.index[g] for g in names]][:, dest].any(axis=0).reshape(1, m)
        return r, ~r

    def d_in(*codes):
        r = np.isin(dest, [COUNTRY_INDEX[x] for x in codes]).reshape(1, m)
        return r, ~r

    def NOT(x):
        return x[1], x[0]

    if headquarters is None or isinstance(headquarters, str):
        hq = np.full(k, HQ_NONE if headquarters is None else alias[COUNTRY_INDEX[headquarters]], dtype=np.int64)
    else:
        hq = np.array([HQ_NONE if h is None else alias[COUNTRY_INDEX[h]] for h in headquarters], dtype=np.int64)
    hq_given = hq != HQ_NONE
    hq_safe = np.where(hq_given, hq, 0)
    hq_d5 = (matrix[groups.index["D:5"]][hq_safe] & hq_given).reshape(k, 1)
    hq_mo = ((hq_safe == COUNTRY_INDEX["MO"]) & hq_given).reshape(k, 1)
    hq_d5_or_mo = (hq_d5 | hq_mo, ~(hq_d5 | hq_mo))

    known = (status != INDETERMINATE).reshape(k, 1)
    e = eccn.reshape(k, 1)

    def eccn_in(*labels):
        r = np.isin(e, [ECCN_CODE[x] for x in labels])
        return r & known, ~r & known

    def col(pair):
        return pair[0].reshape(k, 1), pair[1].reshape(k, 1)

    if isinstance(transaction_type, str):
        export = np.full((k, 1), transaction_type == "export")
    else:
        export = np.array([t == "export" for t in transaction_type]).reshape(k, 1)
    assert set([transaction_type] if isinstance(transaction_type, str) else transaction_type) <= set(TRANSACTION_TYPES)
    uniq, codes = table.model_index()
    match, possible = rulebook.models.resolve(uniq)
    match, possible = match[codes], (possible & ~match)[codes]

    def family(*ids):
        wanted = np.uint64(rulebook.models.bits(ids))
        hit, maybe = (match & wanted) != 0, (possible & wanted) != 0
        return hit.reshape(k, 1), (~hit & ~maybe).reshape(k, 1)

    with np.errstate(invalid="ignore"):
        released = (table.release[:, 1] <= date(2026, 1, 15).toordinal()).reshape(k, 1), \
                   (table.release[:, 0] > date(2026, 1, 15).toordinal()).reshape(k, 1)
    ab = eccn_in("3A090.a", "3A090.b", "4A090.a", "4A090.b")
    any_eccn = eccn_in("3A090.a", "3A090.b", "3A090.c", "4A090.a", "4A090.b")
    is_c = eccn_in("3A090.c")
    d5 = d_group("D:5")
    cn_mo = d_in("CN", "MO")
    d5_cn_mo_hq = OR(d5, cn_mo, hq_d5_or_mo)
    not_a5_a6 = NOT(d_group("A:5", "A:6"))
    mo = d_in("MO")
    product_exc = OR(AND(eccn_in("3A090.a", "4A090.a"), col(num("datacenter", "==", 0.0))),
                     AND(eccn_in("3A090.b", "4A090.b"), col(num("datacenter", "==", 1.0))))
    system_col = (system.reshape(k, 1), ~system.reshape(k, 1))
    # (t, f, requires a licence, review policy or None, blocks exceptions, exception bit); flags: FLAG_RULES
    rules = [
        (d_group("E:1", "E:2"), True, DENIAL, True, 0),
        (AND(any_eccn, d_in("BY")), True, DENIAL, True, 0),
        (AND(any_eccn, d_in("RU")), True, DENIAL, True, 0),
        (AND(ab, cn_mo, (export, ~export), col(num("tpp", "<", 21000)), col(num("dram_bandwidth", "<", 6500)),
             released), False, CASE, False, 0),
        (AND(family("nvidia/h20", "amd/mi308"), d_in("CN")), True, APPROVAL, True, 0),
        (AND(family("amd/mi308"), d5_cn_mo_hq), True, DENIAL, True, 0),
        (AND(family("nvidia/h20"), d5_cn_mo_hq), True, DENIAL, True, 0),
        (AND(ab, OR(AND(d5, not_a5_a6), mo)), True, DENIAL, False, 0),
        (AND(ab, hq_d5_or_mo), True, DENIAL, False, 0),
        (AND(is_c, OR(d5, cn_mo)), True, DENIAL, False, 0),
        (AND(ab, d_group("D:1", "D:4", "D:5"), not_a5_a6), True, APPROVAL, False, 0),
        (AND(product_exc, d_group("D:1", "D:4"), NOT(d5), NOT(mo), NOT(hq_d5_or_mo)), False, None, False,
         EXC_BIT["ACA"]),
        (AND(product_exc, OR(d5, mo, hq_d5_or_mo)), False, None, False, EXC_BIT["NAC"]),
        # notice: a possible April 2024 case-by-case policy (unverified), not for 746.8 / embargoed destinations
        (AND(OR(eccn_in("3A090.b", "4A090.b"), AND(eccn_in("3A090.a", "4A090.a"), col(num("datacenter", "==", 0.0)))),
             OR(d5, mo), NOT(d_in("RU", "BY")), NOT(d_group("E:1", "E:2"))), False, None, False, 0),
        (AND(is_c, col(num("memory_bandwidth_density", "<", 3.3))), False, None, False, EXC_BIT["HBM"]),
        (eccn_in("3A090.a", "4A090.a"), False, None, False, 0),  # AI Diffusion: a notice, not applied
        (AND(system_col, eccn_in("4A090.a", "4A090.b"), cn_mo, (export, ~export)), False, None, False, 0),
        (d_in("BY"), False, None, False, 0),
        (d_in("RU"), False, None, False, 0),
    ]
    flag_rules = {0, 13, len(rules) - 4, len(rules) - 3, len(rules) - 2, len(rules) - 1}  # rules that set flags
    shape = (k, m)
    req_t = np.zeros(shape, dtype=bool)
    req_u = np.zeros(shape, dtype=bool)
    policy = np.full(shape, POLICY_NONE, dtype=np.int8)
    decided = np.zeros(shape, dtype=bool)
    exc = np.zeros(shape, dtype=np.uint8)
    blocked = np.zeros(shape, dtype=bool)
    bits = np.zeros(shape, dtype=np.uint64)
    for i, ((t, f), requires, pol, blocks, exc_bit) in enumerate(rules):
        t = np.broadcast_to(t, shape)
        np.bitwise_or(bits, np.uint64(1 << i), out=bits, where=t)
        if requires or pol is not None:
            u = ~(t | f)
        if requires:
            req_t |= t
            req_u |= u
        if pol is not None:
            open_ = ~decided
            np.copyto(policy, pol, where=open_ & t)
            np.copyto(policy, np.int8(POLICY_UNKNOWN), where=open_ & u)
            decided |= t
            decided |= u
        if blocks:
            blocked |= t
        if exc_bit:
            np.bitwise_or(exc, np.uint8(exc_bit), out=exc, where=t)
    requirement = np.where(req_t, LICENCE_REQUIRED, np.where(req_u, REQ_INDETERMINATE, NO_LICENCE_REQUIRED)
                           ).astype(np.int8)
    exc[blocked | ~req_t] = 0
    policy[~req_t & (policy != POLICY_UNKNOWN)] = POLICY_NONE
    policy[requirement == NO_LICENCE_REQUIRED] = POLICY_NONE
    # What decided each answer: where a licence is required, the rules requiring one (or blocking exceptions)
    # and the first matching policy rule (the lowest set bit); the exception rules whose exception stands.
    # Rules that only set flags are notices (as are flag rules that decided nothing).
    def mask(pick):
        return np.uint64(sum(1 << i for i, r in enumerate(rules) if pick(i, *r[1:])))
    required = requirement == LICENCE_REQUIRED
    decided = np.where(required, bits & mask(lambda i, req, pol, blk, e: req or blk), np.uint64(0))
    with_policy = bits & mask(lambda i, req, pol, blk, e: pol is not None)
    first = with_policy & (~with_policy + np.uint64(1))
    decided |= np.where(required & (policy >= 0), first, np.uint64(0))
    for bit in (EXC_BIT["NAC"], EXC_BIT["ACA"], EXC_BIT["HBM"]):
        granted = (exc & np.uint8(bit)) != 0
        decided |= np.where(granted, bits & mask(lambda i, req, pol, blk, e: e == bit), np.uint64(0))
    notice = mask(lambda i, req, pol, blk, e: not (req or blk or pol is not None or e))
    notices = bits & (notice | (mask(lambda i, *_: i in flag_rules) & ~decided))
    return {"eccn": eccn, "status": status, "requirement": requirement, "policy": policy, "exceptions": exc,
            "rule_bits": decided, "notice_bits": notices}


def engine_arrays(result) -> dict[str, np.ndarray]:
    top = result.table.top
    return {"eccn": result.eccn[top], "status": result.status[top], "requirement": result.requirement,
            "policy": result.policy, "exceptions": result.exceptions, "rule_bits": result.rule_bits,
            "notice_bits": result.notice_bits}


def disagreements(engine: dict, hand: dict) -> dict[str, int]:
    """Cells that differ, per output (an empty dict: identical)."""
    out = {}
    for name, got in engine.items():
        want = hand[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        bad = int((got != want).sum())
        if bad:
            out[name] = bad
    return out


# ---------------------------------------------------------------- timing

def main() -> None:
    from bench.engine_throughput import synthetic_columns

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rulebook = load_rulebook(str(ROOT / "rules"))
    check_rules(rulebook)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpu affinity {affinity}, as of {AS_OF}, "
          f"destinations {','.join(DESTINATIONS)}, hq {HQ}, best of {args.repeat}, alternating, "
          f"load average at start {os.getloadavg()}")
    print()
    print("| products | engine s | engine products/s | hand-coded NumPy s | hand-coded products/s "
          "| engine / hand-coded | same, model keys already factorised: engine s, hand-coded s, ratio "
          "| cells compared | agree | load average |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|---|---|")
    for n in [int(x) for x in args.sizes.split(",")]:
        cols, kind, model = synthetic_columns(n)
        table = ProductTable.from_columns(cols, kind, model)

        def run_engine(fresh=True):
            if fresh:
                table._model_index = table._family_bits = None  # the per-table model-key pass, every run
            return evaluate(table, rulebook, AS_OF, DESTINATIONS, HQ)

        def run_hand(fresh=True):
            if fresh:
                table._model_index = table._family_bits = None
            return numpy_evaluate(table, rulebook, DESTINATIONS, HQ)

        run_engine(), run_hand()  # warm: the rulebook's per-key resolutions, country matrix
        best = {}
        for _ in range(args.repeat):  # alternate, so both see the same machine
            for name, fn, fresh in (("engine", run_engine, True), ("hand", run_hand, True),
                                    ("engine_kept", run_engine, False), ("hand_kept", run_hand, False)):
                if not fresh:
                    table.model_index()
                t0 = time.perf_counter()
                out = fn(fresh)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
                if name == "engine":
                    result = out
                elif name == "hand":
                    hand = out
        bad = disagreements(engine_arrays(result), hand)
        if bad:
            raise SystemExit(f"engine and hand-coded NumPy disagree: {bad}")
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"| {n:,} | {best['engine']:.4f} | {n / best['engine']:,.0f} | {best['hand']:.4f} "
              f"| {n / best['hand']:,.0f} | **{best['engine'] / best['hand']:.2f}x** "
              f"| {best['engine_kept']:.4f}, {best['hand_kept']:.4f}, "
              f"**{best['engine_kept'] / best['hand_kept']:.2f}x** "
              f"| {n * (2 + 4 * len(DESTINATIONS)):,} | identical | {load} |")


if __name__ == "__main__":
    main()
