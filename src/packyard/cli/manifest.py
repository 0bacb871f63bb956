"""``packyard ingest-manifest``: publish the output of Packer's ``manifest`` post-processor.

Any Packer (even one without HCP support, such as Debian's 1.6.6) can then feed
the registry: the builds of the manifest's last run become one complete
version, with one build per manifest entry (``component_type`` = the build's
name), artifacts derived from ``artifact_id``/``files`` per builder type
(:data:`BUILDERS`), and ``custom_data`` kept as build labels.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn

from packyard.cli import completion
from packyard.cli.common import (
    EXIT_USAGE,
    LIST,
    STATUS,
    Cell,
    Column,
    Format,
    FormatOption,
    client,
    emit_json,
    fail,
    handle_errors,
    progress_bar,
    render_rows,
    status,
    stderr,
    summary,
    warn,
)
from packyard.errors import ApiError, Code

if TYPE_CHECKING:  # the SDK is imported when a command runs (see common.client)
    from packyard.client import PackerClient
    from packyard.client.models import Build, Channel, Version

Split = Literal["regions", "files", "id"]


@dataclass(frozen=True, slots=True)
class BuilderKind:
    """How a builder's manifest entry becomes artifacts on a platform.

    ``regions``: ``artifact_id`` is ``region:id,region:id`` (one artifact each);
    ``files``: each file is an artifact (id = basename, region = directory, as
    Packer's file builder reports them); ``id``: ``artifact_id`` as one artifact
    in ``region`` (``--region`` overrides it).
    """

    platform: str
    split: Split
    region: str = "global"


_AWS = BuilderKind("aws", "regions")
BUILDERS: dict[str, BuilderKind] = {
    "amazon-ebs": _AWS,
    "amazon-ebssurrogate": _AWS,
    "amazon-ebsvolume": _AWS,
    "amazon-instance": _AWS,
    "amazon-chroot": _AWS,
    "amazon-import": _AWS,
    "alicloud-ecs": BuilderKind("alicloud", "regions"),
    "outscale-bsu": BuilderKind("outscale", "regions"),
    "outscale-bsusurrogate": BuilderKind("outscale", "regions"),
    "azure-arm": BuilderKind("azure", "id"),
    "azure-chroot": BuilderKind("azure", "id"),
    "azure-dtl": BuilderKind("azure", "id"),
    "googlecompute": BuilderKind("gce", "id"),
    "googlecompute-import": BuilderKind("gce", "id"),
    "docker": BuilderKind("docker", "id", "docker"),
    "docker-tag": BuilderKind("docker", "id", "docker"),
    "docker-push": BuilderKind("docker", "id", "docker"),
    "qemu": BuilderKind("qemu", "files", "."),
    "virtualbox-iso": BuilderKind("virtualbox", "files", "."),
    "virtualbox-ovf": BuilderKind("virtualbox", "files", "."),
    "vmware-iso": BuilderKind("vmware", "files", "."),
    "vmware-vmx": BuilderKind("vmware", "files", "."),
    "hyperv-iso": BuilderKind("hyperv", "files", "."),
    "hyperv-vmcx": BuilderKind("hyperv", "files", "."),
    "vsphere-iso": BuilderKind("vsphere", "id"),
    "vsphere-clone": BuilderKind("vsphere", "id"),
    "proxmox-iso": BuilderKind("proxmox", "id"),
    "proxmox-clone": BuilderKind("proxmox", "id"),
    "digitalocean": BuilderKind("digitalocean", "id"),
    "hcloud": BuilderKind("hcloud", "id"),
    "openstack": BuilderKind("openstack", "id"),
    "oracle-oci": BuilderKind("oci", "id"),
    "lxd": BuilderKind("lxd", "id"),
    "file": BuilderKind("packer.file", "files", "."),
    "null": BuilderKind("null", "id", "null"),
}


class ManifestError(ValueError):
    """The input is not a usable Packer manifest."""


@dataclass(slots=True)
class PlannedBuild:
    component_type: str
    builder_type: str
    platform: str
    artifacts: list[tuple[str, str]]  # (external_identifier, region)
    labels: dict[str, str]
    metadata: dict[str, Any]
    run_uuid: str


@dataclass(slots=True)
class IngestResult:
    bucket: str
    fingerprint: str
    version: Version
    builds: list[Build] = field(default_factory=list)
    channel: Channel | None = None
    already_complete: bool = False


def _artifacts(
    entry: dict[str, Any], kind: BuilderKind, region: str | None
) -> list[tuple[str, str]]:
    artifact_id = str(entry.get("artifact_id") or "")
    if kind.split == "regions":
        out: list[tuple[str, str]] = []
        for part in artifact_id.split(","):
            where, sep, ident = part.strip().partition(":")
            if sep and where and ident:
                out.append((ident, where))
            elif part.strip():
                out.append((part.strip(), region or kind.region))
        return out
    if kind.split == "files":
        files = [f for f in entry.get("files") or [] if isinstance(f, dict) and f.get("name")]
        if files:
            out = []
            for f in files:
                name = str(f["name"])
                directory = posixpath.dirname(name) or "."
                out.append((posixpath.basename(name), region or directory))
            return out
    return [(artifact_id, region or kind.region)] if artifact_id else []


def plan_builds(
    manifest: Any,
    *,
    run_uuid: str | None = None,
    platform: str | None = None,
    region: str | None = None,
) -> tuple[str, list[PlannedBuild]]:
    """The run's uuid and one build to register per manifest entry of that run.

    Only the entries of ``run_uuid`` (default: the manifest's ``last_run_uuid``)
    count: the post-processor appends every run to the same file.
    """
    if not isinstance(manifest, dict) or not isinstance(manifest.get("builds"), list):
        raise ManifestError("not a Packer manifest (no 'builds' list)")
    entries = [b for b in manifest["builds"] if isinstance(b, dict)]
    run = run_uuid or manifest.get("last_run_uuid") or ""
    if not run and entries:
        run = str(entries[-1].get("packer_run_uuid") or "")
    chosen = [b for b in entries if not run or b.get("packer_run_uuid") == run]
    if not chosen:
        raise ManifestError(f"the manifest has no build of run {run or '(any)'}")
    planned: dict[str, PlannedBuild] = {}
    for entry in chosen:
        name = str(entry.get("name") or entry.get("builder_type") or "")
        builder = str(entry.get("builder_type") or "")
        if not name:
            raise ManifestError("a build entry has neither name nor builder_type")
        kind = BUILDERS.get(builder, BuilderKind(builder or "unknown", "id"))
        artifacts = _artifacts(entry, kind, region)
        if not artifacts:
            raise ManifestError(f"build {name} ({builder}) has no artifact id or files")
        custom = entry.get("custom_data") or {}
        labels = {str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {}
        metadata = {
            "source": "packer-manifest",
            "builder_type": builder,
            "build_time": entry.get("build_time"),
            "artifact_id": entry.get("artifact_id"),
            "files": entry.get("files"),
        }
        planned[name] = PlannedBuild(  # a name repeated within one run: the last entry wins
            component_type=name,
            builder_type=builder,
            platform=platform or kind.platform,
            artifacts=artifacts,
            labels=labels,
            metadata=metadata,
            run_uuid=str(entry.get("packer_run_uuid") or run),
        )
    return run, list(planned.values())


def _ensure_bucket(hcp: PackerClient, bucket: str) -> None:
    try:
        hcp.get_bucket(bucket)
    except ApiError as exc:
        if exc.code is not Code.NOT_FOUND:
            raise
        hcp.create_bucket(bucket)


def _ensure_version(hcp: PackerClient, bucket: str, fingerprint: str, template: str) -> Version:
    try:
        return hcp.get_version(bucket, fingerprint)
    except ApiError as exc:
        if exc.code not in (Code.ABORTED, Code.NOT_FOUND):
            raise
    return hcp.create_version(bucket, fingerprint, template_type=template)


def _create_build(hcp: PackerClient, bucket: str, fp: str, item: PlannedBuild) -> Build:
    try:
        return hcp.create_build(bucket, fp, item.component_type, packer_run_uuid=item.run_uuid)
    except ApiError as exc:
        if exc.code is not Code.ALREADY_EXISTS:  # a concurrent run registered it first
            raise
    for build in hcp.list_builds(bucket, fp):
        if build.component_type == item.component_type:
            return build
    raise ApiError(Code.ABORTED, f"build {item.component_type} vanished while registering it.")


def _steps(planned: list[PlannedBuild], show: bool) -> Iterator[tuple[PlannedBuild, Progress]]:
    with progress_bar(SpinnerColumn(), TextColumn("{task.description}"), show=show) as bar:
        task = bar.add_task("Registering builds", total=len(planned))
        for item in planned:
            bar.update(task, description=f"Registering {item.component_type}")
            yield item, bar
            bar.advance(task)


def ingest(
    hcp: PackerClient,
    manifest: Any,
    *,
    bucket: str,
    fingerprint: str | None = None,
    channel: str | None = None,
    platform: str | None = None,
    region: str | None = None,
    run_uuid: str | None = None,
    template_type: str = "HCL2",
    show_progress: bool = False,
) -> IngestResult:
    """Register the manifest's run as a complete version, then point ``channel`` at it.

    Idempotent: running it again finds the version complete and only
    (re)assigns the channel.
    """
    run, planned = plan_builds(manifest, run_uuid=run_uuid, platform=platform, region=region)
    fp = fingerprint or run
    if not fp:
        raise ManifestError("no packer_run_uuid in the manifest; pass --fingerprint")
    _ensure_bucket(hcp, bucket)
    version = _ensure_version(hcp, bucket, fp, template_type)
    result = IngestResult(bucket=bucket, fingerprint=fp, version=version)
    if version.number > 0:
        result.already_complete = True
        missing = {p.component_type for p in planned} - {b.component_type for b in version.builds}
        if missing:
            raise ApiError(
                Code.FAILED_PRECONDITION,
                f"version {fp} of {bucket} is already complete ({version.name}) without "
                f"build(s) {', '.join(sorted(missing))}; pass another --fingerprint.",
                http_status=0,
            )
    else:
        # Like Packer: register every build first, then finish them. The version
        # completes when its last registered build is DONE, so finishing one before
        # the others exist would complete it too early.
        builds = {b.component_type: b for b in hcp.list_builds(bucket, fp)}
        for item in planned:
            if item.component_type not in builds:
                builds[item.component_type] = _create_build(hcp, bucket, fp, item)
        for item, _ in _steps(planned, show_progress):
            build = builds[item.component_type]
            if build.status == "BUILD_DONE":
                continue
            hcp.update_build(
                bucket,
                fp,
                build.id,
                status="BUILD_DONE",
                platform=item.platform,
                packer_run_uuid=item.run_uuid,
                artifacts=[{"external_identifier": i, "region": r} for i, r in item.artifacts],
                labels=item.labels,
                metadata={"packer": item.metadata, "cicd": None, "vcs": None},
            )
        result.version = hcp.get_version(bucket, fp)
    result.builds = result.version.builds
    if channel:
        try:
            current = hcp.get_channel(bucket, channel)
        except ApiError as exc:
            if exc.code is not Code.NOT_FOUND:
                raise
            result.channel = hcp.create_channel(bucket, channel, fingerprint=fp)
        else:
            on_it = current.version is not None and current.version.fingerprint == fp
            result.channel = current if on_it else hcp.assign_channel(bucket, channel, fp)
    return result


def ingest_manifest(
    manifest_file: Annotated[
        Path,
        typer.Argument(
            metavar="MANIFEST", help="JSON written by Packer's manifest post-processor."
        ),
    ],
    bucket: Annotated[
        str,
        typer.Option(
            "--bucket",
            "-b",
            help="Bucket (created if missing).",
            autocompletion=completion.buckets,
        ),
    ],
    fingerprint: Annotated[
        str | None,
        typer.Option("--fingerprint", "-f", help="Version fingerprint (default: the run uuid)."),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            "-c",
            help="Point this channel at the version.",
            autocompletion=completion.channels,
        ),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option("--platform", "-p", help="Platform for every build (default: by builder)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", "-r", help="Region for artifacts whose id carries none."),
    ] = None,
    run_uuid: Annotated[
        str | None, typer.Option("--run-uuid", help="Ingest this run (default: the last one).")
    ] = None,
    template_type: Annotated[
        str, typer.Option("--template-type", help="HCL2 or JSON, recorded on the version.")
    ] = "HCL2",
    format: FormatOption = None,
) -> None:
    """Register a complete version from a Packer manifest (any Packer version)."""
    if template_type not in ("HCL2", "JSON"):
        fail("--template-type must be HCL2 or JSON.", EXIT_USAGE)
    try:
        manifest = json.loads(manifest_file.read_text())
    except OSError as exc:
        fail(f"cannot read {manifest_file}: {exc.strerror}", EXIT_USAGE)
    except ValueError:
        fail(f"{manifest_file}: not valid JSON", EXIT_USAGE)
    try:
        plan_builds(manifest, run_uuid=run_uuid, platform=platform, region=region)
    except ManifestError as exc:
        fail(f"{manifest_file}: {exc}", EXIT_USAGE)
    _run(manifest, bucket, fingerprint, channel, platform, region, run_uuid, template_type, format)


@handle_errors
def _run(
    manifest: Any,
    bucket: str,
    fingerprint: str | None,
    channel: str | None,
    platform: str | None,
    region: str | None,
    run_uuid: str | None,
    template_type: str,
    format: Format | None,
) -> None:
    with client() as hcp:
        try:
            result = ingest(
                hcp,
                manifest,
                bucket=bucket,
                fingerprint=fingerprint,
                channel=channel,
                platform=platform,
                region=region,
                run_uuid=run_uuid,
                template_type=template_type,
                show_progress=stderr().is_terminal,
            )
        except ManifestError as exc:
            fail(str(exc), EXIT_USAGE)
    v = result.version
    if format is Format.json:
        emit_json(
            {
                "bucket": result.bucket,
                "fingerprint": result.fingerprint,
                "already_complete": result.already_complete,
                "version": v.raw,
                "channel": result.channel.raw if result.channel else None,
            }
        )
        return
    if result.already_complete:
        warn(f"version {result.fingerprint} was already registered as {v.name}; nothing to add.")
    rows: list[list[Cell]] = [
        [
            b.component_type,
            b.platform,
            b.status,
            [f"{a.region}:{a.external_identifier}" for a in b.artifacts],
        ]
        for b in v.builds
    ]
    render_rows(
        (Column("Build"), Column("Platform"), Column("Status", STATUS), Column("Artifacts", LIST)),
        rows,
        format,
        title=f"{bucket} {v.name} ({v.fingerprint})",
    )
    line = f"Version {escape(v.name)} ({escape(v.fingerprint)}) of {escape(bucket)} is "
    line += status(v.status)
    if result.channel is not None:
        line += f"; channel {escape(result.channel.name)} points at it"
    summary(format, line + ".")
