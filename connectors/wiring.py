"""From ``deskapp.toml`` to running sync workers: one :class:`SyncRunner` per configured shop.

Used by ``deskapp sync`` (headless) and by the app's background workers alike. Credentials are
read from the environment here, when the runner is built. A platform shop's access and refresh
tokens rotate: the newest pair is kept in the token file (``connectors.tokenstore``) and used at the
next start when it was rotated from the pair the environment still holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import httpx

from connectors.config import Config, MissingSecret, ShopConfig
from connectors.sync import SyncReport, SyncRunner
from connectors.tokenstore import (
    StoredTokens,
    TokenFile,
    TokenFileError,
    choose,
    resolve_path,
)
from db.store import Store

log = logging.getLogger(__name__)

#: Where a platform shop keeps its access token, by the name its ``*_env`` setting has.
TOKEN_NAMES = ("session", "access_token", "token")


@dataclass
class Worker:
    """One shop's runner and how often it polls."""

    runner: SyncRunner
    interval: timedelta


@dataclass(frozen=True)
class NotStarted:
    """A configured shop that could not be started, and why (plain words)."""

    connector: str
    reason: str


def build_workers(
    store: Store,
    config: Config,
    client: httpx.AsyncClient,
    *,
    environ: Mapping[str, str] | None = None,
    on_report: Callable[[SyncReport], None] | None = None,
    token_file: TokenFile | None = None,
    **runner_options: object,
) -> tuple[list[Worker], list[NotStarted]]:
    """A worker for every enabled shop; shops that cannot start are listed with the reason.

    ``token_file``: where rotated tokens are kept (default: ``$DESKAPP_TOKEN_FILE``, the config's
    ``token_file``, the user data directory's). A file that cannot be used (readable by others,
    not a token file) keeps every platform shop from starting, with the reason.
    """
    workers: list[Worker] = []
    failed: list[NotStarted] = []
    shops = config.shops()
    tokens = token_file or TokenFile(resolve_path(config.token_file, environ))
    stored: dict[tuple[str, str], StoredTokens] = {}
    refused: TokenFileError | None = None
    if any(shop.kind == "platform" for shop in shops):
        try:
            stored = tokens.read_all()
        except TokenFileError as error:
            refused = error
            log.error("token file refused: %s", error.en)
    for shop in shops:
        if refused is not None and shop.kind == "platform":
            failed.append(NotStarted(shop.actor_id, f"{refused.zh} / {refused.en}"))
            continue
        try:
            source, adapter = _source_and_adapter(config, shop, client, environ, tokens, stored)
        except MissingSecret as missing:
            failed.append(NotStarted(shop.actor_id, f"环境变量未设置 / environment variable not set: {missing}"))
            continue
        except (LookupError, ValueError) as error:
            failed.append(NotStarted(shop.actor_id, str(error)))
            continue
        options = {"initial_lookback": shop.initial_lookback, **runner_options}
        runner = SyncRunner(store, source, adapter, overlap=shop.overlap, lag=shop.lag, on_report=on_report,
                            **options)
        workers.append(Worker(runner, timedelta(seconds=shop.poll_seconds)))
    for item in failed:
        log.warning("connector %s not started: %s", item.connector, item.reason)
    return workers, failed


async def run_workers(workers: list[Worker], stop: asyncio.Event) -> None:
    """Run every worker at its own interval until ``stop`` is set."""
    async with asyncio.TaskGroup() as group:
        for worker in workers:
            group.create_task(worker.runner.run_forever(worker.interval, stop),
                              name=f"sync {worker.runner.connector}")


def _source_and_adapter(config: Config, shop: ShopConfig, client: httpx.AsyncClient,
                        environ: Mapping[str, str] | None, tokens: TokenFile,
                        stored: Mapping[tuple[str, str], StoredTokens]):
    channel = config.channel(shop.channel)
    if shop.kind == "generic":
        from connectors.generic import GenericSource, adapter_for, load_mapping

        if shop.mapping_path is None:
            raise ValueError(f"{shop.actor_id}: 没有字段映射文件 / no mapping file")
        fieldmap = load_mapping(shop.mapping_path)
        return GenericSource(fieldmap, shop, client=client), adapter_for(fieldmap, channel)
    from connectors.platforms import make_adapter, make_source

    token = next((shop.secret(n, environ) for n in TOKEN_NAMES if n in shop.credentials), "")
    refresh = shop.secret("refresh_token", environ) if "refresh_token" in shop.credentials else ""
    chosen = choose(stored.get((shop.channel, shop.code)), token, refresh)
    if chosen.source == "stored":
        log.info("%s: using the tokens rotated at %s (kept in %s), not the environment's older pair",
                 shop.actor_id, chosen.saved_at, tokens.path)
    source = make_source(
        shop.channel, shop.base_url, shop_code=shop.code, app_key=shop.app_key,
        app_secret=shop.secret("secret", environ), access_token=chosen.access_token,
        refresh_token=chosen.refresh_token, client=client,
    )
    held = getattr(source, "tokens", None)
    if held is not None:
        held.on_refresh = _keeper(tokens, shop, chosen.origin)
    return source, make_adapter(shop.channel, channel.overrides() if channel else None)


def _keeper(tokens: TokenFile, shop: ShopConfig, origin: str) -> Callable[[str, str], Awaitable[None]]:
    """What a Source calls with each new pair: save it (in a thread: it fsyncs) and say so in the log."""

    async def keep(access: str, refresh: str) -> None:
        try:
            await asyncio.to_thread(tokens.save, shop.channel, shop.code, access, refresh, origin=origin)
        except (TokenFileError, OSError) as error:
            reason = error.en if isinstance(error, TokenFileError) else f"{type(error).__name__}: {error}"
            log.error("%s: the refreshed tokens could NOT be saved (%s); a restarted sync will start from the "
                      "environment's tokens, which the platform may no longer accept", shop.actor_id, reason)
            return
        log.info("%s: refreshed tokens saved to %s", shop.actor_id, tokens.path)

    return keep
