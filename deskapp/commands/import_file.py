"""``deskapp import FILE --channel NAME [--shop CODE] [--mapping FILE] [--yes]``.

Reads and maps the whole file first and shows a preview — the first orders as they will be
ingested, how many are fine and how many are not, and each problem with its row numbers — then
ingests on confirmation (``--yes`` skips the question; without a terminal and without ``--yes``
nothing is written). Progress goes to stderr on big files. A file that cannot be read at all is
one clear line, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable

from db.sanitize import clean_text
from deskapp.settings import Settings

PREVIEW_ORDERS = 5
PREVIEW_PROBLEMS = 20
_CHANNEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

_WORDS = {
    "zh": {
        "bad_channel": "渠道代码「{channel}」无效：只能用小写字母、数字、- 和 _",
        "reading": "读取中… {n} 行",
        "file": "文件：{path}（{kind}），{rows} 行数据 → 渠道 {channel} / 店铺 {shop}",
        "columns": "读取的列：{pairs}",
        "missing_cols": "映射文件里这些列在文件中不存在（已跳过）：{cols}",
        "counts": "可导入 {ok} 个订单；{bad} 个订单有问题（将进入隔离区，附原因）",
        "preview": "前 {n} 个订单（将按此导入）：",
        "problems": "有问题的行：",
        "row": "第 {rows} 行",
        "more": "… 另有 {n} 个问题未列出",
        "nothing": "文件里没有订单",
        "ask": "导入 {ok} 个订单{bad}？[y/N] ",
        "ask_bad": "，并把 {n} 个问题订单放入隔离区",
        "no_tty": "未导入：需要确认（加 --yes 直接导入）",
        "cancelled": "已取消，未导入",
        "writing": "导入中… {done}/{total}",
        "done": "完成：新增 {inserted}，更新 {updated}，未变 {unchanged}，隔离 {quarantined}",
        "stale": "（{n} 个订单比库中的旧，已跳过）",
        "col.no": "订单号", "col.status": "状态", "col.receiver": "收货人", "col.phone": "手机",
        "col.address": "地址", "col.lines": "商品", "col.amount": "金额",
    },
    "en": {
        "bad_channel": "invalid channel code '{channel}': use lower-case letters, digits, - and _",
        "reading": "reading… {n} rows",
        "file": "file: {path} ({kind}), {rows} data rows → channel {channel} / shop {shop}",
        "columns": "columns read: {pairs}",
        "missing_cols": "columns the mapping names but the file lacks (skipped): {cols}",
        "counts": "{ok} orders can be imported; {bad} orders have problems (they go to quarantine with the reason)",
        "preview": "first {n} orders (as they will be imported):",
        "problems": "rows with problems:",
        "row": "row {rows}",
        "more": "… and {n} more problems",
        "nothing": "no orders in the file",
        "ask": "import {ok} orders{bad}? [y/N] ",
        "ask_bad": " and quarantine {n} with problems",
        "no_tty": "nothing imported: confirmation needed (add --yes to import without asking)",
        "cancelled": "cancelled; nothing imported",
        "writing": "importing… {done}/{total}",
        "done": "done: {inserted} new, {updated} updated, {unchanged} unchanged, {quarantined} quarantined",
        "stale": " ({n} orders older than the stored ones were skipped)",
        "col.no": "order no.", "col.status": "status", "col.receiver": "receiver", "col.phone": "phone",
        "col.address": "address", "col.lines": "items", "col.amount": "amount",
    },
}


def words(key: str, **values: object) -> str:
    """A CLI message in the interface language."""
    from widgets.i18n import language

    return _WORDS.get(language(), _WORDS["zh"])[key].format(**values)


def _progress(key: str) -> Callable[..., None]:
    """A stderr progress line, redrawn at most ~5 times a second, only on a terminal."""
    last = [0.0]
    live = sys.stderr.isatty()

    def show(*counts: int) -> None:
        now = time.monotonic()
        if not live or now - last[0] < 0.2:
            return
        last[0] = now
        values = {"n": counts[0]} if len(counts) == 1 else {"done": counts[0], "total": counts[1]}
        print("\r" + words(key, **values), end="", file=sys.stderr, flush=True)

    return show


def _end_progress() -> None:
    if sys.stderr.isatty():
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)


async def run_import_command(args: argparse.Namespace, settings: Settings) -> int:
    """Preview, confirm, ingest. Exit 0 when imported, 1 when not (bad file, nothing to do, declined)."""
    from connectors.importer import ImportFileError, plan_import
    from widgets.i18n import language

    if not _CHANNEL.match(args.channel):
        print("deskapp: " + words("bad_channel", channel=clean_text(args.channel)), file=sys.stderr)
        return 1
    status_overrides = after_sale_overrides = None
    if args.config:
        from connectors.config import ConfigError, load

        try:
            channel = load(args.config, require_env=False).channel(args.channel)
        except ConfigError as error:
            print("deskapp: " + clean_text(error.problems[0].text(language())), file=sys.stderr)
            return 1
        if channel is not None:
            status_overrides, after_sale_overrides = channel.status_map, channel.after_sale_map
    try:
        plan = plan_import(args.file, channel=args.channel, shop_code=args.shop, mapping=args.mapping,
                           status_overrides=status_overrides, after_sale_overrides=after_sale_overrides,
                           progress=_progress("reading"))
    except ImportFileError as error:
        _end_progress()
        print("deskapp: " + clean_text(error.text(language())), file=sys.stderr)
        return 1
    _end_progress()
    _print_preview(plan)
    if not plan.orders and not plan.problems:
        print(words("nothing"), file=sys.stderr)
        return 1
    if not args.yes and not _confirm(plan):
        return 1
    return await _ingest(plan, settings)


def _confirm(plan) -> bool:  # noqa: ANN001
    if not sys.stdin.isatty():
        print(words("no_tty"), file=sys.stderr)
        return False
    bad = words("ask_bad", n=len(plan.problems)) if plan.problems else ""
    try:
        answer = input(words("ask", ok=len(plan.orders), bad=bad))
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes", "是", "好"):
        print(words("cancelled"), file=sys.stderr)
        return False
    return True


async def _ingest(plan, settings: Settings) -> int:  # noqa: ANN001
    from connectors.importer import run_import
    from db.codes import ActorKind
    from db.store import Store
    from db.views import Actor
    from deskapp.services.auth import Refusal, bootstrap_text, resolve_operator
    from widgets.i18n import language

    store = await Store.open(settings.db)
    try:
        # Only an operator of this database imports into it (the first user of an empty one
        # becomes its admin): an import never adds an operator by itself.
        who = await resolve_operator(store, settings.operator)
        if isinstance(who, Refusal):
            print(f"deskapp: {who.text(language())}", file=sys.stderr)
            return 2
        if who.new_admin:
            print(bootstrap_text(who.id, language()), file=sys.stderr)
        result = await run_import(store, plan, actor=Actor(ActorKind.OPERATOR, settings.operator),
                                  progress=_progress("writing"))
    finally:
        await store.close()
    _end_progress()
    line = words("done", inserted=result.inserted, updated=result.updated, unchanged=result.unchanged,
                 quarantined=result.quarantined)
    if result.stale:
        line += words("stale", n=result.stale)
    print(line)
    return 0


def _print_preview(plan) -> None:  # noqa: ANN001
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from db.privacy import mask_address, mask_name, mask_phone
    from widgets.format import money, status_label
    from widgets.i18n import language

    console = Console(highlight=False)
    say = lambda text: console.print(Text(clean_text(text)), soft_wrap=True)  # noqa: E731 - plain text, never markup
    say(words("file", path=plan.path, kind=plan.kind, rows=plan.rows, channel=plan.channel, shop=plan.shop_code))
    say(words("columns", pairs=", ".join(f"{field}←{column}" for field, column in plan.used.items())))
    if plan.unused_mapped:
        say(words("missing_cols", cols=", ".join(plan.unused_mapped)))
    say(words("counts", ok=len(plan.orders), bad=len(plan.problems)))
    if plan.orders:
        say(words("preview", n=min(PREVIEW_ORDERS, len(plan.orders))))
        table = Table(box=None, header_style="bold", pad_edge=False)
        for key in ("no", "status", "receiver", "phone", "address", "lines", "amount"):
            table.add_column(words(f"col.{key}"), overflow="fold", justify="right" if key == "amount" else "left")
        for order in plan.orders[:PREVIEW_ORDERS]:
            items = "; ".join(f"{line.sku}×{line.quantity}" for line in order.lines[:3])
            if len(order.lines) > 3:
                items += f" +{len(order.lines) - 3}"
            # masked as everywhere else (db.privacy): enough to see each column landed in its field
            detail = mask_address(order.province, order.city, order.district, order.address_detail)
            address = order.province + order.city + order.district + detail
            table.add_row(*(Text(clean_text(v)) for v in (
                order.channel_order_id, status_label(order.status), mask_name(order.receiver_name),
                mask_phone(order.receiver_phone), address[:40], items, money(order.paid_fen),
            )))
        console.print(table)
    if plan.problems:
        say(words("problems"))
        for problem in plan.problems[:PREVIEW_PROBLEMS]:
            rows = ",".join(str(r) for r in problem.rows[:6]) + ("…" if len(problem.rows) > 6 else "")
            say(f"  {words('row', rows=rows)}: {problem.text(language())}")
        if len(plan.problems) > PREVIEW_PROBLEMS:
            say(words("more", n=len(plan.problems) - PREVIEW_PROBLEMS))
