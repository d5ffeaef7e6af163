"""Receiver phone checks: is it a real Chinese number, and does a landline's area code fit the address?

Public API (pure, thread-safe; ``phonenumbers`` is imported on first use, ~0.5 s — warm it up in a
worker)::

    check_phone(phone, *, city="", province="") -> PhoneCheck
    warm_up() -> None

``PhoneCheck.kind`` is one of:

* ``mobile`` / ``landline`` / ``service`` (400/800 numbers) — a valid number (``phonenumbers``,
  region CN, so a number without +86 is read as Chinese; a valid foreign number is accepted too);
* ``masked`` (``138****1234``), ``virtual`` (a platform's relay number with an extension,
  ``13812345678-1234`` / ``…转1234``) and ``encrypted`` (platform ciphertext) — recognised *before*
  parsing and never judged: the platform holds the real number;
* ``invalid`` — a ``phone_invalid`` problem (block); ``empty`` — nothing given (no problem here:
  a missing phone is the order checks' "missing required field").

Problems: ``phone_invalid`` (block); ``phone_area_mismatch`` (warn) when a landline's area code
belongs to another city than the address (0574 宁波 for an address in 杭州); ``phone_region_hint``
(info, never more) when a mobile was issued in another city — people move, so this is a hint only,
and 16x/19x/17x numbers that ``phonenumbers`` places only in "中国" give no signal at all.

Mobile lookups are cached by the first seven digits (validity, type and issuing city depend on
nothing else for an 11-digit Chinese mobile — ``tests/unit/test_address.py`` checks that on a sample).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from db.sanitize import clean_text
from deskapp.services.address import MUNICIPALITIES, Problem, places_in, verdict_of

__all__ = ["PhoneCheck", "check_phone", "warm_up"]

KINDS = ("mobile", "landline", "service", "masked", "virtual", "encrypted", "invalid", "empty")


@dataclass(frozen=True, slots=True)
class PhoneCheck:
    """What a receiver phone is, in a normal form, and what is wrong with it.

    ``number``: digits as dialled in China (``13812345678``, ``0571-88888888``), the masked form as
    given, or a virtual number's main part; ``extension``: a virtual or landline extension;
    ``region``: where ``phonenumbers`` places the number (``浙江省杭州市``; "" when it gives no signal).
    """

    raw: str
    kind: str
    number: str = ""
    extension: str = ""
    region: str = ""
    problems: tuple[Problem, ...] = ()

    @property
    def verdict(self) -> str:
        return verdict_of(self.problems)

    @property
    def judged(self) -> bool:
        """Whether the number could be checked at all (not masked, virtual, encrypted or empty)."""
        return self.kind in ("mobile", "landline", "service", "invalid")

    def to_dict(self) -> dict[str, Any]:
        return {"raw": self.raw, "kind": self.kind, "number": self.number, "extension": self.extension,
                "region": self.region, "problems": [p.to_dict() for p in self.problems]}


_SEP = r"\s*(?:-|转|#|,|，|ext\.?|x)\s*"
_VIRTUAL = re.compile(rf"(?:\+?86[\s-]?)?(1\d{{10}}){_SEP}(\d{{1,6}})", re.IGNORECASE)
_MASKED = re.compile(r"\+?[\d\s()-]*\*{2,}[\d\s()-]*(?:" + _SEP + r"\d{1,6})?", re.IGNORECASE)
_LANDLINE_EXT = re.compile(rf"(\(?0\d{{2,3}}\)?[\s-]?\d{{7,8}}){_SEP}(\d{{1,6}})", re.IGNORECASE)
_CIPHER = re.compile(r"[~#$]?[A-Za-z0-9+/=_-]{12,}[~#$]?(?:\d[~#$])?")
_PUNCT = re.compile(r"[\s()\-.]")
_MOBILE = re.compile(r"1\d{10}")


def _normalise(value: str) -> str:
    return unicodedata.normalize("NFKC", clean_text(value)).strip()


def check_phone(phone: str | None, *, city: str = "", province: str = "") -> PhoneCheck:
    """Say what ``phone`` is and whether it is valid; compare a landline's area code with ``city``.

    ``city``/``province``: the address's (official or short names, 杭州市 or 杭州); empty → no
    comparison.
    """
    raw = phone or ""
    value = _normalise(raw)
    if not value:
        return PhoneCheck(raw, "empty")
    if "*" in value:
        if _MASKED.fullmatch(value):
            return PhoneCheck(raw, "masked", number=value)
        return PhoneCheck(raw, "encrypted")
    virtual = _VIRTUAL.fullmatch(value)
    if virtual:
        return PhoneCheck(raw, "virtual", number=virtual.group(1), extension=virtual.group(2))
    if re.search(r"[A-Za-z]", value):
        if _CIPHER.fullmatch(value):
            return PhoneCheck(raw, "encrypted")
        return _invalid(raw, value)
    extension = ""
    landline = _LANDLINE_EXT.fullmatch(value)
    if landline:
        value, extension = landline.group(1), landline.group(2)
    digits = _PUNCT.sub("", value)
    national = _strip_country(digits)
    if _MOBILE.fullmatch(national) and not extension:
        valid, kind, region = _mobile_info(national[:7])
        if not valid:
            return _invalid(raw, value)
        number = national
    else:
        parsed = _parse(digits)
        if parsed is None:
            return _invalid(raw, value)
        valid, kind, region, number = parsed
        if not valid:
            return _invalid(raw, value)
    problems: list[Problem] = []
    if kind in ("landline", "mobile") and region and (city or province):
        problems.extend(_compare(kind, number, region, city, province))
    return PhoneCheck(raw, kind, number=number, extension=extension, region=region, problems=tuple(problems))


def _strip_country(digits: str) -> str:
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11 and digits[len(prefix)] == "1":
            return digits[len(prefix) :]
    return digits


def _invalid(raw: str, value: str) -> PhoneCheck:
    digits = re.sub(r"\D", "", value)
    if digits.startswith("1") and not digits.startswith("10") and len(digits) != 11 and len(digits) < 14:
        message = f"手机号应为11位数字（现为{len(digits)}位）：{value} — 请核对"
    elif digits.startswith("1") and len(digits) == 11:
        message = f"手机号号段不存在：{value} — 请核对"
    elif 7 <= len(digits) <= 8 and not digits.startswith("0"):
        message = f"座机号缺少区号：{value} — 请补全区号（如 0571-）"
    else:
        message = f"电话号码无效：{value} — 请核对"
    return PhoneCheck(raw, "invalid", number=value,
                      problems=(Problem("phone_invalid", "block", message),))


# -- phonenumbers, lazily --------------------------------------------------------------------------


@cache
def _lib():
    import phonenumbers
    from phonenumbers import geocoder

    return phonenumbers, geocoder


def warm_up() -> None:
    """Import phonenumbers and build the tables now (≈0.5 s) — from a worker thread at start-up."""
    _lib()
    _mobile_info("1381234")
    from deskapp.services.address import warm_up as warm_address

    warm_address()


_KIND_BY_TYPE = {0: "landline", 1: "mobile", 2: "mobile", 3: "service", 4: "service", 5: "service", 6: "landline",
                 7: "landline", 8: "service", 9: "service", 10: "landline"}


def _describe(number) -> tuple[bool, str, str]:
    phonenumbers, geocoder = _lib()
    if not phonenumbers.is_valid_number(number):
        return False, "invalid", ""
    kind = _KIND_BY_TYPE.get(phonenumbers.number_type(number), "landline")
    region = geocoder.description_for_number(number, "zh") if number.country_code == 86 else ""
    if region == "中国":
        region = ""  # 16x/19x/17x, 400: no place at all
    for wrong, right in _REGION_FIXES.items():
        region = region.replace(wrong, right)
    return True, kind, region


@lru_cache(maxsize=65536)
def _mobile_info(prefix7: str) -> tuple[bool, str, str]:
    """Validity, kind and issuing region of the 11-digit mobiles starting with ``prefix7``."""
    phonenumbers, _ = _lib()
    # the number as phonenumbers.parse would build it, without the parse (half the cost)
    return _describe(phonenumbers.PhoneNumber(country_code=86, national_number=int(prefix7 + "0000")))


def _parse(digits: str) -> tuple[bool, str, str, str] | None:
    phonenumbers, _ = _lib()
    try:
        number = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:
        return None
    valid, kind, region = _describe(number)
    if not valid:
        return valid, kind, region, digits
    if number.country_code == 86:
        national = str(number.national_number)
        area = phonenumbers.length_of_geographical_area_code(number) if kind == "landline" else 0
        text = f"0{national[:area]}-{national[area:]}" if area else national
    else:
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return valid, kind, region, text


# -- where a number belongs vs where the address is -------------------------------------------------

# phonenumbers' zh descriptions are older than the division table in places (株州, 铜仁地区), and
# 0898 covers the whole of Hainan though it is described as 海口市、三亚市.
_REGION_FIXES = {"株州": "株洲"}
_PROVINCE_WIDE = frozenset({"海南省"})


@lru_cache(maxsize=1024)
def _region_places(region: str) -> tuple[str, frozenset[str]]:
    """``(province, cities)`` of a geocoder description; no cities = the whole province."""
    text = region
    province = ""
    cities: set[str] = set()
    for place in places_in(text):
        province = province or place.province
        if place.province != province:
            continue
        if place.level >= 1:
            cities.update(place.cities if place.level == 2 else place.aliases)
        elif place.name in MUNICIPALITIES:
            cities.add(place.name)
    if province in _PROVINCE_WIDE:
        cities = set()
    return province, frozenset(cities)


@lru_cache(maxsize=4096)
def _address_place(city: str, province: str) -> tuple[str, str]:
    """The address's official province and city names (杭州 → 浙江省, 杭州市)."""
    found_province = ""
    found_city = ""
    for place in places_in(f"{province} {city}".strip()):
        if place.level == 0 and not found_province:
            found_province = place.name
        elif place.level == 1 and not found_city and (not found_province or place.province == found_province):
            found_city = place.name
            found_province = found_province or place.province
    if found_province in MUNICIPALITIES and not found_city:
        found_city = found_province
    return found_province, found_city


def _compare(kind: str, number: str, region: str, city: str, province: str) -> list[Problem]:
    region_province, region_cities = _region_places(region)
    if not region_province:
        return []
    addr_province, addr_city = _address_place(city, province)
    if not addr_province:
        return []
    if addr_province == region_province and (not region_cities or not addr_city or addr_city in region_cities):
        return []
    where = _address_text(addr_province, addr_city)
    if kind == "landline":
        area = number.split("-", 1)[0]
        return [Problem("phone_area_mismatch", "warn",
                        f"座机区号 {area} 属于{region}，与收货地{where}不符 — 请核对电话或地址")]
    return [Problem("phone_region_hint", "info", f"手机号归属地为{region}，收货地为{where}（仅供参考）")]


def _address_text(province: str, city: str) -> str:
    return province if not city or city == province else province + city
