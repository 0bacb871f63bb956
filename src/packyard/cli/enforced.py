"""``packyard enforced …``: enforced provisioner blocks, their versions and bucket links.

Client commands (on :mod:`packyard.client`, configured by the ``HCP_*`` environment). The
project's contributors and admins manage blocks; every ``packer build`` into a linked bucket
runs the linked version's provisioners after the template's own.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from packyard.cli import completion
from packyard.cli.common import (
    EXIT_USAGE,
    LIST,
    TEXT,
    TIME,
    Cell,
    Column,
    Field,
    Format,
    FormatOption,
    YesOption,
    client,
    emit,
    emit_json,
    fail,
    handle_errors,
    labels_list,
    parse_labels,
    render_record,
    render_rows,
)

if TYPE_CHECKING:
    from packyard.client.models import EnforcedBlockDetail, EnforcedBlockLink

enforced_app = typer.Typer(
    help="Enforced provisioner blocks: published once, run by every build of linked buckets.",
    no_args_is_help=True,
)


class TemplateKind(StrEnum):
    hcl2 = "hcl2"
    json = "json"


BlockArg = Annotated[str, typer.Argument(metavar="BLOCK", help="Block name or id.")]
VersionArg = Annotated[
    str, typer.Argument(metavar="VERSION", help="Version label (e.g. v1) or id.")
]
FileOption = Annotated[
    Path,
    typer.Option(
        "--file",
        "-f",
        help="The provisioner block(s): HCL2 (.pkr.hcl or .pkr.json syntax), or with --type "
        'json the legacy {"provisioners": [...]} form. "-" reads stdin.',
        show_default=False,
        allow_dash=True,
    ),
]
TypeOption = Annotated[
    TemplateKind, typer.Option("--type", "-t", help="Template type of the content.")
]
LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="KEY=VALUE (repeatable).", show_default=False),
]
DescriptionOption = Annotated[
    str | None,
    typer.Option("--description", "-d", help="What this version does.", show_default=False),
]


def _read(path: Path) -> str:
    try:
        if str(path) == "-":
            return sys.stdin.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"Cannot read {path}: {getattr(e, 'strerror', None) or e}.", EXIT_USAGE)


def _detail_rows(details: list[EnforcedBlockDetail]) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for d in details:
        v = d.version
        if v is None:
            continue
        rows.append(
            [d.name, v.version, v.template_type, v.id, v.created_at, v.additional_description]
        )
    return rows


_DETAIL_COLUMNS = (
    Column("Block"),
    Column("Version"),
    Column("Type"),
    Column("Version id"),
    Column("Created", TIME),
    Column("Description", TEXT),
)


@enforced_app.command("list")
@handle_errors
def enforced_list(format: FormatOption = None) -> None:
    """List the project's enforced blocks."""
    with client() as hcp:
        blocks = hcp.list_enforced_blocks()
    if format is Format.json:
        emit_json([b.raw for b in blocks])
        return
    columns = (Column("Name"), Column("ID"), Column("Labels", LIST), Column("Updated", TIME))
    rows: list[list[Cell]] = [[b.name, b.id, labels_list(b.labels), b.updated_at] for b in blocks]
    render_rows(columns, rows, format)


@enforced_app.command("get")
@handle_errors
def enforced_get(block: BlockArg, format: FormatOption = None) -> None:
    """Show a block and its latest version's content."""
    with client() as hcp:
        b = hcp.get_enforced_block(block)
    if format is Format.json:
        emit_json(b.raw)
        return
    v = b.latest_version
    fields: list[Field] = [
        (Column("Name"), b.name),
        (Column("ID"), b.id),
        (Column("Labels", LIST), labels_list(b.labels)),
        (Column("Latest version"), v.version if v else ""),
        (Column("Template type"), v.template_type if v else ""),
        (Column("Description", TEXT), v.additional_description if v else ""),
        (Column("Updated", TIME), b.updated_at),
        (Column("Content", TEXT), v.block_content if v else ""),
    ]
    render_record(fields, format)


@enforced_app.command("create")
@handle_errors
def enforced_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The block's name.")],
    file: FileOption,
    type: TypeOption = TemplateKind.hcl2,
    version: Annotated[
        str | None, typer.Option("--version", "-V", help="First version's label (default v1).")
    ] = None,
    label: LabelOption = None,
    description: DescriptionOption = None,
    format: FormatOption = None,
) -> None:
    """Create a block with its first version (checked as Packer parses it)."""
    labels = parse_labels(label)
    content = _read(file)
    with client() as hcp:
        b = hcp.create_enforced_block(
            name,
            content,
            template_type=type.value.upper(),
            version=version,
            labels=labels,
            description=description,
        )
    v = b.latest_version
    emit(
        format,
        b.raw,
        f"Created enforced block {escape(b.name)} ({b.id}) at version "
        f"{escape(v.version if v else '')}.",
    )


@enforced_app.command("update")
@handle_errors
def enforced_update(
    block: BlockArg,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    label: LabelOption = None,
    format: FormatOption = None,
) -> None:
    """Rename a block and/or replace its labels."""
    labels = parse_labels(label)
    if name is None and labels is None:
        fail("Nothing to change: give --name and/or --label.", EXIT_USAGE)
    with client() as hcp:
        b = hcp.update_enforced_block(block, name=name, labels=labels)
    emit(format, b.raw, f"Updated enforced block {escape(b.name)}.")


@enforced_app.command("delete")
@handle_errors
def enforced_delete(block: BlockArg, yes: YesOption = False, format: FormatOption = None) -> None:
    """Delete a block and all its versions (refused while a version is linked)."""
    if not yes:
        typer.confirm(f"Delete enforced block {block} and all its versions?", abort=True)
    with client() as hcp:
        hcp.delete_enforced_block(block)
    emit(format, {"deleted": block}, f"Deleted enforced block {escape(block)}.")


@enforced_app.command("versions")
@handle_errors
def enforced_versions(block: BlockArg, format: FormatOption = None) -> None:
    """List a block's versions, newest first."""
    with client() as hcp:
        details = hcp.list_enforced_block_versions(block)
    if format is Format.json:
        emit_json([d.raw for d in details])
        return
    render_rows(_DETAIL_COLUMNS, _detail_rows(details), format)


@enforced_app.command("add-version")
@handle_errors
def enforced_add_version(
    block: BlockArg,
    file: FileOption,
    version: Annotated[
        str, typer.Option("--version", "-V", help="The new version's label.", show_default=False)
    ],
    type: TypeOption = TemplateKind.hcl2,
    description: DescriptionOption = None,
    format: FormatOption = None,
) -> None:
    """Add a version to a block (link it to buckets with `link`)."""
    content = _read(file)
    with client() as hcp:
        v = hcp.create_enforced_block_version(
            block,
            content,
            version=version,
            template_type=type.value.upper(),
            description=description,
        )
    emit(format, v.raw, f"Added version {escape(v.version)} ({v.id}) to {escape(block)}.")


@enforced_app.command("link")
@handle_errors
def enforced_link(
    block: BlockArg,
    version: VersionArg,
    buckets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="BUCKET...",
            help="The buckets to link: they REPLACE the version's linked buckets (none: unlink "
            "all). A bucket linked to another version of the block moves to this one.",
            autocompletion=completion.buckets,
            show_default=False,
        ),
    ] = None,
    format: FormatOption = None,
) -> None:
    """Set the buckets whose builds run this version of the block."""
    with client() as hcp:
        links = hcp.link_enforced_block(block, version, list(buckets or []))
    if format is Format.json:
        emit_json([x.raw for x in links])
        return
    names = ", ".join(escape(b) for b in buckets or []) or "no bucket"
    emit(format, None, f"{escape(block)} {escape(version)} is linked to {names}.")


@enforced_app.command("linked")
@handle_errors
def enforced_linked(block: BlockArg, version: VersionArg, format: FormatOption = None) -> None:
    """List the buckets linked to a version of a block."""
    with client() as hcp:
        links = hcp.enforced_block_linked_buckets(block, version)
    if format is Format.json:
        emit_json([x.raw for x in links])
        return
    columns = (Column("Bucket"), Column("Bucket id"), Column("Linked", TIME))
    render_rows(columns, [_link_row(x) for x in links], format)


def _link_row(link: EnforcedBlockLink) -> list[Cell]:
    bucket = link.bucket
    return [bucket.name if bucket else "", bucket.id if bucket else link.bucket_id, link.created_at]


@enforced_app.command("for-bucket")
@handle_errors
def enforced_for_bucket(
    bucket: Annotated[
        str,
        typer.Argument(metavar="BUCKET", help="Bucket name.", autocompletion=completion.buckets),
    ],
    format: FormatOption = None,
) -> None:
    """What `packer build` into BUCKET runs: each linked block and its version."""
    with client() as hcp:
        details = hcp.enforced_blocks_for_bucket(bucket)
    if format is Format.json:
        emit_json([d.raw for d in details])
        return
    render_rows(_DETAIL_COLUMNS, _detail_rows(details), format)
