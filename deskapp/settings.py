"""Typed settings: command line over environment over defaults.

``DESKAPP_DB``, ``DESKAPP_OPERATOR`` (ignored under SSH: :func:`default_operator`) and
``DESKAPP_LANG`` override the defaults; the command line overrides those. The operator defaults to the login name, so a forced-command SSH account is its
own operator and every write has an author from the first run.

The database: ``--db``, else ``DESKAPP_DB``, else ``db`` in the connector config, else the default
file (:func:`choose_db`). ``Settings.db_origin`` remembers which, so the app can tell whether it
opened the database its config syncs into (:func:`same_db`).
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


def under_ssh(environ: dict[str, str] | None = None) -> bool:
    """Whether this process runs in an SSH login (sshd sets these for the session)."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"))


def default_operator(environ: dict[str, str] | None = None) -> str:
    """Who is working: the login name; ``DESKAPP_OPERATOR`` only outside SSH.

    Under SSH the login *is* the identity sshd checked: a user can put variables into their own
    session (``~/.pam_environment`` on Debian's default PAM, ``SendEnv``), so an environment variable
    must never turn one login into another operator. ``--operator`` (fixed by the admin's
    ``ForceCommand``) still applies."""
    env = os.environ if environ is None else environ
    if under_ssh(env):
        return login_name()
    return env.get("DESKAPP_OPERATOR") or login_name()


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
    operator: str = field(default_factory=lambda: default_operator())
    language: str = field(default_factory=lambda: os.environ.get("DESKAPP_LANG", "zh"))
    log_file: Path = field(default_factory=lambda: Path(os.environ.get("DESKAPP_LOG_FILE") or default_log_path()))
    db_origin: str = field(default_factory=lambda: "env" if os.environ.get("DESKAPP_DB") else "default")
    """Where ``db`` came from: ``flag`` (--db), ``env`` (DESKAPP_DB), ``config`` (deskapp.toml) or ``default``."""
    rules: str | None = None
    """The warehouse rules file (:func:`find_rules_file`); None: the built-in defaults."""
    escalation: str | None = None
    """The escalation file (:func:`find_escalation_file`); None: no escalation."""


def shown_db(db: str) -> str:
    """A database setting as it may be printed or logged: a URL without its password."""
    if "://" not in db:
        return db
    from sqlalchemy.engine import make_url

    try:
        return make_url(db).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown without anything after the scheme
        return db.partition("://")[0] + "://…"


def choose_db(settings: Settings, config_db: str | None) -> str:
    """The database to open: ``--db``, else ``DESKAPP_DB``, else the config's ``db``, else the default.

    Sets ``settings.db`` (and ``db_origin``) and returns it.
    """
    if config_db and settings.db_origin not in ("flag", "env"):
        settings.db, settings.db_origin = config_db, "config"
    return settings.db


def same_db(a: str, b: str) -> bool:
    """Whether two database settings name the same database (files compared by their real path)."""
    if "://" in a or "://" in b:
        return a.strip() == b.strip()
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def find_config_file(name: str, variable: str, explicit: str | None = None) -> Path | None:
    """One of deskapp's files: ``explicit`` (a command-line option), else ``$variable``, else
    ``./name``, else the user config directory's ``name``, else None. A named file is returned even
    if it does not exist (yet): whoever opens it says so."""
    named = explicit or os.environ.get(variable)
    if named:
        return Path(named).expanduser()
    here = Path(name)
    if here.is_file():
        return here
    from platformdirs import user_config_dir

    user = Path(user_config_dir("deskapp", appauthor=False)) / name
    return user if user.is_file() else None


def default_config_path() -> Path:
    """The connector config: ``$DESKAPP_CONFIG``, else ``./deskapp.toml``, else the user config
    directory's, else ``./deskapp.toml`` (missing: ``deskapp config check`` says so)."""
    return find_config_file("deskapp.toml", "DESKAPP_CONFIG") or Path("deskapp.toml")


def find_rules_file(explicit: str | None = None) -> Path | None:
    """The warehouse rules file (``--rules``, ``$DESKAPP_RULES``, ``deskapp.rules.toml``: see
    :func:`find_config_file`); None: the built-in defaults, kept until a named file appears."""
    return find_config_file("deskapp.rules.toml", "DESKAPP_RULES", explicit)


def find_escalation_file(explicit: str | None = None) -> Path | None:
    """The escalation file (``--escalation``, ``$DESKAPP_ESCALATION``, ``deskapp.escalation.toml``:
    see :func:`find_config_file`); None: no escalation."""
    return find_config_file("deskapp.escalation.toml", "DESKAPP_ESCALATION", explicit)
