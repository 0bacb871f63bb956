"""``packyard plan check``: vet the images of a Terraform/OpenTofu plan against the registry.

Input is the JSON of ``terraform show -json PLANFILE`` (or ``tofu show -json``).
The plan walk and the verdicts live in :mod:`packyard.imagecheck` (shared with the
server's run task); this module looks images up over HTTP and renders the result.
Each image id is looked up with SearchExternalArtifact (the API has no batch form,
so each distinct id is asked once) and each bucket's channels once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from packyard.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    STATUS,
    TEXT,
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
    stderr,
    summary,
)
from packyard.imagecheck import (
    IMAGE_RULES,
    ChannelArtifact,
    ChannelVersion,
    Finding,
    ImageRule,
    KnownImage,
    Level,
    PlanError,
    PlanReport,
    Untracked,
    evaluate,
    image_refs,
    parse_rule,
)

if TYPE_CHECKING:  # the SDK is imported when a command runs (see common.client)
    from packyard.client import PackerClient
    from packyard.client.models import Channel, ExternalArtifact

plan_app = typer.Typer(
    help="Check Terraform/OpenTofu plans against the registry.", no_args_is_help=True
)


class HttpLookup:
    """:class:`packyard.imagecheck.Lookup` over the HTTP API, each id and bucket asked once."""

    def __init__(self, hcp: PackerClient, progress: tuple[Progress, TaskID] | None = None) -> None:
        self.hcp = hcp
        self.progress = progress
        self._found: dict[str, list[KnownImage]] = {}
        self._channels: dict[str, list[ChannelVersion]] = {}

    def find(self, image_ids: Iterable[str]) -> Mapping[str, list[KnownImage]]:
        ids = list(dict.fromkeys(image_ids))
        if self.progress is not None:
            self.progress[0].update(self.progress[1], total=len(ids))
        for image_id in ids:
            if image_id not in self._found:
                hits = self.hcp.search_external_artifact(image_id)
                self._found[image_id] = [_known(h, image_id) for h in hits]
            if self.progress is not None:
                self.progress[0].advance(self.progress[1])
        return {i: self._found[i] for i in ids}

    def channels(self, buckets: Iterable[str]) -> Mapping[str, list[ChannelVersion]]:
        for bucket in buckets:
            if bucket not in self._channels:
                listed = self.hcp.list_channels(bucket)
                self._channels[bucket] = [cv for c in listed if (cv := _served(c)) is not None]
        return self._channels


def _known(hit: ExternalArtifact, image_id: str) -> KnownImage:
    v, b = hit.version, hit.build
    region = next((a.region for a in b.artifacts if a.external_identifier == image_id), "")
    return KnownImage(
        bucket=hit.bucket.name,
        version_name=v.name,
        fingerprint=v.fingerprint,
        version_id=v.id,
        revoke_at=v.revoke_at,
        revocation_message=v.revocation_message,
        platform=b.platform,
        region=region,
        version_number=v.number,
        build_id=b.id,
        component_type=b.component_type,
        status=v.status,
    )


def _served(channel: Channel) -> ChannelVersion | None:
    v = channel.version
    if v is None:
        return None
    return ChannelVersion(
        channel=channel.name,
        version_name=v.name,
        version_number=v.number,
        fingerprint=v.fingerprint,
        revoke_at=v.revoke_at,
        artifacts=tuple(
            ChannelArtifact(b.platform, b.component_type, a.region, a.external_identifier)
            for b in v.builds
            for a in b.artifacts
        ),
    )


def as_json(f: Finding) -> dict[str, Any]:
    k = f.image
    return {
        "address": f.address,
        "type": f.resource_type,
        "action": f.action,
        "attribute": f.attribute,
        "image_id": f.image_id,
        "source": f.source,
        "data_source": f.data_source,
        "tracked": k is not None,
        "bucket": k.bucket if k else None,
        "version": None
        if k is None
        else {
            "id": k.version_id,
            "name": k.version_name,
            "fingerprint": k.fingerprint,
            "status": k.status,
            "revoke_at": k.revoke_at.isoformat() if k.revoke_at else None,
            "revocation_message": k.revocation_message,
        },
        "build": None
        if k is None
        else {"id": k.build_id, "component_type": k.component_type, "platform": k.platform},
        "channels": f.channels,
        "newer": [
            {
                "channel": n.channel,
                "version": n.version_name,
                "fingerprint": n.fingerprint,
                "image_id": n.image_id,
            }
            for n in f.newer_images
        ],
        "result": f.level.value,
        "notes": f.notes,
    }


def check_plan(
    hcp: PackerClient,
    plan: Any,
    *,
    rules: list[ImageRule] | None = None,
    untracked: Untracked = Untracked.warn,
    show_progress: bool = False,
) -> PlanReport:
    """Look up every image of ``plan`` and judge each resource (see :mod:`packyard.imagecheck`)."""
    with progress_bar(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        show=show_progress,
    ) as bar:
        task = bar.add_task("Looking up images", total=None)
        lookup = HttpLookup(hcp, (bar, task))
        return evaluate(plan, lookup, untracked=untracked, now=datetime.now(UTC), rules=rules)


FINDING_COLUMNS = (
    Column("Resource"),
    Column("Attribute"),
    Column("Action"),
    Column("Image"),
    Column("Bucket"),
    Column("Version"),
    Column("Status", STATUS),
    Column("Result", STATUS),
    Column("Notes", TEXT),
)


def _render(findings: list[Finding], format: Format | None) -> None:
    rows: list[list[Cell]] = []
    for f in findings:
        k = f.image
        rows.append(
            [
                f.address,
                f.attribute,
                f.action,
                f.image_id,
                k.bucket if k else None,
                k.version_name if k else None,
                k.status if k else None,
                f.level.value.upper(),
                "; ".join(f.notes),
            ]
        )
    render_rows(FINDING_COLUMNS, rows, format)


@plan_app.command("check")
@handle_errors
def plan_check(
    plan_file: Annotated[
        Path,
        typer.Argument(
            metavar="PLAN.json",
            help="Output of `terraform show -json PLANFILE` (or tofu); '-' reads stdin.",
            allow_dash=True,
        ),
    ],
    untracked: Annotated[
        Untracked, typer.Option("--untracked", help="What an image unknown to the registry is.")
    ] = Untracked.warn,
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute",
            "-a",
            help="Extra TYPE=PATH[@PLATFORM] to read image ids from (repeatable), "
            "e.g. my_vm=boot[].image@aws.",
        ),
    ] = None,
    format: FormatOption = None,
) -> None:
    """Fail (exit 1) when the plan creates or replaces resources onto revoked images."""
    try:
        text = (
            typer.get_text_stream("stdin").read()
            if str(plan_file) == "-"
            else plan_file.read_text()
        )
    except OSError as exc:
        fail(f"cannot read {plan_file}: {exc.strerror}", EXIT_USAGE)
    try:
        plan = json.loads(text)
    except ValueError:
        fail(f"{plan_file}: the file is not valid JSON", EXIT_USAGE)
    try:
        rules = [parse_rule(a) for a in attribute or []]
        image_refs(plan, rules)  # validate the input before connecting
    except PlanError as exc:
        fail(f"{plan_file}: {exc}", EXIT_USAGE)
    with client() as hcp:
        report = check_plan(
            hcp, plan, rules=rules, untracked=untracked, show_progress=stderr().is_terminal
        )
    findings = report.findings
    counts = {level.value: sum(1 for f in findings if f.level is level) for level in Level}
    failed = not report.ok
    if format is Format.json:
        emit_json(
            {
                "plan": str(plan_file),
                "terraform_version": plan.get("terraform_version"),
                "passed": not failed,
                "summary": counts,
                "resources_scanned": report.scanned,
                "resources_failed": report.failed,
                "resources_warned": report.warned,
                "resources": [as_json(f) for f in findings],
            }
        )
    else:
        _render(findings, format)
        tally = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        verdict = "[red]FAILED[/red]" if failed else "[green]passed[/green]"
        detail = f": {tally}" if tally else ""
        summary(
            format,
            f"Plan check {verdict}: {report.scanned} resource(s) scanned, "
            f"{len(findings)} image reference(s){detail}.",
        )
    if failed:
        raise typer.Exit(EXIT_FAILED)


# Re-exported: the plan walk used to live here.
__all__ = [
    "IMAGE_RULES",
    "HttpLookup",
    "PlanError",
    "as_json",
    "check_plan",
    "image_refs",
    "parse_rule",
    "plan_app",
]
