"""Shared plumbing of the client commands: SDK construction, output, errors, exit codes.

Exit codes of every client command:

* ``0``: success;
* ``1``: a failed check, a missing object, or any API/connection error;
* ``2``: a usage error (bad option, unreadable input file).

Output (``--format``/``-o``): ``table`` for people (the default on a terminal), ``plain``
for pipes and ``grep``/``awk`` (the default when stdout is not a terminal: a header of
upper-case column names, one record per line, columns aligned with spaces, ``-`` for an
empty cell, RFC 3339 UTC times, no colour, never wrapped) and ``json`` (stable, for
scripts). Every command renders records through :func:`render_rows` /
:func:`render_record`, so the formats hold everywhere.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, ParamSpec, TypeVar

import orjson
import typer
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import Progress, ProgressColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup
from typer.exceptions import TyperException

from packyard.errors import ApiError, Code
from packyard.startup import one_line

if TYPE_CHECKING:  # the SDK (httpx) is imported when a command runs, not when `packyard` starts
    from packyard.client import PackerClient

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

P = ParamSpec("P")
R = TypeVar("R")


class Format(StrEnum):
    table = "table"
    plain = "plain"
    json = "json"


FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-o",
        help="table (for people; default on a terminal), plain (for grep/awk; default when "
        "piped) or json (for scripts).",
        show_default=False,
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def resolve(format: Format | None) -> Format:
    """The format asked for, else ``table`` on a terminal and ``plain`` in a pipe."""
    if format is not None:
        return format
    return Format.table if sys.stdout.isatty() else Format.plain


def stdout(width: int | None = None) -> Console:
    return Console(highlight=False, soft_wrap=False, width=width)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)  # errors stay on one line


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print a one-line error on stderr and exit."""
    stderr().print(f"[red]error:[/red] {escape(one_line(message))}")
    raise typer.Exit(code)


def warn(message: str) -> None:
    stderr().print(f"[yellow]warning:[/yellow] {escape(one_line(message))}")


# --- errors ------------------------------------------------------------------------------

# Server texts that HCP fixes on the wire, and what a person reads instead.
_MISSING = re.compile(
    r"^(?:Error: )?The (?P<kind>bucket|version|channel|build) with (?:identifier|fingerprint) "
    r"(?P<name>.+?) does not exist(?: in bucket (?P<bucket>\S+?))?\.?$"
)
_MISSING_VERSION = re.compile(r"^Version with fingerprint (?P<name>.+) not found$")
_EXISTS = re.compile(
    r"^(?:Error: )?The (?P<kind>bucket|channel) with identifier (?P<name>.+?) already exists\.?$"
)

_HINTS: dict[Code, str] = {
    Code.UNAUTHENTICATED: "check HCP_CLIENT_ID and HCP_CLIENT_SECRET",
    Code.PERMISSION_DENIED: "check the role of HCP_CLIENT_ID on the project",
    Code.UNIMPLEMENTED: "this server does not support it",
    Code.RESOURCE_EXHAUSTED: "too many requests; retry later",
    Code.INTERNAL: "a server error; see the server's log",
    Code.UNKNOWN: "a server error; see the server's log",
}


def describe(exc: ApiError, bucket: str | None = None, *, hint: bool = True) -> str:
    """One line of plain language for an SDK error: the server's message cleaned up (no
    ``Error:`` prefix, no code names, no HTTP status), with a hint (about the ``HCP_*``
    client settings) where one helps."""
    message = one_line(exc.message).removeprefix("Error: ").strip()
    if found := _MISSING.match(exc.message.strip()):
        in_bucket = found["bucket"] or (bucket if found["kind"] != "bucket" else None)
        where = f" in bucket {in_bucket}" if in_bucket else ""
        message = f"{found['kind']} {found['name']} not found{where}"
    elif found := _MISSING_VERSION.match(message):
        where = f" in bucket {bucket}" if bucket else ""
        message = f"version {found['name']} not found{where}"
    elif found := _EXISTS.match(message):
        message = f"{found['kind']} {found['name']} already exists"
    elif message:
        message = message[0].lower() + message[1:] if message[1:2].islower() else message
    else:
        message = "the request failed"
    message = message.rstrip(". ")
    advice = _HINTS.get(exc.code) if hint else None
    return f"{message} ({advice})" if advice else message


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn SDK errors into one-line messages and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            bucket = kwargs.get("bucket")
            fail(describe(exc, bucket if isinstance(bucket, str) else None))
        except KeyboardInterrupt:
            stderr().print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


class OneLineErrors(TyperGroup):
    """The root command: a usage error is one line on stderr (``error: … Try '… --help'.``)
    with exit code 2, instead of a framed panel."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except typer.Abort:
            stderr().print("[red]error:[/red] aborted.")
            code = EXIT_FAILED
        except TyperException as exc:  # click's exceptions (typer carries its own click)
            code = getattr(exc, "exit_code", EXIT_USAGE)
            if type(exc).__name__ == "NoArgsIsHelpError":  # as typer does: show the help
                if self.rich_markup_mode is None:
                    exc.show()  # type: ignore[attr-defined]
            else:
                ctx = getattr(exc, "ctx", None)
                try_help = f" Try '{ctx.command_path} --help'." if ctx is not None else ""
                message = escape(sentence(exc.format_message()))
                stderr().print(f"[red]error:[/red] {message}{try_help}")
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def sentence(text: str) -> str:
    """``text`` on one line, starting lower-case (after ``error:``), ending with a period."""
    text = one_line(text).replace("Value error, ", "")  # typer's wording for a bad choice
    if text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def client() -> PackerClient:
    """The SDK client configured from the ``HCP_*`` environment."""
    from packyard.client import PackerClient

    _require_credentials(os.environ)
    return PackerClient.from_env()


_ENV_HINT = "run `packyard env` on the server and export its output"


def _require_credentials(env: Any) -> None:
    """Name the missing ``HCP_*`` variable before the SDK gives a generic complaint."""
    client_id, secret = env.get("HCP_CLIENT_ID"), env.get("HCP_CLIENT_SECRET")
    if client_id and not secret:
        fail(f"HCP_CLIENT_SECRET is not set (HCP_CLIENT_ID is); {_ENV_HINT}.")
    if secret and not client_id:
        fail(f"HCP_CLIENT_ID is not set (HCP_CLIENT_SECRET is); {_ENV_HINT}.")
    if client_id or env.get("HCP_CRED_FILE"):
        return
    if not (Path.home() / ".config" / "hcp" / "cred_file.json").exists():
        fail(f"HCP_CLIENT_ID is not set; {_ENV_HINT}.")


# --- output ------------------------------------------------------------------------------


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
    from packyard.client.models import WireModel

    if isinstance(value, WireModel):
        return value.raw
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def when(value: datetime | None) -> str:
    """A time for people: local, to the second."""
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def rfc3339(value: datetime | None) -> str:
    """A time for pipes: RFC 3339 in UTC, one token (``2026-12-05T12:00:00Z``)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    "OK": "green",
    "INFO": "cyan",
    "WARN": "yellow",
    "FAIL": "red",
}


def short_status(value: str) -> str:
    return value.removeprefix("VERSION_").removeprefix("BUILD_")


def status(value: str) -> str:
    """A status enum as coloured markup, without its redundant prefix."""
    style = STATUS_STYLE.get(value)
    short = escape(short_status(value))
    return f"[{style}]{short}[/{style}]" if style else short


Kind = Literal["id", "text", "time", "status", "list"]
ID: Kind = "id"  # identifiers, names, addresses, regions, image ids, numbers: never broken
TEXT: Kind = "text"  # prose (descriptions, messages, notes): may fold in a table
TIME: Kind = "time"  # local time in a table, RFC 3339 UTC in plain
STATUS: Kind = "status"  # coloured in a table, without the enum prefix
LIST: Kind = "list"  # one item per line in a table, comma-separated in plain

Cell = str | int | datetime | Sequence[str] | None


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind = ID

    @property
    def header(self) -> str:
        return self.name.upper().replace(" ", "_").replace("/", "_")


def _plain_cell(column: Column, value: Cell) -> str:
    if isinstance(value, datetime):
        text = rfc3339(value)
    elif isinstance(value, str):
        text = short_status(value) if column.kind == STATUS else value
    elif isinstance(value, int):
        text = str(value)
    elif value is None:
        text = ""
    else:
        text = ",".join(value)
    return one_line(text) or "-"


def _table_cell(column: Column, value: Cell) -> Text:
    if isinstance(value, datetime):
        return Text(when(value))
    if isinstance(value, str):
        if column.kind == STATUS:
            return Text(short_status(value), style=STATUS_STYLE.get(value, ""))
        return Text(value)
    if isinstance(value, int):
        return Text(str(value))
    if value is None:
        return Text("")
    return Text("\n".join(value))


def plain_lines(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> list[str]:
    """Header and rows, aligned with spaces; the last column is not padded."""
    grid = [[c.header for c in columns]]
    grid += [[_plain_cell(c, v) for c, v in zip(columns, row, strict=True)] for row in rows]
    widths = [max(cell_len(r[i]) for r in grid) for i in range(len(columns))]
    return [
        "   ".join(
            cell + " " * (w - cell_len(cell)) for cell, w in zip(r, widths, strict=True)
        ).rstrip()
        for r in grid
    ]


def _write(lines: list[str]) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


def render_rows(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    format: Format | None,
    *,
    title: str | None = None,
) -> None:
    """Records as a table (for people) or as plain aligned lines (for pipes)."""
    if resolve(format) is Format.plain:
        _write(plain_lines(columns, rows))
        return
    table = Table(title=Text(title) if title else None, title_justify="left")
    for c in columns:
        if c.kind == TEXT:
            table.add_column(c.name, overflow="fold")
        else:
            table.add_column(c.name, no_wrap=True)
    for row in rows:
        table.add_row(*(_table_cell(c, v) for c, v in zip(columns, row, strict=True)))
    needed = sum(_unbroken(c, [r[i] for r in rows]) + 3 for i, c in enumerate(columns)) + 1
    print_wide(table, needed)


def _unbroken(column: Column, values: list[Cell]) -> int:
    """How wide a column must be for none of its cells to be broken (prose: a little)."""
    texts = [column.name, *(_table_cell(column, v).plain for v in values)]
    if column.kind == TEXT:
        return min(12, max(cell_len(t) for t in texts))
    return max(cell_len(line) for t in texts for line in t.splitlines() or [""])


def print_wide(renderable: RenderableType, needed: int) -> None:
    """Print on stdout at the terminal's width, or wider when ``needed`` (the terminal may
    then wrap the line on screen, but nothing is cut or folded in what is written)."""
    width = Console().width
    stdout(max(width, needed)).print(renderable)


Field = tuple[Column, Cell]


def render_record(fields: Sequence[Field], format: Format | None) -> None:
    """One record: ``key  value`` lines in a table, a one-row table in plain."""
    if resolve(format) is Format.plain:
        _write(plain_lines([c for c, _ in fields], [[v for _, v in fields]]))
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for column, value in fields:
        table.add_row(column.name, _table_cell(column, value))
    key = max((cell_len(c.name) for c, _ in fields), default=0)
    value = max((_unbroken(c, [v]) for c, v in fields), default=0)
    print_wide(table, key + 2 + value)  # two columns with a space of padding each


def say(format: Format | None, text: str) -> None:
    """A sentence (rich markup) on stdout: coloured in a table, bare in plain."""
    if resolve(format) is Format.plain:
        _write([one_line(Text.from_markup(text).plain)])
    else:
        stdout().print(text, soft_wrap=True)


def summary(format: Format | None, text: str) -> None:
    """A sentence (markup) about rows that follow: on stderr in plain, where stdout holds
    only the header and rows."""
    if resolve(format) is Format.plain:
        stderr().print(text)
    else:
        say(format, text)


def emit(format: Format | None, payload: Any, text: str) -> None:
    """``payload`` as JSON for scripts, or the sentence ``text`` (markup) for people."""
    if format is Format.json:
        emit_json(payload)
    else:
        say(format, text)


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


def labels_list(labels: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(labels.items())]


def labels_text(labels: dict[str, str]) -> str:
    return ", ".join(labels_list(labels))
