"""Exporting orders to a spreadsheet: CSV (UTF-8 with BOM) or Excel (.xlsx), masked by default.

:func:`export_orders` checks the operator may export (``export``; unmasked customer data needs
``export_revealed`` and a reason — ``db.roles``), reads the orders a filter selects in chunks
(``db.exports``: 100,000 orders are never in memory at once), writes them to a file beside the
target that replaces it only when complete, and puts one ``export`` record on the access log: the
filter, how many rows, the file, masked or not.

Spreadsheet formula injection is neutralised (OWASP "CSV injection"): a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab, a carriage return or a full-width ``＝＋－＠`` gets a leading
``'``, so a customer named ``=HYPERLINK(…)`` stays text in Excel and WPS. Amounts are written as
numbers and stay numbers (a refund's negative amount too). Excel files are written with
``xlsxwriter`` in constant-memory mode, every text with ``write_string`` (never parsed as a formula).
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from db import exports
from db.access import log_access
from db.codes import Status
from db.lazy import full, read
from db.roles import permit
from db.views import Actor
from widgets.format import CHINA, aftersale_label, channel_label, status_label
from widgets.i18n import tr

__all__ = ["COLUMNS", "ExportError", "ExportRequest", "ExportResult", "export_orders", "neutralise", "parse_day"]

#: Characters that make a spreadsheet cell a formula (or a DDE call) when they start it.
FORMULA_TRIGGERS = frozenset("=+-@\t\r＝＋－＠")
#: Column keys, in file order (headers: ``exp.col.<key>``).
COLUMNS = (
    "order_no", "channel", "shop", "status", "after_sale", "created_at", "paid_at", "total", "paid", "post_fee",
    "discount", "receiver", "phone", "province", "city", "district", "address", "items", "waybills",
    "buyer_note", "seller_memo", "hold_reason", "tags",
)
#: From this many orders on, a progress line goes to stderr.
PROGRESS_FROM = 5000
#: Excel's limits: rows per sheet (the header is one) and characters per cell.
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL = 32_767
FORMATS = (".csv", ".xlsx")

Value = str | Decimal | datetime | None


class ExportError(Exception):
    """Why an export cannot run, as one plain line in the current language."""


@dataclass(frozen=True)
class ExportRequest:
    """What to export and where. ``since``/``until``: China days, both included."""

    out: Path
    query: str | None = None
    status: str | None = None
    channel: str | None = None
    since: date | None = None
    until: date | None = None
    reveal: bool = False
    reason: str = ""

    def filters(self) -> dict:
        """The filter as the access log records it."""
        found = {k: v for k, v in asdict(self).items() if k in ("query", "status", "channel") and v}
        for key in ("since", "until"):
            value = getattr(self, key)
            if value is not None:
                found[key] = value.isoformat()
        return found


@dataclass(frozen=True)
class ExportResult:
    """A finished export: rows written, the file, masked or not, and its access-log record."""

    rows: int
    path: Path
    revealed: bool
    log_id: int


def parse_day(text: str | None) -> date | None:
    """``YYYY-MM-DD`` → a date (None for none); :class:`ExportError` otherwise."""
    if text is None or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ExportError(tr("exp.bad_date", value=text.strip())) from None


def neutralise(value: str) -> str:
    """Text a spreadsheet will never run as a formula: ``'`` before a leading ``= + - @``, tab, CR
    (and their full-width forms)."""
    return "'" + value if value and value[0] in FORMULA_TRIGGERS else value


async def export_orders(store, request: ExportRequest, actor: Actor, *,
                        progress: Callable[[int, int], None] | None = None,
                        at: datetime | None = None) -> ExportResult:
    """Check, read, write and log one export; see the module docstring.

    Raises :class:`ExportError` (bad input, unwritable file) or ``db.roles.Refused`` (the refusal is
    on the access log). ``progress(done, total)`` is called after each chunk.
    """
    out = request.out
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(tr("exp.bad_format", name=out.name))
    reason = request.reason.strip()
    if request.reveal and not reason:
        raise ExportError(tr("exp.reason_needed"))
    if request.status and request.status not in {s.value for s in Status}:
        raise ExportError(tr("exp.bad_status", value=request.status,
                             known=" ".join(s.value for s in Status)))
    if request.since and request.until and request.since > request.until:
        raise ExportError(tr("exp.bad_range"))
    _check_writable(out)
    writer_store = await full(store)
    async with writer_store.write() as conn:
        refused = await permit(conn, actor, "export", at=at)
        if refused is None and request.reveal:
            refused = await permit(conn, actor, "export_revealed", at=at)
    if refused is not None:
        raise refused

    sqlite = writer_store.dialect == "sqlite"
    where = exports.ExportFilter(request.status, request.channel, _day_start(request.since),
                                 _day_start(request.until + timedelta(days=1)) if request.until else None)
    ids = None
    if request.query and request.query.strip():
        ids = await read(store, exports.matching_ids, request.query, writer_store.dialect)
    total = await read(store, exports.count, where, sqlite, ids)
    if suffix == ".xlsx" and total >= XLSX_MAX_ROWS:
        raise ExportError(tr("exp.too_many_rows", n=total))

    rows = _rows(store, where, sqlite, ids, request.reveal)
    written = await _write(out, suffix, rows, total, progress)
    log_id = await log_access(
        store, actor.id, "export", reason=reason, at=at,
        detail={"filter": request.filters(), "rows": written, "file": str(out.resolve()), "format": suffix[1:],
                "revealed": request.reveal},
    )
    return ExportResult(written, out, request.reveal, log_id)


def _day_start(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), CHINA).astimezone(UTC)


def _check_writable(out: Path) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise ExportError(tr("exp.unwritable", path=str(out), why=tr("exp.is_dir")))
    if not folder.is_dir():
        raise ExportError(tr("exp.unwritable", path=str(out), why=tr("exp.no_folder")))
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ExportError(tr("exp.unwritable", path=str(out), why=tr("exp.no_permission")))


async def _rows(store, where: exports.ExportFilter, sqlite: bool, ids: list[int] | None,
                reveal: bool):
    """Chunks of file rows, read one chunk per snapshot."""
    if ids is not None:
        for start in range(0, len(ids), exports.CHUNK):
            found = await read(store, _chunk_of_ids, where, sqlite, ids[start:start + exports.CHUNK], reveal)
            if found:
                yield [_values(r) for r in found]
        return
    after = 0
    while True:
        found = await read(store, _chunk_after, where, sqlite, after, reveal)
        if not found:
            return
        after = found[-1].id
        yield [_values(r) for r in found]


def _chunk_after(q, where, sqlite, after, reveal):
    return exports.chunk(q, where, sqlite, after=after, reveal=reveal)


def _chunk_of_ids(q, where, sqlite, ids, reveal):
    return exports.chunk(q, where, sqlite, ids=ids, reveal=reveal)


def _yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def _china(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(CHINA).replace(tzinfo=None)


def _values(r: exports.ExportRow) -> list[Value]:
    """One order as the file's cells, in :data:`COLUMNS` order (text not yet neutralised)."""
    items = "；".join(f"{sku}×{qty}" + (f" {title}" if title else "") for sku, title, qty in r.lines)
    waybills = "；".join(" ".join(p for p in (carrier, waybill) if p) for carrier, waybill in r.parcels if waybill)
    return [
        r.order_no, channel_label(r.channel), r.shop, status_label(r.status), aftersale_label(r.after_sale),
        _china(r.created_at), _china(r.paid_at), _yuan(r.total_fen), _yuan(r.paid_fen), _yuan(r.post_fee_fen),
        _yuan(r.discount_fen), r.receiver_name, r.receiver_phone, r.province, r.city, r.district, r.address_detail,
        items, waybills, r.buyer_note, r.seller_memo, r.hold_reason, " ".join(r.tags),
    ]


async def _write(out: Path, suffix: str, chunks, total: int,
                 progress: Callable[[int, int], None] | None) -> int:
    """Write every chunk to a temporary file beside ``out``, then move it into place."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(handle)
    temp = Path(temp_name)
    written = 0
    try:
        sink = _CsvSink(temp) if suffix == ".csv" else _XlsxSink(temp)
        try:
            sink.row([tr(f"exp.col.{key}") for key in COLUMNS], header=True)
            async for rows in chunks:
                for values in rows:
                    sink.row(values)
                written += len(rows)
                if progress is not None:
                    progress(written, total)
        finally:
            sink.close()
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return written


class _CsvSink:
    """UTF-8 with a byte-order mark (Excel on Chinese Windows reads it right), CRLF rows, text quoted."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._file, quoting=csv.QUOTE_NONNUMERIC)

    def row(self, values: list[Value], *, header: bool = False) -> None:
        self._writer.writerow([_csv_cell(v) for v in values])

    def close(self) -> None:
        self._file.close()


def _csv_cell(value: Value) -> str | Decimal:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return value  # a number: written bare, never neutralised
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return neutralise(value)


class _XlsxSink:
    """One sheet, written row by row in constant-memory mode; text as strings, amounts as numbers."""

    def __init__(self, path: Path) -> None:
        import xlsxwriter

        self._book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                                     "strings_to_urls": False, "strings_to_numbers": False})
        self._sheet = self._book.add_worksheet(tr("exp.sheet"))
        self._bold = self._book.add_format({"bold": True})
        self._money = self._book.add_format({"num_format": "0.00"})
        self._time = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        for c, key in enumerate(COLUMNS):
            self._sheet.set_column(c, c, _WIDTHS.get(key, 12))
        self._sheet.freeze_panes(1, 0)
        self._row = 0

    def row(self, values: list[Value], *, header: bool = False) -> None:
        sheet, r = self._sheet, self._row
        for c, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, Decimal):
                sheet.write_number(r, c, float(value), self._money)
            elif isinstance(value, datetime):
                sheet.write_datetime(r, c, value, self._time)
            else:
                sheet.write_string(r, c, neutralise(value)[:XLSX_MAX_CELL], self._bold if header else None)
        self._row += 1

    def close(self) -> None:
        self._book.close()


_WIDTHS = {"order_no": 22, "created_at": 19, "paid_at": 19, "address": 30, "items": 30, "waybills": 24,
           "buyer_note": 30, "seller_memo": 30, "hold_reason": 30, "phone": 16}
