"""The verdicts: one rule set for ``packyard plan check`` and the run task.

========================================  =========================================
situation                                 result
========================================  =========================================
created or replaced onto a revoked image  **fail**
updated in place onto a revoked image     warn
unchanged resource on a revoked image     info
revocation scheduled                      warn (with the date)
image id not tracked by the registry      warn, or fail with ``Untracked.fail``
image id unknown until apply              warn
a newer version is on a channel           info (with the channel's image id)
========================================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from packyard.imagecheck.models import (
    ChannelVersion,
    Finding,
    ImageRef,
    KnownImage,
    Level,
    Lookup,
    NewerImage,
    PlanReport,
    Untracked,
)
from packyard.imagecheck.plan import candidates, read_plan
from packyard.imagecheck.rules import IMAGE_RULES, ImageRule

_RANK = {Level.ok: 0, Level.info: 1, Level.warn: 2, Level.fail: 3}
_DONE = {"create": "created", "replace": "replaced"}


def when(value: datetime) -> str:
    """A date for one line: the day, with the time unless it is midnight UTC."""
    utc = value.astimezone(UTC)
    if (utc.hour, utc.minute, utc.second) == (0, 0, 0):
        return utc.strftime("%Y-%m-%d")
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def pick(hits: list[KnownImage], now: datetime) -> KnownImage | None:
    """The most favourable hit: a usable version beats a scheduled one beats a revoked one."""
    if not hits:
        return None

    def rank(k: KnownImage) -> tuple[int, int]:
        bad = 2 if k.revoked(now) else 1 if k.scheduled(now) else 0
        return bad, -k.version_number

    return min(hits, key=rank)


def _served(
    image: KnownImage, channels: list[ChannelVersion], now: datetime
) -> tuple[list[str], list[NewerImage]]:
    """Channels on the image's version, and channels that carry a newer, unrevoked one."""
    current: list[str] = []
    newer: list[NewerImage] = []
    for c in channels:
        if c.fingerprint == image.fingerprint:
            current.append(c.channel)
        elif c.version_number > image.version_number and not (
            c.revoke_at is not None and c.revoke_at <= now
        ):
            newer.append(NewerImage(c.channel, c.version_name, c.fingerprint, c.replacement(image)))
    return current, newer


def _describe(image_id: str, k: KnownImage) -> str:
    return f"{image_id} is {k.version_name} of bucket {k.bucket}"


def judge(ref: ImageRef, image: KnownImage | None, untracked: Untracked, now: datetime) -> Finding:
    """The verdict on one image reference (before the newer-version note)."""
    finding = Finding(
        address=ref.address,
        resource_type=ref.type,
        action=ref.action,
        image_id=ref.image_id,
        source=ref.source,
        level=Level.ok,
        reason="",
        image=image,
        attribute=ref.attribute,
        platform=ref.platform,
        data_source=ref.data_source,
    )
    if ref.image_id is None:
        finding.level = Level.warn
        if ref.data_source_deferred:
            line = f"image id is unknown until apply ({ref.data_source} is read during apply)"
        else:
            line = "image id is unknown until apply; it cannot be checked now"
        finding.notes.append(line)
        return finding
    if image is None:
        finding.level = Level.fail if untracked is Untracked.fail else Level.warn
        finding.notes.append(f"{ref.image_id} is not tracked by the registry")
        return finding
    said = _describe(ref.image_id, image)
    why = f": {image.revocation_message}" if image.revocation_message else ""
    if image.revoke_at is not None and image.revoked(now):
        revoked = f"{said}, revoked {when(image.revoke_at)}{why}"
        if ref.action in _DONE:
            finding.level = Level.fail
            finding.notes.append(f"{revoked} ({_DONE[ref.action]} onto a revoked image)")
        elif ref.action == "update":
            finding.level = Level.warn
            finding.notes.append(f"{revoked} (updated in place onto a revoked image)")
        else:
            finding.level = Level.info
            finding.notes.append(f"{revoked} (unchanged, but runs a revoked image)")
    elif image.revoke_at is not None:
        finding.level = Level.warn
        finding.notes.append(f"{said}, will be revoked {when(image.revoke_at)}{why}")
    return finding


def _note_newer(finding: Finding) -> None:
    grouped: dict[tuple[str, str | None], list[str]] = {}
    for n in finding.newer_images:
        grouped.setdefault((n.version_name, n.image_id), []).append(n.channel)
    for (version, image_id), names in grouped.items():
        image = f": {image_id}" if image_id else ""
        where = "channel" if len(names) == 1 else "channels"
        finding.notes.append(f"newer {version} on {where} {', '.join(names)}{image}")
        if finding.level is Level.ok:
            finding.level = Level.info


def evaluate(
    plan: Mapping[str, Any],
    lookup: Lookup,
    *,
    untracked: Untracked,
    now: datetime,
    rules: list[ImageRule] | None = None,
) -> PlanReport:
    """Judge every image a plan deploys; ``rules`` come before :data:`IMAGE_RULES`.

    The lookup is asked twice at most, whatever the size of the plan: once for
    every image id, once for the channels of every bucket found.
    """
    read = read_plan(plan, [*(rules or []), *IMAGE_RULES])
    ids = list(
        dict.fromkeys(c for ref in read.refs if ref.image_id is not None for c in candidates(ref))
    )
    found = lookup.find(ids) if ids else {}
    picked: list[KnownImage | None] = []
    for ref in read.refs:
        hits: list[KnownImage] = []
        if ref.image_id is not None:
            hits = next((found[c] for c in candidates(ref) if found.get(c)), [])
        picked.append(pick(hits, now))
    buckets = list(dict.fromkeys(k.bucket for k in picked if k is not None))
    served = lookup.channels(buckets) if buckets else {}
    findings: list[Finding] = []
    for ref, image in zip(read.refs, picked, strict=True):
        finding = judge(ref, image, untracked, now)
        if image is not None:
            finding.channels, finding.newer_images = _served(
                image, list(served.get(image.bucket, [])), now
            )
            finding.newer = [(n.channel, n.version_name) for n in finding.newer_images]
            _note_newer(finding)
        finding.reason = _reason(finding)
        findings.append(finding)
    worst: dict[str, Level] = {}
    for f in findings:
        if _RANK[f.level] > _RANK[worst.get(f.address, Level.ok)]:
            worst[f.address] = f.level
        else:
            worst.setdefault(f.address, f.level)
    return PlanReport(
        findings=findings,
        scanned=read.scanned,
        failed=sum(1 for level in worst.values() if level is Level.fail),
        warned=sum(1 for level in worst.values() if level is Level.warn),
        checked=len(worst),
    )


def _reason(f: Finding) -> str:
    if f.notes:
        return "; ".join(f.notes)
    if f.image is not None and f.image_id is not None:
        return f"{_describe(f.image_id, f.image)}, not revoked"
    return "nothing to report"


__all__ = ["evaluate", "judge", "pick", "when"]
