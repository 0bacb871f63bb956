"""Shared plumbing of the client commands: SDK construction, output, errors, exit codes.

Exit codes of every client command:

* ``0``: success;
* ``1``: a failed check, a missing object, or any API/connection error;
* ``2``: a usage error (bad option, unreadable input file).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, ProgressColumn
from rich.table import Table

from packyard.client import ApiError, PackerClient
from packyard.client.models import WireModel

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

P = ParamSpec("P")
R = TypeVar("R")


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[
    Format, typer.Option("--format", "-o", help="table (for people) or json (for scripts).")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)  # errors stay on one line


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print a one-line error on stderr and exit."""
    stderr().print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def warn(message: str) -> None:
    stderr().print(f"[yellow]warning:[/yellow] {escape(message)}")


def describe(exc: ApiError) -> str:
    where = f"HTTP {exc.http_status}, " if exc.http_status else ""
    return f"{exc.message} ({where}code {int(exc.code)} {exc.code.name})"


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn SDK errors into one-line messages and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            fail(describe(exc))
        except KeyboardInterrupt:
            stderr().print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def client() -> PackerClient:
    """The SDK client configured from the ``HCP_*`` environment."""
    return PackerClient.from_env()


@contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner on stderr while a long call runs (only on a terminal)."""
    console = stderr()
    if not console.is_terminal:
        yield
        return
    with console.status(escape(message)):
        yield


def progress_bar(*columns: str | ProgressColumn, show: bool) -> Progress:
    """A progress bar on stderr that disappears when done (and stays hidden unless ``show``)."""
    return Progress(*columns, console=stderr(), transient=True, disable=not show)


def emit_json(payload: Any) -> None:
    sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2, default=_default).decode())
    sys.stdout.write("\n")
    sys.stdout.flush()


def _default(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.raw
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


STATUS_STYLE = {
    "VERSION_ACTIVE": "green",
    "VERSION_REVOKED": "red",
    "VERSION_REVOCATION_SCHEDULED": "yellow",
    "VERSION_FAILED": "red",
    "VERSION_CANCELLED": "red",
    "VERSION_RUNNING": "cyan",
    "VERSION_INCOMPLETE": "yellow",
    "BUILD_DONE": "green",
    "BUILD_FAILED": "red",
    "BUILD_CANCELLED": "red",
    "BUILD_RUNNING": "cyan",
    "UP_TO_DATE": "green",
    "OUT_OF_DATE": "yellow",
    "UNDETERMINED": "dim",
}


def status(value: str) -> str:
    """A status enum as coloured markup, without its redundant prefix."""
    short = value.removeprefix("VERSION_").removeprefix("BUILD_")
    style = STATUS_STYLE.get(value)
    return f"[{style}]{escape(short)}[/{style}]" if style else escape(short)


NO_WRAP = {"ID", "Fingerprint", "Version", "Status", "Channel", "Bucket", "Result", "Action"}


def add_columns(table: Table, names: tuple[str, ...]) -> None:
    """Identifiers never wrap (they are copied from the screen); other cells fold."""
    for name in names:
        if name in NO_WRAP:
            table.add_column(name, no_wrap=True)
        else:
            table.add_column(name, overflow="fold")


def parse_labels(items: list[str] | None) -> dict[str, str] | None:
    """``["k=v", …]`` → ``{k: v}``; ``None`` when no ``--label`` was given."""
    if items is None:
        return None
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--label expects KEY=VALUE, got {item!r}.", EXIT_USAGE)
        labels[key] = value
    return labels


def labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
