"""``packyard buckets|versions|builds|channels|ancestry|artifact``: registry commands.

They run on :mod:`packyard.client`, so they work against any HCP Packer
2023-01-01 endpoint configured by the ``HCP_*`` environment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from packyard.cli.common import (
    EXIT_USAGE,
    Format,
    FormatOption,
    YesOption,
    add_columns,
    client,
    emit_json,
    fail,
    handle_errors,
    labels_text,
    parse_labels,
    progress,
    status,
    stdout,
    when,
)
from packyard.client.models import (
    AncestryRelation,
    Build,
    Channel,
    ExternalArtifact,
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

Bucket = Annotated[str, typer.Argument(help="Bucket name.", show_default=False)]
Fingerprint = Annotated[str, typer.Argument(help="Version fingerprint.", show_default=False)]
ChannelName = Annotated[str, typer.Argument(help="Channel name.", show_default=False)]
Labels = Annotated[list[str] | None, typer.Option("--label", "-l", help="KEY=VALUE (repeatable).")]


def _kv_table(rows: list[tuple[str, str]]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    return table


def _emit(format: Format, payload: Any, message: str) -> None:
    """``payload`` as JSON for scripts, or ``message`` (markup) for people."""
    if format is Format.json:
        emit_json(payload)
    else:
        stdout().print(message)


def _confirm(yes: bool, question: str) -> None:
    """Ask before a deletion (abort on no) unless ``--yes`` was given."""
    if not yes:
        typer.confirm(question, abort=True)


def _version_label(v: Version | None) -> str:
    if v is None:
        return "[dim]none[/dim]"
    return f"{escape(v.name)} ({escape(v.fingerprint)})"


def _version_cells(v: Version | None, missing: str) -> tuple[str, str, str]:
    """The name, fingerprint and status cells of a channel's version (``missing``: none)."""
    if v is None:
        return missing, "", ""
    return escape(v.name), escape(v.fingerprint), status(v.status)


def _artifacts_text(build: Build) -> str:
    return "\n".join(
        f"{escape(a.region)}: {escape(a.external_identifier)}"
        if a.region
        else a.external_identifier
        for a in build.artifacts
    )


def _builds_table(builds: list[Build]) -> Table:
    table = Table(title="Builds", title_justify="left")
    add_columns(table, ("ID", "Component", "Platform", "Status", "Artifacts", "Labels"))
    for b in builds:
        table.add_row(
            b.id,
            escape(b.component_type),
            escape(b.platform),
            status(b.status),
            _artifacts_text(b),
            escape(labels_text(b.labels)),
        )
    return table


def _revocation_rows(v: Version) -> list[tuple[str, str]]:
    if v.revoke_at is None:
        return []
    rows = [("Revoke at", when(v.revoke_at))]
    if v.revocation_message:
        rows.append(("Revocation message", escape(v.revocation_message)))
    if v.revocation_author:
        rows.append(("Revoked by", escape(v.revocation_author)))
    if v.revocation_type == "INHERITED" and v.revocation_inherited_from:
        src = v.revocation_inherited_from
        rows.append(("Inherited from", f"{escape(src.bucket_name)}/{escape(src.version_name)}"))
    return rows


def _show_version(v: Version) -> None:
    rows = [
        ("Bucket", escape(v.bucket_name)),
        ("Version", escape(v.name)),
        ("Fingerprint", escape(v.fingerprint)),
        ("Status", status(v.status)),
        ("Author", escape(v.author_id)),
        ("Created", when(v.created_at)),
        ("Updated", when(v.updated_at)),
        ("Template", escape(v.template_type)),
        *_revocation_rows(v),
    ]
    if v.parents is not None:
        rows.append(("Parents", status(v.parents.status)))
    out = stdout()
    out.print(_kv_table(rows))
    if v.builds:
        out.print(_builds_table(v.builds))


# --- buckets -------------------------------------------------------------------
@buckets_app.command("list")
@handle_errors
def buckets_list(format: FormatOption = Format.table) -> None:
    """List buckets, by name."""
    with client() as hcp, progress("Listing buckets…"):
        buckets = list(hcp.list_buckets(order_by=["name"]))
    if format is Format.json:
        emit_json([b.raw for b in buckets])
        return
    table = Table()
    add_columns(
        table, ("Name", "Latest", "Status", "Platforms", "Versions", "Updated", "Description")
    )
    for b in buckets:
        latest = b.latest_version
        table.add_row(
            escape(b.name),
            escape(latest.name) if latest else "",
            status(latest.status) if latest else "",
            escape(", ".join(b.platforms)),
            str(b.version_count),
            when(b.updated_at),
            escape(b.description),
        )
    stdout().print(table)


@buckets_app.command("get")
@handle_errors
def buckets_get(bucket: Bucket, format: FormatOption = Format.table) -> None:
    """Show one bucket and its latest version."""
    with client() as hcp:
        b = hcp.get_bucket(bucket)
    if format is Format.json:
        emit_json(b.raw)
        return
    rows = [
        ("Name", escape(b.name)),
        ("ID", b.id),
        ("Description", escape(b.description)),
        ("Labels", escape(labels_text(b.labels))),
        ("Platforms", escape(", ".join(b.platforms))),
        ("Versions", str(b.version_count)),
        ("Latest version", _version_label(b.latest_version)),
        ("Created", when(b.created_at)),
        ("Updated", when(b.updated_at)),
    ]
    if b.parents is not None:
        rows.append(("Parents", status(b.parents.status)))
    if b.children is not None:
        rows.append(("Children", status(b.children.status)))
    stdout().print(_kv_table(rows))


@buckets_app.command("create")
@handle_errors
def buckets_create(
    bucket: Bucket,
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
    label: Labels = None,
    format: FormatOption = Format.table,
) -> None:
    """Create a bucket (it gets the managed 'latest' channel)."""
    with client() as hcp:
        b = hcp.create_bucket(bucket, description=description, labels=parse_labels(label))
    _emit(format, b.raw, f"Created bucket {escape(b.name)}.")


@buckets_app.command("update")
@handle_errors
def buckets_update(
    bucket: Bucket,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="KEY=VALUE (repeatable); replaces all labels."),
    ] = None,
    format: FormatOption = Format.table,
) -> None:
    """Change a bucket's description and/or labels."""
    if description is None and label is None:
        fail("nothing to update: give --description and/or --label.", EXIT_USAGE)
    with client() as hcp:
        b = hcp.update_bucket(bucket, description=description, labels=parse_labels(label))
    _emit(format, b.raw, f"Updated bucket {escape(b.name)}.")


@buckets_app.command("delete")
@handle_errors
def buckets_delete(
    bucket: Bucket, yes: YesOption = False, format: FormatOption = Format.table
) -> None:
    """Delete a bucket with ALL its versions, builds and channels."""
    _confirm(yes, f"Delete bucket {bucket} and everything in it?")
    with client() as hcp, progress(f"Deleting {bucket}…"):
        hcp.delete_bucket(bucket)
    _emit(format, {"deleted": bucket}, f"Deleted bucket {escape(bucket)}.")


# --- versions ------------------------------------------------------------------
@versions_app.command("list")
@handle_errors
def versions_list(bucket: Bucket, format: FormatOption = Format.table) -> None:
    """List a bucket's versions, newest first."""
    with client() as hcp, progress(f"Listing versions of {bucket}…"):
        versions = list(hcp.list_versions(bucket, order_by=["created_at desc"]))
    if format is Format.json:
        emit_json([v.raw for v in versions])
        return
    table = Table()
    add_columns(table, ("Version", "Fingerprint", "Status", "Platforms", "Created", "Revoke at"))
    for v in versions:
        platforms = sorted({b.platform for b in v.builds if b.platform})
        table.add_row(
            escape(v.name),
            escape(v.fingerprint),
            status(v.status),
            escape(", ".join(platforms)),
            when(v.created_at),
            when(v.revoke_at),
        )
    stdout().print(table)


@versions_app.command("get")
@handle_errors
def versions_get(
    bucket: Bucket, fingerprint: Fingerprint, format: FormatOption = Format.table
) -> None:
    """Show a version with its builds and artifacts."""
    with client() as hcp:
        v = hcp.get_version(bucket, fingerprint)
    if format is Format.json:
        emit_json(v.raw)
    else:
        _show_version(v)


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
    format: FormatOption = Format.table,
) -> None:
    """Delete a version with its builds."""
    _confirm(yes, f"Delete version {fingerprint} of {bucket}?")
    with client() as hcp:
        hcp.delete_version(bucket, fingerprint, rollback_channels=rollback_channels)
    _emit(
        format,
        {"deleted": fingerprint, "bucket": bucket},
        f"Deleted version {escape(fingerprint)} of {escape(bucket)}.",
    )


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
    format: FormatOption = Format.table,
) -> None:
    """Revoke a version now (default), at a time (--at) or after a delay (--in)."""
    if at is not None and in_ is not None:
        fail("--at and --in are mutually exclusive.", EXIT_USAGE)
    revoke_at = _parse_at(at) if at is not None else None
    with client() as hcp, progress(f"Revoking {fingerprint} (descendants, channels)…"):
        v = hcp.revoke_version(
            bucket,
            fingerprint,
            revoke_at=revoke_at,
            revoke_in=in_,
            message=message,
            skip_descendants=skip_descendants,
            disable_rollback_channels=no_rollback,
        )
    _emit(format, v.raw, escape(_revocation_summary(v)))


@versions_app.command("restore")
@handle_errors
def versions_restore(
    bucket: Bucket, fingerprint: Fingerprint, format: FormatOption = Format.table
) -> None:
    """Clear a version's revocation (and what its descendants inherited from it)."""
    with client() as hcp, progress(f"Restoring {fingerprint}…"):
        v = hcp.restore_version(bucket, fingerprint)
    _emit(format, v.raw, f"Restored {escape(v.bucket_name)} {escape(v.name)}: {status(v.status)}.")


# --- builds --------------------------------------------------------------------
@builds_app.command("list")
@handle_errors
def builds_list(
    bucket: Bucket, fingerprint: Fingerprint, format: FormatOption = Format.table
) -> None:
    """List the builds of a version."""
    with client() as hcp:
        builds = list(hcp.list_builds(bucket, fingerprint))
    if format is Format.json:
        emit_json([b.raw for b in builds])
    else:
        stdout().print(_builds_table(builds))


@builds_app.command("get")
@handle_errors
def builds_get(
    bucket: Bucket,
    fingerprint: Fingerprint,
    build_id: Annotated[str, typer.Argument(help="Build id.", show_default=False)],
    format: FormatOption = Format.table,
) -> None:
    """Show one build with its artifacts."""
    with client() as hcp:
        b = hcp.get_build(bucket, fingerprint, build_id)
    if format is Format.json:
        emit_json(b.raw)
        return
    rows = [
        ("ID", b.id),
        ("Component", escape(b.component_type)),
        ("Platform", escape(b.platform)),
        ("Status", status(b.status)),
        ("Packer run", escape(b.packer_run_uuid)),
        ("Source image", escape(b.source_external_identifier)),
        ("Labels", escape(labels_text(b.labels))),
        ("Created", when(b.created_at)),
        ("Updated", when(b.updated_at)),
    ]
    out = stdout()
    out.print(_kv_table(rows))
    table = Table(title="Artifacts", title_justify="left")
    table.add_column("Region")
    table.add_column("External id", overflow="fold")
    table.add_column("Created")
    for a in b.artifacts:
        table.add_row(escape(a.region), escape(a.external_identifier), when(a.created_at))
    out.print(table)


# --- channels ------------------------------------------------------------------
def _channels_table(channels: list[Channel]) -> Table:
    table = Table()
    add_columns(table, ("Channel", "Version", "Fingerprint", "Status", "Flags", "Updated", "By"))
    for c in channels:
        flags = ", ".join(
            f for f, on in (("managed", c.managed), ("restricted", c.restricted)) if on
        )
        table.add_row(
            escape(c.name),
            *_version_cells(c.version, "[dim]none[/dim]"),
            flags,
            when(c.updated_at),
            escape(c.author_id),
        )
    return table


def _print_channel(c: Channel, format: Format, verb: str | None = None) -> None:
    if format is Format.json:
        emit_json(c.raw)
    elif verb:
        stdout().print(f"{verb} channel {escape(c.name)} → {_version_label(c.version)}.")
    else:
        stdout().print(_channels_table([c]))
        if c.version is not None and c.version.builds:
            stdout().print(_builds_table(c.version.builds))


@channels_app.command("list")
@handle_errors
def channels_list(bucket: Bucket, format: FormatOption = Format.table) -> None:
    """List a bucket's channels and the versions they point at."""
    with client() as hcp:
        channels = hcp.list_channels(bucket)
    if format is Format.json:
        emit_json([c.raw for c in channels])
    else:
        stdout().print(_channels_table(channels))


@channels_app.command("get")
@handle_errors
def channels_get(bucket: Bucket, channel: ChannelName, format: FormatOption = Format.table) -> None:
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
        str | None, typer.Option("--fingerprint", "-f", help="Assign this version at once.")
    ] = None,
    restricted: Annotated[bool, typer.Option(help="Only writers may see and use it.")] = False,
    format: FormatOption = Format.table,
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
    format: FormatOption = Format.table,
) -> None:
    """Delete a channel (the managed 'latest' cannot be deleted)."""
    _confirm(yes, f"Delete channel {channel} of {bucket}?")
    with client() as hcp:
        hcp.delete_channel(bucket, channel)
    _emit(
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
    format: FormatOption = Format.table,
) -> None:
    """Point a channel at a complete version."""
    with client() as hcp:
        c = hcp.assign_channel(bucket, channel, fingerprint)
    _print_channel(c, format, "Assigned")


@channels_app.command("unassign")
@handle_errors
def channels_unassign(
    bucket: Bucket, channel: ChannelName, format: FormatOption = Format.table
) -> None:
    """Leave a channel pointing at no version."""
    with client() as hcp:
        c = hcp.unassign_channel(bucket, channel)
    _print_channel(c, format, "Unassigned")


@channels_app.command("promote")
@handle_errors
def channels_promote(
    bucket: Bucket,
    source: Annotated[
        str, typer.Option("--from", help="Channel to copy from.", show_default=False)
    ],
    target: Annotated[str, typer.Option("--to", help="Channel to point.", show_default=False)],
    format: FormatOption = Format.table,
) -> None:
    """Point --to at the version --from points at (e.g. --from staging --to production)."""
    with client() as hcp:
        result = hcp.promote_channel(bucket, source, target)
    _emit(
        format,
        result.raw,
        f"Promoted {_version_label(result.version)} from {escape(source)} to {escape(target)}.",
    )


@channels_app.command("history")
@handle_errors
def channels_history(
    bucket: Bucket, channel: ChannelName, format: FormatOption = Format.table
) -> None:
    """A channel's assignments, newest first."""
    with client() as hcp, progress(f"Reading history of {channel}…"):
        history = list(hcp.channel_history(bucket, channel))
    if format is Format.json:
        emit_json([h.raw for h in history])
        return
    table = Table()
    add_columns(table, ("Assigned at", "Version", "Fingerprint", "Status", "By"))
    for h in history:
        table.add_row(
            when(h.assigned_at),
            *_version_cells(h.version, "[dim]unassigned[/dim]"),
            escape(h.author_id),
        )
    stdout().print(table)


# --- ancestry ------------------------------------------------------------------
@handle_errors
def ancestry(
    bucket: Bucket,
    fingerprint: Annotated[
        str | None,
        typer.Option("--fingerprint", "-f", help="Whose parents (default: the latest version)."),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option("--channel", "-c", help="Only children built from this channel."),
    ] = None,
    format: FormatOption = Format.table,
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
    root = Tree(f"[bold]{escape(bucket)}[/bold] {_version_label(version)}")
    for label, lines in (
        ("parents", [_parent_text(r) for r in parents]),
        ("children", [_child_text(r) for r in children]),
    ):
        branch = root.add(label)
        for line in lines or ["[dim]none[/dim]"]:
            branch.add(line)
    stdout().print(root)


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
    bucket: Annotated[str, typer.Option("--bucket", "-b", help="Bucket.", show_default=False)],
    platform: Annotated[
        str, typer.Option("--platform", "-p", help="e.g. aws, azure, gce, docker.")
    ],
    region: Annotated[str, typer.Option("--region", "-r", help="e.g. us-east-1.")],
    channel: Annotated[str | None, typer.Option("--channel", "-c", help="Channel.")] = None,
    fingerprint: Annotated[
        str | None, typer.Option("--fingerprint", "-f", help="Version fingerprint.")
    ] = None,
    component_type: Annotated[
        str | None, typer.Option("--component-type", help="e.g. amazon-ebs.ubuntu.")
    ] = None,
    format: FormatOption = Format.table,
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
    image_id: Annotated[str, typer.Argument(help="Cloud image id, e.g. ami-0123….")],
    platform: Annotated[
        str | None, typer.Option("--platform", "-p", help="Only this platform.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", "-r", help="Only this region.")] = None,
    format: FormatOption = Format.table,
) -> None:
    """Reverse lookup: which bucket and version produced an image id, and its status.

    Exit 1 when the id is not tracked.
    """
    with client() as hcp, progress(f"Searching {image_id}…"):
        hits = list(hcp.search_external_artifact(image_id, platform=platform, region=region))
    if format is Format.json:
        emit_json([h.raw for h in hits])
    else:
        _hits_table(hits)
    if not hits:
        fail(f"{image_id} is not tracked by this registry.")


def _hits_table(hits: list[ExternalArtifact]) -> None:
    table = Table()
    add_columns(
        table,
        (
            "Bucket",
            "Version",
            "Fingerprint",
            "Status",
            "Revoke at",
            "Component",
            "Platform",
            "Regions",
        ),
    )
    for h in hits:
        regions = sorted({a.region for a in h.build.artifacts})
        table.add_row(
            escape(h.bucket.name),
            escape(h.version.name),
            escape(h.version.fingerprint),
            status(h.version.status),
            when(h.version.revoke_at),
            escape(h.build.component_type),
            escape(h.build.platform),
            escape(", ".join(regions)),
        )
    stdout().print(table)
