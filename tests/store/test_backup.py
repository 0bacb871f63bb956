"""SQLite backup and restore mechanics (packyard.store.backup)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from packyard.store import backup as sqlite_backup
from packyard.store.engine import Store, sqlite_url
from packyard.store.migrate import alembic_config

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _database(path: Path, revision: str = "head") -> Path:
    store = Store(sqlite_url(str(path)))
    try:
        cfg = alembic_config()
        with store.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
    finally:
        store.dispose()
    return path


def _revision(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        conn.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def _held_open(database: Path) -> Iterator[None]:
    """Another process with a WAL connection to ``database`` (as a running server has)."""
    code = (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(database)!r})\n"
        "c.execute('PRAGMA journal_mode=WAL'); c.execute('SELECT 1').fetchone()\n"
        "print('ready', flush=True); sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        yield
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


def test_backup_is_a_private_verified_single_file(tmp_path: Path) -> None:
    source = _database(tmp_path / "packyard.db")
    target = tmp_path / "out" / "backup.db"
    target.parent.mkdir()
    result = sqlite_backup.backup(source, target)
    assert (result.path, result.size, result.revision) == (target, target.stat().st_size, HEAD)
    assert _mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["backup.db"]  # no tmp, no -wal
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()


def test_backup_refuses_an_existing_file_unless_forced(tmp_path: Path) -> None:
    source = _database(tmp_path / "packyard.db")
    target = tmp_path / "backup.db"
    target.write_bytes(b"keep me")
    with pytest.raises(sqlite_backup.BackupError):
        sqlite_backup.backup(source, target)
    assert target.read_bytes() == b"keep me"
    assert sqlite_backup.backup(source, target, force=True).revision == HEAD
    assert _mode(target) == 0o600


def test_in_use_sees_another_process_and_not_a_closed_database(tmp_path: Path) -> None:
    database = _database(tmp_path / "packyard.db")
    with _held_open(database):
        assert sqlite_backup.in_use(database)
    assert not sqlite_backup.in_use(database)


def test_restore_migrates_an_older_backup_into_place(tmp_path: Path) -> None:
    old = _database(tmp_path / "old.db", "0004")
    data_dir = tmp_path / "data"
    result = sqlite_backup.restore(old, data_dir, data_dir / "packyard.db")
    assert (result.restored_revision, result.revision) == ("0004", HEAD)
    assert _revision(data_dir / "packyard.db") == HEAD
    assert _mode(data_dir / "packyard.db") == 0o600
    assert _mode(data_dir) == 0o700


def test_restore_replaces_only_when_forced_and_drops_the_stale_wal(tmp_path: Path) -> None:
    backup = _database(tmp_path / "backup.db")
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    current = data_dir / "packyard.db"
    current.write_bytes(b"current")
    stale = data_dir / "packyard.db-wal"
    stale.write_bytes(b"stale")
    with pytest.raises(sqlite_backup.BackupError):
        sqlite_backup.restore(backup, data_dir, current)
    assert current.read_bytes() == b"current"
    assert sqlite_backup.restore(backup, data_dir, current, force=True).revision == HEAD
    assert _revision(current) == HEAD
    assert not stale.exists()


def test_restore_refuses_while_the_database_is_open(tmp_path: Path) -> None:
    backup = _database(tmp_path / "backup.db")
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    current = _database(data_dir / "packyard.db")
    before = current.read_bytes()
    with _held_open(current), pytest.raises(sqlite_backup.BackupError):
        sqlite_backup.restore(backup, data_dir, current, force=True)
    assert current.read_bytes() == before


@pytest.mark.parametrize("kind", ["text", "plain-sqlite", "damaged"])
def test_restore_refuses_what_is_not_a_packyard_database(tmp_path: Path, kind: str) -> None:
    candidate = tmp_path / "candidate.db"
    if kind == "text":
        candidate.write_text("not a database\n")
    elif kind == "plain-sqlite":
        conn = sqlite3.connect(candidate)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    else:
        data = bytearray(_database(tmp_path / "good.db").read_bytes())
        data[4096 * 3 : 4096 * 6] = b"\xff" * (4096 * 3)
        candidate.write_bytes(bytes(data))
    data_dir = tmp_path / "data"
    with pytest.raises(sqlite_backup.BackupError):
        sqlite_backup.restore(candidate, data_dir, data_dir / "packyard.db")
    assert not (data_dir / "packyard.db").exists()


def test_a_stepped_backup_copies_one_snapshot_while_another_connection_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backup, "STEP_PAGES", 1)
    monkeypatch.setattr(sqlite_backup, "STEP_SLEEP_S", 0.002)
    source = _database(tmp_path / "packyard.db")
    writer = sqlite3.connect(source, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE burst (n INTEGER, pad BLOB)")
    stop = threading.Event()
    commits: list[int] = []

    def write() -> None:
        n = 0
        while not stop.is_set():
            writer.execute("INSERT INTO burst VALUES (?, zeroblob(2000))", (n,))
            commits.append(n)
            n += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while len(commits) < 50:
            time.sleep(0.001)
        done_before = len(commits)
        result = sqlite_backup.backup(source, tmp_path / "backup.db")
        during = len(commits) - done_before
    finally:
        stop.set()
        thread.join(timeout=30)
        writer.close()
    assert result.revision == HEAD
    assert during > 0  # the writer was not blocked by the copy
    conn = sqlite3.connect(tmp_path / "backup.db")
    try:
        copied = [r[0] for r in conn.execute("SELECT n FROM burst ORDER BY n")]
    finally:
        conn.close()
    assert copied == list(range(len(copied))) and len(copied) >= done_before
