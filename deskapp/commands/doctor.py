"""``deskapp doctor [--db PATH] [--config deskapp.toml] [--full] [--json]``: check the host.

One line per check, ``OK`` / ``注意`` (warn) / ``失败`` (fail), each problem with a plain-language
fix; exit 0 when nothing failed, 1 otherwise. What it checks, and why:

* the database is on a local disk, not a network share (``/proc/self/mountinfo``): WAL keeps its
  lock state in shared memory (the ``-shm`` file), which only works between processes on one host;
* the journal mode is WAL (``--full`` adds ``PRAGMA integrity_check``, slow on a big file);
* permissions: the database, its ``-wal``/``-shm`` files and their directory are not readable or
  writable by other users (customer data under PIPL; group access is fine, the shared host uses a
  group), and this user can write the directory (WAL creates ``-shm`` there);
* free disk on the database's filesystem; the schema version against this program's;
* every environment variable the connector config names is set (never printed: only names);
* who holds the sync lease, since when; the log directory is writable.

A PostgreSQL URL skips the file checks and connects instead (``SELECT 1``, the server version).

Nothing is changed: SQLite is read with plain ``sqlite3`` (the app's engine would switch the
journal to WAL on connect, and opening a ``Store`` would migrate the schema), so the doctor
reports the file as it is. Text from the database or the environment is printed as plain text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sqlite3
import stat
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from db.sanitize import clean_text
from deskapp.settings import Settings, shown_db

#: Filesystems that are another machine's disk (or a VM host's): SQLite's WAL cannot work there.
NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "smb", "fuse.sshfs", "sshfs", "9p", "afs", "ceph",
    "fuse.ceph", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "ncpfs", "coda", "davfs",
    "fuse.davfs2", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "virtiofs", "vboxsf", "prl_fs",
    "vmhgfs", "fuse.vmhgfs-fuse", "fuse.smbnetfs", "ocfs2", "gfs2", "beegfs", "orangefs", "pvfs2",
})
MOUNTINFO = Path("/proc/self/mountinfo")
GB = 1024**3
#: Free space: fail below 1 GB or 5 % of the disk, warn below 5 GB.
DISK_FAIL_BYTES, DISK_FAIL_PERCENT, DISK_WARN_BYTES = 1 * GB, 5.0, 5 * GB
CHINA = timezone(timedelta(hours=8), "CST")
OK, WARN, FAIL = "ok", "warn", "fail"
#: A database server that has not answered by then is reported as unreachable.
SERVER_TIMEOUT_S = 10.0

EPILOG = ("exit status: 0 = no check failed (warnings allowed), 1 = at least one failed. Examples: "
          "deskapp doctor --db /srv/deskapp/deskapp.db; deskapp doctor --config /etc/deskapp/deskapp.toml --json; "
          "deskapp doctor --full (adds PRAGMA integrity_check)")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``doctor`` on the ``deskapp`` parser."""
    cmd = sub.add_parser(
        "doctor", parents=[common], help="check the host: local disk, WAL, permissions, disk, schema, credentials",
        description="Check that this host can run deskapp safely: the database on a local disk in WAL mode, "
                    "not readable by other users, enough free disk, the schema version, connector credentials "
                    "in the environment, the sync lease and the log directory. Changes nothing.",
        epilog=EPILOG,
    )
    cmd.add_argument("--config", help="the connector config (default: $DESKAPP_CONFIG or ./deskapp.toml)")
    cmd.add_argument("--full", action="store_true", help="also run PRAGMA integrity_check (slow on a big file)")
    cmd.add_argument("--json", action="store_true", help="one JSON object instead of the lines")
    cmd.set_defaults(handler=run_doctor)


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` is ``ok``, ``warn`` or ``fail``; ``fix`` says what to do (empty when ok)."""

    id: str
    status: str
    title: str
    detail: str
    fix: str = ""


def _check(check_id: str, status: str, detail: str, fix: str = "") -> Check:
    from widgets.i18n import tr

    return Check(check_id, status, tr(f"doctor.t.{check_id}"), detail, fix)


# -- where the file lives ------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/self/mountinfo``: where a filesystem is mounted, its type and source."""

    mount_point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as \040, \011, \012, \134.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``mountinfo`` text, in its order (a later mount on the same point is on top)."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1])))
    return mounts


def mount_of(path: str | Path, mounts: Iterable[Mount]) -> Mount | None:
    """The mount that holds ``path`` (made absolute, symlinks resolved): the longest mount point
    that is a prefix of it; of two on the same point, the later one."""
    real = os.path.realpath(path)
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        holds = point == "/" or real == point or real.startswith(point + "/")
        if holds and (best is None or len(point) >= len(best.mount_point.rstrip("/") or "/")):
            best = mount
    return best


def check_location(path: Path, mountinfo: Path = MOUNTINFO) -> Check:
    """Fail on a network filesystem; warn when the filesystem cannot be told or is an unknown FUSE one."""
    from widgets.i18n import tr

    try:
        mounts = parse_mountinfo(mountinfo.read_text(encoding="utf-8", errors="replace"))
    except OSError as error:
        return _check("location", WARN, tr("doctor.location.unknown", error=error.strerror or error),
                      tr("doctor.location.fix"))
    mount = mount_of(path, mounts)
    if mount is None:
        return _check("location", WARN, tr("doctor.location.unknown", error=mountinfo), tr("doctor.location.fix"))
    values = {"fstype": clean_text(mount.fstype), "mount": clean_text(mount.mount_point),
              "source": clean_text(mount.source)}
    if mount.fstype in NETWORK_FS:
        return _check("location", FAIL, tr("doctor.location.network", **values), tr("doctor.location.fix"))
    if mount.fstype.startswith("fuse"):
        return _check("location", WARN, tr("doctor.location.fuse", **values), tr("doctor.location.fix"))
    return _check("location", OK, tr("doctor.location.local", **values))


# -- permissions and space -----------------------------------------------------------------------


def _mode(st: os.stat_result) -> str:
    return stat.filemode(st.st_mode)


def _reachable_by_others(folder: Path) -> bool:
    """Whether other users can reach files in ``folder``: it and every directory above it is o+x."""
    for part in (folder.resolve(), *folder.resolve().parents):
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def check_permissions(db: Path) -> list[Check]:
    """The database, its -wal/-shm and their directory: nothing for other users; this user can write."""
    from widgets.i18n import tr

    checks: list[Check] = []
    files = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    open_to_others = []
    for path in files:
        mode = path.stat().st_mode
        if mode & (stat.S_IROTH | stat.S_IWOTH):
            what = "rw" if mode & stat.S_IROTH and mode & stat.S_IWOTH else ("r" if mode & stat.S_IROTH else "w")
            open_to_others.append((path, what, _mode(path.stat())))
    if open_to_others:
        detail = "; ".join(tr("doctor.perms.world", path=clean_text(str(p)), what=tr(f"doctor.perms.{w}"), mode=m)
                           for p, w, m in open_to_others)
        paths = " ".join(clean_text(str(p)) for p, _, _ in open_to_others)
        # Behind a directory others cannot enter, the bits expose nothing yet: a warning.
        status = FAIL if _reachable_by_others(db.parent) else WARN
        checks.append(_check("perms", status, detail, tr("doctor.perms.fix", paths=paths)))
    elif files:
        shared = db.parent.is_dir() and db.parent.stat().st_mode & stat.S_ISGID  # the team's setgid directory
        not_group = [p for p in files if (p.stat().st_mode & (stat.S_IRGRP | stat.S_IWGRP)) != (stat.S_IRGRP | stat.S_IWGRP)]
        if shared and not_group:
            # SQLite creates the file 0644 less the umask (0640 under umask 007): the others in the
            # group could read but not write it. Its -wal/-shm copy its mode, so one chmod is enough.
            paths = " ".join(clean_text(str(p)) for p in not_group)
            checks.append(_check("perms", WARN, tr("doctor.perms.group", paths=paths, mode=_mode(db.stat())),
                                 tr("doctor.perms.group.fix", paths=paths)))
        else:
            checks.append(_check("perms", OK, tr("doctor.perms.ok", path=clean_text(str(db)), mode=_mode(db.stat()))))
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        checks.append(_check("perms", FAIL, tr("doctor.file.not_writable", path=clean_text(str(db))),
                             tr("doctor.file.fix", path=clean_text(str(db)))))
    folder = db.parent
    if not folder.is_dir():
        return checks
    st = folder.stat()
    where = clean_text(str(folder))
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        checks.append(_check("dir", FAIL, tr("doctor.dir.world_writable", dir=where, mode=_mode(st)),
                             tr("doctor.dir.fix", dir=where)))
    elif st.st_mode & (stat.S_IROTH | stat.S_IXOTH):
        checks.append(_check("dir", WARN, tr("doctor.dir.world_readable", dir=where, mode=_mode(st)),
                             tr("doctor.dir.fix", dir=where)))
    if not os.access(folder, os.W_OK | os.X_OK):
        checks.append(_check("dir", FAIL, tr("doctor.dir.not_writable", dir=where),
                             tr("doctor.dir.not_writable.fix", dir=where)))
    elif not any(c.id == "dir" for c in checks):
        checks.append(_check("dir", OK, tr("doctor.dir.ok", dir=where, mode=_mode(st))))
    return checks


def _size(n: float) -> str:
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / 1024**2:.0f} MB"


def check_disk(free: int, total: int) -> Check:
    """Fail below 1 GB or 5 % free, warn below 5 GB."""
    from widgets.i18n import tr

    percent = 100.0 * free / total if total else 0.0
    detail = tr("doctor.disk.free", free=_size(free), total=_size(total), pct=f"{percent:.0f}")
    if free < DISK_FAIL_BYTES or percent < DISK_FAIL_PERCENT:
        return _check("disk", FAIL, detail, tr("doctor.disk.fix"))
    if free < DISK_WARN_BYTES:
        return _check("disk", WARN, detail, tr("doctor.disk.fix"))
    return _check("disk", OK, detail)


def _disk_of(folder: Path) -> Check | None:
    try:
        vfs = os.statvfs(folder)
    except OSError:
        return None
    return check_disk(vfs.f_bavail * vfs.f_frsize, vfs.f_blocks * vfs.f_frsize)


# -- what is inside ------------------------------------------------------------------------------


def check_journal(mode: str, db: str) -> Check:
    """WAL, or a failure saying how to switch."""
    from widgets.i18n import tr

    if mode.lower() == "wal":
        return _check("journal", OK, "WAL")
    return _check("journal", FAIL, tr("doctor.journal.other", mode=clean_text(mode)),
                  tr("doctor.journal.fix", path=clean_text(db)))


def _revision_number(revision: str) -> int | None:
    match = re.match(r"\d+", revision)
    return int(match.group()) if match else None


def check_schema(revision: str | None, head: str | None = None) -> Check:
    """The database's schema revision against this program's newest (``db.migrate.HEAD``)."""
    from db.migrate import HEAD
    from widgets.i18n import tr

    head = head or HEAD
    if revision is None:
        return _check("schema", FAIL, tr("doctor.schema.none"), tr("doctor.schema.none.fix"))
    values = {"rev": clean_text(revision), "head": head}
    if revision == head:
        return _check("schema", OK, tr("doctor.schema.ok", **values))
    have, want = _revision_number(revision), _revision_number(head)
    if have is not None and want is not None and have < want:
        return _check("schema", WARN, tr("doctor.schema.behind", **values), tr("doctor.schema.behind.fix"))
    return _check("schema", FAIL, tr("doctor.schema.ahead", **values), tr("doctor.schema.ahead.fix"))


def check_credentials(config_path: Path, environ: Mapping[str, str] | None = None) -> tuple[Check, bool]:
    """Every environment variable the config names is set (names only, never values); and whether
    the config has shops to sync (then someone should hold the sync lease)."""
    from connectors.config import read
    from widgets.i18n import tr

    where = clean_text(str(config_path))
    if not config_path.is_file():
        return _check("creds", OK, tr("doctor.creds.none", path=where)), False
    config, problems = read(config_path, environ)
    syncing = config is not None and bool(config.shops())
    missing = [p for p in problems if p.code == "missing_env"]
    others = [p for p in problems if p.code != "missing_env"]
    if missing:
        names = sorted({m.group(1) for p in missing if (m := re.search(r"\b([A-Za-z_][A-Za-z0-9_]*) is not set", p.en))})
        fix = tr("doctor.creds.missing.fix")
        if others:
            fix += " " + tr("doctor.creds.problems.fix", path=where)
        return _check("creds", FAIL, tr("doctor.creds.missing", names=", ".join(names), path=where), fix), syncing
    if others:
        return (_check("creds", FAIL, tr("doctor.creds.problems", n=len(others), path=where),
                       tr("doctor.creds.problems.fix", path=where)), syncing)
    shops = len(config.shops()) if config is not None else 0
    return _check("creds", OK, tr("doctor.creds.ok", n=shops, path=where)), syncing


def _utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _local(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def _holder_gone(holder: str) -> bool:
    """A holder on this host whose process no longer exists (holders are ``host:pid:random``)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not Path(f"/proc/{pid}").exists() and Path("/proc/self").exists()


def check_lease(row: tuple[str, object, object] | None, *, syncing: bool, config: str,
                now: datetime | None = None) -> Check:
    """Who holds the sync lease and since when; a warning when a configured sync has nobody syncing."""
    from widgets.i18n import tr

    now = now or datetime.now(UTC)
    fix = tr("doctor.lease.fix", path=clean_text(config))
    if row is None:
        if syncing:
            return _check("lease", WARN, tr("doctor.lease.none"), fix)
        return _check("lease", OK, tr("doctor.lease.none.quiet"))
    holder, since, until = clean_text(str(row[0])), _utc(row[1]), _utc(row[2])
    values = {"holder": holder, "since": _local(since) if since else "?", "until": _local(until) if until else "?"}
    if until is None or until <= now:
        return _check("lease", WARN if syncing else OK, tr("doctor.lease.expired", **values), fix if syncing else "")
    if _holder_gone(str(row[0])):
        return _check("lease", WARN, tr("doctor.lease.gone", **values), fix)
    return _check("lease", OK, tr("doctor.lease.held", **values))


def check_log_dirs(paths: Iterable[Path]) -> Check:
    """Each log file's directory can be written (or created) by this user."""
    from widgets.i18n import tr

    bad, good = [], []
    for path in dict.fromkeys(p.expanduser() for p in paths):
        folder = path.parent
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        writable = os.access(existing, os.W_OK | os.X_OK) and (existing == folder or existing.is_dir())
        if path.exists() and not os.access(path, os.W_OK):
            writable = False
        (good if writable else bad).append(clean_text(str(folder)))
    if bad:
        return _check("log", WARN, tr("doctor.log.bad", dirs=", ".join(bad)), tr("doctor.log.fix"))
    return _check("log", OK, tr("doctor.log.ok", dirs=", ".join(good)))


# -- the whole run -------------------------------------------------------------------------------


def _sqlite_path(db: str) -> Path | None:
    """The file of a SQLite database setting (a path or a sqlite URL); None for a server URL."""
    if "://" not in db:
        return Path(db).expanduser()
    from sqlalchemy.engine import make_url

    url = make_url(db)
    if url.get_backend_name() != "sqlite":
        return None
    return Path(url.database).expanduser() if url.database and url.database != ":memory:" else None


def _read_sqlite(path: Path, *, full: bool) -> tuple[str, str | None, tuple | None, str | None]:
    """Journal mode, schema revision, the sync lease row, and the integrity result (``--full``).

    Opened with ``mode=rw``: a missing file is not created, and nothing is written."""
    from urllib.parse import quote

    from connectors.sync import LEASE_NAME

    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", uri=True, timeout=5)
    try:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        except sqlite3.OperationalError:
            revision = None
        try:
            lease = conn.execute("SELECT holder, acquired_at, expires_at FROM sync_lease WHERE name = ?",
                                 (LEASE_NAME,)).fetchone()
        except sqlite3.OperationalError:
            lease = None
        integrity = None
        if full:
            rows = conn.execute("PRAGMA integrity_check(20)").fetchall()
            integrity = "; ".join(str(r[0]) for r in rows)
        return mode, revision, lease, integrity
    finally:
        conn.close()


async def _read_server(url: str) -> tuple[str, float, str | None, tuple | None]:
    """The server's version, the round trip of ``SELECT 1`` in ms, the schema revision, the lease row."""
    from sqlalchemy import text

    from connectors.sync import LEASE_NAME
    from db.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            started = time.perf_counter()
            await conn.execute(text("SELECT 1"))
            ms = (time.perf_counter() - started) * 1000
            version = str((await conn.execute(text("SELECT version()"))).scalar())
            await conn.commit()
            try:
                revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            except Exception:  # noqa: BLE001 - no table: not a deskapp database (reported as such)
                await conn.rollback()
                revision = None
            try:
                lease = (await conn.execute(
                    text("SELECT holder, acquired_at, expires_at FROM sync_lease WHERE name = :n"),
                    {"n": LEASE_NAME})).first()
                lease = tuple(lease) if lease is not None else None
            except Exception:  # noqa: BLE001
                await conn.rollback()
                lease = None
        return version, ms, revision, lease
    finally:
        await engine.dispose()


def _error_text(error: BaseException) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return clean_text(f"{type(error).__name__}: {message}" if message else type(error).__name__)


async def diagnose(db: str, *, config: Path, log_files: Iterable[Path] = (), full: bool = False,
                   mountinfo: Path = MOUNTINFO, environ: Mapping[str, str] | None = None,
                   now: datetime | None = None) -> list[Check]:
    """Every check for database ``db`` (a path or URL) and connector config ``config``, in order."""

    from widgets.i18n import tr

    checks: list[Check] = []
    creds, syncing = check_credentials(config, environ)
    lease_row = None
    path = _sqlite_path(db)
    if path is None:  # a database server: connect instead of looking at files
        shown = clean_text(shown_db(db))
        try:
            version, ms, revision, lease_row = await asyncio.wait_for(_read_server(db), SERVER_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 - any failure to connect is the finding
            checks.append(_check("server", FAIL, tr("doctor.server.fail", url=shown, error=_error_text(error)),
                                 tr("doctor.server.fix")))
            checks += [creds, check_log_dirs(log_files)]
            return checks
        checks.append(_check("server", OK, tr("doctor.server.ok", url=shown, version=clean_text(version[:60]),
                                                 ms=f"{ms:.1f}")))
        checks.append(check_schema(revision))
    else:
        path = Path(os.path.abspath(path))
        where = clean_text(str(path))
        folder = path.parent if path.parent.is_dir() else None
        checks.append(check_location(path, mountinfo))
        perms = check_permissions(path)  # before opening it: closing the last connection removes the -wal
        if not path.is_file():
            checks.append(_check("db", FAIL, tr("doctor.db.missing", path=where), tr("doctor.db.missing.fix", path=where)))
        else:
            try:
                mode, revision, lease_row, integrity = _read_sqlite(path, full=full)
            except sqlite3.Error as error:
                checks.append(_check("db", FAIL, tr("doctor.db.unreadable", path=where, error=_error_text(error)),
                                     tr("doctor.db.unreadable.fix")))
            else:
                checks.append(check_journal(mode, str(path)))
                if integrity is not None:
                    checks.append(_check("integrity", OK, "ok") if integrity == "ok" else
                                  _check("integrity", FAIL, clean_text(integrity[:300]), tr("doctor.integrity.fix")))
                checks.append(check_schema(revision))
        checks += perms
        if folder is not None and (disk := _disk_of(folder)) is not None:
            checks.append(disk)
    checks.append(creds)
    checks.append(check_lease(lease_row, syncing=syncing, config=str(config), now=now))
    checks.append(check_log_dirs(log_files))
    return checks


def format_line(check: Check) -> str:
    """One line: the status word, the title, what was found, and the fix."""
    from widgets.i18n import tr

    line = tr("doctor.line", status=tr(f"doctor.{check.status}"), title=check.title, detail=check.detail)
    return line + tr("doctor.fix", fix=check.fix) if check.fix else line


async def run_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Print the checks; exit 0 when none failed, else 1."""
    from connectors.config import read
    from deskapp.settings import choose_db, default_config_path
    from widgets.i18n import tr

    config_path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    log_files = [settings.log_file]
    if config_path.is_file():
        config, _ = read(config_path)
        if config is not None:
            choose_db(settings, config.db)  # the database `deskapp` and `deskapp sync` would open
            if config.log_file is not None:
                log_files.append(config.log_file)
    checks = await diagnose(settings.db, config=config_path, log_files=log_files, full=args.full)
    failed = sum(c.status == FAIL for c in checks)
    db = settings.db if "://" not in settings.db else shown_db(settings.db)
    if args.json:
        print(json.dumps({"ok": not failed, "db": clean_text(db), "config": clean_text(str(config_path)),
                          "checks": [asdict(c) for c in checks]}, ensure_ascii=False, indent=1))
        return 1 if failed else 0
    for check in checks:
        print(format_line(check))
    print(tr("doctor.summary", n=len(checks), fail=failed, warn=sum(c.status == WARN for c in checks),
             db=clean_text(db)), file=sys.stdout)
    return 1 if failed else 0
