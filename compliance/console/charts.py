"""Charts drawn on the server as inline SVG: no charting library, nothing to download, and they read
with JavaScript off. Hover text is SVG <title> (the browser's own tooltip). Every label is escaped.

- scatter: products on TPP x performance density (log axes), coloured by ECCN, with the threshold
  lines of the rules in force on a date;
- timeline: a product's standing over time, one band per period between rule changes;
- bars: counts (audit outcomes, impact-preview transitions), one labelled bar each."""
from __future__ import annotations

import math
import re
from datetime import date
from typing import Any, Iterable

import numpy as np
from markupsafe import Markup, escape


def html_escape(text: str) -> str:
    """markupsafe's escaping without building a Markup object per call (the scatter escapes thousands)."""
    return str(escape(text))

PALETTE = {"3A090.a": "#c0392b", "4A090.a": "#8e44ad", "3A090.b": "#e67e22", "4A090.b": "#d35400",
           "3A090.c": "#2471a3", None: "#7f8c8d"}
STATUS_COLOURS = {"controlled": "#c0392b", "indeterminate": "#d68910", "not_controlled": "#1e8449", None: "#95a5a6"}
REQUIREMENT_COLOURS = {"license_required": "#c0392b", "indeterminate": "#d68910", "no_license_required": "#1e8449"}
EXTRA = ["#16a085", "#2c3e50", "#f1c40f", "#7d3c98", "#a04000"]


def eccn_colour(eccn: str | None) -> str:
    if eccn in PALETTE:
        return PALETTE[eccn]
    return EXTRA[sum(map(ord, eccn or "")) % len(EXTRA)]


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:,.3g}"


def paragraph(eccn: str | None, label: str | None) -> str:
    """'3A090.a' + 'a.1' -> '3A090.a.1'; other labels in brackets after the ECCN."""
    if not eccn:
        return label or ""
    if label and re.fullmatch(r"[a-z](\.\d+)*", label):
        return f"{eccn.split('.')[0]}.{label}"
    return f"{eccn} ({label})" if label else eccn


def thresholds(rulebook, as_of: date, metrics=("tpp", "performance_density")) -> list[dict[str, Any]]:
    """The numeric thresholds of the classification rules in force on `as_of`: {metric, value, label}."""
    seen: dict[tuple, dict[str, Any]] = {}

    def walk(node, rule):
        if isinstance(node, dict):
            if "metric" in node:
                if node["metric"] in metrics and isinstance(node.get("value"), (int, float)):
                    name = paragraph(rule.eccn, node.get("label")).split(" (")[0]
                    key = (node["metric"], float(node["value"]))
                    if key not in seen:
                        seen[key] = {"metric": node["metric"], "value": float(node["value"]), "labels": []}
                    if name not in seen[key]["labels"]:
                        seen[key]["labels"].append(name)
            for child in node.get("all", []) + node.get("any", []) + ([node["not"]] if "not" in node else []):
                walk(child, rule)

    for rule in rulebook.in_force(as_of).classification:
        walk(rule.describe().get("when") or {}, rule)
    return sorted(seen.values(), key=lambda t: (t["metric"], t["value"]))


class LogScale:
    def __init__(self, lo: float, hi: float, start: float, end: float):
        self.lo, self.hi = math.log10(lo), math.log10(hi)
        self.start, self.end = start, end

    def __call__(self, v: float) -> float:
        t = (math.log10(max(v, 10 ** self.lo)) - self.lo) / ((self.hi - self.lo) or 1)
        return self.start + t * (self.end - self.start)

    def many(self, values: list[float]) -> list[float]:
        """__call__ over a list, in one NumPy pass."""
        t = (np.log10(np.maximum(np.asarray(values, dtype=float), 10 ** self.lo)) - self.lo) / ((self.hi - self.lo) or 1)
        return (self.start + t * (self.end - self.start)).tolist()

    def ticks(self) -> list[float]:
        return [10.0 ** e for e in range(math.floor(self.lo), math.ceil(self.hi) + 1)
                if self.lo - 1e-9 <= e <= self.hi + 1e-9]


def scatter(points: list[dict[str, Any]], lines: list[dict[str, Any]], width: int = 900, height: int = 520) -> Markup:
    """Products on log TPP (x) x log performance density (y), with threshold lines."""
    left, right, top, bottom = 70, width - 20, 20, height - 50
    xs = [p["tpp"] for p in points if p["tpp"] and p["tpp"] > 0] + [t["value"] for t in lines if t["metric"] == "tpp"]
    ys = [p["performance_density"] for p in points if p["performance_density"] and p["performance_density"] > 0] + \
         [t["value"] for t in lines if t["metric"] == "performance_density"]
    x = LogScale(10 ** math.floor(math.log10(min(xs or [10]))), 10 ** math.ceil(math.log10(max(xs or [10_000]) * 1.01)),
                 left, right)
    y = LogScale(10 ** math.floor(math.log10(min(ys or [0.1]))), 10 ** math.ceil(math.log10(max(ys or [10]) * 1.01)),
                 bottom, top)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="Products by TPP and performance density" class="scatter">',
           f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="#fbfcfd" stroke="#ccd"/>']
    for v in x.ticks():
        px = x(v)
        out.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}" stroke="#e6e9ee"/>'
                   f'<text x="{px:.1f}" y="{bottom + 16}" text-anchor="middle" class="tick">{_num(v)}</text>')
    for v in y.ticks():
        py = y(v)
        out.append(f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#e6e9ee"/>'
                   f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end" class="tick">{_num(v)}</text>')
    out.append(f'<text x="{(left + right) / 2}" y="{height - 10}" text-anchor="middle" class="axis">TPP (log)</text>'
               f'<text x="16" y="{(top + bottom) / 2}" text-anchor="middle" class="axis" '
               f'transform="rotate(-90 16 {(top + bottom) / 2})">performance density, TPP/mm² (log)</text>')
    tpp_lines = 0
    for t in lines:
        label = escape(f"{' / '.join(t['labels'])}: {'TPP' if t['metric'] == 'tpp' else 'PD'} {_num(t['value'])}")
        if t["metric"] == "tpp":
            px = x(t["value"])
            out.append(f'<g class="threshold" data-metric="tpp" data-value="{t["value"]}"><title>{label}</title>'
                       f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}" stroke="#34495e" stroke-dasharray="6 4"/>'
                       f'<text x="{px + 3:.1f}" y="{top + 12 + 13 * tpp_lines}" class="tlabel">{label}</text></g>')
            tpp_lines += 1
        else:
            py = y(t["value"])
            out.append(f'<g class="threshold" data-metric="performance_density" data-value="{t["value"]}"><title>{label}</title>'
                       f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#34495e" stroke-dasharray="2 4"/>'
                       f'<text x="{right - 3}" y="{py - 4:.1f}" text-anchor="end" class="tlabel">{label}</text></g>')
    plotted = [p for p in points if p["tpp"] and p["tpp"] > 0 and p["performance_density"]
               and p["performance_density"] > 0]
    # Positions for every point at once (one NumPy pass; thousands of points per page view).
    cx = x.many([p["tpp"] for p in plotted])
    cy = y.many([p["performance_density"] for p in plotted])
    for p, px, py in zip(plotted, cx, cy):
        tip = html_escape(f"{p['sku']} — {p['name']}: TPP {_num(p['tpp'])}, PD {_num(p['performance_density'])}, "
                          f"{p['eccn'] or 'not listed'} ({(p['status'] or 'unclassified').replace('_', ' ')})")
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{eccn_colour(p["eccn"])}" fill-opacity="0.8" '
                   f'stroke="#fff" class="point" data-sku="{html_escape(p["sku"])}"><title>{tip}</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))


def timeline(segments: list[dict[str, Any]], rows: list[str], width: int = 900) -> Markup:
    """Bands over time. segments: {row, start, end, label, colour, tip}; rows: the row names, top down."""
    if not segments:
        return Markup("")
    left, right, row_h = 150, width - 20, 34
    height = 40 + row_h * len(rows)
    t0 = min(s["start"] for s in segments).toordinal()
    t1 = max(s["end"] for s in segments).toordinal()

    def px(d: date) -> float:
        return left + (d.toordinal() - t0) / ((t1 - t0) or 1) * (right - left)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" aria-label="Standing over time" class="timeline">']
    for year in range(date.fromordinal(t0).year + 1, date.fromordinal(t1).year + 1):
        xx = px(date(year, 1, 1))
        out.append(f'<line x1="{xx:.1f}" y1="10" x2="{xx:.1f}" y2="{height - 20}" stroke="#e6e9ee"/>'
                   f'<text x="{xx:.1f}" y="{height - 6}" text-anchor="middle" class="tick">{year}</text>')
    for i, row in enumerate(rows):
        out.append(f'<text x="{left - 8}" y="{20 + i * row_h + 18}" text-anchor="end" class="axis">{escape(row)}</text>')
    for s in segments:
        i = rows.index(s["row"])
        x0, x1 = px(s["start"]), px(s["end"])
        out.append(f'<g class="segment"><title>{escape(s["tip"])}</title>'
                   f'<rect x="{x0:.1f}" y="{20 + i * row_h}" width="{max(x1 - x0, 1.5):.1f}" height="{row_h - 8}" '
                   f'fill="{s["colour"]}" fill-opacity="0.85" stroke="#fff"/>')
        if x1 - x0 > 60:
            out.append(f'<text x="{x0 + 4:.1f}" y="{20 + i * row_h + 17}" class="blabel">{escape(s["label"])}</text>')
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))


def bars(items: Iterable[tuple[str, int, str]], width: int = 640, unit: str = "") -> Markup:
    """Horizontal bars: (label, count, colour), largest first as given."""
    items = list(items)
    if not items:
        return Markup("")
    left, right, bar_h = 260, width - 70, 24
    height = 10 + bar_h * len(items)
    top = max(n for _, n, _ in items) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'role="img" class="bars">']
    for i, (label, n, colour) in enumerate(items):
        w = (right - left) * n / top
        yy = 5 + i * bar_h
        out.append(f'<g><title>{escape(label)}: {n:,}{unit}</title>'
                   f'<text x="{left - 8}" y="{yy + 16}" text-anchor="end" class="axis">{escape(label)}</text>'
                   f'<rect x="{left}" y="{yy + 3}" width="{max(w, 1):.1f}" height="{bar_h - 8}" fill="{colour}"/>'
                   f'<text x="{left + w + 6:.1f}" y="{yy + 16}" class="tick">{n:,}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))
