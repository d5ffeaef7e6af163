"""Import orders from a CSV or Excel file: read, map, preview, then ingest on confirmation.

``plan_import`` reads the whole file (CSV in UTF-8, UTF-8 with BOM or GB18030 — the superset of
GBK that Chinese Excel writes; Excel ``.xlsx``/``.xlsm``/``.xls``/``.ods`` through python-calamine),
maps its columns with the same machinery as the generic adapter (``connectors.generic``) and
returns an :class:`ImportPlan`: the orders as they will be ingested, and every row that cannot be,
with its row number and the reason. Nothing is written. ``run_import`` then hands the plan to
``db.ingest.ingest`` in batches: valid orders are upserted idempotently (importing the same file
again changes nothing), invalid rows go to the quarantine with their reason, and the operator is
the author of every timeline event.

Columns are found by header name. Without a mapping file, common Chinese export headers are
recognised (:data:`DEFAULT_COLUMNS`: 订单号, 收货人, 手机, 省, 市, 区, 详细地址, 商品编码, 数量,
单价, 实付金额, 订单状态, 付款时间 …) and common status words are understood
(:data:`DEFAULT_STATUS`). One row per order line is the usual export shape: rows with the same
order number are one order; an order-level value may be left empty on its later rows, but two
different values (two receivers for one order) make the order invalid rather than a guess.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from connectors.base import Quarantine
from connectors.generic import (
    ORDER_FIELDS,
    ROWS_KEY,
    FieldError,
    FieldMap,
    FieldSpec,
    MappedAdapter,
    _Bad,
    _identifier,
    _show,
    load_mapping,
)
from db.sanitize import clean_text
from db.store import NewOrder

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
BATCH = 500  # orders per ingest transaction

#: Header names recognised without a mapping file, per canonical field (first present wins).
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "order_id": ("订单号", "订单编号", "订单ID", "主订单编号", "平台订单号", "平台单号", "外部订单号", "order_id"),
    "created_at": ("下单时间", "创建时间", "订单创建时间", "付款时间", "支付时间"),
    "paid_at": ("付款时间", "支付时间", "订单付款时间"),
    "modified_at": ("修改时间", "更新时间", "订单修改时间"),
    "status": ("订单状态", "状态"),
    "after_sale": ("售后状态", "退款状态"),
    "total": ("订单金额", "总金额", "应付金额", "商品总价"),
    "paid": ("实付金额", "买家实付", "买家实际支付金额", "实收金额", "支付金额"),
    "post_fee": ("运费", "邮费"),
    "discount": ("优惠金额", "优惠", "折扣金额"),
    "buyer_note": ("买家留言", "买家备注", "留言"),
    "seller_memo": ("卖家备注", "商家备注", "备注"),
    "receiver_name": ("收货人", "收货人姓名", "收件人", "联系人"),
    "receiver_phone": ("手机", "手机号", "收货人手机", "联系手机", "联系电话", "收货人电话", "电话"),
    "province": ("省", "省份", "收货省份"),
    "city": ("市", "城市", "收货城市"),
    "district": ("区", "区县", "县区", "收货区县"),
    "address_detail": ("详细地址", "收货地址", "地址"),
    "waybill": ("运单号", "快递单号", "物流单号"),
    "carrier": ("快递公司", "物流公司"),
    "shop_name": ("店铺", "店铺名称"),
}
DEFAULT_LINE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sku": ("商品编码", "商家编码", "SKU编码", "规格编码", "货品编码", "sku"),
    "title": ("商品名称", "宝贝标题", "商品标题", "货品名称"),
    "quantity": ("数量", "购买数量", "商品数量"),
    "price": ("单价", "商品单价", "价格"),
    "line_id": ("子订单号", "子订单编号"),
}
#: Status words common in Chinese exports → standard status.
DEFAULT_STATUS: dict[str, str] = {
    "待付款": "pending_payment", "等待买家付款": "pending_payment", "未付款": "pending_payment",
    "已付款": "paid", "待发货": "paid", "买家已付款": "paid", "等待卖家发货": "paid", "已支付": "paid",
    "待审核": "review", "审核中": "review",
    "异常": "hold", "挂起": "hold",
    "配货中": "allocating", "备货中": "allocating",
    "已发货": "shipped", "卖家已发货": "shipped", "等待买家确认收货": "shipped", "部分发货": "shipped",
    "运输中": "in_transit",
    "已签收": "delivered",
    "交易成功": "completed", "已完成": "completed", "交易完成": "completed", "已收货": "completed",
    "交易关闭": "cancelled", "已关闭": "cancelled", "已取消": "cancelled", "交易取消": "cancelled",
}
DEFAULT_AFTER_SALE: dict[str, str] = {
    "无": "none", "无售后": "none", "没有申请退款": "none",
    "退款申请中": "refund_requested", "申请退款": "refund_requested", "买家已经申请退款": "refund_requested",
    "退款中": "refunding",
    "退款成功": "refunded", "已退款": "refunded",
    "退货申请中": "return_requested", "退货中": "returning", "退货退款成功": "returned", "已退货": "returned",
    "换货中": "exchanging",
    "退款关闭": "rejected", "售后关闭": "rejected", "卖家拒绝退款": "rejected",
}


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, wrong type, a required column missing).

    ``zh`` / ``en`` say why in one plain line; no traceback ever reaches the person.
    """

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en

    def text(self, language: str = "zh") -> str:
        return self.en if language == "en" else self.zh


@dataclass(frozen=True)
class RowProblem:
    """An order that cannot be ingested: its file rows, its order id if known, and why."""

    rows: tuple[int, ...]  # row numbers as a spreadsheet shows them (the header is row 1)
    order_id: str | None
    reason: str  # Chinese
    reason_en: str
    code: str
    payload: Any  # the row(s) as read, for the quarantine

    def text(self, language: str = "zh") -> str:
        return self.reason_en if language == "en" else self.reason


@dataclass
class ImportPlan:
    """What an import would do: nothing is written until :func:`run_import`."""

    path: Path
    channel: str
    shop_code: str
    kind: str  # "csv (utf-8)", "csv (gb18030)", "xlsx" …
    columns: list[str]  # the file's headers
    used: dict[str, str]  # canonical field → the column it is read from
    unused_mapped: list[str]  # columns a mapping file names that the file lacks (optional fields)
    rows: int = 0
    orders: list[NewOrder] = field(default_factory=list)
    order_rows: list[tuple[int, ...]] = field(default_factory=list)  # file rows of each order
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def connector(self) -> str:
        """The name quarantined rows are kept under."""
        return f"import:{self.channel}:{self.shop_code}"


@dataclass
class ImportResult:
    """What :func:`run_import` did (counts from ``db.ingest``)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    quarantined: int = 0


# -- reading files ---------------------------------------------------------------------------------


def default_fieldmap() -> FieldMap:
    """The mapping used without a mapping file: common Chinese export headers and status words."""
    fields = {
        name: FieldSpec(name=name, kind=ORDER_FIELDS[name], paths=paths,
                        required=name in ("order_id", "status", "created_at"))
        for name, paths in DEFAULT_COLUMNS.items()
    }
    from connectors.generic import LINE_FIELDS

    lines = {name: FieldSpec(name=name, kind=LINE_FIELDS[name], paths=paths, required=name == "sku")
             for name, paths in DEFAULT_LINE_COLUMNS.items()}
    return FieldMap(fields=fields, line_fields=lines, status=DEFAULT_STATUS, after_sale=DEFAULT_AFTER_SALE, flat=True)


def read_rows(path: Path) -> tuple[str, list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """(kind, headers, rows) of a CSV or spreadsheet; each row is (row number, {header: value}).

    Raises :class:`ImportFileError` for a file that cannot be read as a table.
    """
    suffix = path.suffix.lower()
    if not path.exists():
        raise ImportFileError(f"找不到文件：{path}", f"file not found: {path}")
    if not path.is_file():
        raise ImportFileError(f"不是文件：{path}", f"not a file: {path}")
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(path)
    if suffix in CSV_SUFFIXES:
        return _read_csv(path)
    raise ImportFileError(
        f"不支持的文件类型「{suffix or '无扩展名'}」：请导入 .csv 或 .xlsx 文件",
        f"unsupported file type '{suffix or 'no extension'}': import a .csv or .xlsx file",
    )


def _read_csv(path: Path) -> tuple[str, list[str], Iterator[tuple[int, dict[str, Any]]]]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ImportFileError(f"无法读取文件（{error.strerror}）", f"cannot read the file ({error.strerror})") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly every byte string
        raise ImportFileError("无法识别文件编码（支持 UTF-8 和 GBK/GB18030）",
                              "cannot tell the file's encoding (UTF-8 and GBK/GB18030 are supported)")
    if "\x00" in text[:4096]:
        raise ImportFileError("这不像是 CSV 文本文件（也许是改了扩展名的 Excel 文件？）",
                              "this does not look like a CSV text file (an Excel file renamed?)")
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header_row = next(reader, None)
    except csv.Error as error:
        raise ImportFileError(f"CSV 格式错误：{error}", f"malformed CSV: {error}") from None
    if not header_row or not any(cell.strip() for cell in header_row):
        raise ImportFileError("文件是空的，或第一行没有列名", "the file is empty or its first row has no column names")
    headers = _headers(header_row)
    kind = "csv (utf-8)" if encoding == "utf-8-sig" else "csv (gb18030/gbk)"

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        number = 1
        try:
            for cells in reader:
                number += 1
                if not any(cell.strip() for cell in cells):
                    continue
                yield number, {h: _csv_cell(c) for h, c in zip(headers, cells, strict=False) if h}
        except csv.Error as error:
            raise ImportFileError(f"CSV 第 {number} 行格式错误：{error}", f"malformed CSV at row {number}: {error}") from None

    return kind, [h for h in headers if h], rows()


def _csv_cell(cell: str) -> str:
    """A CSV cell as text, without the ``="…"`` / leading-tab wrappers exports use to keep long
    numbers (order ids, phones) from turning into 1.23E+17 in Excel."""
    value = cell.strip()
    if len(value) >= 3 and value.startswith('="') and value.endswith('"'):
        value = value[2:-1]
    return value.lstrip("\t'").strip() if value.startswith(("\t", "'")) else value


def _headers(cells: list[Any]) -> list[str]:
    headers: list[str] = []
    seen: set[str] = set()
    for cell in cells:
        name = clean_text(str(cell) if cell is not None else "").strip().lstrip("\ufeff")
        if name in seen:
            name = ""  # a repeated header: the first column of that name is the one read
        seen.add(name)
        headers.append(name)
    return headers


def _read_excel(path: Path) -> tuple[str, list[str], Iterator[tuple[int, dict[str, Any]]]]:
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:  # pragma: no cover - a main dependency
        raise ImportFileError("读取 Excel 需要 python-calamine", "reading Excel needs python-calamine") from None
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
        values = iter(sheet.iter_rows())
        start_row = (sheet.start or (0, 0))[0]
    except Exception as error:  # noqa: BLE001 - calamine raises its own error kinds; all mean "cannot read"
        raise ImportFileError(f"无法读取 Excel 文件（{_show(str(error), 80)}）",
                              f"cannot read the Excel file ({_show(str(error), 80)})") from None
    number = start_row
    header_row = None
    for cells in values:
        number += 1
        if any(_present(c) for c in cells):
            header_row = cells
            break
    if header_row is None:
        raise ImportFileError("工作表是空的", "the worksheet is empty")
    headers = _headers(header_row)
    header_number = number

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        row_number = header_number
        for cells in values:
            row_number += 1
            if not any(_present(c) for c in cells):
                continue
            yield row_number, {h: _excel_cell(c) for h, c in zip(headers, cells, strict=False) if h}

    return path.suffix.lower().lstrip("."), [h for h in headers if h], rows()


def _present(cell: Any) -> bool:
    return cell is not None and not (isinstance(cell, str) and not cell.strip())


def _excel_cell(cell: Any) -> Any:
    """A spreadsheet cell as the mapping expects it: text stripped, whole floats kept as numbers
    (the generic adapter checks they are exact), dates and times as ``datetime``."""
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, float) and math.isfinite(cell) and cell.is_integer() and abs(cell) < 2**53:
        return int(cell)
    if isinstance(cell, time):
        return cell.isoformat()
    if isinstance(cell, date) and not isinstance(cell, datetime):
        return datetime(cell.year, cell.month, cell.day)
    return cell


# -- planning --------------------------------------------------------------------------------------


def plan_import(
    path: str | Path,
    *,
    channel: str,
    shop_code: str = "default",
    mapping: str | Path | FieldMap | None = None,
    status_overrides: Mapping[str, str] | None = None,
    after_sale_overrides: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportPlan:
    """Read and map a file without writing anything (see the module docstring)."""
    path = Path(path)
    if mapping is None:
        fieldmap = default_fieldmap()
    elif isinstance(mapping, FieldMap):
        fieldmap = replace(mapping, flat=True)
    else:
        from connectors.config import ConfigError

        try:
            fieldmap = replace(load_mapping(mapping), flat=True)
        except ConfigError as error:
            first = error.problems[0]
            raise ImportFileError(f"映射文件有问题：{first.text('zh')}", f"the mapping file has a problem: {first.text('en')}") from None
    kind, headers, rows = read_rows(path)
    fieldmap, used, unused = _resolve(fieldmap, headers, explicit=mapping is not None)
    adapter = MappedAdapter(fieldmap, channel=channel, status_overrides=status_overrides,
                            after_sale_overrides=after_sale_overrides)
    plan = ImportPlan(path=path, channel=channel, shop_code=shop_code, kind=kind, columns=headers, used=used,
                      unused_mapped=unused)
    order_columns = _order_columns(fieldmap)
    id_spec = fieldmap.fields["order_id"]
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for number, row in rows:
        plan.rows += 1
        if progress is not None and plan.rows % 1000 == 0:
            progress(plan.rows)
        value = next((row[p] for p in id_spec.paths if _present(row.get(p))), None)
        if value is None:
            plan.problems.append(_problem((number,), None, f"缺少订单号（列「{'」或「'.join(id_spec.paths)}」为空）",
                                          f"the order number is missing (column '{id_spec.paths[0]}' is empty)",
                                          "missing_field", row))
            continue
        try:
            order_id = _identifier(value)
        except _Bad as bad:
            plan.problems.append(_problem((number,), None, f"订单号 {_show(value)} 无效：{bad.zh}",
                                          f"order number {_show(value)} is invalid: {bad.en}", "invalid", row))
            continue
        groups.setdefault(order_id, []).append((number, row))
    if progress is not None:
        progress(plan.rows)
    for order_id in list(groups):
        group = groups.pop(order_id)  # rows are let go as their order is built
        numbers = tuple(n for n, _ in group)
        merged, conflict = _merge(group, order_columns)
        if conflict is not None:
            column, first, second = conflict
            plan.problems.append(_problem(
                numbers, order_id,
                f"订单 {order_id} 的多行中「{column}」不一致：{_show(first)} 与 {_show(second)}",
                f"order {order_id} has different '{column}' values on its rows: {_show(first)} and {_show(second)}",
                "conflict", [r for _, r in group]))
            continue
        merged[ROWS_KEY] = [r for _, r in group]
        try:
            order = adapter.to_order(merged, shop_code=shop_code)
        except FieldError as error:
            plan.problems.append(_problem(numbers, order_id, error.reason, error.reason_en, error.code,
                                          [r for _, r in group]))
            continue
        except Quarantine as error:
            plan.problems.append(_problem(numbers, order_id, error.reason, error.reason, error.code,
                                          [r for _, r in group]))
            continue
        plan.orders.append(order)
        plan.order_rows.append(numbers)
    return plan


def _problem(rows: tuple[int, ...], order_id: str | None, zh: str, en: str, code: str, payload: Any) -> RowProblem:
    return RowProblem(rows=rows, order_id=order_id, reason=zh, reason_en=en, code=code,
                      payload={"rows": list(rows), "data": payload})


def _resolve(fieldmap: FieldMap, headers: list[str], *, explicit: bool) -> tuple[FieldMap, dict[str, str], list[str]]:
    """Keep only the columns the file has; a required field with none is a file-level error."""
    present = set(headers)
    used: dict[str, str] = {}
    unused: list[str] = []

    def narrow(specs: Mapping[str, FieldSpec], where: str) -> dict[str, FieldSpec]:
        kept: dict[str, FieldSpec] = {}
        for name, spec in specs.items():
            paths = tuple(p for p in spec.paths if p in present)
            if not paths:
                if spec.required and spec.default is None:
                    raise ImportFileError(
                        f"文件里没有字段 {where}{spec.name} 所需的列（找的是：{'、'.join(spec.paths)}）；"
                        f"请用 --mapping 指定映射文件",
                        f"the file has no column for {where}{spec.name} (looked for: {', '.join(spec.paths)}); "
                        f"give a mapping file with --mapping",
                    )
                if explicit:
                    unused.extend(spec.paths)
                if spec.default is not None:
                    kept[name] = spec
                continue
            used[f"{where}{name}"] = paths[0]
            kept[name] = replace(spec, paths=paths)
        return kept

    fields = narrow(fieldmap.fields, "")
    line_fields: dict[str, FieldSpec] = {}
    if any(p in present for spec in fieldmap.line_fields.values() for p in spec.paths) or explicit:
        # Lines are read when the file has line columns (or a mapping file names them); a file
        # with none at all (an order-level export) imports orders without lines.
        line_fields = narrow(fieldmap.line_fields, "line.") if fieldmap.line_fields else {}
    return replace(fieldmap, fields=fields, line_fields=line_fields, flat=True), used, unused


def _order_columns(fieldmap: FieldMap) -> list[str]:
    """Columns holding order-level values (not line values): they must agree across an order's rows."""
    line_columns = {p for spec in fieldmap.line_fields.values() for p in spec.paths}
    return [p for spec in fieldmap.fields.values() for p in spec.paths if p not in line_columns]


def _merge(group: list[tuple[int, dict[str, Any]]], columns: list[str]) -> tuple[dict[str, Any], tuple | None]:
    """The order-level values of an order's rows: the first non-empty value of each column."""
    merged: dict[str, Any] = dict(group[0][1])
    for column in columns:
        value = None
        for _, row in group:
            cell = row.get(column)
            if not _present(cell):
                continue
            if value is None:
                value = cell
            elif cell != value:
                return merged, (column, value, cell)
        if value is not None:
            merged[column] = value
    return merged, None


# -- ingesting -------------------------------------------------------------------------------------


async def run_import(store, plan: ImportPlan, *, actor, progress: Callable[[int, int], None] | None = None) -> ImportResult:  # noqa: ANN001
    """Ingest a plan's orders (in batches) and quarantine its problem rows; the operator is the author."""
    from db.ingest import QuarantineItem, ingest

    total = len(plan.orders)
    result = ImportResult()
    quarantined = [
        QuarantineItem(connector=plan.connector, channel=plan.channel, shop_code=plan.shop_code,
                       payload=problem.payload, reason=problem.reason, code=problem.code,
                       external_id=problem.order_id)
        for problem in plan.problems
    ]
    done = 0
    while True:
        batch = plan.orders[done : done + BATCH]
        if not batch and not quarantined:
            break
        outcome = await ingest(store, batch, actor=actor, quarantined=quarantined)
        quarantined = []
        result.inserted += outcome.inserted
        result.updated += outcome.updated
        result.unchanged += outcome.unchanged
        result.stale += outcome.stale
        result.quarantined += outcome.quarantined
        done += len(batch)
        if progress is not None:
            progress(done, total)
        if done >= total:
            break
    return result
