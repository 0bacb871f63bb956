"""What changed between two versions of a bucket: what a reviewer asks before promoting.

A pure comparison of two loaded versions (builds, artifacts, metadata) and their
parents, section by section. Every row says what it was before, what it is after and
whether that was added, removed, changed or left as it was.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from packyard.domain.buildinfo import BuildInfo, build_info
from packyard.domain.lineage import Relation
from packyard.domain.models import Build, Version


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Change:
    subject: str
    before: str  # "" when absent from the first version
    after: str  # "" when absent from the second
    kind: ChangeKind


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    rows: tuple[Change, ...]

    @property
    def changed(self) -> list[Change]:
        return [r for r in self.rows if r.kind is not ChangeKind.UNCHANGED]

    @property
    def unchanged(self) -> list[Change]:
        return [r for r in self.rows if r.kind is ChangeKind.UNCHANGED]


def _kind(before: str, after: str) -> ChangeKind:
    if before == after:
        return ChangeKind.UNCHANGED
    if not before:
        return ChangeKind.ADDED
    if not after:
        return ChangeKind.REMOVED
    return ChangeKind.CHANGED


def diff(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[Change, ...]:
    """Rows for every subject either side has a value for, in subject order."""
    subjects = sorted(s for s in set(before) | set(after) if before.get(s) or after.get(s))
    return tuple(
        Change(s, before.get(s, ""), after.get(s, ""), _kind(before.get(s, ""), after.get(s, "")))
        for s in subjects
    )


def merged(per_build: Mapping[str, str]) -> str:
    """One value for a version from its builds' values: the value when every build that
    has one agrees, else each value with its builds."""
    values: dict[str, list[str]] = defaultdict(list)
    for component, value in sorted(per_build.items()):
        if value:
            values[value].append(component)
    if len(values) <= 1:
        return next(iter(values), "")
    return "; ".join(f"{v} ({', '.join(c)})" for v, c in sorted(values.items()))


def _per_build(
    version: Version, infos: Mapping[str, BuildInfo], value: Callable[[Build, BuildInfo], str]
) -> dict[str, str]:
    return {b.component_type: value(b, infos[b.id]) for b in version.builds}


def _builds(v: Version) -> dict[str, str]:
    return {
        b.component_type: f"{b.status.value.removeprefix('BUILD_').lower()} on "
        f"{b.platform or 'no platform'}"
        for b in v.builds
    }


def _artifacts(v: Version) -> dict[str, str]:
    found: dict[str, list[str]] = defaultdict(list)
    for b in v.builds:
        for a in b.artifacts:
            found[f"{b.platform or '—'} · {a.region or 'no region'}"].append(a.external_identifier)
    return {k: ", ".join(sorted(ids)) for k, ids in found.items()}


def _labels(v: Version) -> dict[str, str]:
    keys = sorted({k for b in v.builds for k in b.labels})
    return {k: merged({b.component_type: b.labels.get(k, "") for b in v.builds}) for k in keys}


def _sources(v: Version) -> dict[str, str]:
    return {b.component_type: b.source_external_identifier for b in v.builds}


def _parents(relations: Iterable[Relation]) -> dict[str, str]:
    found: dict[str, list[str]] = defaultdict(list)
    for r in relations:
        through = f" from channel {r.channel_name}" if r.channel_name else ""
        found[r.version.bucket_name].append(f"{r.version.name} ({r.version.fingerprint}){through}")
    return {k: ", ".join(sorted(v)) for k, v in found.items()}


def _packer(v: Version, infos: Mapping[str, BuildInfo]) -> dict[str, str]:
    out = {"Packer version": merged(_per_build(v, infos, lambda _, i: i.packer_version))}
    plugins: dict[str, dict[str, str]] = defaultdict(dict)
    for build in v.builds:
        for name, version in infos[build.id].plugins:
            plugins[name][build.component_type] = version
    for name, per_build in sorted(plugins.items()):
        out[f"Plugin {name}"] = merged(per_build)
    return {k: val for k, val in out.items() if val}


def _source_control(v: Version, infos: Mapping[str, BuildInfo]) -> dict[str, str]:
    facts = {
        "Git commit": lambda _b, i: i.vcs_commit,
        "Ref": lambda _b, i: i.vcs_ref,
        "Commit author": lambda _b, i: i.vcs_author,
        "Uncommitted changes": lambda _b, i: i.vcs_uncommitted,
        "Version control": lambda _b, i: i.vcs_type,
        "CI/CD": lambda _b, i: i.cicd_type,
    }
    out = {name: merged(_per_build(v, infos, fn)) for name, fn in facts.items()}
    return {k: val for k, val in out.items() if val}


def compare_versions(
    a: Version, b: Version, parents_a: Iterable[Relation], parents_b: Iterable[Relation]
) -> list[Section]:
    """What changed from ``a`` to ``b``, in the order a reviewer reads it."""
    info_a = {x.id: build_info(x.metadata) for x in a.builds}
    info_b = {x.id: build_info(x.metadata) for x in b.builds}
    return [
        Section(
            "artifacts", "Artifacts by platform and region", diff(_artifacts(a), _artifacts(b))
        ),
        Section(
            "source-control",
            "Source control and pipeline",
            diff(_source_control(a, info_a), _source_control(b, info_b)),
        ),
        Section("parents", "Parents", diff(_parents(parents_a), _parents(parents_b))),
        Section("sources", "Source images", diff(_sources(a), _sources(b))),
        Section("packer", "Packer and plugins", diff(_packer(a, info_a), _packer(b, info_b))),
        Section("labels", "Labels", diff(_labels(a), _labels(b))),
        Section("builds", "Builds", diff(_builds(a), _builds(b))),
    ]


__all__ = ["Change", "ChangeKind", "Section", "compare_versions", "diff", "merged"]
