"""Restricted-party name matching: normalisation and scoring (pure: no database, no Flask).

A name is normalised (Unicode NFKD with diacritics dropped, case folded, punctuation to spaces, `&` to
`and`, legal forms such as Co., Ltd., GmbH, LLC, Corporation, 有限公司 and its pinyin Youxian Gongsi removed,
also when misspelled or glued to a word, a misspelled common word read as that word) into tokens. A party is
scored against every name and alias of every candidate entry:

* token score: each token of one side is paired with its most similar token on the other side, both
  directions, weighted by token weight (generic words such as "international" weigh 0.3, place names such as
  "Beijing" and group words such as "Holdings" 0.1, distinctive ones 1; an unmatched place on both sides 0.3),
  so word order does not matter, a typo costs little and a missing or extra distinctive word costs a lot. Two
  tokens are similar by their edit distance with transpositions (OSA): equal 1.0; one edit when the longer
  token has 5+ letters 0.92 (8+ letters 0.95); two edits in 9+ letters 0.85; otherwise 0 - so "Huawai" is
  Huawei but "Inspire" is not Inspur. Tokens of four letters on both sides must be equal (or differ by a
  plural s);
* joined-syllables score: when the two sides have different token counts (a split or joined
  transliteration, "Zhong Ke" / "Zhongke"), adjacent tokens that join into a token of the other side are
  joined and the token score taken again;
* the name score is the larger of the two (0-100); then the country and the address are supporting signals:
  the party's country among the entry's countries adds COUNTRY_BONUS, a different one subtracts
  COUNTRY_PENALTY; an address that matches one of the entry's addresses adds ADDRESS_BONUS.

A hit is a score at or above the threshold (a setting, SCREENING_THRESHOLD); a party whose normalised name is
exactly a listed name or alias does not also hit other entries fuzzily. Every hit carries the entry, the name or
alias matched, each component and a sentence saying why.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

DEFAULT_THRESHOLD = 88.0
COUNTRY_BONUS = 3.0
COUNTRY_PENALTY = 10.0
ADDRESS_BONUS = 4.0
ADDRESS_MATCH = 80.0
RARE_DF = 100  # candidate lookup uses the query tokens found in at most this many names (see _candidates)
MEMO_SIZE = 100_000  # parties whose hits an index keeps (see MatchIndex.match)
COMPACT_KEY = 6  # names are also found by the first letters of their spaceless form (split/joined syllables)

# Legal forms, removed wherever they stand as tokens (after punctuation is gone: "co., ltd." -> "co ltd").
LEGAL_FORMS = frozenset("""
co company companies corp corporation corporations inc incorporated ltd limited llc l l c plc gmbh mbh ag kg
sa sas sarl srl spa bv nv kk pte pty oy ab jsc ojsc pjsc cjsc ooo zao oao llp lp lc pllc
""".split())
# Legal forms in pinyin (有限公司 = youxian gongsi, 股份 = gufen, 责任 = zeren): removed like the English ones.
PINYIN_LEGAL = frozenset({"youxian", "gongsi", "gufen", "zeren"})
# Long legal forms also removed when glued to the end of a word ("DawningCompany") or misspelled ("Copany").
GLUED_LEGAL = ("corporation", "incorporated", "company", "limited")
# Multi-token legal forms as they read after normalisation.
LEGAL_PHRASES = (("k", "k"), ("s", "a"), ("b", "v"), ("n", "v"), ("s", "p", "a"), ("co", "ltd"),
                 ("you", "xian", "gong", "si"), ("you", "xian"), ("gong", "si"), ("gu", "fen"), ("ze", "ren"))
_PHRASES_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _phrase in LEGAL_PHRASES:  # longest first among those with the same first word
    _PHRASES_BY_FIRST.setdefault(_phrase[0], []).append(_phrase)
for _list in _PHRASES_BY_FIRST.values():
    _list.sort(key=len, reverse=True)
# Chinese legal forms (longest first); 公司 = company.
CJK_LEGAL = ("股份有限公司", "有限责任公司", "有限公司", "集团公司", "公司")
# Descriptive words dropped wherever they stand when something else remains ("Huawei Technologies" -> "huawei").
DROPPED_WORDS = frozenset({"technologies", "technology", "tech"})
# Abbreviations read as the word they stand for.
ABBREVIATIONS = {"intl": "international", "int": "international", "mfg": "manufacturing", "natl": "national",
                 "nat": "national", "inst": "institute", "ctr": "center", "cntr": "center", "sci": "science",
                 "info": "information", "elec": "electronics", "dev": "development", "ind": "industry",
                 "indus": "industry", "sys": "systems", "grp": "group", "hldgs": "holdings", "hldg": "holding",
                 "svcs": "services", "univ": "university", "res": "research", "eng": "engineering",
                 "telecom": "telecommunications", "semi": "semiconductor", "semicon": "semiconductor",
                 "microelec": "microelectronics", "comp": "computing", "tianjing": "tianjin"}
STOPWORDS = frozenset({"the", "of", "and", "for", "de", "la", "le", "der", "die", "und"})
# Words common to many company names: they weigh less, so a shared "semiconductor" is not a match.
GENERIC = frozenset("""
technology technologies tech information info industry industries industrial international group holdings holding
trading trade science sciences scientific research institute institution center centre national electronics
electronic electric microelectronics semiconductor semiconductors integrated circuit circuits
system systems development design services service network networks communication communications
manufacturing engineering enterprise enterprises global investment investments import export intelligent
intelligence digital data software solutions products equipment devices device materials energy power new
jishu keji xinxi touzi dianzi dianlu jicheng jincheng sheji xianjin kexue zhongxin
""".split())
# Words a party adds to or leaves out of its name like a legal form ("Huawei Holdings" / "Huawei"): they weigh
# as little as a place name.
GROUP_WORDS = frozenset({"holdings", "holding", "group", "jituan"})
# Place names: often added or left out of a party's name ("Beijing Biren" / "Biren"), so they weigh least.
PLACES = frozenset("""
beijing shanghai shenzhen tianjin guangzhou chengdu wuxi nanjing hangzhou wuhan suzhou hefei jinan xian ningbo
dalian qingdao xiamen chongqing anhui jiangsu zhejiang guangdong sichuan hunan hubei shandong china chinese
hong kong taiwan singapore dubai moscow berlin munich paris london
""".split())
GENERIC_WEIGHT = 0.3
PLACE_WEIGHT = 0.1
# Unmatched place names on both sides ("Huawei Cloud Beijing" / "Huawei Cloud Berlin") are evidence of two
# different entities, not an omission: they weigh as generic words.
CONFLICTING_PLACE_WEIGHT = GENERIC_WEIGHT

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACE = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _deletions(token: str) -> set[str]:
    """The token and its one-letter deletions (the keys of the symmetric-deletion index)."""
    return {token} | {token[:i] + token[i + 1:] for i in range(len(token))}


# The common words a misspelling is read as (see _canonical): 6+ letters (a shorter place name such as "Hubei"
# is as short as the distinctive names a typo would be taken from: "Huwei" is Huawei, not Hubei).
_VOCABULARY = frozenset(w for w in (LEGAL_FORMS | PINYIN_LEGAL | GENERIC | PLACES | GROUP_WORDS | DROPPED_WORDS
                                    | set(ABBREVIATIONS) | set(ABBREVIATIONS.values())) if len(w) >= 6)
_VOCABULARY_KEYS: dict[str, set[str]] = defaultdict(set)
for _word in _VOCABULARY:
    for _key in _deletions(_word):
        _VOCABULARY_KEYS[_key].add(_word)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("ß", "ss").replace("ø", "o").replace("Ø", "o").replace("đ", "d").replace("ł", "l")
    return text.casefold()


def tokens(name: str) -> list[str]:
    """The normalised tokens of a name (legal forms and stopwords removed)."""
    text = _fold(name or "")
    for form in CJK_LEGAL:
        text = text.replace(form, " ")
    text = text.replace("&", " and ").replace("'", "").replace("’", "")
    text = _PUNCT.sub(" ", text)
    raw = [t for t in _SPACE.split(text) if t]
    out: list[str] = []
    i = 0
    while i < len(raw):
        starting = _PHRASES_BY_FIRST.get(raw[i])
        phrase = next((p for p in starting if tuple(raw[i:i + len(p)]) == p), None) if starting else None
        if phrase is not None and len(raw) > len(phrase):
            i += len(phrase)
            continue
        out.append(raw[i])
        i += 1
    out = [_canonical(t) for t in out]
    kept = [t for t in out if t not in LEGAL_FORMS and t not in PINYIN_LEGAL and t not in STOPWORDS]
    if not kept:  # a name made only of legal words ("The Company") keeps them
        kept = out
    dropped = [t in DROPPED_WORDS or (len(t) >= 8 and any(_token_sim(t, w) for w in ("technology", "technologies")))
               for t in kept]
    if not all(dropped):
        kept = [t for t, d in zip(kept, dropped) if not d]
    return kept


@lru_cache(maxsize=1 << 18)
def _canonical(token: str) -> str:
    """One token as the matcher reads it: an abbreviation as its word ("intl" -> "international"); a long legal
    form glued to the end of a word cut off ("dawningcompany" -> "dawning"); a misspelling of a common word
    (a legal form, a generic business word, a place, a pinyin legal or business word: one edit from exactly one
    of them, the word 6+ letters) read as that word ("copany" -> "company", "tialjing" -> "tianjing" ->
    "tianjin"). Distinctive words are never corrected: they are what a typo is measured
    against."""
    token = ABBREVIATIONS.get(token, token)
    for form in GLUED_LEGAL:
        if token.endswith(form) and len(token) - len(form) >= 4:
            return ABBREVIATIONS.get(token[:-len(form)], token[:-len(form)])
    if len(token) >= 5 and token not in _VOCABULARY and not token.isdigit() and not _CJK.search(token):
        near = set()
        for key in _deletions(token):
            near |= _VOCABULARY_KEYS.get(key, set())
        near = {w for w in near if OSA.distance(token, w, score_cutoff=1) == 1}
        if len(near) == 1:
            word = near.pop()
            return ABBREVIATIONS.get(word, word)
    return token


def normalise(name: str) -> str:
    return " ".join(tokens(name))


def address_text(address: str) -> str:
    text = _PUNCT.sub(" ", _fold(address or ""))
    return " ".join(t for t in _SPACE.split(text) if t)


@lru_cache(maxsize=1 << 16)
def token_weight(token: str) -> float:
    if token in PLACES or token in GROUP_WORDS:
        return PLACE_WEIGHT
    if token in GENERIC:
        return GENERIC_WEIGHT
    if token.isdigit():
        return 0.5
    return 1.0


@lru_cache(maxsize=1 << 20)
def _token_sim(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if a + "s" == b or b + "s" == a:  # plural
        return 0.95
    longest = max(len(a), len(b))
    if min(len(a), len(b)) <= 3 or longest <= 4 or _CJK.search(a) or _CJK.search(b):
        return 0.0
    d = OSA.distance(a, b, score_cutoff=2)
    if d == 1:
        return 0.95 if longest >= 8 else 0.92
    if d == 2 and longest >= 9:
        return 0.85
    return 0.0


def _pair_score(qt: list[str], ct: list[str], sim) -> float:
    """Symmetric weighted best-pair token similarity, 0-100, with `sim(query_token, other_token)`."""
    if not qt or not ct:
        return 0.0
    return _weighted(qt, ct, [max([sim(t, o) for o in ct]) for t in qt], [max([sim(t, o) for t in qt]) for o in ct])


def _weighted(qt: list[str], ct: list[str], q_best: list[float], c_best: list[float]) -> float:
    """The token score from each token's best similarity on the other side. An unmatched place name weighs
    PLACE_WEIGHT, or CONFLICTING_PLACE_WEIGHT when the other side has an unmatched place name too."""
    conflict = (0.0 in q_best and 0.0 in c_best
                and any(b == 0.0 and t in PLACES for t, b in zip(qt, q_best))
                and any(b == 0.0 and o in PLACES for o, b in zip(ct, c_best)))
    num = den = 0.0
    for side, bests in ((qt, q_best), (ct, c_best)):
        for t, b in zip(side, bests):
            w = token_weight(t)
            if conflict and b == 0.0 and t in PLACES:
                w = CONFLICTING_PLACE_WEIGHT
            num += w * b
            den += w
    return 100.0 * num / den


def token_score(qt: list[str], ct: list[str]) -> float:
    """Symmetric weighted best-pair token similarity, 0-100."""
    return _pair_score(qt, ct, _token_sim)


def _merged(side: list[str], other: list[str]) -> list[str]:
    """`side` with runs of two or three adjacent tokens joined where the joined word is (near) a token of
    `other` that none of the run's tokens is: a transliteration split into syllables ("zhong ke" / "zhongke",
    "huawei cloud" written "huaweicloud" on the other side)."""
    targets = set(other) - set(side)
    if not targets or len(side) < 2:
        return side
    lengths = {len(o) + d for o in targets for d in (-2, -1, 0, 1, 2)}
    joins = [(n, "".join(side[i:i + n])) for i in range(len(side) - 1) for n in (2, 3) if i + n <= len(side)]
    if not any(len(j) in lengths or j in ABBREVIATIONS for _, j in joins):
        return side  # no run joins to anything of the other side's length
    out: list[str] = []
    i = 0
    while i < len(side):
        best, best_n, best_sim = side[i], 1, 0.0
        for n in (2, 3):  # the closest joined word; the shorter run on a tie
            if i + n <= len(side):
                joined = "".join(side[i:i + n])
                joined = ABBREVIATIONS.get(joined, joined)
                if len(joined) not in lengths:
                    continue
                sim = max(_token_sim(joined, o) for o in targets)
                if sim > best_sim:
                    best, best_n, best_sim = joined, n, sim
        out.append(best)
        i += best_n
    return out


def merged_score(qt: list[str], ct: list[str]) -> float:
    """The token score after joining split syllables on either side (0 when nothing joins)."""
    mq, mc = _merged(qt, ct), _merged(ct, qt)
    if mq == qt and mc == ct:
        return 0.0
    return token_score(mq, mc)


def name_components(qt: list[str], ct: list[str]) -> dict[str, float]:
    q, c = " ".join(qt), " ".join(ct)
    comp = {"token": round(token_score(qt, ct), 2),
            "token_sort": round(fuzz.token_sort_ratio(q, c), 2),
            "jaro_winkler": round(100.0 * JaroWinkler.similarity(q.replace(" ", ""), c.replace(" ", "")), 2)}
    comp["compact"] = round(fuzz.ratio(q.replace(" ", ""), c.replace(" ", "")), 2) if len(qt) != len(ct) else 0.0
    comp["merged"] = round(merged_score(qt, ct), 2) if len(qt) != len(ct) else 0.0
    comp["name"] = max(comp["token"], comp["merged"])
    return comp


@dataclass
class IndexedName:
    entry_pos: int
    name: str
    kind: str  # "name" | "alias"
    toks: list[str]
    longest: int = 0  # the longest token's length
    shortest_pair: int = 0  # the shortest joined length of two adjacent tokens (0: one token)

    def __post_init__(self) -> None:
        self.longest, self.shortest_pair = _lengths(self.toks)


def _lengths(toks: list[str]) -> tuple[int, int]:
    pairs = [len(a) + len(b) for a, b in zip(toks, toks[1:])]
    return max(map(len, toks), default=0), min(pairs, default=0)


def _may_join(q_lengths: tuple[int, int], c_lengths: tuple[int, int]) -> bool:
    """Whether two adjacent tokens of one side may join into (near) a token of the other: the joined length
    must come within two letters of that token's."""
    (q_long, q_pair), (c_long, c_pair) = q_lengths, c_lengths
    return bool((q_pair and c_long >= q_pair - 2) or (c_pair and q_long >= c_pair - 2))


@dataclass
class Candidate:
    """An entry as the matcher needs it (the service maps database rows to these)."""

    id: int
    list_name: str
    source: str
    name: str
    alt_names: list[str]
    countries: list[str]
    addresses: list[str]
    content_sha: str
    extra: dict = field(default_factory=dict)


@dataclass
class Hit:
    entry: Candidate
    matched_name: str
    matched_kind: str
    score: float
    components: dict
    why: str


class MatchIndex:
    """Every name and alias of a set of entries, with a token index to find candidates quickly."""

    def __init__(self, entries: list[Candidate]):
        self.entries = entries
        self.names: list[IndexedName] = []
        self._by_token: dict[str, set[int]] = defaultdict(set)
        self._by_compact: dict[str, set[int]] = defaultdict(set)
        for pos, e in enumerate(entries):
            for kind, nm in [("name", e.name)] + [("alias", a) for a in e.alt_names]:
                toks = tokens(nm)
                if not toks:
                    continue
                idx = len(self.names)
                self.names.append(IndexedName(pos, nm, kind, toks))
                for t in toks:
                    self._by_token[t].add(idx)
                self._by_compact["".join(toks)[:COMPACT_KEY]].add(idx)
        self.entry_addresses = [[address_text(a) for a in e.addresses if a] for e in entries]
        self._near_cache: dict[str, list[str]] = {}
        self._memo: dict[tuple, list[Hit]] = {}
        self._by_deletion: dict[str, set[str]] = defaultdict(set)
        for t in self._by_token:
            if len(t) > 2:
                for key in _deletions(t):
                    self._by_deletion[key].add(t)

    def _near(self, token: str) -> list[str]:
        """Indexed tokens within one edit of `token` (or equal), memoised, through a symmetric-deletion
        index (every token under itself and each of its one-letter deletions: two tokens one substitution,
        insertion, deletion or transposition apart share a key). A token two edits from a listed one is
        still scored (0.85), but its name is found only through its other words."""
        cached = self._near_cache.get(token)
        if cached is not None:
            return cached
        near = [token] if token in self._by_token else []
        if len(token) > 2:
            seen: set[str] = set()
            for key in _deletions(token):
                seen |= self._by_deletion.get(key, set())
            seen.discard(token)
            near += [o for o in seen if _token_sim(token, o) > 0]
        if len(self._near_cache) > 200_000:
            self._near_cache.clear()
        self._near_cache[token] = near
        return near

    def _candidates(self, qt: list[str]) -> set[int]:
        """Names sharing a query token (or a near one), looked up through the query's rare tokens only:
        every query token with at most RARE_DF names, or else the rarest one. A name sharing none of the rare
        tokens misses a distinctive word of the query and cannot reach a hit's score (a weight-1 token
        unmatched costs at least a third of it)."""
        lookups = []
        for t in dict.fromkeys(qt):
            near = self._near(t)
            lookups.append((sum(len(self._by_token[o]) for o in near), t, near))
        lookups.sort()
        rare = [x for x in lookups if x[0] <= RARE_DF] or lookups[:1]
        found: set[int] = set()
        for _, _, near in rare:
            for other in near:
                found |= self._by_token[other]
        if len(qt) == 1 or len(qt[0]) < COMPACT_KEY:  # a split or joined name: look it up spaceless too
            same_start = self._by_compact.get("".join(qt)[:COMPACT_KEY], set())
            if len(same_start) <= RARE_DF:
                found |= same_start
        return found

    def match(self, name: str, country: str | None = None, address: str | None = None,
              threshold: float = DEFAULT_THRESHOLD) -> list[Hit]:
        """Hits at or above the threshold, best first; one hit per entry (its best-matching name). Kept per
        party (the same customers recur in many orders; the index is immutable)."""
        key = (name, country, address, threshold)
        memo = self._memo.get(key)
        if memo is None:
            memo = self._match(name, country, address, threshold)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = memo
        return list(memo)

    def _match(self, name: str, country: str | None, address: str | None, threshold: float) -> list[Hit]:
        qt = tokens(name)
        if not qt:
            return []
        # the token score of every candidate from the query tokens' near tokens (no pairwise calls);
        # the reported components are computed for the best name of each entry only
        sims = {t: {o: _token_sim(t, o) for o in self._near(t)} for t in qt}
        floor = threshold - COUNTRY_BONUS - ADDRESS_BONUS
        best: dict[int, tuple[float, IndexedName]] = {}
        exact = sorted(qt)

        q_sims = [sims[t] for t in qt]
        q_lengths = _lengths(qt)
        for idx in self._candidates(qt):
            nm = self.names[idx]
            ct = nm.toks
            score = _weighted(qt, ct, [max([st.get(o, 0.0) for o in ct]) for st in q_sims],
                              [max([st.get(o, 0.0) for st in q_sims]) for o in ct])
            if len(ct) != len(qt) and score < threshold and _may_join(q_lengths, (nm.longest, nm.shortest_pair)):
                score = max(score, merged_score(qt, ct))
            if score < floor:
                continue
            prev = best.get(nm.entry_pos)
            if prev is None or score > prev[0]:
                best[nm.entry_pos] = (score, nm)
        # a party whose name is exactly a listed name or alias is that entry, not a misspelling of another:
        # the fuzzy hits on other entries are dropped (entries listed under the very same name all stay)
        if any(sorted(nm.toks) == exact for _, nm in best.values()):
            best = {pos: (sc, nm) for pos, (sc, nm) in best.items() if sorted(nm.toks) == exact}
        best = {pos: (sc, nm, name_components(qt, nm.toks)) for pos, (sc, nm) in best.items()}
        hits: list[Hit] = []
        for pos, (name_score, nm, comp) in best.items():
            entry = self.entries[pos]
            reasons = [f"{'name' if nm.kind == 'name' else 'alias'} {nm.name!r} normalised "
                       f"{' '.join(nm.toks)!r} vs {' '.join(qt)!r}: name score {name_score:.1f} "
                       f"(token {comp['token']:.1f}, token-sort {comp['token_sort']:.1f}, "
                       f"Jaro-Winkler {comp['jaro_winkler']:.1f}"
                       + (f", joined syllables {comp['merged']:.1f}" if comp["merged"] else "") + ")"]
            score = name_score
            comp = dict(comp)
            comp["country"] = 0.0
            comp["address"] = 0.0
            if country and entry.countries:
                if country.upper() in entry.countries:
                    comp["country"] = COUNTRY_BONUS
                    reasons.append(f"country {country.upper()} is the entry's (+{COUNTRY_BONUS:g})")
                else:
                    comp["country"] = -COUNTRY_PENALTY
                    reasons.append(f"country {country.upper()} is not the entry's "
                                   f"({', '.join(entry.countries)}) (-{COUNTRY_PENALTY:g})")
            if address and self.entry_addresses[pos]:
                addr = address_text(address)
                sim = max(fuzz.token_set_ratio(addr, a) for a in self.entry_addresses[pos])
                if sim >= ADDRESS_MATCH:
                    comp["address"] = ADDRESS_BONUS
                    reasons.append(f"address matches one of the entry's ({sim:.0f}) (+{ADDRESS_BONUS:g})")
            score = max(0.0, min(100.0, score + comp["country"] + comp["address"]))
            if score >= threshold:
                hits.append(Hit(entry, nm.name, nm.kind, round(score, 2), comp,
                                "; ".join(reasons) + f"; score {score:.1f} >= threshold {threshold:g}"))
        hits.sort(key=lambda h: (-h.score, h.entry.id))
        return hits


def party_fingerprint(name: str, country: str | None, address: str | None) -> str:
    """Identifies a party for clearances: any change of its normalised name, country or address is a new party."""
    canon = "\x1f".join([normalise(name), (country or "").upper(), address_text(address or "")])
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()
