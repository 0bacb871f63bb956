"""The options that locate a server's data and database, shared by ``serve``, ``check``
and the operator commands, and where a database password may come from.

A password on the command line is visible to every local user (``ps``,
``/proc/PID/cmdline``) for as long as the command runs: ``packyard serve`` runs for
months. ``PACKYARD_DATABASE_URL`` (the environment of a process is readable by its
own user only) or ``packyard serve --database-url-file`` (a 0600 file) keep it private.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Annotated

import typer

from packyard.cli.common import warn
from packyard.config import default_data_dir, load_advertised, url_passwords

_VISIBLE = (
    "the database password given with --database-url is visible to other local users "
    "(ps, /proc); set PACKYARD_DATABASE_URL instead, or use serve's --database-url-file."
)


def warn_password_on_command_line(
    ctx: typer.Context, param: typer.CallbackParam, value: str | None
) -> str | None:
    """Typer callback of ``--database-url``: a warning when the URL typed on the command
    line carries a password (the value itself is never printed)."""
    source = ctx.get_parameter_source(param.name) if param.name else None
    if value and source is not None and source.name == "COMMANDLINE" and url_passwords(value):
        warn(_VISIBLE)
    return value


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default: a per-user data directory).",
        envvar="PACKYARD_DATA_DIR",
        show_envvar=True,
        show_default=False,
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help=(
            "postgresql://… to use PostgreSQL; default: SQLite in the data directory. "
            "Pass a password in $PACKYARD_DATABASE_URL: on the command line others can read it."
        ),
        envvar="PACKYARD_DATABASE_URL",
        show_envvar=True,
        callback=warn_password_on_command_line,
    ),
]


def server_database(data_dir: Path | None, database_url: str | None) -> tuple[Path, str | None]:
    """The data directory and the database URL of the server that last ran there (as
    ``serve`` recorded it) unless ``--database-url`` names another."""
    directory = data_dir or default_data_dir()
    if database_url is None:
        advertised = load_advertised(directory)
        database_url = advertised.database_url if advertised else None
    return directory, database_url


def existing_server_database(
    data_dir: Path | None, database_url: str | None
) -> tuple[Path, str | None]:
    """:func:`server_database`, refusing (exit 2) a data directory without a database: the
    commands that work on a server's registry never create one."""
    from packyard.cli.common import EXIT_USAGE, fail
    from packyard.config import DB_FILE

    directory, url = server_database(data_dir, database_url)
    if url is None and not (directory / DB_FILE).exists() and _usable_dir(directory):
        fail(f"no database in {directory}; pass --data-dir or --database-url.", EXIT_USAGE)
    return directory, url


def _usable_dir(directory: Path) -> bool:
    """A directory, or nothing yet: a path that cannot be a directory (a file, or under one)
    is left to the start-up checks, which say exactly what is wrong with it."""
    try:
        return stat.S_ISDIR(directory.stat().st_mode)
    except FileNotFoundError:
        return True
    except OSError:  # e.g. a path under a file
        return False
