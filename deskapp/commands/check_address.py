"""``deskapp check-address TEXT [--phone P] [--json]``: how deskapp reads an address, and its verdict.

Prints the parse (province / city / district / detail, and the name and phone pasted with it),
the status (OK, CONFLICT, AMBIGUOUS, LEGACY, INCOMPLETE, NO_DATA), the verdict (ok / warn / block),
every problem and the suggested fix or the candidates. ``--json`` prints the same as one JSON
object: ``deskapp.services.address.check``. The text is the customer's: it is printed as plain
text, never as markup.

Exit status: 0 when the verdict is ok or warn (the address can ship once someone has looked),
1 when it is block, 2 for a usage error (no text).
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata

from db.sanitize import clean_text
from deskapp.settings import Settings

EPILOG = (
    "exit status: 0 = ok or warn, 1 = block (an address conflict or an invalid phone), 2 = usage error. "
    "Examples: deskapp check-address '浙江杭州西湖区文三路1号' --phone 0571-88888888; "
    "deskapp check-address '张三 13812345678 宁波市西湖区文三路1号' --json"
)

_WORDS = {
    "zh": {
        "province": "省份", "city": "城市", "district": "区县", "detail": "详细", "name": "姓名", "phone": "电话",
        "result": "结论", "suggestion": "建议", "candidates": "候选", "empty": "请给出要检查的地址（文本为空）",
        "OK": "正常", "CONFLICT": "冲突", "AMBIGUOUS": "有歧义", "LEGACY": "旧地名", "INCOMPLETE": "不完整",
        "NO_DATA": "无法校验", "ok": "通过", "warn": "提醒", "block": "拦截",
        "mobile": "手机", "landline": "座机", "service": "服务号码", "masked": "已脱敏", "virtual": "虚拟号",
        "encrypted": "已加密", "invalid": "无效", "empty_phone": "无",
    },
    "en": {
        "province": "province", "city": "city", "district": "district", "detail": "detail", "name": "name",
        "phone": "phone", "result": "result", "suggestion": "fix", "candidates": "candidates",
        "empty": "give the address to check (the text is empty)",
        "OK": "ok", "CONFLICT": "conflict", "AMBIGUOUS": "ambiguous", "LEGACY": "old name",
        "INCOMPLETE": "incomplete", "NO_DATA": "cannot check", "ok": "pass", "warn": "warn", "block": "block",
        "mobile": "mobile", "landline": "landline", "service": "service number", "masked": "masked",
        "virtual": "virtual", "encrypted": "encrypted", "invalid": "invalid", "empty_phone": "none",
    },
}
_MARK = {"block": "✗", "warn": "!", "info": "·"}


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``check-address`` on the ``deskapp`` parser."""
    cmd = sub.add_parser(
        "check-address", parents=[common], help="parse an address (and phone) and print the verdict",
        description="Parse a Chinese address — typed, abbreviated or pasted with name and phone — against the "
                    "current division table and say whether it can ship: OK, CONFLICT, AMBIGUOUS, LEGACY, "
                    "INCOMPLETE or NO_DATA, with the fix or the candidates.",
        epilog=EPILOG,
    )
    cmd.add_argument("text", help="the address, in quotes (a name and phone pasted with it are recognised)")
    cmd.add_argument("--phone", help="the receiver phone to check with it (default: one found in the text)")
    cmd.add_argument("--json", action="store_true", help="print one JSON object instead of the text block")
    cmd.set_defaults(handler=run_check_address)


async def run_check_address(args: argparse.Namespace, settings: Settings) -> int:
    """Print the parse and verdict; exit 0 (ok / warn), 1 (block) or 2 (no text)."""
    from deskapp.services.address import check
    from widgets.i18n import language

    words = _WORDS.get(language(), _WORDS["zh"])
    text = args.text or ""
    if not clean_text(text).strip():
        print(f"deskapp check-address: {words['empty']}", file=sys.stderr)
        return 2
    data = check(text, args.phone)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
    else:
        for line in _human(data, words):
            print(line)
    return 1 if data["verdict"] == "block" else 0


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _human(data: dict, words: dict[str, str]) -> list[str]:
    labels = ("province", "city", "district", "detail", "name", "phone", "result", "suggestion", "candidates")
    pad = max(_width(words[k]) for k in labels) + 2

    def row(key: str, value: str) -> str:
        label = words[key]
        return label + " " * (pad - _width(label)) + clean_text(value)

    lines = [row(key, data[key] or "—") for key in ("province", "city", "district", "detail")]
    if data.get("name"):
        lines.append(row("name", data["name"]))
    phone = data.get("phone")
    if phone:
        about = [words.get(phone["kind"], phone["kind"])]
        if phone["region"]:
            about.append(phone["region"])
        number = phone["number"] or phone["raw"]
        if phone["extension"]:
            number += f" 转 {phone['extension']}"
        lines.append(row("phone", f"{number}（{' · '.join(about)}）"))
    lines.append(row("result", f"{data['status']} {words[data['status']]} · {words[data['verdict']]}"))
    for problem in data["problems"]:
        lines.append(f"  {_MARK.get(problem['severity'], '·')} {clean_text(problem['message'])}")
    suggestion = data.get("suggestion")
    if suggestion:
        lines.append(row("suggestion", _place(suggestion)))
    for i, candidate in enumerate(data.get("candidates") or [], 1):
        lines.append(row("candidates", f"{i}. {_place(candidate)}") if i == 1 else " " * pad + f"{i}. {_place(candidate)}")
    return lines


def _place(path: dict[str, str]) -> str:
    city = "" if path["city"] == path["province"] else path["city"]
    return "".join((path["province"], city, path["district"]))
