"""Typed settings: command line over environment over defaults.

``DESKAPP_DB``, ``DESKAPP_OPERATOR`` and ``DESKAPP_LANG`` override the defaults; the command line
overrides those. The operator defaults to the login name, so a forced-command SSH account is its
own operator and every write has an author from the first run.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import user_data_dir, user_log_dir


def default_db_path() -> Path:
    """The database in the user's data directory (created on first run)."""
    return Path(user_data_dir("deskapp", appauthor=False)) / "deskapp.db"


def default_log_path() -> Path:
    """Where errors are logged: never to the terminal the app owns."""
    return Path(user_log_dir("deskapp", appauthor=False)) / "deskapp.log"


def login_name() -> str:
    """The OS login name (the operator when nothing else is said)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


@dataclass
class Settings:
    """Everything the app needs to start."""

    db: str = field(default_factory=lambda: os.environ.get("DESKAPP_DB") or str(default_db_path()))
    operator: str = field(default_factory=lambda: os.environ.get("DESKAPP_OPERATOR") or login_name())
    language: str = field(default_factory=lambda: os.environ.get("DESKAPP_LANG", "zh"))
    log_file: Path = field(default_factory=lambda: Path(os.environ.get("DESKAPP_LOG_FILE") or default_log_path()))
