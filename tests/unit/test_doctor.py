"""``deskapp doctor``: each check on real files — a good database passes; a readable file, a rollback
journal, a missing credential, a network mount, a schema from another version are each reported
with a fix; secrets are named, never printed."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.migrate import HEAD
from deskapp.__main__ import main
from deskapp.commands.doctor import (
    FAIL,
    OK,
    WARN,
    Check,
    _reachable_by_others,
    check_disk,
    check_location,
    diagnose,
    mount_of,
    parse_mountinfo,
)
from widgets.i18n import set_language

GB = 1024**3

MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
41 22 0:35 / /mnt/orders rw,relatime shared:20 - nfs4 fileserver:/export/orders rw,vers=4.2,addr=10.0.0.5
42 22 0:36 / /mnt/my\040share rw,relatime shared:21 - cifs //nas/share rw,vers=3.1.1
43 41 8:2 / /mnt/orders/local rw,relatime shared:22 - xfs /dev/sdb1 rw
44 22 0:37 / /home/agent/remote rw,nosuid,nodev,relatime shared:23 - fuse.sshfs agent@host:/srv rw
"""


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKAPP_LOG_FILE", str(tmp_path / "logs" / "deskapp.log"))
    for name in ("DESKAPP_LANG", "DESKAPP_CONFIG", "DESKAPP_DB", "DESKAPP_RULES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no deskapp.toml found by accident
    set_language("zh")


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "srv"
    folder.mkdir(mode=0o770)
    folder.chmod(0o770)  # whatever the umask: group rw, nothing for others
    return folder


@pytest.fixture
def good_db(private_dir: Path, sqlite_template: Path) -> Path:
    """A migrated WAL database as the shared-host set-up leaves it: group rw, nothing for others."""
    path = private_dir / "deskapp.db"
    shutil.copy(sqlite_template, path)
    path.chmod(0o660)
    return path


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory other users can enter (in the system temp directory, not pytest's private one)."""
    folder = Path(tempfile.mkdtemp(prefix="deskapp-doctor-"))
    folder.chmod(0o755)
    if not _reachable_by_others(folder):
        shutil.rmtree(folder)
        pytest.skip("the system temp directory is private here")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run(db: Path | str, **kwargs) -> list[Check]:
    config = kwargs.pop("config", Path("deskapp.toml"))
    return asyncio.run(diagnose(str(db), config=config, log_files=[Path(os.environ["DESKAPP_LOG_FILE"])], **kwargs))


def by_id(checks: list[Check]) -> dict[str, Check]:
    return {c.id: c for c in checks}


def doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["doctor", *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_good_database_passes(good_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checks = run(good_db, full=True)
    found = by_id(checks)
    assert {"location", "journal", "integrity", "schema", "perms", "dir", "creds", "lease", "log"} <= found.keys()
    assert [c for c in checks if c.status != OK and c.id != "disk"] == []  # the disk is the host's, not ours
    assert found["schema"].detail.startswith(HEAD)
    disk_failed = found.get("disk") is not None and found["disk"].status == FAIL

    code, out = doctor(capsys, "--db", str(good_db))
    assert code == (1 if disk_failed else 0)
    lines = out.strip().splitlines()
    assert lines[0].startswith("OK    所在磁盘：本机磁盘")
    assert any(line.startswith("OK    日志模式：WAL") for line in lines)
    assert lines[-1].startswith("共 ") and "0 项失败" in lines[-1] or disk_failed


def test_a_world_readable_database_is_reported_with_the_fix(open_dir: Path, sqlite_template: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = open_dir / "deskapp.db"
    shutil.copy(sqlite_template, path)
    path.chmod(0o644)
    Path(f"{path}-wal").write_bytes(b"")
    Path(f"{path}-wal").chmod(0o666)
    perms = by_id(run(path))["perms"]
    assert perms.status == FAIL  # others can reach the directory: the file is exposed now
    assert "-rw-r--r--" in perms.detail and "其他用户可读" in perms.detail
    assert "其他用户可读写" in perms.detail and "-wal" in perms.detail
    assert f"chmod o-rwx {path} {path}-wal" in perms.fix

    code, out = doctor(capsys, "--db", str(path))
    assert code == 1
    assert any(line.startswith("失败  文件权限：") and "chmod o-rwx" in line for line in out.splitlines())
    assert any(line.startswith("注意  数据库目录：") for line in out.splitlines())  # 0755: others can enter


def test_behind_a_private_directory_a_readable_file_only_warns(good_db: Path) -> None:
    good_db.chmod(0o644)
    assert not _reachable_by_others(good_db.parent)  # pytest's base temp directory is 0700
    assert by_id(run(good_db))["perms"].status == WARN


def test_in_the_shared_setgid_directory_the_group_must_be_able_to_write(private_dir: Path, good_db: Path) -> None:
    private_dir.chmod(0o2770)
    good_db.chmod(0o640)  # what SQLite makes of its 0644 under umask 007
    perms = by_id(run(good_db))["perms"]
    assert perms.status == WARN and "-rw-r-----" in perms.detail and f"chmod g+rw {good_db}" in perms.fix
    good_db.chmod(0o660)
    assert by_id(run(good_db))["perms"].status == OK


def test_a_world_writable_directory_fails(open_dir: Path, sqlite_template: Path) -> None:
    path = open_dir / "deskapp.db"
    shutil.copy(sqlite_template, path)
    path.chmod(0o660)
    open_dir.chmod(0o777)
    folder = [c for c in run(path) if c.id == "dir"]
    assert [c.status for c in folder] == [FAIL] and "其他用户可写" in folder[0].detail


def test_a_rollback_journal_database_fails_and_is_not_changed(good_db: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(good_db) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    journal = by_id(run(good_db))["journal"]
    assert journal.status == FAIL and "delete" in journal.detail and "journal_mode=WAL" in journal.fix
    code, out = doctor(capsys, "--db", str(good_db), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert [c["status"] for c in report["checks"] if c["id"] == "journal"] == ["fail"]
    with sqlite3.connect(good_db) as conn:  # the doctor looked; it did not switch the file to WAL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


CONFIG = """
[channels.taobao]
app_key = "12345678"
secret_env = "DOCTOR_TEST_APP_SECRET"
[[channels.taobao.shops]]
code = "tb-main"
session_env = "DOCTOR_TEST_SESSION"
"""


def test_a_missing_environment_variable_fails_by_name_and_no_secret_is_printed(
    good_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "deskapp.toml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("DOCTOR_TEST_APP_SECRET", "s3cret-value-never-printed")
    monkeypatch.delenv("DOCTOR_TEST_SESSION", raising=False)
    code, out = doctor(capsys, "--db", str(good_db), "--config", str(config))
    assert code == 1
    [line] = [line for line in out.splitlines() if "连接器凭据" in line]
    assert line.startswith("失败") and "DOCTOR_TEST_SESSION" in line and "EnvironmentFile" in line
    assert "DOCTOR_TEST_APP_SECRET" not in line  # it is set: not reported
    assert "s3cret" not in out
    # The config has a shop to sync and nobody holds the lease: a warning that says how to start one.
    [lease] = [line for line in out.splitlines() if "同步租约" in line]
    assert lease.startswith("注意") and "deskapp sync --config" in lease

    monkeypatch.setenv("DOCTOR_TEST_SESSION", "another-secret-value")
    main(["--lang", "en", "doctor", "--db", str(good_db), "--config", str(config)])
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "connector credentials" in line]
    assert line.startswith("OK") and "1 shops" in line
    assert "secret-value" not in out


def test_the_lease_holder_and_since_when(good_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    with sqlite3.connect(good_db) as conn:
        conn.execute("INSERT INTO sync_lease (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
                     ("sync", "deskhost:4242:abcd1234", "2026-11-20 05:00:00.000000", "2026-11-20 06:01:00.000000"))
    lease = by_id(run(good_db, now=now))["lease"]
    assert lease.status == OK
    assert "deskhost:4242:abcd1234" in lease.detail and "2026-11-20 13:00" in lease.detail  # shown in UTC+8
    expired = by_id(run(good_db, now=now + timedelta(minutes=5)))["lease"]
    assert "过期" in expired.detail


def test_mountinfo_is_parsed_and_a_network_share_fails(tmp_path: Path) -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.fstype for m in mounts] == ["ext4", "proc", "nfs4", "cifs", "xfs", "fuse.sshfs"]
    assert mounts[3].mount_point == "/mnt/my share"  # \040 is a space
    assert mount_of("/mnt/orders/deskapp.db", mounts).fstype == "nfs4"
    assert mount_of("/mnt/orders/local/deskapp.db", mounts).fstype == "xfs"  # the longest mount point wins
    assert mount_of("/mnt/ordersX/deskapp.db", mounts).fstype == "ext4"  # a prefix of the name is not a parent
    sample = tmp_path / "mountinfo"
    sample.write_text(MOUNTINFO, encoding="utf-8")
    nfs = check_location(Path("/mnt/orders/deskapp.db"), sample)
    assert nfs.status == FAIL and "nfs4" in nfs.detail and "fileserver:/export/orders" in nfs.detail
    assert "WAL" in nfs.fix and "SSH" in nfs.fix
    assert check_location(Path("/mnt/my share/deskapp.db"), sample).status == FAIL
    assert check_location(Path("/home/agent/remote/deskapp.db"), sample).status == FAIL
    assert check_location(Path("/srv/deskapp/deskapp.db"), sample).status == OK
    assert check_location(Path("/srv/x.db"), tmp_path / "no-such-mountinfo").status == WARN


def test_the_real_mount_table_is_read(good_db: Path) -> None:
    if not Path("/proc/self/mountinfo").exists():
        pytest.skip("no /proc here")
    location = by_id(run(good_db))["location"]
    assert location.status in (OK, WARN) and location.detail  # a pytest temp directory is not a share


def test_a_schema_from_another_version(good_db: Path) -> None:
    with sqlite3.connect(good_db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    behind = by_id(run(good_db))["schema"]
    assert behind.status == WARN and "运行一次 deskapp" in behind.fix and HEAD in behind.detail
    with sqlite3.connect(good_db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (f"{int(HEAD) + 1:04d}",))
    ahead = by_id(run(good_db))["schema"]
    assert ahead.status == FAIL and "升级" in ahead.fix


def test_a_missing_database_fails_without_being_created(private_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = private_dir / "nothing.db"
    code, out = doctor(capsys, "--db", str(missing))
    assert code == 1 and f"{missing} 不存在" in out
    assert not missing.exists()


def test_free_disk_thresholds() -> None:
    assert check_disk(500 * 1024**2, 100 * GB).status == FAIL  # under 1 GB
    assert check_disk(10 * GB, 1000 * GB).status == FAIL  # 1 %
    assert check_disk(3 * GB, 20 * GB).status == WARN  # under 5 GB
    ok = check_disk(50 * GB, 200 * GB)
    assert ok.status == OK and "50.0 GB" in ok.detail and "25%" in ok.detail


def test_english_lines(good_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good_db.chmod(0o644)
    main(["--lang", "en", "doctor", "--db", str(good_db)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("OK    disk: a local disk")
    assert any(line.startswith("WARN  file permissions: other users can read") for line in lines)
    assert lines[-1].endswith(f"(database: {good_db})")


@pytest.mark.pg
def test_a_postgresql_url_connects_instead_of_looking_at_files(pg_database: tuple[str, str]) -> None:
    url, _ = pg_database
    checks = run(url)
    found = by_id(checks)
    assert found["server"].status == OK and "PostgreSQL" in found["server"].detail
    assert found["schema"].status == OK
    assert not {"location", "journal", "perms", "disk"} & found.keys()
    refused = by_id(run("postgresql+asyncpg://deskapp:pw-not-shown@127.0.0.1:1/x"))["server"]
    assert refused.status == FAIL and "pw-not-shown" not in refused.detail and "***" in refused.detail
