"""``deskapp.toml``: which channels and shops to sync, how often, and where their secrets live.

The file names credentials only **by reference to environment variables** (``secret_env =
"TAOBAO_SECRET"``): the value is read from the environment when a connector needs it, never kept
on a config object, never stored in the database, never printed or logged. A literal secret in the
file is itself a problem that :func:`check` reports (without echoing it).

:func:`check` explains every problem in plain words, Chinese first with English beside it
(:class:`Problem`); :func:`load` returns the typed :class:`Config` or raises :class:`ConfigError`
carrying the same problems. A shape of the file::

    [sync]
    poll_seconds = 30
    initial_lookback_days = 1      # a shop's first sync reads this far back (channels/shops override)
    token_file = "tokens.json"     # where rotated tokens are kept (connectors.tokenstore)

    [channels.taobao]
    app_key = "12345678"
    secret_env = "TAOBAO_APP_SECRET"
    [channels.taobao.status_map]
    PAID_FORBID_CONSIGN = "hold"
    [[channels.taobao.shops]]
    code = "tb-main"
    name = "旗舰店"
    session_env = "TAOBAO_SESSION_MAIN"

    [channels.miniapp]
    kind = "generic"
    mapping = "mappings/miniapp.toml"      # relative to this file

    [carriers.kuaidi100]
    key_env = "KUAIDI100_KEY"
    customer_env = "KUAIDI100_CUSTOMER"
    salt_env = "KUAIDI100_SALT"
    callback_url = "https://desk.example.com/kuaidi100/push"

``deskapp.example.toml`` at the top of the repository is a complete, commented example.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from db.codes import AfterSale, Status

#: Channels with a platform connector (``connectors/platforms``) and a built-in status table.
PLATFORM_CHANNELS: frozenset[str] = frozenset(
    {"taobao", "tmall", "pdd", "douyin", "jd", "youzan", "kuaishou", "jst"}
)
#: Channels that are usually a team's own system, read through a field-mapping file.
GENERIC_CHANNELS: frozenset[str] = frozenset({"miniapp", "pos", "distributor"})
KNOWN_CHANNELS: frozenset[str] = PLATFORM_CHANNELS | GENERIC_CHANNELS

#: Allowed ranges (inclusive) for the timing settings.
POLL_SECONDS = (1, 3600)
OVERLAP_MINUTES = (0, 1440)
LAG_MINUTES = (0, 120)
#: How far back a shop's first sync reads. Platforms keep about 3 months of changes to page
#: through (Taobao 3 months, Douyin 90 days); below ~2 hours a first sync could fall inside the lag.
INITIAL_LOOKBACK_DAYS = (0.1, 90)
DEFAULT_POLL_SECONDS = 30
DEFAULT_OVERLAP_MINUTES = 5
DEFAULT_LAG_MINUTES = 3
DEFAULT_INITIAL_LOOKBACK_DAYS = 1

#: Setting names that hold a secret: they must be given as ``<name>_env``, never as a value.
SECRET_WORDS: frozenset[str] = frozenset(
    {"secret", "app_secret", "client_secret", "password", "token", "access_token", "refresh_token",
     "session", "session_key", "key", "api_key", "salt", "customer"}
)

_CODE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_SHOP_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_TOP_KEYS = {"db", "sync", "channels", "carriers", "security"}  # security: deskapp.services.auth
_TIMING_KEYS = {"poll_seconds", "overlap_minutes", "lag_minutes", "initial_lookback_days"}
_SYNC_KEYS = _TIMING_KEYS | {"log_file", "token_file"}
_CHANNEL_KEYS = _TIMING_KEYS | {
    "kind", "name", "base_url", "app_key", "status_map", "after_sale_map", "mapping", "shops",
    "options", "enabled",
}
_SHOP_KEYS = _TIMING_KEYS | {"code", "name", "base_url", "app_key", "options", "enabled"}
_KUAIDI100_KEYS = {"base_url", "callback_url", "mode", "poll_minutes", "listen", "enabled"}
KUAIDI100_URL = "https://poll.kuaidi100.com"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config or mapping file, in plain words (Chinese and English)."""

    where: str  # the setting's place: "channels.taobao.shops[0].session_env"
    zh: str
    en: str
    code: str = "invalid"

    def text(self, language: str = "zh") -> str:
        """The message in ``language`` ("zh" or "en"), prefixed by where it is."""
        message = self.en if language == "en" else self.zh
        return f"{self.where}: {message}" if self.where else message


class ConfigError(Exception):
    """The config cannot be used as it is; ``problems`` says why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.text("en") for p in problems))
        self.problems = problems


class MissingSecret(LookupError):
    """An environment variable a connector needs is not set (its name is given; never a value)."""

    def __init__(self, env: str) -> None:
        super().__init__(f"environment variable {env} is not set")
        self.env = env


@dataclass(frozen=True)
class SecretRef:
    """A secret named by its environment variable. Holds the *name* only; ``value()`` reads it."""

    env: str

    def value(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret, read now from the environment; raises :class:`MissingSecret` if unset or empty."""
        value = (os.environ if environ is None else environ).get(self.env, "")
        if not value:
            raise MissingSecret(self.env)
        return value

    def present(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether the variable is set to something."""
        return bool((os.environ if environ is None else environ).get(self.env))

    def __repr__(self) -> str:
        return f"SecretRef(env={self.env!r})"


def _frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ShopConfig:
    """One shop to sync, with its channel's settings already applied (shop values win)."""

    channel: str
    code: str
    name: str
    kind: str  # "platform" or "generic"
    base_url: str = ""
    app_key: str = ""
    credentials: Mapping[str, SecretRef] = field(default_factory=_frozen)
    poll_seconds: float = DEFAULT_POLL_SECONDS
    overlap: timedelta = timedelta(minutes=DEFAULT_OVERLAP_MINUTES)
    lag: timedelta = timedelta(minutes=DEFAULT_LAG_MINUTES)
    initial_lookback: timedelta = timedelta(days=DEFAULT_INITIAL_LOOKBACK_DAYS)  # how far back the first sync reads
    options: Mapping[str, Any] = field(default_factory=_frozen)
    mapping_path: Path | None = None
    enabled: bool = True

    @property
    def actor_id(self) -> str:
        """The connector actor id for timeline events: ``<channel>:<shop>``."""
        return f"{self.channel}:{self.code}"

    def secret(self, name: str, environ: Mapping[str, str] | None = None) -> str:
        """The credential ``name`` ("secret", "session", "token" …) read from the environment now."""
        ref = self.credentials.get(name)
        if ref is None:
            raise MissingSecret(f"{name}_env (not configured for {self.channel}:{self.code})")
        return ref.value(environ)


@dataclass(frozen=True)
class ChannelConfig:
    """One channel: its shops, and the raw → standard overrides of its status tables."""

    code: str
    kind: str  # "platform" or "generic"
    name: str
    shops: tuple[ShopConfig, ...]
    status_map: Mapping[str, str] = field(default_factory=_frozen)  # raw → Status
    after_sale_map: Mapping[str, str] = field(default_factory=_frozen)  # raw → AfterSale
    mapping_path: Path | None = None  # generic channels: the field-mapping file
    enabled: bool = True

    def overrides(self) -> dict[str, dict[str, str]] | None:
        """The status-map overrides in the shape ``connectors.statusmap.load`` takes (None: none)."""
        tables = {"status": dict(self.status_map), "after_sale": dict(self.after_sale_map)}
        return {k: v for k, v in tables.items() if v} or None


@dataclass(frozen=True)
class Kuaidi100Config:
    """Kuaidi100 tracking: keys by reference, the push callback, pull cadence."""

    key: SecretRef
    customer: SecretRef | None = None  # needed for the query (pull) API
    salt: SecretRef | None = None  # signs pushes; needed for push mode
    base_url: str = KUAIDI100_URL
    callback_url: str = ""
    mode: str = "push"  # push | pull
    poll_minutes: int = 120
    listen_host: str = "127.0.0.1"
    listen_port: int = 8790
    enabled: bool = True


@dataclass(frozen=True)
class Config:
    """The whole file, typed. Holds no secret values (only :class:`SecretRef` names)."""

    path: Path | None
    db: str | None = None  # a path relative to the config file is made absolute; a URL is kept as is
    log_file: Path | None = None
    token_file: Path | None = None  # where rotated tokens are kept (connectors.tokenstore); None: the default
    channels: tuple[ChannelConfig, ...] = ()
    kuaidi100: Kuaidi100Config | None = None

    def shops(self, *, enabled_only: bool = True) -> list[ShopConfig]:
        """Every shop of every channel (by default only enabled ones)."""
        return [
            s for c in self.channels for s in c.shops
            if not enabled_only or (c.enabled and s.enabled)
        ]

    def channel(self, code: str) -> ChannelConfig | None:
        """The channel with this code, if configured."""
        return next((c for c in self.channels if c.code == code), None)


# -- reading ---------------------------------------------------------------------------------------


def check(path: str | Path, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem with the config file at ``path``, in plain words (empty: it is fine)."""
    return _read(Path(path), environ)[1]


def read(path: str | Path, environ: Mapping[str, str] | None = None) -> tuple[Config | None, list[Problem]]:
    """The config as far as it could be read (None when the file is missing or not TOML), and every
    problem: for what is usable even when something else is wrong (the database it names, say)."""
    return _read(Path(path), environ)


def load(path: str | Path, *, environ: Mapping[str, str] | None = None, require_env: bool = True) -> Config:
    """The typed config; raises :class:`ConfigError` listing every problem if there is any.

    ``require_env=False`` accepts unset environment variables (a connector that needs one fails
    with :class:`MissingSecret` when it runs instead), for tools that only read the shape.
    """
    config, problems = _read(Path(path), environ)
    if not require_env:
        problems = [p for p in problems if p.code != "missing_env"]
    if problems or config is None:
        raise ConfigError(problems)
    return config


def parse(data: Mapping[str, Any], *, base_dir: Path, path: Path | None = None,
          environ: Mapping[str, str] | None = None) -> tuple[Config, list[Problem]]:
    """A config from already-parsed TOML, and its problems (relative paths are from ``base_dir``)."""
    reader = _Reader(base_dir, os.environ if environ is None else environ)
    return reader.config(data, path), reader.problems


def _read(path: Path, environ: Mapping[str, str] | None) -> tuple[Config | None, list[Problem]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(str(path), "找不到配置文件", "config file not found", "missing_file")]
    except OSError as error:
        return None, [Problem(str(path), f"无法读取配置文件（{error.strerror}）",
                              f"cannot read the config file ({error.strerror})", "unreadable")]
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return None, [Problem(str(path), "配置文件不是 UTF-8 编码", "the config file is not UTF-8 text", "encoding")]
    except tomllib.TOMLDecodeError as error:
        return None, [Problem(str(path), f"TOML 格式错误：{error}", f"not valid TOML: {error}", "toml")]
    return parse(data, base_dir=path.parent, path=path, environ=environ)


#: poll seconds, overlap minutes, lag minutes, initial lookback days (inherited sync → channel → shop).
Timing = tuple[float, float, float, float]


class _Reader:
    """Walks the parsed TOML once, building typed objects and collecting every problem."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.environ = environ
        self.problems: list[Problem] = []

    def problem(self, where: str, zh: str, en: str, code: str = "invalid") -> None:
        self.problems.append(Problem(where, zh, en, code))

    # -- pieces ----------------------------------------------------------------------------

    def unknown_keys(self, table: Mapping, allowed: set[str], where: str) -> None:
        for key in table:
            if key.endswith("_env") or key in allowed:
                continue
            if key in SECRET_WORDS:
                self.problem(
                    _join(where, key),
                    f"不要把密钥直接写进配置文件；请把它放进环境变量，并写 {key}_env = \"变量名\"",
                    f"do not put a secret in the config file; put it in an environment variable "
                    f"and write {key}_env = \"VARIABLE_NAME\"",
                    "literal_secret",
                )
            else:
                self.problem(_join(where, key), f"未知的设置项「{key}」（拼写错误？）",
                             f"unknown setting '{key}' (a typo?)", "unknown_key")

    def credentials(self, table: Mapping, where: str) -> dict[str, SecretRef]:
        refs: dict[str, SecretRef] = {}
        for key, value in table.items():
            if not key.endswith("_env"):
                continue
            place = _join(where, key)
            if not isinstance(value, str) or not _ENV_NAME.match(value):
                self.problem(place, "应为环境变量的名字（字母、数字和下划线）",
                             "should be the name of an environment variable (letters, digits, underscore)")
                continue
            if not self.environ.get(value):
                self.problem(place, f"环境变量 {value} 未设置", f"environment variable {value} is not set",
                             "missing_env")
            refs[key[: -len("_env")]] = SecretRef(value)
        return refs

    def text(self, table: Mapping, key: str, where: str, default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            self.problem(_join(where, key), "应为文字（用引号括起来）", "should be text (in quotes)")
            return default
        return value

    def flag(self, table: Mapping, key: str, where: str, default: bool = True) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            self.problem(_join(where, key), "应为 true 或 false", "should be true or false")
            return default
        return value

    def number(self, table: Mapping, key: str, where: str, default: float, bounds: tuple[int, int],
               unit_zh: str, unit_en: str) -> float:
        if key not in table:
            return default
        value = table[key]
        low, high = bounds
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(_join(where, key), f"应为数字（{unit_zh}）", f"should be a number ({unit_en})")
            return default
        if not low <= value <= high:
            self.problem(_join(where, key), f"{value} 超出范围：应在 {low} 到 {high} {unit_zh}之间",
                         f"{value} is out of range: it should be between {low} and {high} {unit_en}",
                         "out_of_range")
            return default
        return value

    def url(self, table: Mapping, key: str, where: str, default: str = "") -> str:
        value = self.text(table, key, where, default)
        if value and not _valid_url(value):
            self.problem(_join(where, key), f"不是有效的网址：{_show(value)}（应以 http:// 或 https:// 开头）",
                         f"not a valid URL: {_show(value)} (it should start with http:// or https://)", "bad_url")
            return default
        return value

    def options(self, table: Mapping, where: str) -> Mapping[str, Any]:
        value = table.get("options", {})
        if not isinstance(value, dict):
            self.problem(_join(where, "options"), "应为一个表", "should be a table")
            return _frozen()
        for key in value:
            if key in SECRET_WORDS:
                self.problem(_join(where, "options", key), "不要把密钥写进 options；请用 *_env 引用环境变量",
                             "do not put a secret in options; refer to an environment variable with *_env",
                             "literal_secret")
        return _frozen({k: v for k, v in value.items() if k not in SECRET_WORDS})

    def timing(self, table: Mapping, where: str, inherited: Timing) -> Timing:
        poll, overlap, lag, lookback = inherited
        return (
            self.number(table, "poll_seconds", where, poll, POLL_SECONDS, "秒", "seconds"),
            self.number(table, "overlap_minutes", where, overlap, OVERLAP_MINUTES, "分钟", "minutes"),
            self.number(table, "lag_minutes", where, lag, LAG_MINUTES, "分钟", "minutes"),
            self.lookback(table, where, lookback),
        )

    def lookback(self, table: Mapping, where: str, inherited: float) -> float:
        """``initial_lookback_days``: how much history a shop's first sync reads, in days."""
        key, place = "initial_lookback_days", _join(where, "initial_lookback_days")
        if key not in table:
            return inherited
        value = table[key]
        low, high = INITIAL_LOOKBACK_DAYS
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(place, f"应为天数，例如 {DEFAULT_INITIAL_LOOKBACK_DAYS} 或 0.5（首次同步读取多少天内的订单）",
                         f"should be a number of days, e.g. {DEFAULT_INITIAL_LOOKBACK_DAYS} or 0.5 "
                         "(how far back the first sync reads orders)")
            return inherited
        if not low <= value <= high:
            self.problem(
                place,
                f"{value} 天超出范围：首次同步可读取 {low} 到 {high} 天内的订单（平台只保留约 3 个月的变更记录；"
                f"太短则可能落在 lag_minutes 延迟之内，什么也读不到）",
                f"{value} days is out of range: a first sync can read from {low} to {high} days back (platforms "
                f"keep about 3 months of changes; much less may fall inside lag_minutes and read nothing)",
                "out_of_range",
            )
            return inherited
        return float(value)

    def code_map(self, table: Mapping, key: str, where: str, allowed: Iterable[str], what_zh: str,
                 what_en: str) -> dict[str, str]:
        value = table.get(key, {})
        place = _join(where, key)
        if not isinstance(value, dict):
            self.problem(place, "应为一个表：平台原始值 = 标准值", "should be a table: raw value = standard value")
            return {}
        allowed = list(allowed)
        result: dict[str, str] = {}
        for raw, standard in value.items():
            if not isinstance(standard, str) or standard not in allowed:
                self.problem(
                    _join(place, raw),
                    f"「{_show(standard)}」不是已知的{what_zh}；可用：{'、'.join(allowed)}",
                    f"'{_show(standard)}' is not a known {what_en}; use one of: {', '.join(allowed)}",
                    "unknown_status",
                )
                continue
            result[str(raw)] = standard
        return result

    # -- sections --------------------------------------------------------------------------

    def config(self, data: Mapping[str, Any], path: Path | None) -> Config:
        self.unknown_keys(data, _TOP_KEYS, "")
        db = self.text(data, "db", "") or None
        sync = data.get("sync", {})
        if not isinstance(sync, dict):
            self.problem("sync", "应为一个表", "should be a table")
            sync = {}
        self.unknown_keys(sync, _SYNC_KEYS, "sync")
        timing = self.timing(sync, "sync", (DEFAULT_POLL_SECONDS, DEFAULT_OVERLAP_MINUTES, DEFAULT_LAG_MINUTES,
                                            DEFAULT_INITIAL_LOOKBACK_DAYS))
        log_file = self.text(sync, "log_file", "sync")
        token_file = self.text(sync, "token_file", "sync")
        channels_table = data.get("channels", {})
        if not isinstance(channels_table, dict):
            self.problem("channels", "应为一个表：[channels.渠道代码]", "should be a table: [channels.CODE]")
            channels_table = {}
        channels = tuple(
            c for code, table in channels_table.items()
            if (c := self.channel(code, table, timing)) is not None
        )
        carriers = data.get("carriers", {})
        kuaidi100 = None
        if not isinstance(carriers, dict):
            self.problem("carriers", "应为一个表", "should be a table")
        else:
            for name in carriers:
                if name != "kuaidi100":
                    self.problem(_join("carriers", name), f"未知的物流跟踪服务「{name}」；目前支持 kuaidi100",
                                 f"unknown tracking service '{name}'; supported: kuaidi100", "unknown_carrier")
            if "kuaidi100" in carriers:
                kuaidi100 = self.kuaidi100(carriers["kuaidi100"])
        return Config(
            path=path, db=self.database(db), log_file=self.base_dir / log_file if log_file else None,
            token_file=(self.base_dir / Path(token_file).expanduser()).resolve() if token_file else None,
            channels=channels, kuaidi100=kuaidi100,
        )

    def database(self, value: str | None) -> str | None:
        """``db``: a URL as it is; a file path made absolute from the config file's folder."""
        if not value or "://" in value:
            return value
        return str((self.base_dir / Path(value).expanduser()).resolve())

    def channel(self, code: str, table: Any, inherited: Timing) -> ChannelConfig | None:
        where = _join("channels", code)
        if not isinstance(table, dict):
            self.problem(where, "应为一个表", "should be a table")
            return None
        if not _CODE.match(code):
            self.problem(where, "渠道代码只能用小写字母、数字、- 和 _（最多 32 个字符）",
                         "a channel code uses lower-case letters, digits, - and _ (at most 32 characters)")
            return None
        self.unknown_keys(table, _CHANNEL_KEYS, where)
        kind = table.get("kind")
        if kind is None:
            kind = "generic" if code in GENERIC_CHANNELS else "platform"
        if kind not in ("platform", "generic"):
            self.problem(_join(where, "kind"), "应为 \"platform\" 或 \"generic\"", "should be \"platform\" or \"generic\"")
            return None
        if kind == "platform" and code not in PLATFORM_CHANNELS:
            self.problem(
                where,
                f"未知的渠道「{code}」；平台渠道有：{'、'.join(sorted(PLATFORM_CHANNELS))}；"
                f"自有系统请写 kind = \"generic\" 并给出 mapping 映射文件",
                f"unknown channel '{code}'; platform channels are: {', '.join(sorted(PLATFORM_CHANNELS))}; "
                f"for your own system write kind = \"generic\" and give a mapping file",
                "unknown_channel",
            )
            return None
        base_url = self.url(table, "base_url", where)
        app_key = self.text(table, "app_key", where)
        credentials = self.credentials(table, where)
        timing = self.timing(table, where, inherited)
        status_map = self.code_map(table, "status_map", where, [s.value for s in Status], "标准订单状态", "standard order status")
        after_sale_map = self.code_map(table, "after_sale_map", where, [a.value for a in AfterSale], "售后状态", "after-sale state")
        mapping_path = self.mapping(table, where, kind)
        options = self.options(table, where)
        enabled = self.flag(table, "enabled", where)
        shops_value = table.get("shops", [])
        if not isinstance(shops_value, list) or not all(isinstance(s, dict) for s in shops_value):
            self.problem(_join(where, "shops"), f"应写成 [[channels.{code}.shops]] 表格数组",
                         f"should be written as [[channels.{code}.shops]] tables")
            shops_value = []
        if not shops_value:
            self.problem(_join(where, "shops"), f"没有配置店铺：至少需要一个 [[channels.{code}.shops]]",
                         f"no shops: add at least one [[channels.{code}.shops]]", "no_shops")
        shops: list[ShopConfig] = []
        seen: dict[str, int] = {}
        for index, shop in enumerate(shops_value):
            place = f"{where}.shops[{index}]"
            self.unknown_keys(shop, _SHOP_KEYS, place)
            shop_code = self.text(shop, "code", place)
            if not shop_code:
                self.problem(_join(place, "code"), "缺少店铺代码 code", "the shop code is missing", "missing")
                continue
            if not _SHOP_CODE.match(shop_code):
                self.problem(_join(place, "code"), "店铺代码只能用字母、数字、. - _（最多 64 个字符）",
                             "a shop code uses letters, digits, . - _ (at most 64 characters)")
                continue
            if shop_code in seen:
                self.problem(_join(place, "code"),
                             f"店铺代码「{shop_code}」重复（与 shops[{seen[shop_code]}] 相同）",
                             f"shop code '{shop_code}' is used twice (also shops[{seen[shop_code]}])", "duplicate_shop")
                continue
            seen[shop_code] = index
            poll, overlap, lag, lookback = self.timing(shop, place, timing)
            shops.append(ShopConfig(
                channel=code, code=shop_code, name=self.text(shop, "name", place) or shop_code, kind=kind,
                base_url=self.url(shop, "base_url", place) or base_url,
                app_key=self.text(shop, "app_key", place) or app_key,
                credentials=_frozen({**credentials, **self.credentials(shop, place)}),
                poll_seconds=poll, overlap=timedelta(minutes=overlap), lag=timedelta(minutes=lag),
                initial_lookback=timedelta(days=lookback),
                options=_frozen({**options, **self.options(shop, place)}),
                mapping_path=mapping_path, enabled=self.flag(shop, "enabled", place),
            ))
        return ChannelConfig(
            code=code, kind=kind, name=self.text(table, "name", where) or code, shops=tuple(shops),
            status_map=_frozen(status_map), after_sale_map=_frozen(after_sale_map),
            mapping_path=mapping_path, enabled=enabled,
        )

    def mapping(self, table: Mapping, where: str, kind: str) -> Path | None:
        place = _join(where, "mapping")
        if "mapping" not in table:
            if kind == "generic":
                self.problem(place, "自有系统渠道需要字段映射文件：mapping = \"文件路径\"",
                             "a generic channel needs a field-mapping file: mapping = \"path\"", "missing_mapping")
            return None
        if kind != "generic":
            self.problem(place, "只有 kind = \"generic\" 的渠道使用映射文件",
                         "only channels with kind = \"generic\" use a mapping file")
            return None
        value = self.text(table, "mapping", where)
        if not value:
            return None
        path = (self.base_dir / value).resolve()
        # Imported here: connectors.generic imports Problem from this module.
        from connectors.generic import load_mapping, mapping_problems

        found_problems = mapping_problems(path)
        for found in found_problems:
            self.problems.append(Problem(_join(place, found.where) if found.where else place,
                                         found.zh, found.en, found.code))
        if not found_problems:
            source = load_mapping(path).source
            if source is None:
                self.problem(place, "映射文件没有 [source] 表：不知道如何从接口同步订单（只导入文件时不必配置此渠道）",
                             "the mapping file has no [source] table: there is no API to sync from "
                             "(a channel you only import files for needs no entry here)", "no_source")
            elif not source.path.startswith(("http://", "https://")) and not table.get("base_url") and not all(
                isinstance(s, dict) and s.get("base_url") for s in table.get("shops") or [{}]
            ):
                self.problem(_join(where, "base_url"), "需要接口地址 base_url（映射文件里的 path 是相对地址）",
                             "base_url is needed (the mapping's source path is relative)", "missing")
        return path

    def kuaidi100(self, table: Any) -> Kuaidi100Config | None:
        where = "carriers.kuaidi100"
        if not isinstance(table, dict):
            self.problem(where, "应为一个表", "should be a table")
            return None
        self.unknown_keys(table, _KUAIDI100_KEYS, where)
        refs = self.credentials(table, where)
        for extra in set(refs) - {"key", "customer", "salt"}:
            self.problem(_join(where, f"{extra}_env"), f"快递100 不使用 {extra}", f"Kuaidi100 has no use for {extra}",
                         "unknown_key")
        mode = self.text(table, "mode", where, "push")
        if mode not in ("push", "pull"):
            self.problem(_join(where, "mode"), "应为 \"push\"（快递100推送）或 \"pull\"（定时查询）",
                         "should be \"push\" (Kuaidi100 pushes) or \"pull\" (we query)")
            mode = "push"
        if "key" not in refs:
            self.problem(_join(where, "key_env"), "缺少授权 key：key_env = \"环境变量名\"",
                         "the authorisation key is missing: key_env = \"VARIABLE_NAME\"", "missing")
        if mode == "pull" and "customer" not in refs:
            self.problem(_join(where, "customer_env"), "定时查询需要 customer：customer_env = \"环境变量名\"",
                         "pull mode needs the customer id: customer_env = \"VARIABLE_NAME\"", "missing")
        callback = self.url(table, "callback_url", where)
        if mode == "push":
            if not callback:
                self.problem(_join(where, "callback_url"), "推送模式需要回调地址 callback_url",
                             "push mode needs a callback_url", "missing")
            if "salt" not in refs:
                self.problem(_join(where, "salt_env"), "推送模式需要签名 salt：salt_env = \"环境变量名\"（否则无法验证推送）",
                             "push mode needs a salt: salt_env = \"VARIABLE_NAME\" (pushes cannot be verified otherwise)",
                             "missing")
        poll_minutes = int(self.number(table, "poll_minutes", where, 120, (10, 1440), "分钟", "minutes"))
        host, port = "127.0.0.1", 8790
        listen = self.text(table, "listen", where)
        if listen:
            host, _, port_text = listen.rpartition(":")
            if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
                self.problem(_join(where, "listen"), f"应写成 主机:端口，例如 127.0.0.1:8790（现在是 {_show(listen)}）",
                             f"should be host:port, e.g. 127.0.0.1:8790 (it is {_show(listen)})")
                host, port = "127.0.0.1", 8790
            else:
                port = int(port_text)
        if "key" not in refs:
            return None
        return Kuaidi100Config(
            key=refs["key"], customer=refs.get("customer"), salt=refs.get("salt"),
            base_url=self.url(table, "base_url", where, KUAIDI100_URL) or KUAIDI100_URL,
            callback_url=callback, mode=mode, poll_minutes=poll_minutes, listen_host=host, listen_port=port,
            enabled=self.flag(table, "enabled", where),
        )


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _valid_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value


def _show(value: object, limit: int = 60) -> str:
    """A value quoted back to the person: cleaned of terminal controls and cut short."""
    from db.sanitize import clean_text

    text = clean_text(str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"
