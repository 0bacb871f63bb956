"""``packyard access grant|revoke|list``: roles on the project and on single buckets.

Client commands (on :mod:`packyard.client`, configured by the ``HCP_*`` environment) for the
project's admins, and for a bucket's admins on that bucket. A member is a service principal
(id or client id) or a console user (id or email).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from packyard.cli import completion
from packyard.cli.common import (
    TEXT,
    Cell,
    Column,
    Format,
    FormatOption,
    client,
    emit,
    emit_json,
    handle_errors,
    render_rows,
)
from packyard.domain.enums import Role

if TYPE_CHECKING:
    from packyard.client.models import AccessEntry

access_app = typer.Typer(
    help="Roles on the project and grants on single buckets (admins).", no_args_is_help=True
)

MemberArg = Annotated[
    str,
    typer.Argument(
        metavar="MEMBER",
        help="Service principal (id or client id) or console user (id or email).",
        show_default=False,
    ),
]
BucketOption = Annotated[
    str | None,
    typer.Option(
        "--bucket",
        "-b",
        help="On this bucket only (default: the whole project).",
        autocompletion=completion.buckets,
        show_default=False,
    ),
]


@access_app.command("list")
@handle_errors
def access_list(bucket: BucketOption = None, format: FormatOption = None) -> None:
    """List who holds which role: on the project and on each bucket (or on one bucket)."""
    with client() as hcp:
        entries = hcp.list_access(bucket)
    if format is Format.json:
        emit_json([e.raw for e in entries])
        return
    columns = (Column("Scope"), Column("Role"), Column("Type"), Column("ID"), Column("Name", TEXT))
    rows: list[list[Cell]] = [
        [_scope(e), e.role, e.member_type, e.member_id, e.name] for e in entries
    ]
    render_rows(columns, rows, format)


@access_app.command("grant")
@handle_errors
def access_grant(
    member: MemberArg,
    role: Annotated[Role, typer.Argument(metavar="ROLE", help="viewer, contributor or admin.")],
    bucket: BucketOption = None,
    format: FormatOption = None,
) -> None:
    """Give a member a role on the project, or with --bucket on one bucket (it replaces the
    member's role there; grants add up: the higher role applies)."""
    with client() as hcp:
        entry = hcp.grant_access(member, role.value, bucket)
    emit(
        format,
        entry.raw,
        f"{escape(entry.name)} is now {entry.role} on {escape(_scope(entry))}.",
    )


@access_app.command("revoke")
@handle_errors
def access_revoke(
    member: MemberArg, bucket: BucketOption = None, format: FormatOption = None
) -> None:
    """Take a member's role on the project, or with --bucket its grant on one bucket, away."""
    with client() as hcp:
        hcp.revoke_access(member, bucket)
    scope = f"bucket {bucket}" if bucket else "the project"
    emit(
        format,
        {"revoked": member, "bucket": bucket},
        f"{escape(member)} no longer has a role on {escape(scope)}.",
    )


def _scope(entry: AccessEntry) -> str:
    return f"bucket {entry.bucket}" if entry.bucket else "project"
