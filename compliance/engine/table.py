"""Product tables: the columns the engine evaluates.

A table holds one row per product and one row per component of a system (flattened, with a
parent index), so systems classify from their parts in the same vectorised pass. Each metric is
a float64 column plus a state column: KNOWN, MISSING (the input was not given) or NOT_APPLICABLE
(the metric does not exist for this product, e.g. performance density without a non-planar die).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence, overload

import numpy as np

from .vocabulary import FORMAT_BITS, FORMAT_NOTES, HBM_PACKAGINGS, KINDS

if TYPE_CHECKING:
    from .vendors import ModelCatalog

KNOWN, MISSING, NOT_APPLICABLE = 0, 1, 2
NUMERIC_METRICS = (
    "tpp",
    "performance_density",
    "io_bandwidth",
    "memory_bandwidth_density",
    "dram_bandwidth",
    "transistors",
    "datacenter",
)
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
PACKAGING_CODE = {p: i for i, p in enumerate(HBM_PACKAGINGS)}
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def release_range(text: Any) -> tuple[float, float] | None:
    """(first, last) possible day ordinal of a release date 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'; None if unreadable."""
    if isinstance(text, date):
        return float(text.toordinal()), float(text.toordinal())
    m = _DATE.fullmatch(str(text or "").strip())
    if not m:
        return None
    y, mo, d = int(m.group(1)), m.group(2), m.group(3)
    try:
        if d:
            day = date(y, int(mo), int(d)).toordinal()
            return float(day), float(day)
        if mo:
            first = date(y, int(mo), 1)
            nxt = date(y + (first.month == 12), first.month % 12 + 1, 1)
            return float(first.toordinal()), float(nxt.toordinal() - 1)
        return float(date(y, 1, 1).toordinal()), float(date(y, 12, 31).toordinal())
    except ValueError:
        return None


@dataclass
class ProductTable:
    """Columnar products. `top` lists the rows that were asked about, in request order."""

    n: int
    values: dict[str, np.ndarray]  # metric -> float64[n]
    states: dict[str, np.ndarray]  # metric -> int8[n]
    kind: np.ndarray  # int8[n], index into KINDS
    model: np.ndarray  # object[n]: "vendor/name|vendor/family" lower-case
    parent: np.ndarray  # int64[n], -1 for top-level rows
    count: np.ndarray  # int64[n], how many of this component the parent holds (1 for top-level)
    depth: np.ndarray  # int16[n]
    top: np.ndarray  # int64[k]
    release: np.ndarray | None = None  # float64[n, 2]: first and last possible release day (ordinal), NaN unknown
    hbm_packaging: np.ndarray | None = None  # int8[n], index into HBM_PACKAGINGS (standalone unless given)
    notes: Sequence[list[str]] = field(default_factory=list)  # per row; empty when built from columns
    tpp_source: list[str] | None = None  # per row; None when built from columns
    _model_index: tuple[list[str], np.ndarray] | None = field(default=None, repr=False, compare=False)
    # (the catalogue they were resolved with, match bits, possible-match bits): see evaluate.family_bits
    _family_bits: tuple[ModelCatalog, np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.release is None:
            self.release = np.full((self.n, 2), np.nan)
        if self.hbm_packaging is None:
            self.hbm_packaging = np.zeros(self.n, dtype=np.int8)

    @property
    def has_components(self) -> bool:
        return bool((self.parent >= 0).any())

    def model_index(self) -> tuple[list[str], np.ndarray]:
        """(distinct model keys, code per row), computed once per table.

        Overlays glob-match model keys; matching each distinct key once and indexing by code keeps that
        proportional to the number of distinct models, and the one pass here (a dict, no sort) is
        shared by every model leaf of every rule.
        """
        if self._model_index is None:
            index: dict[str, int] = {}
            codes = np.fromiter((index.setdefault(m, len(index)) for m in self.model.tolist()),
                                dtype=np.int64, count=self.n)
            self._model_index = (list(index), codes)
        return self._model_index

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Any],
        kind: Iterable[str] | np.ndarray,
        model: Iterable[str] | np.ndarray | None = None,
    ) -> "ProductTable":
        """Build a table of top-level ICs/HBM items from precomputed metric columns.

        `columns` maps metric name -> array with NaN for missing values. This is the fast path used
        by batch audits and benchmarks: no per-row Python work.
        """
        kind_arr = np.asarray(kind)
        if kind_arr.dtype.kind in "iu":
            kind_codes = kind_arr.astype(np.int8)
        else:
            uniq, inverse = np.unique(kind_arr, return_inverse=True)
            kind_codes = np.array([KIND_CODE[str(u)] for u in uniq], dtype=np.int8)[inverse]
        n = len(kind_codes)
        values: dict[str, np.ndarray] = {}
        states: dict[str, np.ndarray] = {}
        for metric in NUMERIC_METRICS:
            col = columns.get(metric)
            if col is None:
                values[metric] = np.full(n, np.nan)
                states[metric] = np.full(n, MISSING, dtype=np.int8)
                continue
            arr = np.asarray(col, dtype=np.float64)
            values[metric] = arr
            state = np.where(np.isnan(arr), MISSING, KNOWN).astype(np.int8)
            na = columns.get(metric + "__na")
            if na is not None:
                state[np.asarray(na, dtype=bool)] = NOT_APPLICABLE
            states[metric] = state
        _apply_kind_applicability(values, states, kind_codes)
        model_arr = np.asarray(model if model is not None else [""] * n, dtype=object)
        release = np.full((n, 2), np.nan)
        if columns.get("release_date_first") is not None:
            release[:, 0] = np.asarray(columns["release_date_first"], dtype=np.float64)
            release[:, 1] = np.asarray(columns.get("release_date_last", columns["release_date_first"]),
                                       dtype=np.float64)
        packaging = (np.asarray(columns["hbm_packaging"], dtype=np.int8) if columns.get("hbm_packaging") is not None
                     else np.zeros(n, dtype=np.int8))
        return cls(
            n=n, values=values, states=states, kind=kind_codes, model=model_arr,
            parent=np.full(n, -1, dtype=np.int64), count=np.ones(n, dtype=np.int64),
            depth=np.zeros(n, dtype=np.int16), top=np.arange(n, dtype=np.int64),
            release=release, hbm_packaging=packaging,
        )


def _apply_kind_applicability(values: dict[str, np.ndarray], states: dict[str, np.ndarray],
                              kind_codes: np.ndarray) -> None:
    """Mark metrics that do not exist for a kind as NOT_APPLICABLE (unless a value was given)."""
    hbm = kind_codes == KIND_CODE["hbm"]
    not_hbm = ~hbm
    for metric, mask in (
        ("memory_bandwidth_density", not_hbm),
        ("performance_density", hbm),
        ("io_bandwidth", hbm),
        ("dram_bandwidth", hbm),
    ):
        states[metric][mask & (states[metric] == MISSING)] = NOT_APPLICABLE
    tpp_missing_hbm = hbm & (states["tpp"] == MISSING)
    states["tpp"][tpp_missing_hbm] = NOT_APPLICABLE


def derive_metrics(product: Mapping[str, Any]) -> dict[str, Any]:
    """Derive the engine metrics of one IC or HBM product from its spec (a validated dict).

    Returns {metric: value or None, "<metric>__na": bool, "tpp_source": str, "notes": [...]}.
    Systems are derived from their components in `build_table`.
    """
    notes: list[str] = []
    out: dict[str, Any] = {"notes": notes}
    kind = product.get("kind", "ic")

    # TPP: a declared value, or the max over formats of dense TOPS x bit length.
    tpp = None
    tpp_source = "missing"
    best = None
    for entry in product.get("throughput") or ():
        fmt = entry["format"]
        bits = FORMAT_BITS[fmt]
        dense = entry.get("dense_tops")
        if dense is None and entry.get("sparse_tops") is not None:
            dense = entry["sparse_tops"] / 2.0
            notes.append(f"{fmt}: sparse figure {entry['sparse_tops']:g} halved to dense {dense:g}")
        if dense is None:
            continue
        if fmt in FORMAT_NOTES:
            notes.append(FORMAT_NOTES[fmt])
        candidate = dense * bits
        if best is None or candidate > best[0]:
            best = (candidate, fmt, dense, bits)
    if product.get("tpp") is not None:
        tpp = float(product["tpp"])
        tpp_source = "declared"
        if best is not None and abs(best[0] - tpp) > 1e-6 * max(tpp, 1.0):
            notes.append(f"declared tpp {tpp:g} used; throughput table gives {best[0]:g} ({best[1]})")
    elif best is not None:
        tpp = best[0]
        tpp_source = f"throughput:{best[1]}"
        notes.append(f"tpp = {best[2]:g} dense {best[1]} TOPS x {best[3]} bits = {tpp:g}")
    out["tpp"] = tpp
    out["tpp_source"] = tpp_source

    # Applicable die area: non-planar logic dies only (HBM/DRAM excluded by the caller's data).
    area = None
    unknown_dies = [i for i, d in enumerate(product.get("logic_dies") or ()) if d.get("non_planar") is None]
    if unknown_dies:
        # Unknown stays unknown: a die of unknown process may or may not count, so PD is not known.
        notes.append("performance density unknown: " + ", ".join(f"logic_dies[{i}].non_planar" for i in unknown_dies)
                     + " not given (FinFET/GAA or planar?)")
    elif product.get("logic_dies"):
        area = sum(d["area_mm2"] for d in product["logic_dies"] if d.get("non_planar"))
    elif product.get("die_area_mm2") is not None:
        area = float(product["die_area_mm2"])
    out["applicable_die_area_mm2"] = area
    out["performance_density"] = None
    out["performance_density__na"] = False
    if area is not None and area <= 0:
        out["performance_density__na"] = True
        notes.append("no non-planar logic die: performance density undefined, PD prongs not met")
    elif area is not None and tpp is not None:
        out["performance_density"] = tpp / area

    out["io_bandwidth"] = product.get("io_bandwidth_gb_per_s")
    mem_bw = product.get("memory_bandwidth_gb_per_s")
    out["memory_bandwidth_density"] = None
    out["dram_bandwidth"] = None
    packaging = product.get("hbm_packaging") or "standalone"
    out["hbm_packaging"] = PACKAGING_CODE[packaging] if kind == "hbm" else 0
    if kind == "hbm":
        pkg = product.get("package_area_mm2")
        if mem_bw is not None and pkg:
            out["memory_bandwidth_density"] = mem_bw / pkg
        if packaging == "co_packaged_with_processor":
            notes.append("HBM co-packaged with a processing die: the package is classified by its logic IC "
                         "(give it as kind 'ic'), not as 3A090.c")
    else:
        out["dram_bandwidth"] = mem_bw
    out["transistors"] = product.get("transistors")
    out["release"] = release_range(product.get("release_date")) if product.get("release_date") else None
    if product.get("release_date") and out["release"] is None:
        notes.append(f"release_date {product['release_date']!r} not read (use YYYY, YYYY-MM or YYYY-MM-DD): unknown")
    dc = product.get("datacenter")
    out["datacenter"] = None if dc is None else (1.0 if dc else 0.0)
    return out


def model_key(product: Mapping[str, Any]) -> str:
    """Lower-case 'vendor/name|vendor/family' used by product overlays."""
    vendor = " ".join(str(product.get("vendor") or "").lower().split())
    keys = [f"{vendor}/{' '.join(str(product.get('name') or '').lower().split())}"]
    if product.get("family"):
        keys.append(f"{vendor}/{' '.join(str(product['family']).lower().split())}")
    return "|".join(keys)


COLUMNAR_MIN = 16  # below this many products the per-row derivation is faster than numpy's fixed costs


def build_table(products: Iterable[Mapping[str, Any]]) -> ProductTable:
    """Flatten products (and the components of systems, recursively) into a ProductTable.

    A batch of ICs and HBM items is derived a column at a time (`_build_columns`); systems, and
    small batches, row by row (`_build_rows`, through `derive_metrics`). Both give the same table
    (tests/engine/test_table_columns.py checks it on random products)."""
    products = products if isinstance(products, (list, tuple)) else list(products)
    if len(products) >= COLUMNAR_MIN:
        columns = _Columns(products)
        kinds = columns.objects("kind", "ic")
        if "system" not in kinds:
            return _build_columns(products, columns, kinds)
    return _build_rows(products)


def _build_rows(products: Sequence[Mapping[str, Any]]) -> ProductTable:
    rows: list[dict[str, Any]] = []
    kinds: list[int] = []
    models: list[str] = []
    parents: list[int] = []
    counts: list[int] = []
    depths: list[int] = []
    top: list[int] = []

    def add(product: Mapping[str, Any], parent: int, count: int, depth: int) -> int:
        idx = len(rows)
        kind = product.get("kind", "ic")
        rows.append(derive_metrics(product) if kind != "system" else {"notes": [], "tpp_source": "components"})
        rows[idx]["_declared"] = product
        kinds.append(KIND_CODE[kind])
        models.append(model_key(product))
        parents.append(parent)
        counts.append(count)
        depths.append(depth)
        for comp in product.get("components") or ():
            add(comp["product"], idx, int(comp.get("count", 1)), depth + 1)
        return idx

    for product in products:
        top.append(add(product, -1, 1, 0))

    n = len(rows)
    kind_codes = np.array(kinds, dtype=np.int8)
    parent = np.array(parents, dtype=np.int64)
    depth = np.array(depths, dtype=np.int16)
    values: dict[str, np.ndarray] = {}
    states: dict[str, np.ndarray] = {}
    for metric in NUMERIC_METRICS:
        vals = np.full(n, np.nan)
        state = np.full(n, MISSING, dtype=np.int8)
        for i, row in enumerate(rows):
            v = row.get(metric)
            if v is not None:
                vals[i] = float(v)
                state[i] = KNOWN
            elif row.get(metric + "__na"):
                state[i] = NOT_APPLICABLE
        values[metric] = vals
        states[metric] = state
    _apply_kind_applicability(values, states, kind_codes)
    release = np.full((n, 2), np.nan)
    for i, row in enumerate(rows):
        r = row.get("release") if kinds[i] != KIND_CODE["system"] else (
            release_range(row["_declared"].get("release_date")) if row["_declared"].get("release_date") else None)
        if r is not None:
            release[i] = r
    packaging = np.array([row.get("hbm_packaging", 0) for row in rows], dtype=np.int8)

    # Systems: per-IC metrics come from their components (max over parts), deepest first.
    system = kind_codes == KIND_CODE["system"]
    if system.any():
        # A system is available once its last part is: its own release date, else the latest of its parts'
        # (unknown if any part's is unknown).
        own_release = system & ~np.isnan(release[:, 0])
        release[system & ~own_release] = -np.inf
        for d in range(int(depth.max()), 0, -1):
            child = np.nonzero((depth == d) & ~own_release[parent.clip(0)] & (parent >= 0))[0]
            np.maximum.at(release, parent[child], release[child])
        release[np.isneginf(release)] = np.nan
        for metric in ("tpp", "dram_bandwidth", "datacenter", "io_bandwidth", "transistors"):
            for si in np.nonzero(system)[0]:
                declared = rows[si]["_declared"]
                given = {
                    "tpp": declared.get("tpp"),
                    "datacenter": declared.get("datacenter"),
                    "dram_bandwidth": declared.get("memory_bandwidth_gb_per_s"),
                    "io_bandwidth": declared.get("io_bandwidth_gb_per_s"),
                    "transistors": declared.get("transistors"),
                }[metric]
                if given is not None:
                    values[metric][si] = float(given)
                    states[metric][si] = KNOWN
        states["performance_density"][system] = NOT_APPLICABLE
        # A system made of HBM stacks has the highest memory bandwidth density of its stacks (License
        # Exception HBM's < 3.3 test then holds only if it holds for every stack); others have none.
        states["memory_bandwidth_density"][system] = NOT_APPLICABLE
        for d in range(int(depth.max()), 0, -1):
            child = np.nonzero(depth == d)[0]
            for c in child:
                p = parent[c]
                if kind_codes[c] in (KIND_CODE["hbm"], KIND_CODE["system"]) and states["memory_bandwidth_density"][c] != NOT_APPLICABLE:
                    st_c, st_p = states["memory_bandwidth_density"][c], states["memory_bandwidth_density"][p]
                    v_c, v_p = values["memory_bandwidth_density"][c], values["memory_bandwidth_density"][p]
                    if st_c == MISSING or st_p == MISSING:
                        states["memory_bandwidth_density"][p] = MISSING
                    elif st_p == NOT_APPLICABLE or v_c > v_p:
                        values["memory_bandwidth_density"][p] = v_c
                        states["memory_bandwidth_density"][p] = KNOWN
            for metric in ("tpp", "dram_bandwidth"):
                for c in child:
                    p = parent[c]
                    if states[metric][c] == KNOWN and rows[p]["_declared"].get(
                        {"tpp": "tpp", "dram_bandwidth": "memory_bandwidth_gb_per_s"}[metric]) is None:
                        if states[metric][p] != KNOWN or values[metric][c] > values[metric][p]:
                            values[metric][p] = values[metric][c]
                            states[metric][p] = KNOWN
        for si in np.nonzero(system)[0]:
            if states["tpp"][si] == KNOWN and rows[si]["_declared"].get("tpp") is None:
                rows[si]["notes"].append(
                    f"system tpp {values['tpp'][si]:g} is the highest per-IC tpp of its components")

    return ProductTable(
        n=n, values=values, states=states, kind=kind_codes,
        model=np.array(models, dtype=object), parent=parent,
        count=np.array(counts, dtype=np.int64), depth=depth,
        top=np.array(top, dtype=np.int64),
        release=release, hbm_packaging=packaging,
        notes=[row["notes"] for row in rows],
        tpp_source=[row.get("tpp_source", "missing") for row in rows],
    )


# ---- column-wise derivation of a batch of ICs and HBM items (no systems) ----

_TPP_SOURCES = ("missing", "declared", *(f"throughput:{f}" for f in FORMAT_BITS))
_FORMAT_CODE = {f: i for i, f in enumerate(FORMAT_BITS)}
_BITS = np.array(list(FORMAT_BITS.values()), dtype=np.float64)


class _Columns:
    """The values of many mappings, a column at a time: rows are grouped by their keys and each
    group's values are read by one `itemgetter` (C) per row, not one `.get` per field."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]):
        self.n = len(rows)
        row_keys = list(map(tuple, rows))
        distinct = {k: i for i, k in enumerate(dict.fromkeys(row_keys))}
        if len(distinct) == 1:
            by_keys = [(row_keys[0], np.arange(self.n, dtype=np.int64), rows)]
        else:
            codes = np.fromiter(map(distinct.__getitem__, row_keys), dtype=np.int64, count=self.n)
            order = np.argsort(codes, kind="stable")
            bounds = np.cumsum(np.bincount(codes, minlength=len(distinct)))[:-1]
            getter = rows.__getitem__
            by_keys = [(keys, idx, list(map(getter, idx.tolist())))
                       for keys, idx in zip(distinct, np.split(order, bounds))]
        self.groups: list[tuple[np.ndarray, dict[str, tuple[Any, ...]]]] = []
        for keys, idx, members in by_keys:
            if len(keys) == 1:
                cols = {keys[0]: tuple(map(itemgetter(keys[0]), members))}
            else:
                cols = dict(zip(keys, zip(*map(itemgetter(*keys), members)))) if keys else {}
            self.groups.append((idx, cols))

    def floats(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(float64 column, NaN where absent or None; mask of the rows that give a value)."""
        out = np.full(self.n, np.nan)
        given = np.zeros(self.n, dtype=bool)
        for idx, cols in self.groups:
            col = cols.get(key)
            if col is None:
                continue
            if None in col:
                mask = np.array([v is not None for v in col], dtype=bool)
                out[idx[mask]] = np.array([v for v in col if v is not None], dtype=np.float64)
                given[idx[mask]] = True
            else:
                out[idx] = np.array(col, dtype=np.float64)
                given[idx] = True
        return out, given

    def objects(self, key: str, default: Any = None) -> list[Any]:
        """The column as a list, `default` where absent (values must be scalars: strings, None ...)."""
        out = np.full(self.n, default, dtype=object)
        for idx, cols in self.groups:
            col = cols.get(key)
            if col is not None:
                values = np.empty(len(col), dtype=object)
                values[:] = col
                out[idx] = values
        return out.tolist()

    def items(self, key: str) -> Iterable[tuple[int, Any]]:
        """(row, value) for every row that has `key`, by group."""
        for idx, cols in self.groups:
            col = cols.get(key)
            if col is not None:
                yield from zip(idx.tolist(), col)


def _normalised(texts: list[Any], memo: dict[Any, str]) -> list[str]:
    """' '.join(str(t or '').lower().split()) per text, once per distinct text."""
    out = []
    for t in texts:
        v = memo.get(t)
        if v is None:
            v = memo[t] = " ".join(str(t or "").lower().split())
        out.append(v)
    return out


class _LazyNotes(Sequence[list[str]]):
    """Per-row notes, computed on first use (only full answers show them)."""

    def __init__(self, n: int, build: Callable[[], list[list[str]]]):
        self._n, self._build = n, build
        self._rows: list[list[str]] | None = None

    def _all(self) -> list[list[str]]:
        if self._rows is None:
            self._rows = self._build()
        return self._rows

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> list[str]: ...

    @overload
    def __getitem__(self, i: slice) -> list[list[str]]: ...

    def __getitem__(self, i: int | slice) -> list[str] | list[list[str]]:
        return self._all()[i]

    def __eq__(self, other: Any) -> bool:  # any sequence of rows (list() of a non-iterable raises, as before)
        return list(self) == list(other)


def _build_columns(products: Sequence[Mapping[str, Any]], c: "_Columns | None" = None,
                   kinds: list[str] | None = None) -> ProductTable:
    """`_build_rows` for top-level ICs and HBM items, with the metrics derived over whole columns."""
    n = len(products)
    c = c if c is not None else _Columns(products)
    kinds = kinds if kinds is not None else c.objects("kind", "ic")
    kind_codes = np.array([KIND_CODE[k] for k in kinds], dtype=np.int8)
    hbm = kind_codes == KIND_CODE["hbm"]

    # TPP: declared, else the best (first highest) dense TOPS x bits over the throughput entries.
    declared, declared_given = c.floats("tpp")
    entry_rows: list[int] = []
    entries: list[Mapping[str, Any]] = []
    for i, lst in c.items("throughput"):
        if lst:
            entry_rows += [i] * len(lst)
            entries += lst
    best_tpp = np.full(n, np.nan)
    best_fmt = np.full(n, -1, dtype=np.int64)
    best_dense = np.full(n, np.nan)
    e = _Columns(entries)
    row = np.array(entry_rows, dtype=np.int64)
    fmt = np.array([_FORMAT_CODE[f] for f in e.objects("format")], dtype=np.int64)
    dense, dense_given = e.floats("dense_tops")
    sparse, sparse_given = e.floats("sparse_tops")
    halved = ~dense_given & sparse_given
    dense = np.where(halved, sparse / 2.0, dense)
    usable = dense_given | sparse_given
    with np.errstate(over="ignore", invalid="ignore"):
        candidate = dense * _BITS[fmt]
    pos = np.nonzero(usable)[0]
    if len(pos):
        # the first entry of each row with the highest candidate: by row, then candidate descending
        # (lexsort is stable: among equal candidates the document order decides, as in derive_metrics)
        order = pos[np.lexsort((-candidate[pos], row[pos]))]
        first = np.ones(len(order), dtype=bool)
        first[1:] = row[order][1:] != row[order][:-1]
        pick = order[first]
        best_tpp[row[pick]] = candidate[pick]
        best_fmt[row[pick]] = fmt[pick]
        best_dense[row[pick]] = dense[pick]
    tpp = np.where(declared_given, declared, best_tpp)
    tpp_known = declared_given | (best_fmt >= 0)
    source_code = np.where(declared_given, 1, np.where(best_fmt >= 0, 2 + best_fmt, 0))

    # Applicable die area: die_area_mm2, or the non-planar logic dies (unknown if any die's process is).
    area, area_given = c.floats("die_area_mm2")
    pd_unknown_dies: dict[int, list[int]] = {}
    for i, dies in c.items("logic_dies"):
        if not dies:
            continue  # no dies listed: die_area_mm2 decides
        unknown = [j for j, d in enumerate(dies) if d.get("non_planar") is None]
        if unknown:
            pd_unknown_dies[i] = unknown
            area[i], area_given[i] = np.nan, False
        else:
            area[i], area_given[i] = sum(d["area_mm2"] for d in dies if d.get("non_planar")), True
    pd_na = area_given & (area <= 0)
    pd_known = area_given & ~pd_na & tpp_known
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pd = np.where(pd_known, tpp / np.where(pd_known, area, 1.0), np.nan)

    io, io_given = c.floats("io_bandwidth_gb_per_s")
    mem, mem_given = c.floats("memory_bandwidth_gb_per_s")
    pkg, pkg_given = c.floats("package_area_mm2")
    mbd_known = hbm & mem_given & pkg_given & (pkg != 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mbd = np.where(mbd_known, mem / np.where(mbd_known, pkg, 1.0), np.nan)
    dram_known = ~hbm & mem_given
    packaging = np.array([PACKAGING_CODE[p or "standalone"] if k == "hbm" else 0
                          for p, k in zip(c.objects("hbm_packaging"), kinds)], dtype=np.int8)
    transistors, transistors_given = c.floats("transistors")
    datacenter, datacenter_given = c.floats("datacenter")
    odd = [(i, v) for i, v in c.items("datacenter") if v is not None and v is not True and v is not False]
    for i, v in odd:  # derive_metrics reads it as a truth value
        datacenter[i] = 1.0 if v else 0.0

    release = np.full((n, 2), np.nan)
    ranges: dict[Any, tuple[float, float] | None] = {}
    unread: list[tuple[int, Any]] = []
    for i, text in c.items("release_date"):
        if text:
            r = ranges[text] = ranges[text] if text in ranges else release_range(text)
            if r is None:
                unread.append((i, text))
            else:
                release[i] = r

    metric_columns = {
        "tpp": (tpp, tpp_known, None),
        "performance_density": (pd, pd_known, pd_na),
        "io_bandwidth": (io, io_given, None),
        "memory_bandwidth_density": (mbd, mbd_known, None),
        "dram_bandwidth": (mem, dram_known, None),
        "transistors": (transistors, transistors_given, None),
        "datacenter": (datacenter, datacenter_given, None),
    }
    values: dict[str, np.ndarray] = {}
    states: dict[str, np.ndarray] = {}
    for metric in NUMERIC_METRICS:
        col, known, na = metric_columns[metric]
        state = np.where(known, KNOWN, MISSING).astype(np.int8)
        if na is not None:
            state[na & ~known] = NOT_APPLICABLE
        values[metric] = np.where(known, col, np.nan)
        states[metric] = state
    _apply_kind_applicability(values, states, kind_codes)

    memo: dict[Any, str] = {}
    vendors = _normalised(c.objects("vendor"), memo)
    names = _normalised(c.objects("name"), {})
    families = c.objects("family")
    family_names = _normalised(families, memo)
    models = [f"{v}/{nm}|{v}/{fn}" if fam else f"{v}/{nm}"
              for v, nm, fam, fn in zip(vendors, names, families, family_names)]

    def notes() -> list[list[str]]:
        out: list[list[str]] = [[] for _ in range(n)]
        for k in np.nonzero(usable)[0].tolist():
            i, f = entry_rows[k], entries[k]["format"]
            if halved[k]:
                out[i].append(f"{f}: sparse figure {entries[k]['sparse_tops']:g} halved to dense {dense[k]:g}")
            if f in FORMAT_NOTES:
                out[i].append(FORMAT_NOTES[f])
        formats = list(FORMAT_BITS)
        for i in np.nonzero(best_fmt >= 0)[0].tolist():
            f, best = formats[best_fmt[i]], float(best_tpp[i])
            if declared_given[i]:
                d = float(declared[i])
                if abs(best - d) > 1e-6 * max(d, 1.0):
                    out[i].append(f"declared tpp {d:g} used; throughput table gives {best:g} ({f})")
            else:
                out[i].append(f"tpp = {float(best_dense[i]):g} dense {f} TOPS x {FORMAT_BITS[f]} bits = {best:g}")
        for i, unknown in pd_unknown_dies.items():
            out[i].append("performance density unknown: " + ", ".join(f"logic_dies[{j}].non_planar" for j in unknown)
                          + " not given (FinFET/GAA or planar?)")
        for i in np.nonzero(pd_na)[0].tolist():
            out[i].append("no non-planar logic die: performance density undefined, PD prongs not met")
        for i in np.nonzero(hbm & (packaging == PACKAGING_CODE["co_packaged_with_processor"]))[0].tolist():
            out[i].append("HBM co-packaged with a processing die: the package is classified by its logic IC "
                          "(give it as kind 'ic'), not as 3A090.c")
        for i, text in unread:
            out[i].append(f"release_date {text!r} not read (use YYYY, YYYY-MM or YYYY-MM-DD): unknown")
        return out

    return ProductTable(
        n=n, values=values, states=states, kind=kind_codes,
        model=np.array(models, dtype=object), parent=np.full(n, -1, dtype=np.int64),
        count=np.ones(n, dtype=np.int64), depth=np.zeros(n, dtype=np.int16),
        top=np.arange(n, dtype=np.int64), release=release, hbm_packaging=packaging,
        notes=_LazyNotes(n, notes),
        tpp_source=[_TPP_SOURCES[code] for code in source_code.tolist()],
    )
