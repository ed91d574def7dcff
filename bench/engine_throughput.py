"""Engine throughput: the vectorised evaluator vs a straightforward per-product pure-Python evaluator.

    taskset -c 0 .venv/bin/python bench/engine_throughput.py            # 10k, 100k, 1M
    taskset -c 0 .venv/bin/python bench/engine_throughput.py --sizes 10000,100000

Synthetic catalogues are numpy random columns with realistic ranges (ICs and HBM stacks, datacenter and
consumer parts, some missing inputs, a few planar-only dies, overlay model names), built with
`ProductTable.from_columns` (the batch path). The pure-Python evaluator walks the same `when` trees per
product with Kleene logic and the same precedence; it runs on 10k and 100k only (1M: "not run", never
extrapolated), and both evaluators must agree on the 10k set (ECCN, status, and every licence cell).
"""
from __future__ import annotations

import argparse
import fnmatch
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
from compliance.engine.vocabulary import HBM_PACKAGINGS, METRICS  # noqa: E402

AS_OF = date(2026, 6, 1)
DESTINATIONS = ["CN", "AE", "DE", "MO", "SG"]
HQ = "SG"
NA = "n/a"  # a metric that does not exist for the product (PD without a non-planar die, ...)
MODELS = (["nvidia/h20|nvidia/h20", "amd/instinct mi308x", "nvidia/h100 sxm5|nvidia/h100", "nvidia/a100 pcie",
           "nvidia corp./hgx h20 141gb", "nvdia/h20", "advanced micro devices, inc./instinct mi308x",
           "nvidia/h200 nvl", "nvidia/h20e", "nvidia/h800 sxm5|nvidia/h800"]
          + [f"vendor{i % 40}/accelerator {i}" for i in range(2000)])


# ---------------------------------------------------------------- synthetic catalogue

def synthetic_columns(n: int, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Metric columns (NaN = missing) with realistic ranges, plus kind and model key per product."""
    rng = np.random.default_rng(seed)
    hbm = rng.random(n) < 0.15
    kind = np.where(hbm, "hbm", "ic")
    # TPP: log-uniform 100 .. 40,000 (edge NPUs to B200-class), 5 % missing.
    tpp = np.exp(rng.uniform(np.log(100), np.log(40_000), n))
    tpp[rng.random(n) < 0.05] = np.nan
    tpp[hbm] = np.nan
    area = rng.uniform(80, 1600, n)
    area[rng.random(n) < 0.05] = np.nan
    pd = tpp / area
    pd_na = (rng.random(n) < 0.03) & ~hbm  # planar-only parts: PD undefined
    pd[pd_na | hbm] = np.nan
    io = rng.uniform(16, 1800, n)
    io[(rng.random(n) < 0.05) | hbm] = np.nan
    dram = rng.uniform(100, 8000, n)
    dram[(rng.random(n) < 0.05) | hbm] = np.nan
    mbd = np.where(hbm, rng.uniform(0.5, 12, n), np.nan)  # HBM: bandwidth / package area
    mbd[hbm & (rng.random(n) < 0.05)] = np.nan
    datacenter = (rng.random(n) < 0.6).astype(np.float64)
    datacenter[(rng.random(n) < 0.05) | hbm] = np.nan
    model = np.array(MODELS, dtype=object)[rng.integers(0, len(MODELS), n)]
    # Release dates 2020 .. 2026 (as ordinals), a tenth known only to the month (a 30-day range), 10 % missing.
    first = rng.integers(date(2020, 1, 1).toordinal(), date(2026, 12, 31).toordinal(), n).astype(np.float64)
    last = first + np.where(rng.random(n) < 0.1, 30, 0)
    gone = rng.random(n) < 0.1
    first[gone] = last[gone] = np.nan
    packaging = np.where(hbm & (rng.random(n) < 0.1), 2, np.where(hbm & (rng.random(n) < 0.1), 1, 0))
    cols = {"tpp": tpp, "performance_density": pd, "performance_density__na": pd_na, "io_bandwidth": io,
            "dram_bandwidth": dram, "memory_bandwidth_density": mbd, "datacenter": datacenter,
            "release_date_first": first, "release_date_last": last, "hbm_packaging": packaging.astype(np.int8)}
    return cols, kind, model


def product_dicts(cols: dict, kind: np.ndarray, model: np.ndarray) -> list[dict]:
    """The same catalogue as one dict per product, for the pure-Python evaluator."""
    n = len(kind)
    out = []
    for i in range(n):
        p = {"kind": str(kind[i]), "model": str(model[i]),
             "release": (float(cols["release_date_first"][i]), float(cols["release_date_last"][i])),
             "hbm_packaging": HBM_PACKAGINGS[int(cols["hbm_packaging"][i])]}
        for m in ("tpp", "performance_density", "io_bandwidth", "dram_bandwidth", "memory_bandwidth_density",
                  "datacenter", "transistors"):
            col = cols.get(m)
            v = None if col is None or np.isnan(col[i]) else float(col[i])
            p[m] = v
        if cols["performance_density__na"][i]:
            p["performance_density"] = NA
        if p["kind"] == "hbm":  # the engine's kind applicability
            for m in ("tpp", "performance_density", "io_bandwidth", "dram_bandwidth"):
                if p[m] is None:
                    p[m] = NA
        else:
            if p["memory_bandwidth_density"] is None:
                p["memory_bandwidth_density"] = NA
        out.append(p)
    return out


# ---------------------------------------------------------------- pure-Python reference evaluator

class PurePython:
    """Per-product recursive evaluation of the rule trees: Kleene logic, same precedence as the engine."""

    OPS = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}

    def __init__(self, rulebook, as_of: date):
        self.live = rulebook.in_force(as_of)
        self.models = rulebook.models
        groups = rulebook.country_groups
        self.resolve = groups.resolve
        self.members = {g: set(groups.members(g, as_of)) for g in groups.names}

    def truth(self, node: dict, p: dict, ctx: dict):
        if "all" in node:
            vals = [self.truth(c, p, ctx) for c in node["all"]]
            return False if False in vals else (None if None in vals else True)
        if "any" in node:
            vals = [self.truth(c, p, ctx) for c in node["any"]]
            return True if True in vals else (None if None in vals else False)
        if "not" in node:
            v = self.truth(node["not"], p, ctx)
            return None if v is None else not v
        metric, op, value = node["metric"], node["op"], node["value"]
        mtype = METRICS[metric].type
        if mtype in ("number", "bool"):
            v = p.get(metric)
            if v is NA:
                return False
            if v is None:
                return None
            threshold = (1.0 if value else 0.0) if isinstance(value, bool) else float(value)
            return self.OPS[op](v, threshold)
        if metric == "kind":
            targets = value if isinstance(value, list) else [value]
            hit = p["kind"] in targets
            return not hit if op in ("!=", "not_in") else hit
        if metric == "hbm_packaging":
            if p["kind"] != "hbm":
                return False
            targets = value if isinstance(value, list) else [value]
            hit = p["hbm_packaging"] in targets
            return not hit if op in ("!=", "not_in") else hit
        if metric == "release_date":
            first, last = p["release"]
            if first != first:  # NaN: not given
                return None
            day = date.fromisoformat(str(value)).toordinal()
            lo, hi = self.OPS[op](first, day), self.OPS[op](last, day)
            return lo if lo == hi else None
        if metric == "transaction_type":
            targets = value if isinstance(value, list) else [value]
            hit = ctx["transaction_type"] in targets
            return not hit if op in ("!=", "not_in") else hit
        if metric == "model_family":
            match, possible = self.models._resolve_one(p["model"])
            wanted = self.models.bits(value)
            hit, maybe = bool(match & wanted), bool(possible & wanted) and not match & wanted
            if op == "not_in":
                return None if maybe else not hit
            return True if hit else (None if maybe else False)
        if metric == "model":
            pats = [x.lower() for x in (value if isinstance(value, list) else [value])]
            return any(fnmatch.fnmatchcase(k, pat) for k in p["model"].split("|") for pat in pats)
        if metric == "eccn":
            if ctx["eccn"] is None and ctx["status"] == "indeterminate":
                return None
            targets = value if isinstance(value, list) else [value]
            hit = (ctx["eccn"] or "none") in targets
            return not hit if op in ("!=", "not_in") else hit
        if metric in ("destination", "headquarters"):
            code = ctx[metric]
            vals = value if isinstance(value, list) else [value]
            if code is None:
                hit = False
            elif op in ("in", "not_in"):
                hit = self.resolve(code) in {self.resolve(v) for v in vals}
            else:
                hit = any(self.resolve(code) in self.members[g] for g in vals)
            return not hit if op.startswith("not_") else hit
        raise ValueError(metric)

    def classify(self, p: dict) -> tuple[str | None, str]:
        for rule in self.live.classification:
            v = self.truth(rule.when, p, {})
            if v is True:
                return rule.eccn, "controlled"
            if v is None:
                return None, "indeterminate"
        return None, "not_controlled"

    def licence(self, p: dict, eccn, status, dest: str, hq: str | None, transaction_type: str = "export") -> tuple:
        ctx = {"eccn": eccn, "status": status, "destination": dest, "headquarters": hq,
               "transaction_type": transaction_type}
        required = unknown = False
        policy, policy_decided = None, False
        exceptions: set[str] = set()
        blocked = False
        for rule in self.live.licence:  # highest precedence first
            v = self.truth(rule.when, p, ctx)
            eff = rule.effect
            if eff.get("requirement") == "license_required":
                required |= v is True
                unknown |= v is None
            if eff.get("review_policy") and not policy_decided and v is not False:
                policy, policy_decided = (eff["review_policy"] if v else "unknown"), True
            if v is True:
                exceptions |= set(eff.get("exceptions", []))
                blocked |= bool(eff.get("exceptions_blocked"))
        requirement = "license_required" if required else ("indeterminate" if unknown else "no_license_required")
        if requirement != "license_required" or blocked:
            exceptions = set()
        if requirement == "no_license_required" or (requirement == "indeterminate" and policy != "unknown"):
            policy = None
        if policy == "unknown":
            policy = None
        return requirement, policy, tuple(sorted(exceptions))


# ---------------------------------------------------------------- timing

def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def engine_labels(result) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pol = result.policy_labels()
    exc = result.exception_labels()
    return (result.top_eccn_labels(), result.top_status_labels(), result.requirement_labels(), pol, exc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--python-max", type=int, default=100_000, help="largest size the pure-Python evaluator runs on")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rulebook = load_rulebook(str(ROOT / "rules"))
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpu affinity {affinity}, "
          f"as of {AS_OF}, destinations {','.join(DESTINATIONS)}, hq {HQ}, "
          f"{len(rulebook.in_force(AS_OF).classification)} classification + "
          f"{len(rulebook.in_force(AS_OF).licence)} licence rules in force, best of {args.repeat}")
    rows = []
    for n in sizes:
        t_cols, (cols, kind, model) = best_of(lambda: synthetic_columns(n), 1)
        t_table, table = best_of(lambda: ProductTable.from_columns(cols, kind, model), args.repeat)
        t_cls, _ = best_of(lambda: evaluate(table, rulebook, AS_OF), args.repeat)
        def with_licences():
            # count the per-table model-key pass in every run, not just the first (the rulebook keeps its
            # per-key resolutions: that is the cache under test)
            table._model_index = table._family_bits = None
            return evaluate(table, rulebook, AS_OF, DESTINATIONS, HQ)

        t_lic, result = best_of(with_licences, args.repeat)
        row = {"n": n, "columns": t_cols, "table": t_table, "cls": t_cls, "lic": t_lic,
               "py_cls": None, "py_lic": None, "agree": "not run"}
        if n <= args.python_max:
            ref = PurePython(rulebook, AS_OF)
            products = product_dicts(cols, kind, model)
            t_py_cls, classes = best_of(lambda: [ref.classify(p) for p in products], 1)

            def py_all():
                out = []
                for p in products:
                    eccn, status = ref.classify(p)
                    out.append((eccn, status, [ref.licence(p, eccn, status, d, HQ) for d in DESTINATIONS]))
                return out

            t_py_lic, full = best_of(py_all, 1)
            row["py_cls"], row["py_lic"] = t_py_cls, t_py_lic
            if True:  # every size the pure-Python evaluator ran on is checked cell by cell
                eccn, status, req, pol, exc = engine_labels(result)
                mismatches = 0
                for i, (p_eccn, p_status, lic) in enumerate(full):
                    if (p_eccn or "") != eccn[i] or p_status != status[i]:
                        mismatches += 1
                        continue
                    for j, (p_req, p_pol, p_exc) in enumerate(lic):
                        e_exc = tuple(sorted(x for x in exc[i, j].split(",") if x))
                        if (p_req, p_pol, p_exc) != (req[i, j], pol[i, j], e_exc):
                            mismatches += 1
                            break
                row["agree"] = "identical" if mismatches == 0 else f"{mismatches} DIFFER"
                if mismatches:
                    raise SystemExit(f"engine and pure-Python evaluator disagree on {mismatches} of {n} products")
                counts = {e or "none": int((eccn == (e or "")).sum()) for e in ("3A090.a", "3A090.b", "3A090.c", None)}
                print(f"  {n:,} products: {counts}, indeterminate {int((status == 'indeterminate').sum())}")
        rows.append(row)

    def rate(n, t):
        return f"{n / t:>13,.0f}" if t else f"{'not run':>13}"

    def secs(t):
        return f"{t:>8.3f}" if t is not None else f"{'not run':>8}"

    print()
    print("| products | make columns s | from_columns s | engine classify s | engine classify /s "
          "| engine +5 dest s | engine +5 dest /s | python classify /s | python +5 dest /s | speed-up classify "
          "| speed-up +5 dest | engine == python (ECCN, status, every licence cell) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        speed = f"{r['py_cls'] / r['cls']:,.0f}x" if r["py_cls"] else "not run"
        speed_lic = f"{r['py_lic'] / r['lic']:,.0f}x" if r["py_lic"] else "not run"
        print(f"| {r['n']:,} | {r['columns']:.3f} | {r['table']:.3f} | {r['cls']:.4f} | {rate(r['n'], r['cls'])} "
              f"| {r['lic']:.3f} | {rate(r['n'], r['lic'])} | {rate(r['n'], r['py_cls'])} "
              f"| {rate(r['n'], r['py_lic'])} | {speed} | {speed_lic} | {r['agree'] if r['py_cls'] else 'not run'} |")


if __name__ == "__main__":
    main()
