"""Rotated platform tokens, kept where a restarted sync finds them: one small 0600 JSON file.

Kuaishou, Pinduoduo, Taobao, Douyin, JD, Youzan and 聚水潭 hand out a new refresh token with every
refresh and the old one dies. ``deskapp.toml`` names the *first* pair by environment variable, so
without this file a sync restarted after a refresh would start from a dead refresh token and the
shop would need a person to authorise it again.

**Where.** ``$DESKAPP_TOKEN_FILE``, else ``[sync] token_file`` in ``deskapp.toml`` (relative to that
file), else ``tokens.json`` in the user's data directory (``platformdirs``, beside the default
database) — never in the database, which is copied, backed up and shared more freely.

**Which pair a shop starts with** (:func:`choose`). Every saved pair remembers a fingerprint of the
environment pair it descends from. While the environment still holds that pair, the saved one is
newer (it was rotated from it) and is used. When the environment holds another pair — someone
authorised the shop again and put the new tokens in the environment — the environment's is newer
and is used; the stale saved pair is replaced at the next refresh.

**Safety.**

* The file is created 0600 (``tempfile.mkstemp``); an existing file that the group or other users
  can read is refused, as ssh refuses such a private key (:class:`TokenFileError` says which
  ``chmod`` to run), and the shops using it do not start.
* Writes are whole: a temporary file in the same directory, fsynced, then ``os.replace`` — a reader
  sees the old file or the new one, never half of one.
* A save reads, changes and writes the file under a lock file (``filelock``), so two processes
  saving different shops at once both keep their pair (normally only the sync-lease holder
  refreshes, but two databases may sync the same shops).
* Token values never reach a ``repr``, a log line or an error message; only platform, shop, time
  and path do.

Why not a library: ``keyring`` needs a desktop secret service (D-Bus) that a headless server or an
SSH session does not have; ``keyrings.alt``'s file backends are "discouraged for general production
use" by their own maintainers; ``keyrings.cryptfile`` needs a password at every unattended start.
What is left is a file with the right mode, written atomically — the standard library does that —
and a cross-process lock, which ``filelock`` does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

#: The environment variable that names the token file (it wins over the config's ``token_file``).
ENV = "DESKAPP_TOKEN_FILE"
FILE_NAME = "tokens.json"
FORMAT = 1
#: Seconds a save waits for another process's save before giving up.
LOCK_TIMEOUT_S = 10.0


def default_path() -> Path:
    """``tokens.json`` in the user's data directory (where the default database lives)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("deskapp", appauthor=False)) / FILE_NAME


def resolve_path(configured: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The token file: ``$DESKAPP_TOKEN_FILE``, else ``configured`` (the config's), else the default."""
    value = (os.environ if environ is None else environ).get(ENV)
    if value:
        return Path(value).expanduser()
    return configured if configured is not None else default_path()


def fingerprint(access_token: str, refresh_token: str) -> str:
    """Which environment pair a saved pair descends from (a hash: the file never needs the env values)."""
    return hashlib.sha256(f"{access_token}\0{refresh_token}".encode()).hexdigest()


class TokenFileError(Exception):
    """The token file cannot be used as it is; ``zh`` / ``en`` say why (never a token value)."""

    def __init__(self, path: Path, zh: str, en: str, code: str = "token_file") -> None:
        super().__init__(f"{path}: {en}")
        self.path = path
        self.zh = zh
        self.en = en
        self.code = code

    def text(self, language: str = "zh") -> str:
        """The reason in ``language``, with the file's path."""
        return f"{self.path}: {self.en if language == 'en' else self.zh}"


@dataclass(frozen=True)
class StoredTokens:
    """One shop's saved pair (the values are kept out of ``repr``)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    saved_at: datetime
    origin: str = field(repr=False)  # fingerprint of the environment pair this one was rotated from


@dataclass(frozen=True)
class Chosen:
    """The pair a shop starts with, where it came from ("env" or "stored"), and its origin."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    origin: str = field(repr=False)
    source: str
    saved_at: datetime | None = None


def choose(stored: StoredTokens | None, access_token: str, refresh_token: str) -> Chosen:
    """The saved pair when it was rotated from this very environment pair, else the environment's."""
    origin = fingerprint(access_token, refresh_token)
    if stored is not None and stored.origin == origin:
        return Chosen(stored.access_token, stored.refresh_token, origin, "stored", stored.saved_at)
    return Chosen(access_token, refresh_token, origin, "env")


def _key(platform: str, shop: str) -> str:
    return f"{platform}:{shop}"


class TokenFile:
    """The token file at ``path``; see the module docstring. Cheap to build: nothing is read until asked."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------------

    def read_all(self) -> dict[tuple[str, str], StoredTokens]:
        """Every saved pair by (platform, shop); empty when there is no file yet.

        Raises :class:`TokenFileError` when the file is readable by others, unreadable or not a
        token file.
        """
        found = {}
        for key, stored in self._entries(self._load()).items():
            platform, _, shop = key.partition(":")
            found[platform, shop] = stored
        return found

    def get(self, platform: str, shop: str) -> StoredTokens | None:
        """One shop's saved pair, if any (raises like :meth:`read_all`)."""
        return self._entries(self._load()).get(_key(platform, shop))

    def _load(self) -> dict:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return {"format": FORMAT, "tokens": {}}
        except OSError as error:
            raise TokenFileError(self.path, f"无法读取令牌文件（{error.strerror}）",
                                 f"cannot read the token file ({error.strerror})", "unreadable") from None
        with os.fdopen(fd, "rb") as handle:
            self._check_private(os.fstat(handle.fileno()))
            raw = handle.read()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise TokenFileError(self.path, "不是有效的令牌文件（JSON 格式错误）；删除它后，各店铺从环境变量中的令牌重新开始",
                                 "not a valid token file (bad JSON); delete it and every shop starts again from "
                                 "the tokens in its environment variables", "corrupt") from None
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), dict):
            raise TokenFileError(self.path, "不是有效的令牌文件（缺少 tokens 表）",
                                 "not a valid token file (no tokens table)", "corrupt")
        return data

    def _check_private(self, info: os.stat_result) -> None:
        if os.name == "nt" or not stat.S_ISREG(info.st_mode):
            return  # Windows: access is by ACL, not mode bits
        if info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise TokenFileError(
                self.path,
                f"令牌文件其他用户也能读取（权限 {mode:04o}），拒绝使用；请执行 chmod 600 {self.path}，"
                f"如果文件可能已被他人看到，请在平台上重新授权店铺",
                f"the token file can be read by other users (mode {mode:04o}), so it is not used; run "
                f"chmod 600 {self.path}, and if others may have seen it, authorise the shops again on the platform",
                "insecure",
            )
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise TokenFileError(self.path, "令牌文件属于其他用户，拒绝使用", "the token file belongs to another user, so "
                                 "it is not used", "insecure")

    def _entries(self, data: dict) -> dict[str, StoredTokens]:
        entries: dict[str, StoredTokens] = {}
        for key, value in data["tokens"].items():
            try:
                saved_at = datetime.fromisoformat(value["saved_at"])
                entries[key] = StoredTokens(str(value["access_token"]), str(value.get("refresh_token") or ""),
                                            saved_at if saved_at.tzinfo else saved_at.replace(tzinfo=UTC),
                                            str(value["origin"]))
            except (TypeError, KeyError, ValueError):
                raise TokenFileError(self.path, f"令牌文件中「{key[:64]}」一项格式不对", f"the entry '{key[:64]}' in the "
                                     "token file is malformed", "corrupt") from None
        return entries

    # -- writing ---------------------------------------------------------------------------------

    def save(self, platform: str, shop: str, access_token: str, refresh_token: str, *, origin: str,
             now: datetime | None = None) -> None:
        """Keep a shop's new pair (read, change, write the whole file, under the lock).

        Raises :class:`TokenFileError` (the file is refused) or ``OSError`` (the disk said no, the
        lock timed out); the caller logs it — the pair then lives only as long as the process.
        """
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT_S, mode=0o600):
                data = self._load()
                data["format"] = FORMAT
                data["tokens"][_key(platform, shop)] = {
                    "access_token": access_token,
                    "refresh_token": refresh_token,
                    "saved_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                    "origin": origin,
                }
                self._write(data)
        except Timeout:
            raise OSError(f"the token file {self.path} stayed locked for {LOCK_TIMEOUT_S:.0f} s") from None

    def _write(self, data: dict) -> None:
        text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        if os.name != "nt":  # the rename itself survives a power cut once the directory is synced
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
