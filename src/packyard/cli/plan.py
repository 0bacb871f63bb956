"""``packyard plan check``: vet the images of a Terraform/OpenTofu plan against the registry.

Input is the JSON of ``terraform show -json PLANFILE`` (or ``tofu show -json``).
Each managed resource whose type is in :data:`IMAGE_RULES` (or given with
``--attribute``) has its image ids read from ``change.after``; every id is
looked up with SearchExternalArtifact. The verdict per resource:

========================================  =========================================
situation                                 result
========================================  =========================================
created or replaced onto a revoked image  **fail** (exit 1)
updated in place onto a revoked image     warn
unchanged resource on a revoked image     info
revocation scheduled                      warn (with the time)
image id not tracked by the registry      warn, or fail with ``--untracked fail``
image id unknown until apply              warn
a newer version is on a channel           info (with the channel's image id)
========================================  =========================================
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, TextColumn

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
    when,
)

if TYPE_CHECKING:  # the SDK is imported when a command runs (see common.client)
    from packyard.client import PackerClient
    from packyard.client.models import Channel, ExternalArtifact

plan_app = typer.Typer(
    help="Check Terraform/OpenTofu plans against the registry.", no_args_is_help=True
)


@dataclass(frozen=True, slots=True)
class ImageRule:
    """Where a resource type keeps image ids: ``pattern`` (fnmatch on the type) and paths.

    A path is dotted; ``[]`` after a name walks every element of a list, e.g.
    ``boot_disk[].initialize_params[].image``.
    """

    pattern: str
    platform: str
    paths: tuple[str, ...]


IMAGE_RULES: list[ImageRule] = [
    ImageRule("aws_instance", "aws", ("ami",)),
    ImageRule("aws_spot_instance_request", "aws", ("ami",)),
    ImageRule("aws_launch_template", "aws", ("image_id",)),
    ImageRule("aws_launch_configuration", "aws", ("image_id",)),
    ImageRule("aws_spot_fleet_request", "aws", ("launch_specification[].ami",)),
    ImageRule("aws_ami_copy", "aws", ("source_ami_id",)),
    ImageRule("aws_ami_launch_permission", "aws", ("image_id",)),
    ImageRule("azurerm_*_virtual_machine*", "azure", ("source_image_id",)),
    ImageRule("azurerm_virtual_machine", "azure", ("storage_image_reference[].id",)),
    ImageRule("google_compute_instance", "gce", ("boot_disk[].initialize_params[].image",)),
    ImageRule("google_compute_instance_template", "gce", ("disk[].source_image",)),
    ImageRule("google_compute_region_instance_template", "gce", ("disk[].source_image",)),
    ImageRule("google_compute_disk", "gce", ("image",)),
    ImageRule("google_compute_region_disk", "gce", ("image",)),
    ImageRule("docker_container", "docker", ("image",)),
]


class Level(StrEnum):
    ok = "ok"
    info = "info"
    warn = "warn"
    fail = "fail"


class Untracked(StrEnum):
    warn = "warn"
    fail = "fail"


UNKNOWN = object()  # a value Terraform will only know after apply


@dataclass(slots=True)
class ImageRef:
    address: str
    type: str
    action: str  # create, replace, update, no-op
    attribute: str
    platform: str
    image_id: str | None  # None: unknown until apply


@dataclass(slots=True)
class Newer:
    channel: str
    version: str
    fingerprint: str
    image_id: str | None


@dataclass(slots=True)
class Finding:
    ref: ImageRef
    level: Level = Level.ok
    hit: ExternalArtifact | None = None
    channels: list[str] = field(default_factory=list)
    newer: list[Newer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        hit = self.hit
        return {
            "address": self.ref.address,
            "type": self.ref.type,
            "action": self.ref.action,
            "attribute": self.ref.attribute,
            "image_id": self.ref.image_id,
            "tracked": hit is not None,
            "bucket": hit.bucket.name if hit else None,
            "version": None
            if hit is None
            else {
                "id": hit.version.id,
                "name": hit.version.name,
                "fingerprint": hit.version.fingerprint,
                "status": hit.version.status,
                "revoke_at": hit.version.revoke_at.isoformat() if hit.version.revoke_at else None,
                "revocation_message": hit.version.revocation_message,
            },
            "build": None
            if hit is None
            else {
                "id": hit.build.id,
                "component_type": hit.build.component_type,
                "platform": hit.build.platform,
            },
            "channels": self.channels,
            "newer": [
                {
                    "channel": n.channel,
                    "version": n.version,
                    "fingerprint": n.fingerprint,
                    "image_id": n.image_id,
                }
                for n in self.newer
            ],
            "result": self.level.value,
            "notes": self.notes,
        }


class PlanError(ValueError):
    """The input is not Terraform plan JSON."""


def action_of(actions: list[str]) -> str | None:
    """The kind of change, or None for changes that deploy nothing (delete, read)."""
    kinds = set(actions)
    if kinds == {"create"}:
        return "create"
    if kinds == {"delete", "create"}:
        return "replace"
    if kinds == {"update"}:
        return "update"
    if kinds == {"no-op"}:
        return "no-op"
    return None


def parse_rule(text: str) -> ImageRule:
    """``TYPE=PATH`` or ``TYPE=PATH@PLATFORM`` from ``--attribute``."""
    rtype, sep, rest = text.partition("=")
    path, _, platform = rest.partition("@")
    if not sep or not rtype or not path:
        raise PlanError(f"--attribute expects TYPE=PATH[@PLATFORM], got {text!r}")
    return ImageRule(rtype, platform, (path,))


def _walk(value: Any, unknown: Any, parts: list[str], trail: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        if unknown is True:
            yield trail, UNKNOWN
        elif isinstance(value, str) and value:
            yield trail, value
        return
    head, rest = parts[0], parts[1:]
    many = head.endswith("[]")
    name = head.removesuffix("[]")
    sub = value.get(name) if isinstance(value, dict) else None
    sub_unknown = unknown.get(name) if isinstance(unknown, dict) else None
    prefix = f"{trail}.{name}" if trail else name
    if not many:
        yield from _walk(sub, sub_unknown, rest, prefix)
        return
    if sub_unknown is True:
        yield f"{prefix}[*]", UNKNOWN
        return
    items = sub if isinstance(sub, list) else []
    unknowns = sub_unknown if isinstance(sub_unknown, list) else []
    for i, item in enumerate(items):
        yield from _walk(item, unknowns[i] if i < len(unknowns) else None, rest, f"{prefix}[{i}]")


def image_refs(plan: Any, rules: list[ImageRule]) -> list[ImageRef]:
    """Every image id that the plan deploys, per resource and attribute."""
    if not isinstance(plan, dict) or (
        "resource_changes" not in plan and "format_version" not in plan
    ):
        raise PlanError("this is not the JSON of `terraform show -json PLANFILE`")
    refs: list[ImageRef] = []
    for rc in plan.get("resource_changes") or []:
        if not isinstance(rc, dict) or rc.get("mode", "managed") != "managed":
            continue
        rtype = str(rc.get("type", ""))
        rule = next((r for r in rules if fnmatch.fnmatchcase(rtype, r.pattern)), None)
        if rule is None:
            continue
        change = rc.get("change") or {}
        action = action_of(list(change.get("actions") or []))
        if action is None:
            continue
        after, unknown = change.get("after"), change.get("after_unknown")
        for path in rule.paths:
            for attribute, value in _walk(after, unknown, path.split("."), ""):
                refs.append(
                    ImageRef(
                        address=str(rc.get("address", rtype)),
                        type=rtype,
                        action=action,
                        attribute=attribute,
                        platform=rule.platform,
                        image_id=None if value is UNKNOWN else str(value),
                    )
                )
    return refs


def candidates(ref: ImageRef) -> list[str]:
    """Ids to search for: the value, and for GCE self-links/paths the bare image name."""
    assert ref.image_id is not None
    out = [ref.image_id]
    if ref.platform == "gce" and "/" in ref.image_id:
        out.append(ref.image_id.rstrip("/").rsplit("/", 1)[-1])
    return out


def pick(hits: list[ExternalArtifact]) -> ExternalArtifact | None:
    """The most favourable hit: a usable version beats a scheduled one beats a revoked one."""
    if not hits:
        return None

    def rank(h: ExternalArtifact) -> tuple[int, int]:
        v = h.version
        bad = 2 if v.revoked else 1 if v.revocation_scheduled else 0
        return bad, -v.number

    return min(hits, key=rank)


def newer_on_channels(
    hit: ExternalArtifact, image_id: str, channels: list[Channel]
) -> tuple[list[str], list[Newer]]:
    """Channels on the hit's version, and channels that carry a newer version."""
    region = next(
        (a.region for a in hit.build.artifacts if a.external_identifier == image_id), None
    )
    current: list[str] = []
    newer: list[Newer] = []
    for c in channels:
        v = c.version
        if v is None:
            continue
        if v.fingerprint == hit.version.fingerprint:
            current.append(c.name)
        elif v.number > hit.version.number and not v.revoked:
            replacement = None
            if region is not None:
                found = v.find_artifact(
                    hit.build.platform, region, hit.build.component_type
                ) or v.find_artifact(hit.build.platform, region)
                replacement = found[1].external_identifier if found else None
            newer.append(Newer(c.name, v.name, v.fingerprint, replacement))
    return current, newer


def judge(finding: Finding, untracked: Untracked) -> None:
    ref, hit = finding.ref, finding.hit
    if ref.image_id is None:
        finding.level = Level.warn
        finding.notes.append("image id is unknown until apply; it cannot be checked now")
        return
    if hit is None:
        finding.level = Level.fail if untracked is Untracked.fail else Level.warn
        finding.notes.append("image is not tracked by the registry")
        return
    v = hit.version
    if v.revoked:
        why = f" ({v.revocation_message})" if v.revocation_message else ""
        if ref.action in ("create", "replace"):
            finding.level = Level.fail
            finding.notes.append(f"{ref.action} onto revoked version {v.name}{why}")
        elif ref.action == "update":
            finding.level = Level.warn
            finding.notes.append(f"updated in place onto revoked version {v.name}{why}")
        else:
            finding.level = Level.info
            finding.notes.append(f"unchanged, but runs revoked version {v.name}{why}")
    elif v.revocation_scheduled:
        finding.level = Level.warn
        finding.notes.append(f"version {v.name} will be revoked at {when(v.revoke_at)}")
    grouped: dict[tuple[str, str | None], list[str]] = {}
    for n in finding.newer:
        grouped.setdefault((n.version, n.image_id), []).append(n.channel)
    for (version, image_id), names in grouped.items():
        image = f": {image_id}" if image_id else ""
        where = "channel" if len(names) == 1 else "channels"
        finding.notes.append(f"newer {version} on {where} {', '.join(names)}{image}")
        if finding.level is Level.ok:
            finding.level = Level.info


def check_plan(
    hcp: PackerClient,
    plan: Any,
    *,
    rules: list[ImageRule] | None = None,
    untracked: Untracked = Untracked.warn,
    show_progress: bool = False,
) -> list[Finding]:
    """Look up every image of ``plan`` and judge each resource (see the module docstring)."""
    refs = image_refs(plan, list(rules or []) + IMAGE_RULES)
    searched: dict[str, list[ExternalArtifact]] = {}
    channels: dict[str, list[Channel]] = {}
    findings: list[Finding] = []
    with progress_bar(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        show=show_progress,
    ) as bar:
        task = bar.add_task("Looking up images", total=len(refs))
        for ref in refs:
            finding = Finding(ref)
            if ref.image_id is not None:
                hits: list[ExternalArtifact] = []
                for candidate in candidates(ref):
                    if candidate not in searched:
                        searched[candidate] = list(hcp.search_external_artifact(candidate))
                    hits = searched[candidate]
                    if hits:
                        break
                finding.hit = pick(hits)
            if finding.hit is not None:
                hit, ids = finding.hit, candidates(ref)
                bucket = hit.bucket.name
                if bucket not in channels:
                    channels[bucket] = hcp.list_channels(bucket)
                matched = next(
                    (
                        a.external_identifier
                        for a in hit.build.artifacts
                        if a.external_identifier in ids
                    ),
                    ids[0],
                )
                finding.channels, finding.newer = newer_on_channels(hit, matched, channels[bucket])
            judge(finding, untracked)
            findings.append(finding)
            bar.advance(task)
    return findings


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
        hit = f.hit
        rows.append(
            [
                f.ref.address,
                f.ref.attribute,
                f.ref.action,
                f.ref.image_id,
                hit.bucket.name if hit else None,
                hit.version.name if hit else None,
                hit.version.status if hit else None,
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
        findings = check_plan(
            hcp, plan, rules=rules, untracked=untracked, show_progress=stderr().is_terminal
        )
    counts = {level.value: sum(1 for f in findings if f.level is level) for level in Level}
    failed = counts[Level.fail.value] > 0
    if format is Format.json:
        emit_json(
            {
                "plan": str(plan_file),
                "terraform_version": plan.get("terraform_version"),
                "passed": not failed,
                "summary": counts,
                "resources": [f.as_json() for f in findings],
            }
        )
    else:
        _render(findings, format)
        tally = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        verdict = "[red]FAILED[/red]" if failed else "[green]passed[/green]"
        detail = f": {tally}" if tally else ""
        summary(format, f"Plan check {verdict}: {len(findings)} image reference(s){detail}.")
    if failed:
        raise typer.Exit(EXIT_FAILED)
