"""``deskapp config check [--config PATH]``: explain every problem in the connector config.

Prints one line per problem (in the interface language) and exits 1, or prints "配置无误" /
"config OK" with a one-line summary and exits 0. Secret values are never printed: problems name
the environment variable, not its content.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from db.sanitize import clean_text
from deskapp.settings import Settings

_WORDS = {
    "zh": {"ok": "配置无误", "summary": "{channels} 个渠道，{shops} 个店铺{tracking}（{path}）",
           "tracking": "，快递100 跟踪", "problems": "配置有 {n} 个问题（{path}）："},
    "en": {"ok": "config OK", "summary": "{channels} channels, {shops} shops{tracking} ({path})",
           "tracking": ", Kuaidi100 tracking", "problems": "{n} problems in the config ({path}):"},
}


def words(key: str, **values: object) -> str:
    """A CLI message in the interface language."""
    from widgets.i18n import language

    table = _WORDS.get(language(), _WORDS["zh"])
    return table[key].format(**values)


def default_config_path() -> Path:
    """``$DESKAPP_CONFIG``, else ``./deskapp.toml``, else the user config directory's deskapp.toml."""
    env = os.environ.get("DESKAPP_CONFIG")
    if env:
        return Path(env)
    here = Path("deskapp.toml")
    if here.exists():
        return here
    from platformdirs import user_config_dir

    user = Path(user_config_dir("deskapp", appauthor=False)) / "deskapp.toml"
    return user if user.exists() else here


async def run_config_check(args: argparse.Namespace, settings: Settings) -> int:  # noqa: ARG001
    """Print the config's problems (exit 1) or that it is fine (exit 0)."""
    from connectors.config import check, load
    from widgets.i18n import language

    path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    problems = check(path)
    if problems:
        print(words("problems", n=len(problems), path=path), file=sys.stderr)
        for problem in problems:
            print("  · " + clean_text(problem.text(language())), file=sys.stderr)
        return 1
    config = load(path)
    print(words("ok"))
    print(words("summary", channels=len(config.channels), shops=len(config.shops(enabled_only=False)),
                tracking=words("tracking") if config.kuaidi100 else "", path=path))
    return 0
