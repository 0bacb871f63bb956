"""What a build's metadata says, read the way people ask about it.

Packer (1.11.2 and later) attaches pipeline metadata to a build when it completes:
``packer`` (version, plugins, os, options), ``vcs`` (type and details: ref, commit,
author, uncommitted changes) and ``cicd`` (type and the platform's variables). Other
writers send their own shapes, and older or hand-made ones put the details at the top
of ``vcs``/``cicd``. :func:`build_info` reads the known shapes into named facts and
keeps anything else as a short list of dotted keys and values, bounded in number and
length so no metadata can flood a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

MAX_OTHER = 40
MAX_VALUE = 300


@dataclass(frozen=True, slots=True)
class BuildInfo:
    packer_version: str = ""
    plugins: tuple[tuple[str, str], ...] = ()  # (name, version)
    os: str = ""
    vcs_type: str = ""
    vcs_ref: str = ""
    vcs_commit: str = ""
    vcs_author: str = ""
    vcs_uncommitted: str = ""  # "yes" / "no" / ""
    cicd_type: str = ""
    cicd: tuple[tuple[str, str], ...] = ()  # the pipeline's details
    other: tuple[tuple[str, str], ...] = ()  # anything else, as dotted keys
    cut: bool = False  # ``other`` was cut at MAX_OTHER entries

    @property
    def has_vcs(self) -> bool:
        return bool(self.vcs_type or self.vcs_ref or self.vcs_commit or self.vcs_author)

    @property
    def empty(self) -> bool:
        return not (
            self.packer_version
            or self.plugins
            or self.os
            or self.has_vcs
            or self.cicd_type
            or self.cicd
            or self.other
        )


def text(value: Any) -> str:
    """A metadata value as one short line."""
    if value is None:
        out = ""
    elif isinstance(value, bool):
        out = "true" if value else "false"
    elif isinstance(value, str):
        out = value
    elif isinstance(value, int | float):
        out = str(value)
    elif isinstance(value, list) and all(
        isinstance(v, str | int | float | bool) or v is None for v in value
    ):
        out = ", ".join(text(v) for v in value)
    else:
        out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return out if len(out) <= MAX_VALUE else out[: MAX_VALUE - 1] + "…"


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if len(out) > MAX_OTHER:
        return
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
        return
    if value is None or value in ("", []):
        return
    out.append((prefix, text(value)))


def _plugins(raw: Any) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and item.get("name"):
                found.append((text(item["name"]), text(item.get("version"))))
            elif isinstance(item, str):
                found.append((item, ""))
    elif isinstance(raw, dict):
        for name, item in raw.items():
            version = item.get("version") if isinstance(item, dict) else item
            found.append((text(name), text(version)))
    return tuple(sorted(found))


def _os(raw: Any) -> str:
    if isinstance(raw, str):
        return text(raw)
    if not isinstance(raw, dict):
        return ""
    details = raw.get("details") if isinstance(raw.get("details"), dict) else {}
    assert isinstance(details, dict)
    extra = ", ".join(text(details[k]) for k in ("arch", "version") if details.get(k))
    kind = text(raw.get("type"))
    return f"{kind} ({extra})" if kind and extra else kind or extra


def _details(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw["details"]`` when it is an object, else ``raw`` without ``type``."""
    details = raw.get("details")
    if isinstance(details, dict):
        return dict(details)
    return {k: v for k, v in raw.items() if k != "type"}


def _uncommitted(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return text(value)


def build_info(metadata: dict[str, Any] | None) -> BuildInfo:
    if not isinstance(metadata, dict):
        return BuildInfo()
    other: list[tuple[str, str]] = []
    fields: dict[str, Any] = {}

    packer = metadata.get("packer")
    if isinstance(packer, dict):
        fields["packer_version"] = text(packer.get("version"))
        fields["plugins"] = _plugins(packer.get("plugins"))
        fields["os"] = _os(packer.get("os"))
        rest = {k: v for k, v in packer.items() if k not in ("version", "plugins", "os")}
        _flatten("packer", rest, other)
    elif packer is not None:
        _flatten("packer", packer, other)

    vcs = metadata.get("vcs")
    if isinstance(vcs, dict):
        details = _details(vcs)
        fields["vcs_type"] = text(vcs.get("type"))
        fields["vcs_ref"] = text(details.pop("ref", None))
        fields["vcs_commit"] = text(details.pop("commit", None))
        fields["vcs_author"] = text(details.pop("author", None))
        fields["vcs_uncommitted"] = _uncommitted(details.pop("has_uncommitted_changes", None))
        _flatten("vcs", details, other)
    elif vcs is not None:
        _flatten("vcs", vcs, other)

    cicd = metadata.get("cicd")
    if isinstance(cicd, dict):
        fields["cicd_type"] = text(cicd.get("type"))
        pipeline: list[tuple[str, str]] = []
        _flatten("", _details(cicd), pipeline)
        fields["cicd"] = tuple(pipeline[:MAX_OTHER])
    elif cicd is not None:
        _flatten("cicd", cicd, other)

    rest = {k: v for k, v in metadata.items() if k not in ("packer", "vcs", "cicd")}
    _flatten("", rest, other)
    return BuildInfo(**fields, other=tuple(other[:MAX_OTHER]), cut=len(other) > MAX_OTHER)


__all__ = ["BuildInfo", "build_info", "text"]
