"""Raw channel status → standard status, from mapping tables anyone can edit without code.

Each channel has a table in ``connectors/maps/<channel>.toml`` (packaged with the code)::

    [status]                       # the channel's order status → db.codes.Status value
    WAIT_SELLER_SEND_GOODS = "paid"

    [after_sale]                   # the channel's refund / after-sale state → db.codes.AfterSale value
    SUCCESS = "refunded"

``deskapp.toml`` can add or change entries per channel; the config code passes them to :func:`load`
as ``overrides={"status": {...}, "after_sale": {...}}``. Every value is checked against the
standard codes when the table is loaded, and a wrong one is reported in plain words
(:class:`StatusMapError`). At run time a raw value the table does not know raises
:class:`connectors.base.Quarantine` with ``code="unknown_status"``: the order waits in quarantine
with the reason until someone adds the value to the table — it is never guessed.

An empty raw after-sale value always means "no after-sale" (channels leave the field empty).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from connectors.base import Quarantine
from db.codes import AfterSale, Status

#: The tables a map file may hold, and the standard codes each one maps to.
SECTIONS: dict[str, type[Status] | type[AfterSale]] = {"status": Status, "after_sale": AfterSale}


class StatusMapError(ValueError):
    """A status map (file or override) holds something that is not a valid mapping."""


@dataclass(frozen=True)
class StatusMap:
    """One channel's raw → standard tables. Build with :func:`load`."""

    channel: str
    statuses: Mapping[str, Status]
    after_sales: Mapping[str, AfterSale]

    def status(self, raw: object) -> Status:
        """The standard status for a raw one; Quarantine(code="unknown_status") if the table lacks it."""
        key = _key(raw)
        found = self.statuses.get(key)
        if found is None:
            raise Quarantine(
                f"{self.channel} order status {key!r} is not in the status map; add it under [status] "
                f"in connectors/maps/{self.channel}.toml or deskapp.toml (known: {_known(self.statuses)})",
                code="unknown_status",
            )
        return found

    def after_sale(self, raw: object) -> AfterSale:
        """The standard after-sale state for a raw one (empty: none); Quarantine if the table lacks it."""
        key = _key(raw)
        if key == "":
            return self.after_sales.get("", AfterSale.NONE)
        found = self.after_sales.get(key)
        if found is None:
            raise Quarantine(
                f"{self.channel} after-sale state {key!r} is not in the status map; add it under "
                f"[after_sale] in connectors/maps/{self.channel}.toml or deskapp.toml "
                f"(known: {_known(self.after_sales)})",
                code="unknown_status",
            )
        return found


def load(channel: str, overrides: Mapping[str, Mapping[str, str]] | None = None) -> StatusMap:
    """The status map of ``channel``: its packaged table with ``overrides`` laid over it.

    Raises :class:`StatusMapError` (plain words) for a channel without a table, a malformed file,
    an unknown section, or a value that is not a standard status / after-sale state.
    """
    base = _packaged(channel)
    tables = {name: dict(values) for name, values in base.items()}
    if overrides:
        if not isinstance(overrides, Mapping):
            raise StatusMapError(f"status map overrides for {channel} must be a table, not {type(overrides).__name__}")
        for section, values in overrides.items():
            tables.setdefault(_section(section, f"deskapp.toml overrides for {channel}"), {}).update(
                _validated(section, values, f"deskapp.toml [{channel}] {section}")
            )
    return StatusMap(
        channel=channel,
        statuses=MappingProxyType(tables.get("status", {})),
        after_sales=MappingProxyType(tables.get("after_sale", {})),
    )


def channels() -> list[str]:
    """Every channel with a packaged table."""
    folder = resources.files("connectors") / "maps"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


@cache
def _packaged(channel: str) -> dict[str, dict[str, Status | AfterSale]]:
    where = f"connectors/maps/{channel}.toml"
    if not channel or not channel.replace("_", "").replace("-", "").isalnum():
        raise StatusMapError(f"{channel!r} is not a channel name")
    path = resources.files("connectors") / "maps" / f"{channel}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StatusMapError(f"there is no status map for channel {channel!r} ({where} is missing)") from None
    except tomllib.TOMLDecodeError as exc:
        raise StatusMapError(f"{where} is not valid TOML: {exc}") from None
    tables: dict[str, dict[str, Status | AfterSale]] = {}
    for section, values in data.items():
        tables[_section(section, where)] = _validated(section, values, f"{where} [{section}]")
    return tables


def _section(name: str, where: str) -> str:
    if name not in SECTIONS:
        raise StatusMapError(f"{where}: unknown section [{name}]; a status map has only [status] and [after_sale]")
    return name


def _validated(section: str, values: object, where: str) -> dict[str, Status | AfterSale]:
    kind = SECTIONS[_section(section, where)]
    if not isinstance(values, Mapping):
        raise StatusMapError(f"{where} must be a table of raw value = standard value")
    out: dict[str, Status | AfterSale] = {}
    for raw, value in values.items():
        try:
            out[_key(raw)] = kind(value)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise StatusMapError(
                f"{where}: {raw} = {value!r} — {value!r} is not a standard "
                f"{'status' if kind is Status else 'after-sale state'} (use one of: {allowed})"
            ) from None
    return out


def _key(raw: object) -> str:
    """Raw values are compared as trimmed text: 105, "105" and " 105 " are one key."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return str(raw).lower()
    return str(raw).strip()


def _known(table: Mapping[str, object]) -> str:
    keys = sorted(table)
    shown = ", ".join(keys[:12])
    return shown + (" ..." if len(keys) > 12 else "")
