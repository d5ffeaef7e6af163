"""From ``deskapp.toml`` to running sync workers: one :class:`SyncRunner` per configured shop.

Used by ``deskapp sync`` (headless) and by the app's background workers alike. Credentials are
read from the environment here, when the runner is built, and never kept anywhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import httpx

from connectors.config import Config, MissingSecret, ShopConfig
from connectors.sync import SyncReport, SyncRunner
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
    **runner_options: object,
) -> tuple[list[Worker], list[NotStarted]]:
    """A worker for every enabled shop; shops that cannot start are listed with the reason."""
    workers: list[Worker] = []
    failed: list[NotStarted] = []
    for shop in config.shops():
        try:
            source, adapter = _source_and_adapter(config, shop, client, environ)
        except MissingSecret as missing:
            failed.append(NotStarted(shop.actor_id, f"环境变量未设置 / environment variable not set: {missing}"))
            continue
        except (LookupError, ValueError) as error:
            failed.append(NotStarted(shop.actor_id, str(error)))
            continue
        runner = SyncRunner(store, source, adapter, overlap=shop.overlap, lag=shop.lag, on_report=on_report,
                            **runner_options)
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
                        environ: Mapping[str, str] | None):  # noqa: ANN202
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
    source = make_source(
        shop.channel, shop.base_url, shop_code=shop.code, app_key=shop.app_key,
        app_secret=shop.secret("secret", environ), access_token=token, refresh_token=refresh, client=client,
    )
    return source, make_adapter(shop.channel, channel.overrides() if channel else None)
