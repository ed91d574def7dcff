"""Benchmark (not a test): screening many parties against a full-size list, on N worker processes.

A synthetic list the size of the real Consolidated Screening List (default 30,000 entries, each with 0-3
aliases: ~72,000 names) is built from coined company names (place + a coined word of 2-4 of 86 syllables +
industry words + legal form) plus the bundled Entity List sample; the parties (default 100,000) are other coined names from the same
generator, 2% of them perturbed copies of listed names. The match index is built once per worker process
(`MatchIndex`, the service's own); parties are split over the workers. Comparator: the floor of an exact
normalised-name lookup (a dict) on the same parties, one process.

    flock /work/team/bench.lock .venv/bin/python bench/screening_scale.py [--entries 30000] [--parties 100000] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compliance.services.screening_match import DEFAULT_THRESHOLD, Candidate, MatchIndex, normalise  # noqa: E402

SYLLABLES = ("an", "bo", "chen", "da", "fei", "gu", "hai", "hua", "jin", "kai", "lan", "long", "ming", "nan", "peng",
             "qi", "rui", "sheng", "tai", "tong", "wei", "xin", "yang", "yu", "zhi", "zhong", "ko", "ra", "vel", "tor",
             "mek", "sar", "dor", "lin", "fa", "ro", "zen", "vo", "ka", "mi", "bel", "cor", "dan", "el", "fen", "gor",
             "han", "is", "jo", "kel", "lum", "mar", "nor", "ol", "pra", "quan", "res", "sol", "tek", "ul", "var",
             "wen", "xu", "yin", "zor", "al", "ber", "cai", "dun", "er", "fu", "gen", "hou", "ji", "kun", "liu")
PLACES = ("Beijing", "Shanghai", "Shenzhen", "Tianjin", "Chengdu", "Wuhan", "Hangzhou", "Dubai", "Moscow", "Tehran",
          "Istanbul", "Hong Kong", "Singapore", "Almaty", "Minsk", "Karachi", "")
INDUSTRY = ("Technology", "Electronics", "Trading", "Semiconductor", "Microelectronics", "Industrial", "International",
            "Logistics", "Import Export", "Information Technology", "Machinery", "Aviation", "Optics", "Systems",
            "Materials", "Research Institute", "Engineering", "Scientific Instruments", "")
LEGAL = ("Co., Ltd.", "Limited", "LLC", "Corporation", "Group", "JSC", "FZE", "Inc.", "Company")
COUNTRIES = ("CN", "HK", "RU", "IR", "AE", "TR", "BY", "PK", "SG", "KZ")


def coined(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4)))).capitalize()


def company(rng: random.Random) -> str:
    parts = [rng.choice(PLACES), coined(rng), rng.choice(INDUSTRY), rng.choice(LEGAL)]
    return " ".join(p for p in parts if p)


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def build_list(n: int, seed: int) -> list[Candidate]:
    rng = random.Random(seed)
    sample = json.loads((ROOT / "compliance" / "data" / "entity_list_sample.json").read_text())["results"]
    out = [Candidate(i, "csl", "EL", r["name"], list(r.get("alt_names") or ()),
                     sorted({a.get("country") for a in r.get("addresses") or () if a.get("country")}), [], str(i))
           for i, r in enumerate(sample)]
    while len(out) < n:
        name = company(rng)
        aliases = [company(rng) for _ in range(rng.choice((0, 1, 1, 2, 3)))]
        out.append(Candidate(len(out), "csl", rng.choice(("EL", "SDN", "MEU", "DPL")), name, aliases,
                             [rng.choice(COUNTRIES)], [], str(len(out))))
    return out


def build_parties(entries: list[Candidate], n: int, seed: int) -> list[tuple[str, str | None]]:
    rng = random.Random(seed)
    parties = []
    for _ in range(n):
        if rng.random() < 0.02:
            e = rng.choice(entries)
            words = e.name.split()
            i = rng.randrange(len(words))
            parties.append((" ".join(typo(w, rng) if j == i else w for j, w in enumerate(words)),
                            e.countries[0] if e.countries else None))
        else:
            parties.append((company(rng), rng.choice(COUNTRIES + ("DE", "US", "JP"))))
    return parties


_INDEX: MatchIndex | None = None


def _init(n_entries: int, seed: int) -> None:
    global _INDEX
    _INDEX = MatchIndex(build_list(n_entries, seed))


def _screen(chunk: list[tuple[str, str | None]]) -> int:
    return sum(1 for name, country in chunk if _INDEX.match(name, country, None, DEFAULT_THRESHOLD))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=30_000)
    ap.add_argument("--parties", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    t0 = time.perf_counter()
    entries = build_list(args.entries, args.seed)
    index = MatchIndex(entries)
    build_s = time.perf_counter() - t0
    parties = build_parties(entries, args.parties, args.seed + 1)
    print(f"list: {len(entries)} entries, {len(index.names)} names and aliases; index built in {build_s:.2f} s "
          f"(one process); parties: {len(parties)}; load average {load()}")
    exact = {}
    for e in entries:
        for nm in [e.name, *e.alt_names]:
            exact.setdefault(normalise(nm), e.id)
    t0 = time.perf_counter()
    floor_hits = sum(1 for name, _ in parties if normalise(name) in exact)
    floor_s = time.perf_counter() - t0
    size = max(1, len(parties) // (args.workers * 8))
    chunks = [parties[i:i + size] for i in range(0, len(parties), size)]
    ctx = get_context("fork")
    t0 = time.perf_counter()
    with ctx.Pool(args.workers, initializer=_init, initargs=(args.entries, args.seed)) as pool:
        hits = sum(pool.map(_screen, chunks))
    wall = time.perf_counter() - t0
    print(f"{'what':<46} {'seconds':>8} {'parties/s':>10} {'flagged':>8}")
    print(f"{f'screening matcher, {args.workers} worker processes':<46} {wall:>8.2f} {len(parties) / wall:>10,.0f} "
          f"{hits:>8}   (incl. building the index in each worker)")
    print(f"{'floor: exact normalised lookup, 1 process':<46} {floor_s:>8.2f} {len(parties) / floor_s:>10,.0f} "
          f"{floor_hits:>8}")
    print(f"ratio matcher/floor: {wall / floor_s:.1f}x; target: {args.parties:,} parties <= 60 s; load average {load()}")


if __name__ == "__main__":
    main()
