"""Backup and restore of a SQLite data directory (PostgreSQL has ``pg_dump``/``pg_restore``).

``backup`` copies the live database through SQLite's online backup API while the server
keeps serving. The copy runs in steps inside one read transaction on the source: in WAL
mode a reader never blocks writers, and the open read transaction pins one snapshot, so
commits made meanwhile by the server neither stall nor restart the copy (without it,
SQLite restarts a stepped backup whenever another connection writes, which under a steady
stream of pushes may never finish). The copy goes to a temporary file created 0600 beside
the target, is switched out of WAL mode (one self-contained file), checked with
``PRAGMA integrity_check`` and only then moved into place atomically.

``restore`` refuses while a server has the database open. The server holds no lock for
its whole life (its writer lock and start-up lock are taken briefly), so the test is
SQLite's own: every connection to a WAL database holds a shared POSIX lock on the
"DMS" byte of the ``-shm`` file for as long as it is open (the server's pooled connections
stay open while it runs); an exclusive lock on that byte is granted only when no process
has the database open. The lock goes away with a dead process, so a crash never makes a
data directory look busy.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from packyard.files import FILE_MODE, ensure_private_dir
from packyard.store.engine import Store, sqlite_url
from packyard.store.migrate import alembic_config, upgrade

# Pages copied per step, and the pause between steps.
STEP_PAGES = 1024
STEP_SLEEP_S = 0.001
# The first byte of SQLite's unix VFS dead-man-switch lock in the -shm file (os_unix.c:
# UNIX_SHM_BASE + SQLITE_SHM_NLOCK = (22 + 8) * 4 + 8).
_SHM_DMS = 128
_MAGIC = b"SQLite format 3\x00"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is one line for the operator."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    revision: str


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    restored_revision: str
    revision: str


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _create_private_tmp(target: Path) -> Path:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    _remove(tmp, *_sidecars(tmp))  # a left-over of a crash
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    return tmp


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def _verify(conn: sqlite3.Connection, what: str) -> str:
    """The schema revision of a sound Packyard database; ``BackupError`` otherwise."""
    try:
        result = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{what} is not a usable SQLite database: {exc}") from None
    if result != ["ok"]:
        raise BackupError(f"{what} fails SQLite's integrity check: {result[0]}")
    revision = _revision(conn)
    if revision is None:
        raise BackupError(f"{what} is not a Packyard database (no schema revision).")
    return revision


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(database: Path, target: Path, *, force: bool = False) -> BackupResult:
    """Copy the SQLite database ``database`` (which may be in use) to ``target``."""
    if not database.is_file():
        raise BackupError(f"there is no database at {database}.")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; pass --force to replace it.")
    if target.is_dir():
        raise BackupError(f"{target} is a directory.")
    try:
        tmp = _create_private_tmp(target)
    except OSError as exc:
        raise BackupError(f"cannot write beside {target}: {exc.strerror}") from None
    try:
        source = sqlite3.connect(database, isolation_level=None, timeout=30)
        copy = sqlite3.connect(tmp, isolation_level=None)
        try:
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pin a snapshot
            source.backup(copy, pages=STEP_PAGES, sleep=STEP_SLEEP_S)
            source.execute("COMMIT")
            copy.execute("PRAGMA journal_mode=DELETE")
            revision = _verify(copy, "the copy")
        finally:
            copy.close()
            source.close()
        _fsync(tmp)
        if force:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if a file appeared meanwhile: never overwrite
            tmp.unlink()
    except FileExistsError:
        raise BackupError(f"{target} exists; pass --force to replace it.") from None
    except (OSError, sqlite3.Error) as exc:
        raise BackupError(f"backup failed: {exc}") from None
    finally:
        _remove(tmp, *_sidecars(tmp))
    return BackupResult(target, target.stat().st_size, revision)


def in_use(database: Path) -> bool:
    """Whether some process has the WAL database ``database`` open (see the module doc).

    Only for a process that has no connection to ``database`` itself: POSIX locks belong
    to the process, so its own would not count, and closing the probe's descriptor
    would drop them.
    """
    shm = database.with_name(database.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackupError(f"cannot tell whether {database} is in use: {exc.strerror}") from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the lock, if it was granted
    return False


def inspect(path: Path) -> str:
    """The schema revision of the Packyard SQLite backup ``path``; ``BackupError`` if it is
    none, is damaged or comes from a newer Packyard."""
    try:
        with path.open("rb") as fh:
            header = fh.read(len(_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    if header != _MAGIC:
        raise BackupError(f"{path} is not a SQLite database.")
    uri = f"file:{path.resolve()}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None
    try:
        revision = _verify(conn, str(path))
    finally:
        conn.close()
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = scripts.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown revision
        known = False
    if not known:
        raise BackupError(
            f"{path} has schema revision {revision}, unknown to this Packyard (a newer one?)."
        )
    return revision


def restore(source: Path, data_dir: Path, database: Path, *, force: bool = False) -> RestoreResult:
    """Put the backup ``source`` in place as ``database`` (in ``data_dir``) and migrate it."""
    if in_use(database):
        raise BackupError(f"a server has {database} open; stop it before restoring.")
    if database.exists() and not force:
        raise BackupError(f"{database} exists; pass --force to replace it.")
    restored = inspect(source)
    try:
        ensure_private_dir(data_dir)
        tmp = _create_private_tmp(database)
        try:
            with source.open("rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            _fsync(tmp)
            if in_use(database):  # a server started meanwhile
                raise BackupError(f"a server has {database} open; stop it before restoring.")
            # The old database's WAL would be replayed into the restored one.
            _remove(*_sidecars(database))
            os.replace(tmp, database)
        finally:
            _remove(tmp)
    except OSError as exc:
        raise BackupError(f"restore failed: {exc}") from None
    store = Store(sqlite_url(str(database)))
    try:
        upgrade(store)
        with store.read() as conn:
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").fetchone()
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0][:300]
        raise BackupError(f"restored, but migrating it failed: {first}") from None
    finally:
        store.dispose()
    return RestoreResult(database, restored, str(row[0]) if row else restored)
