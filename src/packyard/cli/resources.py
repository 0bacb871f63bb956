"""``packyard buckets|versions|builds|channels|ancestry|artifact``: registry commands.

They run on :mod:`packyard.client`, so they work against any HCP Packer
2023-01-01 endpoint configured by the ``HCP_*`` environment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from packyard.cli import completion
from packyard.cli.common import (
    EXIT_USAGE,
    LIST,
    STATUS,
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
    print_wide,
    progress,
    render_record,
    render_rows,
    resolve,
    say,
    sentence,
    status,
    summary,
    when,
)
from packyard.errors import ApiError

if TYPE_CHECKING:  # the SDK is imported when a command runs (see common.client)
    from packyard.client.models import (
        AncestryRelation,
        Build,
        Channel,
        ExternalArtifact,
        RestorePreview,
        RevocationPreview,
        Version,
        VersionRef,
    )

buckets_app = typer.Typer(
    help="Buckets: named collections of image versions.", no_args_is_help=True
)
versions_app = typer.Typer(
    help="Versions: one Packer run each, keyed by fingerprint (revoke, restore).",
    no_args_is_help=True,
)
builds_app = typer.Typer(help="Builds: the components of a version.", no_args_is_help=True)
channels_app = typer.Typer(
    help="Channels: named pointers to versions (assign, promote, history).",
    no_args_is_help=True,
)
artifact_app = typer.Typer(
    help="Artifacts: resolve an image id for scripts, or find where an id comes from.",
    no_args_is_help=True,
)

Bucket = Annotated[
    str,
    typer.Argument(
        metavar="BUCKET",
        help="Bucket name.",
        show_default=False,
        autocompletion=completion.buckets,
    ),
]
Fingerprint = Annotated[
    str,
    typer.Argument(
        metavar="FINGERPRINT",
        help="Version fingerprint.",
        show_default=False,
        autocompletion=completion.fingerprints,
    ),
]
ChannelName = Annotated[
    str,
    typer.Argument(
        metavar="CHANNEL",
        help="Channel name.",
        show_default=False,
        autocompletion=completion.channels,
    ),
]
Labels = Annotated[list[str] | None, typer.Option("--label", "-l", help="KEY=VALUE (repeatable).")]


def _confirm(yes: bool, question: str) -> None:
    """Ask before a deletion (abort on no) unless ``--yes`` was given."""
    if not yes:
        typer.confirm(question, abort=True)


def _version_label(v: Version | None) -> str:
    if v is None:
        return "[dim]none[/dim]"
    return f"{escape(v.name)} ({escape(v.fingerprint)})"


def _version_cells(v: Version | None) -> list[Cell]:
    """The name, fingerprint and status cells of a channel's version (empty: none)."""
    if v is None:
        return [None, None, None]
    return [v.name, v.fingerprint, v.status]


BUILD_COLUMNS = (
    Column("ID"),
    Column("Component"),
    Column("Platform"),
    Column("Status", STATUS),
    Column("Artifacts", LIST),
    Column("Labels", LIST),
)


def _artifacts(build: Build) -> list[str]:
    return [
        f"{a.region}:{a.external_identifier}" if a.region else a.external_identifier
        for a in build.artifacts
    ]


def _render_builds(builds: list[Build], format: Format | None) -> None:
    rows: list[list[Cell]] = [
        [b.id, b.component_type, b.platform, b.status, _artifacts(b), labels_list(b.labels)]
        for b in builds
    ]
    render_rows(BUILD_COLUMNS, rows, format, title="Builds")


def _revocation_fields(v: Version) -> list[Field]:
    inherited = v.revocation_inherited_from if v.revocation_type == "INHERITED" else None
    return [
        (Column("Revoke at", TIME), v.revoke_at),
        (Column("Revoked by"), v.revocation_author or None),
        (
            Column("Inherited from"),
            f"{inherited.bucket_name}/{inherited.version_name}" if inherited else None,
        ),
        (Column("Revocation message", TEXT), v.revocation_message or None),
    ]


def _show_version(v: Version, format: Format | None) -> None:
    fields: list[Field] = [
        (Column("Bucket"), v.bucket_name),
        (Column("Version"), v.name),
        (Column("Fingerprint"), v.fingerprint),
        (Column("Status", STATUS), v.status),
        (Column("Author"), v.author_id),
        (Column("Created", TIME), v.created_at),
        (Column("Updated", TIME), v.updated_at),
        (Column("Template"), v.template_type),
        (Column("Parents", STATUS), v.parents.status if v.parents is not None else None),
        *_revocation_fields(v),
    ]
    if resolve(format) is Format.table:  # people: only what is set
        fields = [(c, value) for c, value in fields if value]
    render_record(fields, format)
    if v.builds:
        _blank(format)
        _render_builds(v.builds, format)


def _blank(format: Format | None) -> None:
    """The empty line between two sections of plain output."""
    if resolve(format) is Format.plain:
        print()


# --- buckets -------------------------------------------------------------------
@buckets_app.command("list")
@handle_errors
def buckets_list(format: FormatOption = None) -> None:
    """List buckets, by name."""
    with client() as hcp, progress("Listing buckets…"):
        buckets = list(hcp.list_buckets(order_by=["name"]))
    if format is Format.json:
        emit_json([b.raw for b in buckets])
        return
    columns = (
        Column("Name"),
        Column("Latest"),
        Column("Status", STATUS),
        Column("Platforms", LIST),
        Column("Versions"),
        Column("Updated", TIME),
        Column("Description", TEXT),
    )
    rows: list[list[Cell]] = []
    for b in buckets:
        latest = b.latest_version
        rows.append(
            [
                b.name,
                latest.name if latest else None,
                latest.status if latest else None,
                b.platforms,
                b.version_count,
                b.updated_at,
                b.description,
            ]
        )
    render_rows(columns, rows, format)


@buckets_app.command("get")
@handle_errors
def buckets_get(bucket: Bucket, format: FormatOption = None) -> None:
    """Show one bucket and its latest version."""
    with client() as hcp:
        b = hcp.get_bucket(bucket)
    if format is Format.json:
        emit_json(b.raw)
        return
    latest = b.latest_version
    fields: list[Field] = [
        (Column("Name"), b.name),
        (Column("ID"), b.id),
        (Column("Latest version"), latest.name if latest else None),
        (Column("Latest fingerprint"), latest.fingerprint if latest else None),
        (Column("Versions"), b.version_count),
        (Column("Platforms", LIST), b.platforms),
        (Column("Labels", LIST), labels_list(b.labels)),
        (Column("Created", TIME), b.created_at),
        (Column("Updated", TIME), b.updated_at),
        (Column("Parents", STATUS), b.parents.status if b.parents is not None else None),
        (Column("Children", STATUS), b.children.status if b.children is not None else None),
        (Column("Description", TEXT), b.description),
    ]
    render_record(fields, format)


@buckets_app.command("create")
@handle_errors
def buckets_create(
    bucket: Bucket,
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
    label: Labels = None,
    format: FormatOption = None,
) -> None:
    """Create a bucket (it gets the managed 'latest' channel)."""
    with client() as hcp:
        b = hcp.create_bucket(bucket, description=description, labels=parse_labels(label))
    emit(format, b.raw, f"Created bucket {escape(b.name)}.")


@buckets_app.command("update")
@handle_errors
def buckets_update(
    bucket: Bucket,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="KEY=VALUE (repeatable); replaces all labels."),
    ] = None,
    format: FormatOption = None,
) -> None:
    """Change a bucket's description and/or labels."""
    if description is None and label is None:
        fail("nothing to update: give --description and/or --label.", EXIT_USAGE)
    with client() as hcp:
        b = hcp.update_bucket(bucket, description=description, labels=parse_labels(label))
    emit(format, b.raw, f"Updated bucket {escape(b.name)}.")


@buckets_app.command("delete")
@handle_errors
def buckets_delete(bucket: Bucket, yes: YesOption = False, format: FormatOption = None) -> None:
    """Delete a bucket with ALL its versions, builds and channels."""
    _confirm(yes, f"Delete bucket {bucket} and everything in it?")
    with client() as hcp, progress(f"Deleting {bucket}…"):
        gone = hcp.get_bucket(bucket)
        channels = len(hcp.list_channels(bucket))
        hcp.delete_bucket(bucket)
    emit(
        format,
        {"deleted": bucket, "versions": gone.version_count, "channels": channels},
        f"Deleted bucket {escape(bucket)} with {gone.version_count} version(s) and "
        f"{channels} channel(s).",
    )


# --- versions ------------------------------------------------------------------
@versions_app.command("list")
@handle_errors
def versions_list(bucket: Bucket, format: FormatOption = None) -> None:
    """List a bucket's versions, newest first."""
    with client() as hcp, progress(f"Listing versions of {bucket}…"):
        versions = list(hcp.list_versions(bucket, order_by=["created_at desc"]))
    if format is Format.json:
        emit_json([v.raw for v in versions])
        return
    columns = (
        Column("Version"),
        Column("Fingerprint"),
        Column("Status", STATUS),
        Column("Platforms", LIST),
        Column("Created", TIME),
        Column("Revoke at", TIME),
    )
    rows: list[list[Cell]] = [
        [
            v.name,
            v.fingerprint,
            v.status,
            sorted({b.platform for b in v.builds if b.platform}),
            v.created_at,
            v.revoke_at,
        ]
        for v in versions
    ]
    render_rows(columns, rows, format)


@versions_app.command("get")
@handle_errors
def versions_get(bucket: Bucket, fingerprint: Fingerprint, format: FormatOption = None) -> None:
    """Show a version with its builds and artifacts."""
    with client() as hcp:
        v = hcp.get_version(bucket, fingerprint)
    if format is Format.json:
        emit_json(v.raw)
    else:
        _show_version(v, format)


@versions_app.command("delete")
@handle_errors
def versions_delete(
    bucket: Bucket,
    fingerprint: Fingerprint,
    rollback_channels: Annotated[
        bool,
        typer.Option(help="Move user channels that point at it back to their previous version."),
    ] = False,
    yes: YesOption = False,
    format: FormatOption = None,
) -> None:
    """Delete a version with its builds."""
    _confirm(yes, f"Delete version {fingerprint} of {bucket}?")
    with client() as hcp:
        before = {c.name: c.version for c in hcp.list_channels(bucket)}
        hcp.delete_version(bucket, fingerprint, rollback_channels=rollback_channels)
        after = {c.name: c.version for c in hcp.list_channels(bucket)}
    moved = [
        (name, was, after.get(name))
        for name, was in sorted(before.items())
        if was is not None and was.fingerprint == fingerprint and name in after
    ]
    if format is Format.json:
        emit_json(
            {
                "deleted": fingerprint,
                "bucket": bucket,
                "channels": [
                    {
                        "channel_name": name,
                        "from_version": was.raw,
                        "to_version": now.raw if now is not None else None,
                    }
                    for name, was, now in moved
                ],
            }
        )
        return
    done = f"Deleted version {escape(fingerprint)} of {escape(bucket)}."
    if not moved:
        say(format, done)
        return
    summary(format, done)
    if moved:
        rows: list[list[Cell]] = [
            [
                "rolled-back" if now is not None else "emptied",
                bucket,
                name,
                *_version_cells(was)[:2],
                *(_version_cells(now)[:2]),
            ]
            for name, was, now in moved
        ]
        columns = EFFECT_COLUMNS[:-1]  # it happened now
        render_rows(columns, rows, format, title="Channels moved")


def _parse_at(value: str) -> datetime | str:
    if value.lower() == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--at expects an RFC 3339 time (e.g. 2030-01-31T12:00:00Z) or 'now': {value!r}", 2)
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # a naive time is local time
    return parsed.astimezone(UTC)


def _revocation_summary(v: Version) -> str:
    if v.revoked:
        return f"{v.bucket_name} {v.name} ({v.fingerprint}) is revoked."
    if v.revoke_at is not None:
        return f"{v.bucket_name} {v.name} ({v.fingerprint}) will be revoked at {when(v.revoke_at)}."
    return f"{v.bucket_name} {v.name} ({v.fingerprint}) is {v.status}."


@versions_app.command("revoke")
@handle_errors
def versions_revoke(
    bucket: Bucket,
    fingerprint: Fingerprint,
    at: Annotated[
        str | None, typer.Option("--at", help="When: RFC 3339 time, or 'now'.", show_default=False)
    ] = None,
    in_: Annotated[
        str | None,
        typer.Option("--in", help="After a duration, e.g. 30d, 2h45m, 0s.", show_default=False),
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="Why (shown to users).")] = "",
    skip_descendants: Annotated[
        bool, typer.Option("--skip-descendants", help="Do not revoke versions built from it.")
    ] = False,
    no_rollback: Annotated[
        bool,
        typer.Option("--no-rollback", help="Leave channels that point at it where they are."),
    ] = False,
    format: FormatOption = None,
) -> None:
    """Revoke a version now (default), at a time (--at) or after a delay (--in).

    Prints what the revocation changes: the descendants that inherit it and the channels
    rolled back (now, or when a scheduled revocation takes effect).
    """
    if at is not None and in_ is not None:
        fail("--at and --in are mutually exclusive.", EXIT_USAGE)
    if in_ is not None:
        _check_duration(in_)
    revoke_at = _parse_at(at) if at is not None else None
    with client() as hcp, progress(f"Revoking {fingerprint} (descendants, channels)…"):
        try:  # Packyard's own route; other HCP Packer servers do not report the cascade
            effect: RevocationPreview | None = hcp.preview_revocation(
                bucket,
                fingerprint,
                revoke_at=revoke_at,
                revoke_in=in_,
                skip_descendants=skip_descendants,
                disable_rollback_channels=no_rollback,
            )
        except ApiError:
            effect = None  # the revocation itself says what is wrong, if anything
        v = hcp.revoke_version(
            bucket,
            fingerprint,
            revoke_at=revoke_at,
            revoke_in=in_,
            message=message,
            skip_descendants=skip_descendants,
            disable_rollback_channels=no_rollback,
        )
    if format is Format.json:
        emit_json({**v.raw, "effect": effect.raw if effect is not None else None})
        return
    _report_revocation(v, effect, format)


def _check_duration(value: str) -> None:
    from packyard.domain.rules import parse_duration

    try:
        parse_duration(value)
    except ApiError as exc:
        fail(f"--in: {sentence(exc.message)}", EXIT_USAGE)


EFFECT_COLUMNS = (
    Column("Effect"),
    Column("Bucket"),
    Column("Channel"),
    Column("Version"),
    Column("Fingerprint"),
    Column("To version"),
    Column("To fingerprint"),
    Column("At", TIME),
)


def _effect_rows(v: Version, effect: RevocationPreview) -> list[list[Cell]]:
    """One row per change: the version, each descendant that inherits the revocation,
    each channel rolled back (to an older version) or emptied."""
    at = effect.revoke_at or v.revoke_at
    scheduled = not effect.immediate
    rows: list[list[Cell]] = [
        [
            "revocation-scheduled" if scheduled else "revoked",
            v.bucket_name,
            None,
            v.name,
            v.fingerprint,
            None,
            None,
            at,
        ]
    ]
    for d in effect.descendants:
        if d.revoked:
            rows.append(
                [
                    "inherits-scheduled" if scheduled else "inherits",
                    d.bucket_name,
                    None,
                    d.version_name,
                    d.version_fingerprint,
                    None,
                    None,
                    at,
                ]
            )
    for c in effect.channels:
        frm, to = c.from_version, c.to_version
        rows.append(
            [
                "rolled-back" if to is not None else "emptied",
                c.bucket_name,
                c.channel_name,
                frm.version_name if frm else None,
                frm.version_fingerprint if frm else None,
                to.version_name if to else None,
                to.version_fingerprint if to else None,
                at,
            ]
        )
    return rows


def _report_revocation(v: Version, effect: RevocationPreview | None, format: Format | None) -> None:
    sentence_ = escape(_revocation_summary(v))
    if effect is None:
        say(format, sentence_)
        return
    revoked = effect.descendants_revoked
    listed = sum(1 for d in effect.descendants if d.revoked)
    moved = len(effect.channels)
    later = "" if effect.immediate else " when it takes effect"
    counts = f"{revoked} descendant(s) inherit the revocation; {moved} channel(s) roll back{later}."
    more = f" ({revoked - listed} more descendants are not listed.)" if revoked > listed else ""
    summary(format, f"{sentence_} {counts}{more}")
    render_rows(EFFECT_COLUMNS, _effect_rows(v, effect), format, title="Changes")


@versions_app.command("restore")
@handle_errors
def versions_restore(bucket: Bucket, fingerprint: Fingerprint, format: FormatOption = None) -> None:
    """Clear a version's revocation (and what its descendants inherited from it).

    Prints what the restore changes: the version and each descendant whose inherited
    revocation is cleared. Channels stay where the revocation moved them.
    """
    with client() as hcp, progress(f"Restoring {fingerprint}…"):
        try:  # Packyard's own route; other HCP Packer servers do not report the cascade
            effect: RestorePreview | None = hcp.preview_restore(bucket, fingerprint)
        except ApiError:
            effect = None  # the restore itself says what is wrong, if anything
        v = hcp.restore_version(bucket, fingerprint)
    if format is Format.json:
        emit_json({**v.raw, "effect": effect.raw if effect is not None else None})
        return
    sentence_ = f"Restored {escape(v.bucket_name)} {escape(v.name)}: {status(v.status)}."
    if effect is None:
        say(format, sentence_)
        return
    restored = effect.descendants_restored
    more = len(effect.descendants) < restored
    summary(
        format,
        f"{sentence_} {restored} descendant(s) restored with it"
        + (f" ({restored - len(effect.descendants)} not listed)." if more else "."),
    )
    rows: list[list[Cell]] = [["restored", v.bucket_name, v.name, v.fingerprint]]
    rows += [
        ["inherited-restored", d.bucket_name, d.version_name, d.version_fingerprint]
        for d in effect.descendants
    ]
    render_rows(RESTORE_COLUMNS, rows, format, title="Changes")


RESTORE_COLUMNS = (Column("Effect"), Column("Bucket"), Column("Version"), Column("Fingerprint"))


# --- builds --------------------------------------------------------------------
@builds_app.command("list")
@handle_errors
def builds_list(bucket: Bucket, fingerprint: Fingerprint, format: FormatOption = None) -> None:
    """List the builds of a version."""
    with client() as hcp:
        builds = list(hcp.list_builds(bucket, fingerprint))
    if format is Format.json:
        emit_json([b.raw for b in builds])
    else:
        _render_builds(builds, format)


@builds_app.command("get")
@handle_errors
def builds_get(
    bucket: Bucket,
    fingerprint: Fingerprint,
    build_id: Annotated[
        str,
        typer.Argument(
            metavar="BUILD_ID",
            help="Build id.",
            show_default=False,
            autocompletion=completion.builds,
        ),
    ],
    format: FormatOption = None,
) -> None:
    """Show one build with its artifacts."""
    with client() as hcp:
        b = hcp.get_build(bucket, fingerprint, build_id)
    if format is Format.json:
        emit_json(b.raw)
        return
    fields: list[Field] = [
        (Column("ID"), b.id),
        (Column("Component"), b.component_type),
        (Column("Platform"), b.platform),
        (Column("Status", STATUS), b.status),
        (Column("Packer run"), b.packer_run_uuid),
        (Column("Source image"), b.source_external_identifier),
        (Column("Labels", LIST), labels_list(b.labels)),
        (Column("Created", TIME), b.created_at),
        (Column("Updated", TIME), b.updated_at),
    ]
    render_record(fields, format)
    _blank(format)
    render_rows(
        (Column("Region"), Column("External ID"), Column("Created", TIME)),
        [[a.region, a.external_identifier, a.created_at] for a in b.artifacts],
        format,
        title="Artifacts",
    )


# --- channels ------------------------------------------------------------------
def _render_channels(channels: list[Channel], format: Format | None) -> None:
    columns = (
        Column("Channel"),
        Column("Version"),
        Column("Fingerprint"),
        Column("Status", STATUS),
        Column("Flags", LIST),
        Column("Updated", TIME),
        Column("By", TEXT),  # a free-form name, last: the one cell with spaces
    )
    rows: list[list[Cell]] = [
        [
            c.name,
            *_version_cells(c.version),
            [f for f, on in (("managed", c.managed), ("restricted", c.restricted)) if on],
            c.updated_at,
            c.author_id,
        ]
        for c in channels
    ]
    render_rows(columns, rows, format)


def _print_channel(c: Channel, format: Format | None, verb: str | None = None) -> None:
    if format is Format.json:
        emit_json(c.raw)
    elif verb:
        say(format, f"{verb} channel {escape(c.name)} → {_version_label(c.version)}.")
    else:
        _render_channels([c], format)
        if c.version is not None and c.version.builds:
            _blank(format)
            _render_builds(c.version.builds, format)


@channels_app.command("list")
@handle_errors
def channels_list(bucket: Bucket, format: FormatOption = None) -> None:
    """List a bucket's channels and the versions they point at."""
    with client() as hcp:
        channels = hcp.list_channels(bucket)
    if format is Format.json:
        emit_json([c.raw for c in channels])
    else:
        _render_channels(channels, format)


@channels_app.command("get")
@handle_errors
def channels_get(bucket: Bucket, channel: ChannelName, format: FormatOption = None) -> None:
    """Show a channel, its version and the version's artifacts."""
    with client() as hcp:
        c = hcp.get_channel(bucket, channel)
    _print_channel(c, format)


@channels_app.command("create")
@handle_errors
def channels_create(
    bucket: Bucket,
    channel: ChannelName,
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint",
            "-f",
            help="Assign this version at once.",
            autocompletion=completion.fingerprints,
        ),
    ] = None,
    restricted: Annotated[bool, typer.Option(help="Only writers may see and use it.")] = False,
    format: FormatOption = None,
) -> None:
    """Create a channel, optionally pointing at a version."""
    with client() as hcp:
        c = hcp.create_channel(bucket, channel, fingerprint=fingerprint, restricted=restricted)
    _print_channel(c, format, "Created")


@channels_app.command("delete")
@handle_errors
def channels_delete(
    bucket: Bucket,
    channel: ChannelName,
    yes: YesOption = False,
    format: FormatOption = None,
) -> None:
    """Delete a channel (the managed 'latest' cannot be deleted)."""
    _confirm(yes, f"Delete channel {channel} of {bucket}?")
    with client() as hcp:
        hcp.delete_channel(bucket, channel)
    emit(
        format,
        {"deleted": channel, "bucket": bucket},
        f"Deleted channel {escape(channel)} of {escape(bucket)}.",
    )


@channels_app.command("assign")
@handle_errors
def channels_assign(
    bucket: Bucket,
    channel: ChannelName,
    fingerprint: Fingerprint,
    format: FormatOption = None,
) -> None:
    """Point a channel at a complete version."""
    with client() as hcp:
        c = hcp.assign_channel(bucket, channel, fingerprint)
    _print_channel(c, format, "Assigned")


@channels_app.command("unassign")
@handle_errors
def channels_unassign(bucket: Bucket, channel: ChannelName, format: FormatOption = None) -> None:
    """Leave a channel pointing at no version."""
    with client() as hcp:
        c = hcp.unassign_channel(bucket, channel)
    _print_channel(c, format, "Unassigned")


@channels_app.command("promote")
@handle_errors
def channels_promote(
    bucket: Bucket,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="Channel to copy from.",
            show_default=False,
            autocompletion=completion.channels,
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to",
            help="Channel to point.",
            show_default=False,
            autocompletion=completion.channels,
        ),
    ],
    format: FormatOption = None,
) -> None:
    """Point --to at the version --from points at (e.g. --from staging --to production)."""
    with client() as hcp:
        result = hcp.promote_channel(bucket, source, target)
    emit(
        format,
        result.raw,
        f"Promoted {_version_label(result.version)} from {escape(source)} to {escape(target)}.",
    )


@channels_app.command("history")
@handle_errors
def channels_history(bucket: Bucket, channel: ChannelName, format: FormatOption = None) -> None:
    """A channel's assignments, newest first."""
    with client() as hcp, progress(f"Reading history of {channel}…"):
        history = list(hcp.channel_history(bucket, channel))
    if format is Format.json:
        emit_json([h.raw for h in history])
        return
    columns = (
        Column("Assigned at", TIME),
        Column("Version"),
        Column("Fingerprint"),
        Column("Status", STATUS),
        Column("By", TEXT),  # a free-form name, last: the one cell with spaces
    )
    rows: list[list[Cell]] = [
        [h.assigned_at, *_version_cells(h.version), h.author_id] for h in history
    ]
    render_rows(columns, rows, format)


# --- ancestry ------------------------------------------------------------------
@handle_errors
def ancestry(
    bucket: Bucket,
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint",
            "-f",
            help="Whose parents (default: the latest version).",
            autocompletion=completion.fingerprints,
        ),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            "-c",
            help="Only children built from this channel.",
            autocompletion=completion.channels,
        ),
    ] = None,
    format: FormatOption = None,
) -> None:
    """Show a bucket's parents and children as a tree, with up-to-date statuses."""
    with client() as hcp, progress(f"Reading ancestry of {bucket}…"):
        b = hcp.get_bucket(bucket)
        relations = list(
            hcp.list_ancestry(bucket, channel_name=channel, version_fingerprint=fingerprint)
        )
        version = hcp.get_version(bucket, fingerprint) if fingerprint else b.latest_version
    parents, children = split_relations(bucket, relations)
    if format is Format.json:
        emit_json(
            {
                "bucket": bucket,
                "version": version.raw if version else None,
                "parents": [r.raw for r in parents],
                "children": [r.raw for r in children],
            }
        )
        return
    if resolve(format) is Format.plain:
        render_rows(ANCESTRY_COLUMNS, _ancestry_rows(parents, children), format)
        return
    head = Text.from_markup(f"[bold]{escape(bucket)}[/bold] {_version_label(version)}")
    root = Tree(head)
    widest = head.cell_len
    for label, lines in (
        ("parents", [_parent_text(r) for r in parents]),
        ("children", [_child_text(r) for r in children]),
    ):
        branch = root.add(label)
        for line in lines or ["[dim]none[/dim]"]:
            text = Text.from_markup(line)
            branch.add(text)
            widest = max(widest, text.cell_len)
    print_wide(root, widest + 8)  # a relation's line is never folded


ANCESTRY_COLUMNS = (
    Column("Relation"),
    Column("Bucket"),
    Column("Version"),
    Column("Fingerprint"),
    Column("Channel"),
    Column("Channel version"),
    Column("Status", STATUS),
)


def _ancestry_rows(
    parents: list[AncestryRelation], children: list[AncestryRelation]
) -> list[list[Cell]]:
    """One row per relation: the other end of it (the parent, or the child)."""
    rows: list[list[Cell]] = []
    for r in parents:
        p = r.parent
        if p is not None:
            now = p.channel_version
            rows.append(
                [
                    "parent",
                    p.bucket_name,
                    p.version_name,
                    p.version_fingerprint,
                    p.channel_name or None,
                    now.name if now is not None else None,
                    r.status,
                ]
            )
    for r in children:
        c = r.child
        if c is not None:
            rows.append(
                [
                    "child",
                    c.bucket_name,
                    c.version_name,
                    c.version_fingerprint,
                    None,
                    None,
                    r.status,
                ]
            )
    return rows


def split_relations(
    bucket: str, relations: list[AncestryRelation]
) -> tuple[list[AncestryRelation], list[AncestryRelation]]:
    """(parent relations, child relations) of ``bucket``. The server fills both ends of every
    relation: a parent relation is one whose child end is in this bucket (a version built from
    another of the same bucket is one too), a child relation one whose parent end is here and
    whose child is elsewhere."""
    parents = [r for r in relations if r.child is not None and r.child.bucket_name == bucket]
    children = [
        r
        for r in relations
        if r.parent is not None
        and r.parent.bucket_name == bucket
        and (r.child is None or r.child.bucket_name != bucket)
    ]
    return parents, children


def _ref_text(ref: VersionRef) -> str:
    return (
        f"{escape(ref.bucket_name)} {escape(ref.version_name)} ({escape(ref.version_fingerprint)})"
    )


def _parent_text(r: AncestryRelation) -> str:
    p = r.parent
    assert p is not None
    text = _ref_text(p)
    if p.channel_name:
        now = p.channel_version
        where = f"{escape(now.name)}" if now and now.name else "nothing"
        text += f" via channel {escape(p.channel_name)} (now {where})"
    return f"{text}: {status(r.status)}"


def _child_text(r: AncestryRelation) -> str:
    c = r.child
    assert c is not None
    return f"{_ref_text(c)}: {status(r.status)}"


# --- artifact ------------------------------------------------------------------
@artifact_app.command("get")
@handle_errors
def artifact_get(
    bucket: Annotated[
        str,
        typer.Option(
            "--bucket",
            "-b",
            help="Bucket.",
            show_default=False,
            autocompletion=completion.buckets,
        ),
    ],
    platform: Annotated[
        str, typer.Option("--platform", "-p", help="e.g. aws, azure, gce, docker.")
    ],
    region: Annotated[str, typer.Option("--region", "-r", help="e.g. us-east-1.")],
    channel: Annotated[
        str | None,
        typer.Option("--channel", "-c", help="Channel.", autocompletion=completion.channels),
    ] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint",
            "-f",
            help="Version fingerprint.",
            autocompletion=completion.fingerprints,
        ),
    ] = None,
    component_type: Annotated[
        str | None, typer.Option("--component-type", help="e.g. amazon-ebs.ubuntu.")
    ] = None,
    format: FormatOption = None,
) -> None:
    """Print ONLY the image id (for $(…) in scripts); exit 1 on a revoked version.

    Resolves like Packer's hcp-packer-artifact data source: the channel's (or
    fingerprint's) version, the first build of that platform (and component
    type), its artifact in that region.
    """
    if (channel is None) == (fingerprint is None):
        fail("give exactly one of --channel or --fingerprint.", EXIT_USAGE)
    with client() as hcp:
        if channel is not None:
            c = hcp.get_channel(bucket, channel)
            if c.version is None:
                fail(f"there is no version associated with the channel {channel} of {bucket}.")
            version, channel_id = c.version, c.id
        else:
            assert fingerprint is not None
            version, channel_id = hcp.get_version(bucket, fingerprint), ""
    if version.revoked:
        why = f": {version.revocation_message}" if version.revocation_message else ""
        fail(f"the version {version.name} ({version.fingerprint}) of {bucket} is revoked{why}")
    found = version.find_artifact(platform, region, component_type)
    if found is None:
        wanted = f'region="{region}", platform="{platform}"'
        if component_type:
            wanted += f', component_type="{component_type}"'
        available = "; ".join(f"{p}: {', '.join(r)}" for p, r in version.available().items())
        fail(
            f"could not find a build result matching [{wanted}] in {bucket} {version.name}. "
            f"Available: {available or 'nothing'}"
        )
    build, art = found
    if format is Format.json:
        payload: dict[str, Any] = {
            "external_identifier": art.external_identifier,
            "region": art.region,
            "platform": build.platform,
            "component_type": build.component_type,
            "build_id": build.id,
            "version_id": build.version_id or version.id,
            "version_name": version.name,
            "version_fingerprint": version.fingerprint,
            "version_status": version.status,
            "revoke_at": version.revoke_at,
            "channel_id": channel_id,
            "packer_run_uuid": build.packer_run_uuid,
            "labels": build.labels,
            "created_at": art.created_at,
        }
        emit_json(payload)
    else:
        typer.echo(art.external_identifier)


@artifact_app.command("find")
@handle_errors
def artifact_find(
    image_id: Annotated[
        str, typer.Argument(metavar="IMAGE_ID", help="Cloud image id, e.g. ami-0123….")
    ],
    platform: Annotated[
        str | None, typer.Option("--platform", "-p", help="Only this platform.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", "-r", help="Only this region.")] = None,
    format: FormatOption = None,
) -> None:
    """Reverse lookup: which bucket and version produced an image id, and its status.

    Exit 1 when the id is not tracked.
    """
    with client() as hcp, progress(f"Searching {image_id}…"):
        hits = list(hcp.search_external_artifact(image_id, platform=platform, region=region))
    if format is Format.json:
        emit_json([h.raw for h in hits])
    else:
        _render_hits(hits, format)
    if not hits:
        fail(f"{image_id} is not tracked by this registry.")


def _render_hits(hits: list[ExternalArtifact], format: Format | None) -> None:
    columns = (
        Column("Bucket"),
        Column("Version"),
        Column("Fingerprint"),
        Column("Status", STATUS),
        Column("Revoke at", TIME),
        Column("Component"),
        Column("Platform"),
        Column("Regions", LIST),
    )
    rows: list[list[Cell]] = [
        [
            h.bucket.name,
            h.version.name,
            h.version.fingerprint,
            h.version.status,
            h.version.revoke_at,
            h.build.component_type,
            h.build.platform,
            sorted({a.region for a in h.build.artifacts}),
        ]
        for h in hits
    ]
    render_rows(columns, rows, format)
