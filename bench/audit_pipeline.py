"""Synthetic AI-chip catalogues (deterministic by seed) for tests and benchmarks, written as CSV rows
in the import layout of compliance.services.imports."""
from __future__ import annotations

import csv
import io
import random
from typing import IO, Iterator

HEADER = ("sku", "name", "vendor", "family", "kind", "datacenter", "throughput", "die_area_mm2",
          "io_bandwidth_gb_per_s", "memory_bandwidth_gb_per_s", "package_area_mm2")
VENDORS = ("NVIDIA", "AMD", "Intel", "Acme", "Globex")
FAMILIES = ("H100", "H20", "MI308", "A800", "X1", "X2", "")


def synthetic_rows(n: int, seed: int = 7, prefix: str = "SYN") -> Iterator[tuple]:
    """n CSV rows: ICs across the 3A090 thresholds, some missing inputs, some HBM stacks."""
    rnd = random.Random(seed)
    for i in range(n):
        vendor = VENDORS[i % len(VENDORS)]
        r = rnd.random()
        if r < 0.05:  # HBM stack
            yield (f"{prefix}-{i:08d}", f"HBM {i}", vendor, "", "hbm", "", "", "", "",
                   round(rnd.uniform(200, 1400), 1), round(rnd.uniform(90, 400), 1))
            continue
        fmt, bits = rnd.choice((("fp8", 8), ("fp16", 16), ("int8", 8), ("fp4", 4)))
        tpp_target = rnd.lognormvariate(8.0, 1.0)  # median ~3000, spans the 1600/2400/4800 boundaries
        tops = round(tpp_target / bits, 2)
        die = "" if r < 0.10 else round(rnd.uniform(200, 900), 1)  # missing die area -> some indeterminate
        dc = "" if 0.10 <= r < 0.13 else rnd.choice(("true", "false"))
        io_bw = "" if r > 0.9 else round(rnd.uniform(32, 1800), 1)
        mem = round(rnd.uniform(300, 8000), 1)
        family = FAMILIES[i % len(FAMILIES)]
        yield (f"{prefix}-{i:08d}", f"Chip {i}", vendor, family, "ic", dc, f"{fmt}:{tops}", die, io_bw, mem, "")


def write_csv(out: IO[str], n: int, seed: int = 7, prefix: str = "SYN") -> None:
    w = csv.writer(out)
    w.writerow(HEADER)
    for row in synthetic_rows(n, seed, prefix):
        w.writerow(row)


def csv_bytes(n: int, seed: int = 7, prefix: str = "SYN") -> bytes:
    buf = io.StringIO()
    write_csv(buf, n, seed, prefix)
    return buf.getvalue().encode()
