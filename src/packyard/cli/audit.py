"""``packyard audit list|tail``: the project's audit log (its admins).

Client commands (on :mod:`packyard.client`, configured by the ``HCP_*`` environment).
``list`` shows entries newest first; ``tail`` shows the latest ones oldest first, then polls
for new entries until Ctrl-C, each entry once. ``--format json``: ``list`` prints one JSON
array, ``tail`` one JSON object per line (the stream has no end).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from packyard.cli import completion
from packyard.cli.common import (
    EXIT_USAGE,
    STATUS,
    TEXT,
    TIME,
    Cell,
    Column,
    Format,
    FormatOption,
    client,
    emit_json,
    fail,
    handle_errors,
    plain_lines,
    render_rows,
)
from packyard.cli.database import DatabaseUrl

if TYPE_CHECKING:
    from packyard.client import PackerClient
    from packyard.client.models import AuditEvent

audit_app = typer.Typer(
    help="The project's audit log: who changed what, when (admins).", no_args_is_help=True
)

_TIME_HELP = "RFC 3339 time (2026-12-05T12:00:00Z) or a duration back from now (30m, 12h, 7d, 2w)."
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since", metavar="TIME", help=f"From this time on: {_TIME_HELP}", show_default=False
    ),
]
UntilOption = Annotated[
    str | None,
    typer.Option(
        "--until", metavar="TIME", help=f"Before this time: {_TIME_HELP}", show_default=False
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor", help="Changes by this principal or user (id or name).", show_default=False
    ),
]
BucketOption = Annotated[
    str | None,
    typer.Option(
        "--bucket",
        "-b",
        help="Changes of this bucket.",
        autocompletion=completion.buckets,
        show_default=False,
    ),
]
ActionOption = Annotated[
    str | None,
    typer.Option(
        "--action",
        help="create, update, delete, or a description such as 'Revoked version'.",
        show_default=False,
    ),
]
OperatorDataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Operator: read the server's database in this data directory instead of the API "
        "(every project, and the changes outside any project; no credentials).",
        show_default=False,
    ),
]
OperatorProject = Annotated[
    str | None,
    typer.Option(
        "--project-id",
        help="Operator: only this project ('' for the changes outside any project).",
        show_default=False,
    ),
]
StatusOption = Annotated[
    str | None, typer.Option("--status", help="OK or FAILED.", show_default=False)
]

COLUMNS = (
    Column("Time", TIME),
    Column("Seq"),
    Column("Status", STATUS),
    Column("Action"),
    Column("Actor"),
    Column("Bucket"),
    Column("Description", TEXT),  # last: its words are the rest of a plain line
)


def _time(value: str | None, option: str, now: datetime) -> str | None:
    """``value`` as an RFC 3339 time: a duration counts back from the command's start, so
    ``tail`` keeps one starting point while it polls."""
    if value is None:
        return None
    from packyard.domain.audit import parse_time
    from packyard.errors import ApiError

    try:
        return parse_time(value, now, field=option).isoformat()
    except ApiError as exc:
        fail(exc.message, EXIT_USAGE)


def _row(event: AuditEvent) -> list[Cell]:
    return [
        event.timestamp,
        event.seq,
        event.status,
        event.action,
        event.actor.name,
        event.bucket,
        event.description + (f" ({event.error})" if event.error else ""),
    ]


def _filters(
    now: datetime,
    since: str | None,
    until: str | None,
    actor: str | None,
    bucket: str | None,
    action: str | None,
    status: str | None,
) -> dict[str, Any]:
    if status is not None and status.strip().upper() not in ("OK", "FAILED"):
        fail(f"--status must be OK or FAILED, not {status!r}.", EXIT_USAGE)
    return {
        "since": _time(since, "--since", now),
        "until": _time(until, "--until", now),
        "actor": actor,
        "bucket": bucket,
        "action": action,
        "status": status,
    }


@audit_app.command("list")
@handle_errors
def audit_list(
    since: SinceOption = None,
    until: UntilOption = None,
    actor: ActorOption = None,
    bucket: BucketOption = None,
    action: ActionOption = None,
    status: StatusOption = None,
    data_dir: OperatorDataDir = None,
    database_url: DatabaseUrl = None,
    project_id: OperatorProject = None,
    format: FormatOption = None,
) -> None:
    """List audit entries, newest first."""
    filters = _filters(datetime.now(UTC), since, until, actor, bucket, action, status)
    if data_dir is not None:
        events = _from_database(data_dir, database_url, project_id, filters)
    elif project_id is not None:
        fail("--project-id goes with --data-dir (the operator's view).", EXIT_USAGE)
    else:
        with client() as hcp:
            events = list(hcp.list_audit(**filters))
    if format is Format.json:
        emit_json([e.raw for e in events])
        return
    if data_dir is None:
        render_rows(COLUMNS, [_row(e) for e in events], format)
        return
    # the operator's view spans projects: which one (- for changes outside any project)
    columns = (COLUMNS[0], Column("Project"), *COLUMNS[1:])
    render_rows(columns, [[r[0], e.project_id, *r[1:]] for e in events for r in [_row(e)]], format)


@audit_app.command("tail")
@handle_errors
def audit_tail(
    since: SinceOption = None,
    actor: ActorOption = None,
    bucket: BucketOption = None,
    action: ActionOption = None,
    status: StatusOption = None,
    lines: Annotated[
        int,
        typer.Option("--lines", "-n", min=0, help="Without --since: how many latest entries."),
    ] = 10,
    interval: Annotated[
        float, typer.Option("--interval", min=0.2, help="Seconds between polls.")
    ] = 2.0,
    format: FormatOption = None,
) -> None:
    """Show the latest entries, then new ones as they come, until Ctrl-C."""
    started = datetime.now(UTC)
    filters = _filters(started, since, None, actor, bucket, action, status)
    as_json = format is Format.json
    header = [True]
    seen: set[str] = set()

    def show(batch: list[AuditEvent]) -> None:
        batch = [e for e in batch if e.id not in seen]
        seen.update(e.id for e in batch)
        batch.sort(key=lambda e: (e.project_id, e.seq))
        if as_json:
            sys.stdout.write("".join(orjson.dumps(e.raw).decode() + "\n" for e in batch))
            sys.stdout.flush()
            return
        if not batch and not header[0]:
            return
        out = plain_lines(COLUMNS, [_row(e) for e in batch])
        sys.stdout.write("".join(f"{line}\n" for line in out[0 if header[0] else 1 :]))
        sys.stdout.flush()
        header[0] = False

    # Entries commit a moment after their time is taken: polls look back this far.
    margin = timedelta(minutes=1)
    try:
        with client() as hcp:
            if since is not None:
                show(list(hcp.list_audit(**filters)))
            else:
                show(_newest(hcp.list_audit(**filters), lines))
            while True:
                time.sleep(interval)
                recent = {**filters, "since": (started - margin).isoformat()}
                if filters["since"] and filters["since"] > recent["since"]:
                    recent["since"] = filters["since"]
                show(_until_seen(hcp, recent, seen))
    except KeyboardInterrupt:
        return


def _from_database(
    data_dir: Path, database_url: str | None, project_id: str | None, filters: dict[str, Any]
) -> list[AuditEvent]:
    """Every scope's entries (or ``project_id``'s), read by the operator from the database."""
    from packyard.cli.admin import operator_services
    from packyard.client.models import AuditEvent
    from packyard.domain.audit import audit_query
    from packyard.domain.models import Operator
    from packyard.domain.paging import MAX_PAGE_SIZE, PageRequest
    from packyard.services.audit import stream_record

    query = audit_query(datetime.now(UTC), **filters)
    found: list[AuditEvent] = []
    with operator_services(data_dir, database_url) as services:
        token: str | None = None
        while True:
            page = services.audit.list_all(
                Operator(), query, PageRequest(size=MAX_PAGE_SIZE, next_token=token), project_id
            )
            found += [AuditEvent.parse(stream_record(r)) for r in page.items]
            if not page.next_token:
                return found
            token = page.next_token


def _newest(events: Iterator[AuditEvent], count: int) -> list[AuditEvent]:
    found: list[AuditEvent] = []
    for event in events:
        if len(found) >= count:
            break
        found.append(event)
    return found


def _until_seen(hcp: PackerClient, filters: dict[str, Any], seen: set[str]) -> list[AuditEvent]:
    """Entries newer than the newest one shown: the listing is in commit order, newest
    first, so everything after a shown entry was shown."""
    found: list[AuditEvent] = []
    for event in hcp.list_audit(**filters):
        if event.id in seen:
            break
        found.append(event)
    return found
