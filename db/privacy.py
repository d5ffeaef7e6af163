"""Masking customer data for display: phones, names, addresses and the free text that quotes them.

Customer phones, names and street addresses are personal information (PIPL): an agent sees
``138****1234``, ``张*`` and the address down to the district unless there is a reason to see more.
The read models (``db.reads``, ``db.checks``, ``db.queue``) apply these functions, so every screen,
CLI command and script is masked without remembering to; ``Store.order_card(reveal=...)`` is the
only way to unmasked values, and its callers check the permission and log the reveal.

Pure functions on ``str``: no I/O, never raise on any string, idempotent (masking a masked value
changes nothing), and never reveal more than:

* a phone: the first three and last four digits of a mobile (``138****1234``), a landline's area
  code and last four (``0571-****1234``), the last four of anything else; a virtual number's or an
  extension's digits never (``138****5678-****``). A value the platform already masked stays as
  delivered (unless it shows more than eight digits); platform ciphertext stays as delivered unless
  a phone number can be read in it;
* a name: its first character (``张*``, ``欧***``, ``J***``: at most three stars);
* an address: province, city and district (``浙江省杭州市西湖区****``);
* free text (buyer notes, seller memos, timeline messages, hold reasons): everything except mobile
  numbers, landlines with an area code and 15/18-digit ID numbers, which keep only their first
  three and last four digits (an ID number only if its date and check digit are plausible, so order
  and waybill numbers quoted in a note stay readable).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from typing import Any

__all__ = [
    "FIELDS",
    "MASK",
    "mask_address",
    "mask_address_line",
    "mask_payload",
    "mask_name",
    "mask_order",
    "mask_phone",
    "mask_text",
]

#: What stands for hidden digits or a hidden street address.
MASK = "****"
#: The fields that can be revealed: ``Store.order_card(order_id, reveal=...)``.
FIELDS = frozenset({"name", "phone", "address"})

#: Most stars a masked name shows: a long name does not fill its column with stars, nor say its
#: length, and a masked name never ends in :data:`MASK` as a masked address does.
_NAME_STARS = 3
#: Fullwidth digits (Chinese IME) read as digits; same length, so match positions carry over.
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

# -- phones ---------------------------------------------------------------------------------------

_EXT_SEP = r"(?:-|转|#|＃|,|，|ext\.?|x)"
_PHONE_CHARS = re.compile(r"^\+?[0-9\s\-()]+$")
_MOBILE = re.compile(r"^1[0-9]{10}$")
_PLATFORM_MASKED = re.compile(r"^1[0-9]{2}\*{4}[0-9]{4}$")
_VIRTUAL = re.compile(rf"^(?:\+?86[\s-]?|0086[\s-]?)?(1[0-9]{{10}})\s*({_EXT_SEP})\s*([0-9]{{1,6}})$", re.IGNORECASE)
_EXTENSION = re.compile(rf"^(.*[0-9])\s*({_EXT_SEP})\s*([0-9]{{1,6}})$", re.IGNORECASE)
_MASKED_SHAPE = re.compile(r"^\+?[0-9\s\-()*]*\*[0-9\s\-()*]*$")
_MASKED_EXTENSION = re.compile(rf"^(.*\*[0-9\s\-()*]*[0-9]{{4}})\s*({_EXT_SEP})\s*([0-9]{{1,6}}|\*+)$", re.IGNORECASE)
_DIGIT = re.compile(r"[0-9]")
_NON_DIGIT = re.compile(r"[^0-9]")


def mask_phone(raw: str | None) -> str:
    """A receiver phone as an agent may see it: ``138****1234``, ``0571-****1234``, ``138****5678-****``."""
    if not raw:
        return ""
    value = raw.strip() if raw.isascii() else unicodedata.normalize("NFKC", raw).strip()
    if _MOBILE.match(value):  # the common cases first: fifty of these on every keystroke
        return value[:3] + MASK + value[-4:]
    if _PLATFORM_MASKED.match(value):
        return raw
    if "*" in value:
        extension = _MASKED_EXTENSION.match(value)
        if extension:  # 188****1111-1234: the extension reaches the person, so it is hidden too
            return f"{mask_phone(extension.group(1))}{extension.group(2)}{MASK}"
        if _MASKED_SHAPE.match(value):
            if len(_DIGIT.findall(value)) <= 8:
                return raw  # masked by the platform: as delivered
            return MASK + _NON_DIGIT.sub("", value)[-4:]
        return mask_text(raw)
    virtual = _VIRTUAL.match(value)
    if virtual:
        main, sep, _ = virtual.groups()
        return f"{main[:3]}{MASK}{main[-4:]}{sep}{MASK}"
    if not _PHONE_CHARS.match(value):
        extension = _EXTENSION.match(value)
        if extension and _PHONE_CHARS.match(extension.group(1)):
            return f"{_mask_number(extension.group(1))}{extension.group(2)}{MASK}"
        return mask_text(raw)  # ciphertext, or a phone with words around it
    masked = _mask_number(value)
    if masked is None:  # 0571-88881234-801: a landline and its extension, both with dashes
        main, _, _ = value.rpartition("-")
        return f"{_mask_number(main) or MASK}-{MASK}"
    return masked


def _mask_number(value: str) -> str | None:
    """Mask digits written with spaces, dashes, brackets and a country code; None when the value
    reads as a landline with a dash-separated extension (the caller splits it off)."""
    digits = _NON_DIGIT.sub("", value)
    national = digits
    if value.lstrip().startswith(("+86", "0086")) or (digits.startswith("86") and len(digits) == 13):
        national = digits[4:] if digits.startswith("0086") else digits[2:]
        if national and not national.startswith("1"):
            national = "0" + national  # +86 571 8888 1234: the landline 0571-88881234
    n = len(national)
    if n == 0:
        return MASK if digits else value  # no digits to hide, or only a country code
    if n == 11 and national.startswith("1"):
        return national[:3] + MASK + national[-4:]
    if national.startswith("0") and not national.startswith("00") and n >= 10:
        area = national[:3] if national[1] in "12" else national[:4]  # 010, 02x; else 0571 …
        local = n - len(area)
        if 7 <= local <= 8:
            return f"{area}-{MASK}{national[-4:]}"
        if local > 8 and "-" in value.strip().strip("-")[1:]:
            return None
    if n >= 11:
        return national[:3] + MASK + national[-4:]
    if n >= 7:
        return MASK + national[-4:]
    return MASK


# -- names ----------------------------------------------------------------------------------------


def mask_name(name: str | None) -> str:
    """A person's name with only its first character: ``张*``, ``欧***``, ``J***``; empty stays empty."""
    if not name:
        return ""
    if "*" in name:
        return name  # masked by the platform: as delivered
    value = name.strip()
    if len(value) <= 1:
        return "*" if value else ""
    return value[0] + "*" * min(len(value) - 1, _NAME_STARS)


# -- addresses ------------------------------------------------------------------------------------

_MUNICIPALITIES = ("北京市", "上海市", "天津市", "重庆市")
# One administrative name: a few letters and its suffix. No digits, spaces or punctuation, and none
# of the characters of streets and buildings, so 长安镇上沙社区 or 望京街道 is never taken for a district.
_PLACE = re.compile(r"[^\W\d_路街巷弄号栋幢楼室村社组苑]{1,9}?(特别行政区|自治区|自治州|自治县|地区|省|市|盟|区|县|旗)")
_PROVINCE_SUFFIXES = frozenset({"省", "自治区", "特别行政区"})
_CITY_SUFFIXES = frozenset({"自治州", "地区", "盟"})
_NOTHING, _PROVINCE, _CITY, _DISTRICT = range(4)


def _place_prefix(text: str, level: int = _NOTHING) -> int:
    """How many leading characters of ``text`` are province / city / district names, up to and
    including the district (区 / 县 / 旗, or a county-level 市 after a city); ``level``: what the
    text is known to have named before it."""
    pos = 0
    while level < _DISTRICT:
        start = pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        found = _PLACE.match(text, pos)
        if found is None:
            return start
        name, suffix = found.group(0), found.group(1)
        if name in _MUNICIPALITIES and level == _NOTHING:
            level = _CITY
        elif suffix in _PROVINCE_SUFFIXES:
            if level != _NOTHING:
                return start  # a province after a city: not part of an address's start
            level = _PROVINCE
        elif suffix in _CITY_SUFFIXES or (suffix == "市" and level < _CITY):
            if level >= _CITY:
                return start
            level = _CITY
        else:
            level = _DISTRICT
        pos = found.end()
    return pos


def mask_address(province: str | None, city: str | None, district: str | None, detail: str | None) -> str:
    """The detail address with everything below the district hidden: ``文三路 100 号`` → ``****``;
    a detail that repeats its province / city / district keeps those (``西湖区文三路…`` → ``西湖区****``)."""
    if not detail:
        return ""
    pos, level = 0, _NOTHING
    for part, part_level in ((province, _PROVINCE), (city, _CITY), (district, _DISTRICT)):
        part = (part or "").strip()
        start = pos
        while start < len(detail) and detail[start].isspace():
            start += 1
        if part and detail.startswith(part, start):
            pos, level = start + len(part), part_level
    keep = pos + _place_prefix(detail[pos:], level)
    rest = detail[keep:].strip()
    if not rest:
        return detail  # nothing below the district
    return detail[:keep] + MASK


def mask_address_line(text: str | None, reveal: Collection[str] = ()) -> str:
    """An address as one line — ``name phone place``, as an ``address`` timeline event records old
    and new — with the parts not in ``reveal`` masked (parts may be missing)."""
    if not text:
        return ""
    if FIELDS <= set(reveal):
        return text
    line = text if "phone" in reveal else mask_text(text)
    tokens = line.split(" ")
    phone_at = next((i for i, token in enumerate(tokens) if _is_phone_token(token)), None)
    if phone_at is not None:
        name, phone, place = " ".join(tokens[:phone_at]), tokens[phone_at], " ".join(tokens[phone_at + 1:])
    elif (len(tokens) > 1 and _looks_like_name(tokens[0])) or (len(tokens) == 1 and _is_masked_name(line)):
        name, phone, place = tokens[0], "", " ".join(tokens[1:])
    else:
        name, phone, place = "", "", line
    parts = (
        name if "name" in reveal else mask_name(name),
        phone if "phone" in reveal else mask_phone(phone),
        place if "address" in reveal else mask_address("", "", "", place),
    )
    return " ".join(part for part in parts if part)


def _is_phone_token(token: str) -> bool:
    """Whether one space-free piece of an address line is its phone (plain, masked or virtual)."""
    value = unicodedata.normalize("NFKC", token)
    if "*" in value:
        return bool(_MASKED_SHAPE.match(value) or _MASKED_EXTENSION.match(value))
    if len(_DIGIT.findall(value)) < 4:
        return False
    if _PHONE_CHARS.match(value) or _VIRTUAL.match(value):
        return True
    extension = _EXTENSION.match(value)
    return bool(extension and _PHONE_CHARS.match(extension.group(1)))


def _is_masked_name(token: str) -> bool:
    """A name as ``mask_name`` leaves it (stars in it); a masked detail address ends with ``****``."""
    return "*" in token and not token.endswith(MASK)


def _looks_like_name(token: str) -> bool:
    return 0 < len(token) <= 12 and not _DIGIT.search(token) and _place_prefix(token) == 0


# -- free text ------------------------------------------------------------------------------------

_NUMBERS = re.compile(
    r"(?<![0-9])(?:"
    r"(?P<id18>[0-9]{6}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx])(?![0-9Xx])"
    r"|(?P<id15>[0-9]{8}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3})(?![0-9])"
    r"|(?P<cc>(?:\+|00)?86[\s-]?)?(?P<mobile>1[3-9][0-9](?:[\s-]?[0-9]{4}){2})(?![0-9])"
    r"|(?P<landline>(?:\(0[0-9]{2,3}\)|0[0-9]{2,3})[\s-]?[0-9]{7,8})(?![0-9])"
    r")"
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _id_check_ok(number: str) -> bool:
    """The GB 11643 check digit of an 18-digit ID number."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return "10X98765432"[total % 11] == number[17].upper()


def mask_text(text: str | None) -> str:
    """Free text with phone numbers and ID numbers in it masked; everything else as it is."""
    if not text:
        return ""
    probe = text.translate(_FULLWIDTH_DIGITS)
    out: list[str] = []
    last = 0
    for found in _NUMBERS.finditer(probe):
        start, end = found.span()
        original = text[start:end]
        kind = found.lastgroup
        if kind == "id18":
            if not _id_check_ok(probe[start:end]):
                continue
            masked = original[:3] + "*" * 11 + original[-4:]
        elif kind == "id15":
            masked = original[:3] + "*" * 8 + original[-4:]
        elif kind == "landline":
            digits = _NON_DIGIT.sub("", probe[start:end])
            area = digits[:3] if digits[1] in "12" else digits[:4]
            masked = f"{area}-{MASK}{original[-4:]}"
        else:  # a mobile, maybe after its country code
            cc = text[found.start("cc"):found.end("cc")] if found.group("cc") else ""
            national = _NON_DIGIT.sub("", text[found.start("mobile"):end].translate(_FULLWIDTH_DIGITS))
            masked = f"{cc}{national[:3]}{MASK}{national[-4:]}"
        out.append(text[last:start])
        out.append(masked)
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


#: An order's texts that may quote a phone or ID number (masked with the phone).
_ORDER_TEXTS = ("buyer_note", "seller_memo", "hold_reason")


def mask_order(values: dict, reveal: Collection[str] = ()) -> None:
    """Mask an order's receiver columns in place (``receiver_name``, ``receiver_phone``,
    ``address_detail`` beside ``province`` / ``city`` / ``district``, and the notes, memo and hold
    reason that may quote numbers), but for the fields in ``reveal`` (:data:`FIELDS`)."""
    if "name" not in reveal:
        values["receiver_name"] = mask_name(values["receiver_name"])
    if "phone" not in reveal:
        values["receiver_phone"] = mask_phone(values["receiver_phone"])
        for name in _ORDER_TEXTS:
            if values[name]:
                values[name] = mask_text(values[name])
    if "address" not in reveal:
        values["address_detail"] = mask_address(values["province"], values["city"], values["district"],
                                                values["address_detail"])


#: Keys of a channel's raw payload that hold a receiver's phone, address or name (any platform's
#: spelling: receiver_mobile, receiverPhone, consignee, buyer_nick, post_tel …), lower-cased.
_PAYLOAD_PHONE = re.compile(r"mobile|phone|tel(?!l)|手机|电话")
_PAYLOAD_ADDRESS = re.compile(r"address|addr|detail|street|town|收货地址|详细地址")
_PAYLOAD_NAME = re.compile(r"receiver|consignee|buyer|contact|addressee|nick|收货人|姓名")


def mask_payload(value: Any, key: str = "") -> Any:
    """A channel's raw JSON (a quarantined payload) with its receiver data masked, key by key:
    phones as :func:`mask_phone`, addresses cut after their first place names, receiver names as
    :func:`mask_name`, and phone / ID numbers inside any other text as :func:`mask_text`."""
    if isinstance(value, dict):  # a key is read with its parent's: {"consignee": {"name": …}}
        parent = key.rpartition(".")[2]
        return {k: mask_payload(v, f"{parent}.{str(k).lower()}" if parent else str(k).lower()) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_payload(v, key) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _PAYLOAD_PHONE.search(key):
        value = str(value)
    if not isinstance(value, str) or not value:
        return value
    if _PAYLOAD_PHONE.search(key):
        return mask_phone(value)
    if _PAYLOAD_ADDRESS.search(key):
        return mask_address(None, None, None, value)
    if _PAYLOAD_NAME.search(key) and "id" not in key.rpartition(".")[2].split("_") and not key.endswith("id"):
        return mask_name(value)
    return mask_text(value)
