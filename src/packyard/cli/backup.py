"""``packyard backup`` and ``packyard restore``: the SQLite database of a data directory
(the mechanics are in :mod:`packyard.store.backup`). PostgreSQL has ``pg_dump``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from packyard.cli.common import EXIT_USAGE, Format, FormatOption, emit_json, fail
from packyard.cli.database import DatabaseUrl, DataDir, server_database
from packyard.config import DB_FILE

# sqlalchemy and packyard.store are imported when a command runs, not when `packyard` starts.

_PG_BACKUP = (
    "the database is PostgreSQL: back it up with pg_dump -Fc (see README, Backup and restore)."
)
_PG_RESTORE = (
    "the database is PostgreSQL: restore it with pg_restore (see README, Backup and restore)."
)

BackupFile = Annotated[Path, typer.Argument(metavar="FILE", help="The backup file.")]
Force = Annotated[bool, typer.Option("--force", help="Replace an existing file / database.")]


def _sqlite_path(directory: Path, database_url: str | None, postgres_message: str) -> Path:
    """The SQLite database file of the data directory or of ``--database-url``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if database_url is None:
        return directory / DB_FILE
    try:
        url = make_url(database_url)
    except ArgumentError:
        fail("--database-url is not a database URL.", EXIT_USAGE)
    if url.get_backend_name() == "postgresql" or database_url.startswith("postgres://"):
        fail(postgres_message, EXIT_USAGE)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        fail("--database-url names no SQLite database file.", EXIT_USAGE)
    return Path(url.database)


def backup(
    file: BackupFile,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    force: Force = False,
    format: FormatOption = None,
) -> None:
    """Copy the SQLite database to FILE (0600) while the server keeps running."""
    from packyard.store import backup as sqlite_backup

    database = _sqlite_path(*server_database(data_dir, database_url), _PG_BACKUP)
    try:
        result = sqlite_backup.backup(database, file, force=force)
    except sqlite_backup.BackupError as exc:
        fail(str(exc))
    if format is Format.json:
        emit_json({"path": str(result.path), "size": result.size, "revision": result.revision})
    else:
        print(f"{result.path}: {result.size} bytes, schema revision {result.revision}")


def restore(
    file: BackupFile,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="The data directory to restore into.")
    ],
    force: Force = False,
    format: FormatOption = None,
) -> None:
    """Put a backup made by `packyard backup` in place (the server must be stopped), then
    bring its schema up to date."""
    from packyard.store import backup as sqlite_backup

    database = _sqlite_path(*server_database(data_dir, None), _PG_RESTORE)
    try:
        result = sqlite_backup.restore(file, data_dir, database, force=force)
    except sqlite_backup.BackupError as exc:
        fail(str(exc))
    if format is Format.json:
        emit_json(
            {
                "path": str(result.path),
                "restored_revision": result.restored_revision,
                "revision": result.revision,
            }
        )
    else:
        print(
            f"{result.path}: restored schema revision {result.restored_revision}, "
            f"now {result.revision}"
        )


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
