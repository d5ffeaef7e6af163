"""``deskapp config check [--config PATH] [--escalation PATH]``: explain every problem in the connector config.

Prints one line per problem (in the interface language) and exits 1, or prints "配置无误" /
"config OK" with a one-line summary, the database the shops sync into and the token file, and
exits 0. Secret values are never printed: problems name the environment variable, not its
content, and the token file is described by its path and how many shops it holds.

When there is an escalation file (``--escalation``, ``$DESKAPP_ESCALATION``,
``./deskapp.escalation.toml`` or the user config directory's) it is checked too, robots'
environment variables included: its problems are listed the same way (exit 1), or one line says
how many levels and robots it sets up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from db.sanitize import clean_text
from deskapp.settings import Settings, default_config_path

_WORDS = {
    "zh": {"ok": "配置无误", "summary": "{channels} 个渠道，{shops} 个店铺{tracking}（{path}）",
           "tracking": "，快递100 跟踪", "problems": "配置有 {n} 个问题（{path}）：",
           "db": "数据库：{db}", "db_default": "数据库：未指定（用 --db、DESKAPP_DB 或默认数据库）",
           "tokens": "令牌文件：{path}（保存了 {n} 个店铺刷新后的令牌）",
           "esc_problems": "升级提醒配置有 {n} 个问题（{path}）：",
           "esc_ok": "升级提醒：{levels} 级，{robots} 个群机器人{breaker}（{path}）",
           "esc_breaker": "，S 级待发超过 {n} 张熔断", "esc_off": "升级提醒：已关闭（enabled = false，{path}）"},
    "en": {"ok": "config OK", "summary": "{channels} channels, {shops} shops{tracking} ({path})",
           "tracking": ", Kuaidi100 tracking", "problems": "{n} problems in the config ({path}):",
           "db": "database: {db}", "db_default": "database: not set (--db, DESKAPP_DB or the default one)",
           "tokens": "token file: {path} (rotated tokens of {n} shops kept)",
           "esc_problems": "{n} problems in the escalation file ({path}):",
           "esc_ok": "escalation: {levels} levels, {robots} group robots{breaker} ({path})",
           "esc_breaker": ", breaker over {n} S orders waiting", "esc_off": "escalation: off (enabled = false, {path})"},
}


def words(key: str, **values: object) -> str:
    """A CLI message in the interface language."""
    from widgets.i18n import language

    table = _WORDS.get(language(), _WORDS["zh"])
    return table[key].format(**values)


async def run_config_check(args: argparse.Namespace, settings: Settings) -> int:  # noqa: ARG001
    """Print the config's problems (exit 1) or that it is fine (exit 0)."""
    from connectors.config import Problem, load, read
    from connectors.tokenstore import TokenFile, TokenFileError, resolve_path
    from widgets.i18n import language

    path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    found, problems = read(path)
    saved = 0
    tokens = TokenFile(resolve_path(found.token_file if found else None))
    if found is not None and any(shop.kind == "platform" for shop in found.shops(enabled_only=False)):
        try:
            saved = len(tokens.read_all())
        except TokenFileError as error:
            problems.append(Problem("sync.token_file", error.text("zh"), error.text("en"), error.code))
    escalation_ok, escalation_line = _check_escalation(getattr(args, "escalation", None))
    if problems:
        print(words("problems", n=len(problems), path=path), file=sys.stderr)
        for problem in problems:
            print("  · " + clean_text(problem.text(language())), file=sys.stderr)
        return 1
    if not escalation_ok:
        return 1
    config = load(path)
    print(words("ok"))
    print(words("summary", channels=len(config.channels), shops=len(config.shops(enabled_only=False)),
                tracking=words("tracking") if config.kuaidi100 else "", path=path))
    print(words("db", db=clean_text(config.db)) if config.db else words("db_default"))
    print(words("tokens", path=tokens.path, n=saved))
    if escalation_line:
        print(escalation_line)
    return 0


def _check_escalation(explicit: str | None) -> tuple[bool, str]:
    """Check the escalation file if there is one: print its problems (False), or give the line
    saying what it sets up. No file: nothing to say."""
    from deskapp.services.escalation import read_config
    from deskapp.settings import find_escalation_file
    from widgets.i18n import language

    path = find_escalation_file(explicit)
    if path is None:
        return True, ""
    config, problems = read_config(path)
    if problems or config is None:
        print(words("esc_problems", n=len(problems), path=path), file=sys.stderr)
        for problem in problems:
            print("  · " + clean_text(problem.text(language())), file=sys.stderr)
        return False, ""
    if not config.enabled:
        return True, words("esc_off", path=path)
    breaker = words("esc_breaker", n=config.breaker.max_s_waiting) if config.breaker else ""
    return True, words("esc_ok", levels=len(config.levels), robots=len(config.robots), breaker=breaker, path=path)
