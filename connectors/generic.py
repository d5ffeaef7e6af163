"""The generic adapter: a team's own mini-program, POS or distributor API, read through a mapping file.

A mapping file (TOML) says where each canonical field lives in the source's JSON (or, for a file
import, which column holds it), how times and amounts are written, which raw statuses mean what,
and — for an API — how to page through it. :class:`MappedAdapter` implements
``connectors.base.Adapter`` from it; :class:`GenericSource` implements ``connectors.base.Source``
(page/size or cursor paging) over ``connectors.http.request_json``. ``connectors/mappings/
miniapp.toml`` is a complete, commented example.

Never guess: a required field that is missing, an amount with more than two decimals, a time in
a format the mapping did not declare, a status no table names — each raises
:class:`~connectors.base.Quarantine` with a reason naming the field, where it was looked for, and
the (cleaned, shortened) value found.

Field specs in ``[fields]`` and ``[lines]``: a path string (``"receiver.mobile"``,
``"items[0].sku"``), a list of paths (the first one holding a value is used), or a table
``{ path = …, required = true, default = …, format = …, timezone = …, unit = … }``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import Quarantine, Window
from connectors.config import ConfigError, Problem, ShopConfig
from db.codes import AfterSale, Status
from db.sanitize import clean_text
from db.store import NewLine, NewOrder, NewParcel

#: China has kept UTC+8 without daylight saving since 1991: the platforms' own zone.
CHINA = timezone(timedelta(hours=8), "UTC+8")

#: Canonical order fields: name → kind. Kinds decide how a value is read (see ``_convert``).
ORDER_FIELDS: dict[str, str] = {
    "order_id": "id",
    "order_no": "id",
    "modified_at": "time",
    "created_at": "time",
    "paid_at": "time",
    "ship_by": "time",
    "status": "status",
    "after_sale": "after_sale",
    "total": "money",
    "paid": "money",
    "post_fee": "money",
    "discount": "money",
    "buyer_note": "note",
    "seller_memo": "note",
    "receiver_name": "text",
    "receiver_phone": "phone",
    "province": "text",
    "city": "text",
    "district": "text",
    "address_detail": "text",
    "shop_name": "text",
    "presale": "bool",
    "waybill": "waybills",
    "carrier": "text",
}
LINE_FIELDS: dict[str, str] = {
    "sku": "id",
    "title": "text",
    "quantity": "count",
    "price": "money",
    "line_id": "id",
    "gift": "bool",
}
#: Fields a mapping must name (``modified_at`` too when it describes an API ``[source]``).
REQUIRED_ORDER = ("order_id", "status", "created_at")
REQUIRED_LINE = ("sku",)

TIME_FORMATS = ("ymd", "iso", "epoch_s", "epoch_ms")
_UNITS = {"yuan": "yuan", "元": "yuan", "fen": "fen", "分": "fen"}
_TRUE = {"1", "true", "yes", "y", "是", "t"}
_FALSE = {"0", "false", "no", "n", "否", "f", ""}
# Year-first forms only: 2024-05-01, 2024/5/1 10:00, 2024-05-01T10:00:00+08:00, 2024年5月1日 10:00.
_YMD = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_EARLIEST, _LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
#: Common carrier names in Chinese exports → the codes parcels use (Kuaidi100 style, upper case).
CARRIER_NAMES: dict[str, str] = {
    "顺丰": "SF", "顺丰速运": "SF", "顺丰快递": "SF", "中通": "ZTO", "中通快递": "ZTO",
    "圆通": "YTO", "圆通速递": "YTO", "圆通快递": "YTO", "韵达": "YD", "韵达快递": "YD", "韵达速递": "YD",
    "申通": "STO", "申通快递": "STO", "京东": "JD", "京东物流": "JD", "京东快递": "JD", "极兔": "JT",
    "极兔速递": "JT", "极兔快递": "JT", "EMS": "EMS", "邮政": "EMS", "中国邮政": "EMS", "邮政EMS": "EMS",
    "德邦": "DBL", "德邦快递": "DBL", "德邦物流": "DBL",
}


class FieldError(Quarantine):
    """A field could not be read: ``reason`` in Chinese, ``reason_en`` in English.

    A :class:`~connectors.base.Quarantine` (so the sync runner and the importer treat it as one)
    that also carries the English text, the field name and the path it was looked for at.
    """

    def __init__(self, zh: str, en: str, *, code: str = "invalid", field_name: str = "") -> None:
        super().__init__(zh, code=code)
        self.reason_en = en
        self.field_name = field_name

    def text(self, language: str = "zh") -> str:
        """The reason in ``language``."""
        return self.reason_en if language == "en" else self.reason


def reason_text(error: Quarantine, language: str = "zh") -> str:
    """A quarantine reason in ``language`` when the error carries both, else as it was given."""
    return error.text(language) if isinstance(error, FieldError) else error.reason


# -- the mapping -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """Where one canonical field is found and how it is read."""

    name: str
    kind: str
    paths: tuple[str, ...]
    required: bool = False
    default: Any = None
    time_format: str | None = None
    zone: tzinfo | None = None
    unit: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """How to page through a team's own order API (see the ``[source]`` table of a mapping)."""

    path: str
    method: str = "GET"
    items: str = "items"
    window_start: str = "start"
    window_end: str = "end"
    window_format: str | None = None
    paging: str = "page"  # page | cursor
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = 1
    page_size: int = 100
    total: str | None = None
    has_more: str | None = None
    cursor_param: str = "cursor"
    next_cursor: str | None = None
    end_cursor: str | None = None
    ok: str | None = None
    ok_value: Any = None
    message: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    auth_header: str | None = None
    auth_param: str | None = None
    auth_prefix: str = ""
    auth_credential: str = "token"
    max_pages: int = 10_000


@dataclass(frozen=True)
class FieldMap:
    """A parsed mapping file: order fields, line fields, status tables, time/amount rules, source.

    ``flat`` means each path is one key (a column header) rather than a dotted JSON path; the
    importer sets it. ``lines_path`` is where the list of lines is (JSON) — for a file import the
    importer gathers an order's rows under :data:`ROWS_KEY` instead.
    """

    fields: Mapping[str, FieldSpec]
    line_fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    lines_path: str | None = None
    status: Mapping[str, str] = field(default_factory=dict)
    after_sale: Mapping[str, str] = field(default_factory=dict)
    statuses_from: str | None = None
    time_format: str = "ymd"
    zone: tzinfo = CHINA
    unit: str = "yuan"
    carriers: Mapping[str, str] = field(default_factory=lambda: dict(CARRIER_NAMES))
    source: SourceSpec | None = None
    channel: str | None = None
    path: Path | None = None
    flat: bool = False


#: Where the importer puts an order's rows (each a dict of column → value) for the line fields.
ROWS_KEY = "__rows__"


def load_mapping(path: str | Path) -> FieldMap:
    """The mapping file at ``path``; raises :class:`~connectors.config.ConfigError` with its problems."""
    fieldmap, problems = _read_mapping(Path(path))
    if problems or fieldmap is None:
        raise ConfigError(problems)
    return fieldmap


def mapping_problems(path: str | Path) -> list[Problem]:
    """Every problem with the mapping file at ``path`` (empty: it is fine)."""
    return _read_mapping(Path(path))[1]


def parse_mapping(data: Mapping[str, Any], *, path: Path | None = None) -> tuple[FieldMap | None, list[Problem]]:
    """A mapping from already-parsed TOML, and its problems."""
    reader = _MappingReader()
    fieldmap = reader.read(data, path)
    return (fieldmap if not reader.problems else None), reader.problems


def _read_mapping(path: Path) -> tuple[FieldMap | None, list[Problem]]:
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        return None, [Problem("", f"找不到映射文件 {path}", f"mapping file {path} not found", "missing_mapping")]
    except OSError as error:
        return None, [Problem("", f"无法读取映射文件 {path}（{error.strerror}）",
                              f"cannot read mapping file {path} ({error.strerror})", "missing_mapping")]
    except UnicodeDecodeError:
        return None, [Problem("", f"映射文件 {path} 不是 UTF-8 编码", f"mapping file {path} is not UTF-8 text",
                              "bad_mapping")]
    except tomllib.TOMLDecodeError as error:
        return None, [Problem("", f"映射文件 {path} 的 TOML 格式错误：{error}",
                              f"mapping file {path} is not valid TOML: {error}", "bad_mapping")]
    return parse_mapping(data, path=path)


def _zone(name: str) -> tzinfo:
    """A time zone from an IANA name or an offset like +08:00; raises ValueError."""
    if name in ("Asia/Shanghai", "Asia/Chongqing", "PRC", "UTC+8", "+08:00", "+0800"):
        return CHINA
    if name in ("UTC", "Z", "+00:00"):
        return UTC
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(name) from None


class _MappingReader:
    """Reads a mapping table once, collecting every problem with a plain-words message."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, where: str, zh: str, en: str, code: str = "bad_mapping") -> None:
        self.problems.append(Problem(where, zh, en, code))

    def read(self, data: Mapping[str, Any], path: Path | None) -> FieldMap:
        known = {"channel", "statuses", "time", "amount", "fields", "lines", "status", "after_sale",
                 "carriers", "source"}
        for key in data:
            if key not in known:
                self.problem(key, f"未知的设置项「{key}」", f"unknown setting '{key}'", "unknown_key")
        time_table = self.table(data, "time")
        time_format = self.time_format(time_table.get("format", "ymd"), "time.format") or "ymd"
        zone = self.zone(time_table.get("timezone", "Asia/Shanghai"), "time.timezone") or CHINA
        unit = self.unit(self.table(data, "amount").get("unit", "yuan"), "amount.unit") or "yuan"
        fields = self.specs(self.table(data, "fields"), ORDER_FIELDS, "fields")
        lines_table = dict(self.table(data, "lines"))
        lines_path = lines_table.pop("path", None)
        if lines_path is not None and not isinstance(lines_path, str):
            self.problem("lines.path", "应为路径文字", "should be a path (text)")
            lines_path = None
        line_fields = self.specs(lines_table, LINE_FIELDS, "lines")
        status = self.codes(self.table(data, "status"), [s.value for s in Status], "status", "标准订单状态",
                            "standard order status")
        after_sale = self.codes(self.table(data, "after_sale"), [a.value for a in AfterSale], "after_sale",
                                "售后状态", "after-sale state")
        statuses_from = data.get("statuses")
        if statuses_from is not None and not isinstance(statuses_from, str):
            self.problem("statuses", "应为渠道代码（使用该渠道内置的状态表）", "should be a channel code (use its built-in status table)")
            statuses_from = None
        carriers = dict(CARRIER_NAMES)
        for name, code in self.table(data, "carriers").items():
            if not isinstance(code, str) or not code:
                self.problem(f"carriers.{name}", "应为快递公司代码，例如 \"SF\"", "should be a carrier code such as \"SF\"")
                continue
            carriers[name] = code.upper()
        source = self.source(self.table(data, "source"), time_format) if "source" in data else None
        for name in REQUIRED_ORDER + (("modified_at",) if source else ()):
            if name not in fields:
                self.problem(f"fields.{name}", f"缺少必需字段 {name} 的映射", f"the required field {name} is not mapped",
                             "missing_field")
        if line_fields:
            for name in REQUIRED_LINE:
                if name not in line_fields:
                    self.problem(f"lines.{name}", f"缺少商品明细字段 {name} 的映射", f"line field {name} is not mapped",
                                 "missing_field")
        if not status and not statuses_from and "status" in fields and fields["status"].default is None:
            self.problem("status", "没有状态对照表：请写 [status] 表（平台原始值 = 标准状态）或 statuses = \"渠道\"",
                         "no status table: write a [status] table (raw value = standard status) or statuses = \"channel\"",
                         "missing_status_map")
        if not after_sale and not statuses_from and "after_sale" in fields:
            self.problem("after_sale", "映射了 after_sale 字段，但没有 [after_sale] 对照表（平台原始值 = 售后状态）",
                         "after_sale is mapped but there is no [after_sale] table (raw value = after-sale state)",
                         "missing_status_map")
        if statuses_from:
            self.builtin_statuses(statuses_from)
        channel = data.get("channel")
        return FieldMap(
            fields=fields, line_fields=line_fields, lines_path=lines_path, status=status, after_sale=after_sale,
            statuses_from=statuses_from, time_format=time_format, zone=zone, unit=unit, carriers=carriers,
            source=source, channel=channel if isinstance(channel, str) else None, path=path,
        )

    def builtin_statuses(self, channel: str) -> None:
        try:
            from connectors import statusmap
        except ImportError:
            self.problem("statuses", "内置状态表模块不可用", "the built-in status tables are not available")
            return
        try:
            statusmap.load(channel, None)
        except Exception:  # noqa: BLE001 - any failure means "no such table"
            self.problem("statuses", f"没有渠道「{channel}」的内置状态表", f"there is no built-in status table for '{channel}'")

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(key, "应为一个表", "should be a table")
            return {}
        return value

    def time_format(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str) or not (value in TIME_FORMATS or "%" in value):
            self.problem(where, f"时间格式应为 {'、'.join(TIME_FORMATS)} 或 strftime 格式（如 \"%Y-%m-%d %H:%M:%S\"）",
                         f"time format should be one of {', '.join(TIME_FORMATS)} or a strftime pattern "
                         f"(e.g. \"%Y-%m-%d %H:%M:%S\")")
            return None
        return value

    def zone(self, value: Any, where: str) -> tzinfo | None:
        try:
            return _zone(str(value))
        except ValueError:
            self.problem(where, f"未知的时区「{_show(value)}」（例如 Asia/Shanghai 或 +08:00）",
                         f"unknown time zone '{_show(value)}' (e.g. Asia/Shanghai or +08:00)")
            return None

    def unit(self, value: Any, where: str) -> str | None:
        if value not in _UNITS:
            self.problem(where, "金额单位应为 \"元\"/\"yuan\" 或 \"分\"/\"fen\"",
                         "the amount unit should be \"元\"/\"yuan\" or \"分\"/\"fen\"")
            return None
        return _UNITS[value]

    def specs(self, table: Mapping[str, Any], known: Mapping[str, str], where: str) -> dict[str, FieldSpec]:
        specs: dict[str, FieldSpec] = {}
        for name, value in table.items():
            place = f"{where}.{name}"
            if name not in known:
                self.problem(place, f"未知的字段「{name}」；可用：{'、'.join(known)}",
                             f"unknown field '{name}'; known fields: {', '.join(known)}", "unknown_key")
                continue
            kind = known[name]
            options: dict[str, Any] = {}
            if isinstance(value, dict):
                options = dict(value)
                value = options.pop("paths", options.pop("path", None))
            paths = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else None
            if not paths or not all(isinstance(p, str) and p for p in paths):
                self.problem(place, "应为路径文字、路径列表，或 { path = … } 表",
                             "should be a path, a list of paths, or a { path = … } table")
                continue
            for key in set(options) - {"required", "default", "format", "timezone", "unit"}:
                self.problem(f"{place}.{key}", f"未知的选项「{key}」", f"unknown option '{key}'", "unknown_key")
            required = options.get("required", name in REQUIRED_ORDER or name in REQUIRED_LINE)
            if not isinstance(required, bool):
                self.problem(f"{place}.required", "应为 true 或 false", "should be true or false")
                required = True
            spec = FieldSpec(name=name, kind=kind, paths=paths, required=required, default=options.get("default"))
            if "format" in options:
                spec = replace(spec, time_format=self.time_format(options["format"], f"{place}.format"))
            if "timezone" in options:
                spec = replace(spec, zone=self.zone(options["timezone"], f"{place}.timezone"))
            if "unit" in options:
                spec = replace(spec, unit=self.unit(options["unit"], f"{place}.unit"))
            allowed = {"status": {s.value for s in Status}, "after_sale": {a.value for a in AfterSale}}.get(kind)
            if spec.default is not None and allowed is not None and spec.default not in allowed:
                self.problem(f"{place}.default", f"「{_show(spec.default)}」不是标准值；可用：{'、'.join(sorted(allowed))}",
                             f"'{_show(spec.default)}' is not a standard value; use one of: {', '.join(sorted(allowed))}",
                             "unknown_status")
            specs[name] = spec
        return specs

    def codes(self, table: Mapping[str, Any], allowed: list[str], where: str, what_zh: str, what_en: str) -> dict[str, str]:
        result: dict[str, str] = {}
        for raw, standard in table.items():
            if not isinstance(standard, str) or standard not in allowed:
                self.problem(f"{where}.{raw}", f"「{_show(standard)}」不是已知的{what_zh}；可用：{'、'.join(allowed)}",
                             f"'{_show(standard)}' is not a known {what_en}; use one of: {', '.join(allowed)}",
                             "unknown_status")
                continue
            result[str(raw).strip()] = standard
        return result

    def source(self, table: Mapping[str, Any], time_format: str) -> SourceSpec | None:
        names = {f.name for f in SourceSpec.__dataclass_fields__.values()}
        renames = {"page": "page_param", "size": "size_param", "cursor": "cursor_param"}
        values: dict[str, Any] = {}
        for key, value in table.items():
            target = renames.get(key, key)
            if key == "auth":
                if not isinstance(value, dict):
                    self.problem("source.auth", "应为一个表", "should be a table")
                    continue
                for auth_key, auth_value in value.items():
                    if auth_key not in ("header", "param", "prefix", "credential"):
                        self.problem(f"source.auth.{auth_key}", f"未知的选项「{auth_key}」", f"unknown option '{auth_key}'",
                                     "unknown_key")
                        continue
                    values[f"auth_{auth_key}"] = auth_value
                continue
            if target not in names or target.startswith("auth_"):
                self.problem(f"source.{key}", f"未知的设置项「{key}」", f"unknown setting '{key}'", "unknown_key")
                continue
            values[target] = value
        if not isinstance(values.get("path"), str) or not values.get("path"):
            self.problem("source.path", "缺少接口路径 path（例如 \"/api/orders\"）", "the API path is missing (e.g. \"/api/orders\")",
                         "missing")
            return None
        if values.get("paging", "page") not in ("page", "cursor"):
            self.problem("source.paging", "翻页方式应为 \"page\" 或 \"cursor\"", "paging should be \"page\" or \"cursor\"")
            return None
        if values.get("paging") == "cursor" and not values.get("next_cursor"):
            self.problem("source.next_cursor", "游标翻页需要 next_cursor（下一页游标的路径）",
                         "cursor paging needs next_cursor (the path of the next cursor)", "missing")
        if str(values.get("method", "GET")).upper() not in ("GET", "POST"):
            self.problem("source.method", "应为 GET 或 POST", "should be GET or POST")
        values["method"] = str(values.get("method", "GET")).upper()
        for key in ("page_size", "first_page", "max_pages"):
            if key in values and (not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 0):
                self.problem(f"source.{key}", "应为非负整数", "should be a whole number ≥ 0")
                values.pop(key)
        if "window_format" in values:
            values["window_format"] = self.time_format(values["window_format"], "source.window_format")
        if not isinstance(values.get("params", {}), dict):
            self.problem("source.params", "应为一个表", "should be a table")
            values.pop("params")
        try:
            return SourceSpec(**values)
        except TypeError:  # a wrongly typed value already reported above
            return None


# -- reading values --------------------------------------------------------------------------------


def _show(value: object, limit: int = 40) -> str:
    """A value quoted in a reason: cleaned of terminal controls, shortened."""
    text = clean_text(value if isinstance(value, str) else repr(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for key, index in _PATH_PART.findall(path):
        parts.append(int(index) if index else key)
    return parts


_MISSING = object()


def get_path(data: Any, path: str, *, flat: bool = False) -> Any:
    """The value at ``path`` (``a.b[0].c``) in nested dicts/lists, or the module's ``_MISSING``."""
    if flat:
        return data.get(path, _MISSING) if isinstance(data, Mapping) else _MISSING
    current = data
    for part in _split_path(path):
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                return _MISSING
            current = current[part]
        else:
            if not isinstance(current, Mapping) or part not in current:
                return _MISSING
            current = current[part]
    return current


def _empty(value: Any) -> bool:
    return value is _MISSING or value is None or (isinstance(value, str) and not value.strip())


class MappedAdapter:
    """``connectors.base.Adapter`` driven by a :class:`FieldMap`.

    ``status_overrides`` / ``after_sale_overrides`` (raw → standard, from ``deskapp.toml``) win
    over the mapping's own tables, which win over a built-in table named by ``statuses``.
    """

    def __init__(self, fieldmap: FieldMap, *, channel: str, status_overrides: Mapping[str, str] | None = None,
                 after_sale_overrides: Mapping[str, str] | None = None) -> None:
        self.channel = channel
        self.map = fieldmap
        self._status = {**fieldmap.status, **(status_overrides or {})}
        self._after_sale = {**fieldmap.after_sale, **(after_sale_overrides or {})}
        self._builtin = None
        if fieldmap.statuses_from:
            from connectors import statusmap

            self._builtin = statusmap.load(fieldmap.statuses_from, None)

    # -- Adapter -----------------------------------------------------------------------------

    def external_id(self, raw: dict) -> str:
        """The order id the mapping points at; raises Quarantine when missing."""
        return self._value(raw, self.map.fields["order_id"])

    def modified_at(self, raw: dict) -> datetime:
        """The modified time as an aware UTC datetime; raises Quarantine when missing or bad."""
        spec = self.map.fields.get("modified_at")
        if spec is None:
            raise FieldError("映射文件没有 modified_at（修改时间）字段", "the mapping has no modified_at field",
                             code="missing_field", field_name="modified_at")
        value = self._value(raw, replace(spec, required=True))
        assert isinstance(value, datetime)
        return value

    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; raises Quarantine naming the first field that cannot be read."""
        if not isinstance(raw, Mapping):
            raise FieldError(f"订单数据应为 JSON 对象，收到的是 {type(raw).__name__}",
                             f"an order should be a JSON object, got {type(raw).__name__}")
        v: dict[str, Any] = {name: self._value(raw, spec) for name, spec in self.map.fields.items()}
        status, raw_status = v.get("status") or (Status.PAID.value, "")
        after_sale, raw_after_sale = v.get("after_sale") or (AfterSale.NONE.value, "")
        lines = self._lines(raw)
        created = v["created_at"]
        total = v.get("total")
        if total is None:
            total = sum(line.price_fen * line.quantity for line in lines)
        paid = v.get("paid")
        carrier = v.get("carrier") or ""
        carrier = self.map.carriers.get(carrier, carrier)
        parcels = [NewParcel(waybill_no=w, carrier=carrier) for w in v.get("waybill") or ()]
        order_id = v["order_id"]
        return NewOrder(
            channel=self.channel,
            shop_code=shop_code,
            channel_order_id=order_id,
            order_no=v.get("order_no") or order_id,
            created_at=created,
            modified_at=v.get("modified_at"),
            paid_at=v.get("paid_at"),
            ship_by=v.get("ship_by"),
            status=status,
            raw_status=raw_status,
            after_sale=after_sale,
            raw_after_sale=raw_after_sale,
            total_fen=total,
            paid_fen=paid if paid is not None else total,
            post_fee_fen=v.get("post_fee") or 0,
            discount_fen=v.get("discount") or 0,
            presale=bool(v.get("presale")),
            buyer_note=v.get("buyer_note") or "",
            seller_memo=v.get("seller_memo") or "",
            receiver_name=v.get("receiver_name") or "",
            receiver_phone=v.get("receiver_phone") or "",
            province=v.get("province") or "",
            city=v.get("city") or "",
            district=v.get("district") or "",
            address_detail=v.get("address_detail") or "",
            shop_name=v.get("shop_name") or "",
            lines=lines,
            parcels=parcels,
        )

    # -- pieces ------------------------------------------------------------------------------

    def _lines(self, raw: Mapping) -> list[NewLine]:
        if not self.map.line_fields:
            return []
        if ROWS_KEY in raw:
            items, where = raw[ROWS_KEY], "rows"
        elif self.map.lines_path:
            items, where = get_path(raw, self.map.lines_path), self.map.lines_path
            if _empty(items):
                raise FieldError(f"缺少商品明细（路径 {where}）", f"the order lines are missing (path {where})",
                                 code="missing_field", field_name="lines")
        else:  # one line per order, its fields beside the order's
            items, where = [raw], ""
        if not isinstance(items, list):
            raise FieldError(f"商品明细（路径 {where}）应为列表，收到 {_show(items)}",
                             f"the order lines (path {where}) should be a list, got {_show(items)}", field_name="lines")
        lines: list[NewLine] = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise FieldError(f"第 {index + 1} 个商品明细应为对象，收到 {_show(item)}",
                                 f"order line {index + 1} should be an object, got {_show(item)}", field_name="lines")
            try:
                v = {name: self._value(item, spec) for name, spec in self.map.line_fields.items()}
            except FieldError as error:
                raise FieldError(f"第 {index + 1} 个商品：{error.reason}", f"line {index + 1}: {error.reason_en}",
                                 code=error.code, field_name=error.field_name) from None
            quantity = v.get("quantity")
            lines.append(NewLine(
                sku=v["sku"], title=v.get("title") or "", quantity=1 if quantity is None else quantity,
                price_fen=v.get("price") or 0, gift=bool(v.get("gift")), channel_line_id=v.get("line_id") or "",
            ))
        return lines

    def _value(self, raw: Mapping, spec: FieldSpec) -> Any:
        found, where = _MISSING, spec.paths[0]
        for path in spec.paths:
            value = get_path(raw, path, flat=self.map.flat)
            if not _empty(value):
                found, where = value, path
                break
        if _empty(found):
            if spec.default is not None and spec.kind in ("status", "after_sale"):
                return str(spec.default), ""  # a standard value the mapping declares for all orders
            if spec.default is not None:
                found = spec.default
            elif spec.required:
                raise FieldError(
                    f"缺少必填字段 {spec.name}（{_where(spec.paths, self.map.flat, '位置')}）",
                    f"required field {spec.name} is missing ({_where(spec.paths, self.map.flat, 'at')})",
                    code="missing_field", field_name=spec.name,
                )
            else:
                return None
        try:
            return self._convert(spec, found)
        except _Bad as bad:
            label = f"列「{where}」" if self.map.flat else f"路径 {where}"
            label_en = f"column '{where}'" if self.map.flat else f"path {where}"
            raise FieldError(
                f"字段 {spec.name}（{label}）的值 {_show(found)} 无效：{bad.zh}",
                f"field {spec.name} ({label_en}) has an invalid value {_show(found)}: {bad.en}",
                code=bad.code, field_name=spec.name,
            ) from None

    def _convert(self, spec: FieldSpec, value: Any) -> Any:
        kind = spec.kind
        if kind == "id":
            return _identifier(value)
        if kind in ("text", "phone", "note"):
            if isinstance(value, float | int) and not isinstance(value, bool):
                value = _identifier(value)
            if not isinstance(value, str):
                raise _Bad("应为文字", "should be text")
            return clean_text(value, multiline=kind == "note").strip()
        if kind == "time":
            return parse_time(value, spec.time_format or self.map.time_format, spec.zone or self.map.zone)
        if kind == "money":
            return to_fen(value, spec.unit or self.map.unit)
        if kind == "count":
            return _count(value)
        if kind == "bool":
            return _boolean(value)
        if kind == "status":
            return self._code(value, "status")
        if kind == "after_sale":
            return self._code(value, "after_sale")
        if kind == "waybills":
            text = _identifier(value) if not isinstance(value, str) else clean_text(value)
            return [w for w in re.split(r"[,，;；/\s]+", text) if w]
        raise AssertionError(kind)  # pragma: no cover - kinds are fixed above

    def _code(self, value: Any, axis: str) -> tuple[str, str]:
        """(standard, raw) for a raw status or after-sale value; unknown raw values raise."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _Bad("应为状态文字或数字", "should be a status text or number")
        raw = _identifier(value) if not isinstance(value, str) else clean_text(value).strip()
        table = self._status if axis == "status" else self._after_sale
        if raw in table:
            return table[raw], raw
        if self._builtin is not None:
            try:
                standard = self._builtin.status(raw) if axis == "status" else self._builtin.after_sale(raw)
            except Quarantine:
                pass
            else:
                return str(standard), raw
        if axis == "status":
            raise _Bad("状态对照表里没有这个状态；请在映射文件的 [status] 或 deskapp.toml 的 status_map 中补上",
                       "no status table names this value; add it to [status] in the mapping or status_map in "
                       "deskapp.toml", "unknown_status")
        raise _Bad("售后对照表里没有这个值；请在 [after_sale] 或 after_sale_map 中补上",
                   "no after-sale table names this value; add it to [after_sale] or after_sale_map", "unknown_status")


def _where(paths: tuple[str, ...], flat: bool, word: str) -> str:
    if flat:
        names = "」或「".join(paths) if word == "位置" else "' or '".join(paths)
        return f"列「{names}」" if word == "位置" else f"column '{names}'"
    joined = " / ".join(paths)
    return f"路径 {joined}" if word == "位置" else f"path {joined}"


class _Bad(Exception):
    """A value that cannot be converted: why, in both languages."""

    def __init__(self, zh: str, en: str, code: str = "invalid") -> None:
        super().__init__(en)
        self.zh, self.en, self.code = zh, en, code


def _identifier(value: Any) -> str:
    """An id (order id, SKU, phone) as text; a number must be a whole number Excel kept exactly."""
    if isinstance(value, bool):
        raise _Bad("应为编号", "should be an identifier")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise _Bad("应为整数编号", "should be a whole-number identifier")
        if abs(value) >= 2**53:
            raise _Bad("编号被存成了数字，可能已失真；请把这一列设为文本后重新导出",
                       "the identifier was stored as a number and may have lost digits; export the column as text")
        return str(int(value))
    if isinstance(value, str):
        text = clean_text(value).strip()
        if not text:
            raise _Bad("为空", "is empty")
        return text
    raise _Bad("应为编号文字", "should be an identifier (text)")


def _count(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad("应为正整数", "should be a positive whole number")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d+(\.0+)?", text):
            raise _Bad("应为正整数", "should be a positive whole number")
        value = int(float(text))
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise _Bad("应为正整数", "should be a positive whole number")
        value = int(value)
    if not isinstance(value, int) or value < 1 or value > 1_000_000:
        raise _Bad("应为 1 到 1000000 之间的整数", "should be a whole number from 1 to 1,000,000")
    return value


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(int(value) if isinstance(value, float) and value.is_integer() else value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Bad("应为 是/否 或 true/false", "should be yes/no or true/false")


def to_fen(value: Any, unit: str) -> int:
    """An amount in fen from a value in 元 (at most two decimals) or in 分 (a whole number)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise _Bad("应为金额数字", "should be an amount")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad("应为金额数字", "should be an amount")
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("，", "")
        for mark in ("¥", "￥", "元", "RMB", "CNY"):
            text = text.replace(mark, "")
        try:
            amount = Decimal(text.strip())
        except InvalidOperation:
            raise _Bad("不是数字", "is not a number") from None
        if not amount.is_finite():
            raise _Bad("不是数字", "is not a number")
    else:
        amount = Decimal(value)
    if amount < 0:
        raise _Bad("金额不能为负", "an amount cannot be negative")
    if unit == "fen":
        if amount != amount.to_integral_value():
            raise _Bad("以分为单位的金额应为整数", "an amount in fen should be a whole number")
        fen = int(amount)
    else:
        scaled = amount * 100
        fen = int(scaled.to_integral_value())
        # Excel floats carry binary noise (19.9 → 19.899999999999999): allow that, never real extra digits.
        if abs(scaled - fen) > Decimal("0.000001"):
            raise _Bad("以元为单位的金额最多两位小数", "an amount in yuan has at most two decimals")
    if fen > 10**12:
        raise _Bad("金额大得不合理", "the amount is implausibly large")
    return fen


def parse_time(value: Any, fmt: str, zone: tzinfo) -> datetime:
    """An aware UTC datetime from a value in the declared format; a time without zone is in ``zone``."""
    if isinstance(value, datetime):
        result = value if value.tzinfo else value.replace(tzinfo=zone)
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=zone)
    elif fmt in ("epoch_s", "epoch_ms"):
        if isinstance(value, bool):
            raise _Bad("应为时间戳数字", "should be a timestamp number")
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise _Bad(f"应为时间戳（{'秒' if fmt == 'epoch_s' else '毫秒'}）",
                       f"should be a timestamp ({'seconds' if fmt == 'epoch_s' else 'milliseconds'})") from None
        if not math.isfinite(number):
            raise _Bad("应为时间戳数字", "should be a timestamp number")
        try:
            result = datetime.fromtimestamp(number / (1000 if fmt == "epoch_ms" else 1), UTC)
        except (OverflowError, OSError, ValueError):
            raise _Bad("时间戳超出范围", "the timestamp is out of range") from None
    elif not isinstance(value, str):
        raise _Bad("应为时间文字", "should be a date and time (text)")
    elif fmt in ("ymd", "iso"):
        result = _ymd(value.strip(), zone)
    else:
        try:
            result = datetime.strptime(value.strip(), fmt)
        except ValueError:
            raise _Bad(f"与时间格式 {fmt} 不符", f"does not match the time format {fmt}") from None
        if result.tzinfo is None:
            result = result.replace(tzinfo=zone)
    result = result.astimezone(UTC)
    if not _EARLIEST <= result < _LATEST:
        raise _Bad("时间不在 2000 到 2100 年之间", "the time is not between the years 2000 and 2100")
    return result


def _ymd(text: str, zone: tzinfo) -> datetime:
    match = _YMD.match(text)
    if not match:
        raise _Bad("应为 年-月-日 时:分[:秒] 格式（如 2024-05-01 10:30:00）",
                   "should be year-month-day hour:minute[:second] (e.g. 2024-05-01 10:30:00)")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz: tzinfo = zone
    if offset:
        tz = UTC if offset == "Z" else _zone(offset if ":" in offset else offset[:3] + ":" + offset[3:])
    try:
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int((fraction or "0").ljust(6, "0")), tzinfo=tz,
        )
    except ValueError:
        raise _Bad("不是有效的日期", "is not a valid date") from None


def format_time(value: datetime, fmt: str, zone: tzinfo) -> str | int:
    """A datetime written the way a source expects it (for window parameters)."""
    if fmt == "epoch_s":
        return int(value.timestamp())
    if fmt == "epoch_ms":
        return int(value.timestamp() * 1000)
    local = value.astimezone(zone)
    if fmt == "iso":
        return local.isoformat()
    if fmt == "ymd":
        return local.strftime("%Y-%m-%d %H:%M:%S")
    return local.strftime(fmt)


def adapter_for(fieldmap: FieldMap, channel: Any) -> MappedAdapter:
    """The adapter for a configured generic channel (a ``connectors.config.ChannelConfig``)."""
    return MappedAdapter(fieldmap, channel=channel.code, status_overrides=channel.status_map,
                         after_sale_overrides=channel.after_sale_map)


# -- the source ------------------------------------------------------------------------------------


class GenericSource:
    """``connectors.base.Source`` for a team's own JSON order API, paged as the mapping says.

    Page paging asks ``page``/``size`` from ``first_page`` until a short page; if the answer has a
    ``total`` the rows read must add up to it, and a ``has_more`` that says more after an empty
    page is a truncated read — both raise :class:`connectors.http.TruncatedRead`, never look done.
    Cursor paging starts without a cursor and follows ``next_cursor`` until it is empty (or
    ``end_cursor``) or ``has_more`` is false; a cursor that repeats is a truncated read too.
    """

    def __init__(self, fieldmap: FieldMap, shop: ShopConfig, *, client: Any, limiter: Any = None,
                 policy: Any = None) -> None:
        if fieldmap.source is None:
            raise ValueError("this mapping has no [source] table")
        self.map = fieldmap
        self.spec = fieldmap.source
        self.shop = shop
        self.channel = shop.channel
        self.shop_code = shop.code
        self.client = client
        self.limiter = limiter
        self.policy = policy

    def _url(self) -> str:
        if self.spec.path.startswith(("http://", "https://")):
            return self.spec.path
        return self.shop.base_url.rstrip("/") + "/" + self.spec.path.lstrip("/")

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        spec = self.spec
        if not spec.auth_header and not spec.auth_param:
            return {}, {}
        secret = self.shop.secret(spec.auth_credential)  # read from the environment now, never kept
        if spec.auth_header:
            return {spec.auth_header: spec.auth_prefix + secret}, {}
        return {}, {spec.auth_param: secret}

    async def _call(self, params: dict[str, Any]) -> Any:
        from connectors.http import DEFAULT_POLICY, PermanentError, request_json

        headers, auth_params = self._auth()
        merged = {**self.spec.params, **params, **auth_params}
        check: Callable[[Any], None] | None = None
        if self.spec.ok:
            ok_path, ok_value, message_path = self.spec.ok, self.spec.ok_value, self.spec.message

            def check(body: Any) -> None:
                value = get_path(body, ok_path)
                if value != ok_value:
                    message = get_path(body, message_path) if message_path else None
                    raise PermanentError(
                        f"{self.channel}:{self.shop_code} answered {ok_path}={_show(value)}"
                        + (f": {_show(message, 200)}" if message is not _MISSING and message else ""),
                        code=None if value is _MISSING else str(value),
                    )

        kwargs: dict[str, Any] = {"headers": headers, "limiter": self.limiter, "policy": self.policy or DEFAULT_POLICY,
                                  "check": check}
        if self.spec.method == "GET":
            kwargs["params"] = merged
        else:
            kwargs["json_body"] = merged
        return await request_json(self.client, self.spec.method, self._url(), **kwargs)

    async def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every raw order modified in ``window``, page by page; raises on a truncated read."""
        from connectors.http import TruncatedRead

        spec = self.spec
        fmt = spec.window_format or self.map.time_format
        base = {spec.window_start: format_time(window.start, fmt, self.map.zone),
                spec.window_end: format_time(window.end, fmt, self.map.zone)}
        seen = 0
        cursor: Any = None
        cursors: set[str] = set()
        page = spec.first_page
        for _ in range(spec.max_pages):
            params = dict(base)
            params[spec.size_param] = spec.page_size
            if spec.paging == "page":
                params[spec.page_param] = page
            elif cursor is not None:
                params[spec.cursor_param] = cursor
            body = await self._call(params)
            items = get_path(body, spec.items)
            if items is _MISSING or not isinstance(items, list):
                raise TruncatedRead(f"{self.channel}:{self.shop_code}: no order list at '{spec.items}' in the answer")
            seen += len(items)
            total = _number_at(body, spec.total)
            more = _flag_at(body, spec.has_more)
            if items:
                yield items
            if spec.paging == "page":
                short = len(items) < spec.page_size
                if more is True and not items:
                    raise TruncatedRead(f"{self.channel}:{self.shop_code}: page {page} is empty but has_more says more")
                done = (more is False) or (more is None and short)
                if done:
                    if total is not None and seen < total:
                        raise TruncatedRead(
                            f"{self.channel}:{self.shop_code}: read {seen} orders but the answer says {total}")
                    return
                page += 1
            else:
                next_cursor = get_path(body, spec.next_cursor or "")
                finished = _empty(next_cursor) or (spec.end_cursor is not None and str(next_cursor) == spec.end_cursor)
                if more is False or (more is None and finished):
                    return
                if finished:
                    raise TruncatedRead(f"{self.channel}:{self.shop_code}: has_more but no next cursor")
                key = str(next_cursor)
                if key in cursors:
                    raise TruncatedRead(f"{self.channel}:{self.shop_code}: the cursor repeated ({_show(key)})")
                cursors.add(key)
                cursor = next_cursor
        raise TruncatedRead(f"{self.channel}:{self.shop_code}: more than {spec.max_pages} pages in one window")


def _number_at(body: Any, path: str | None) -> int | None:
    if not path:
        return None
    value = get_path(body, path)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _flag_at(body: Any, path: str | None) -> bool | None:
    if not path:
        return None
    value = get_path(body, path)
    if value is _MISSING or value is None:
        return None
    try:
        return _boolean(value)
    except _Bad:
        return None
