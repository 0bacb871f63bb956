"""Enforced provisioner blocks: what they are, and the check that Packer can parse them.

Packer 1.16 fetches the blocks linked to a bucket on every ``packer build`` into it and
aborts the build when one does not parse (``hcl2template/enforced_provisioner_parser.go``),
so content is checked the way Packer reads it before it is stored: native HCL, else
HCL-JSON, else the legacy JSON form ``{"provisioners": [{"type": …}]}``. The declared
template type decides which of these is accepted: ``HCL2`` is the first two (a
``.pkr.hcl`` or ``.pkr.json`` body), ``JSON`` the legacy form.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packyard.domain.enums import TemplateType
from packyard.errors import ApiError, invalid

FIELD = "block_content"
# Parsing is pure Python (about 0.5 s for 64 KiB of HCL on the benchmark machine) and runs in
# the request; real blocks are a few KiB.
MAX_CONTENT = 64 * 1024
# Meta-arguments Packer decodes with an empty evaluation context: they must be literals.
_DURATIONS = ("pause_before", "timeout")
_GO_DURATION = re.compile(r"^[-+]?(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$")


@dataclass(slots=True)
class EnforcedBlockVersion:
    id: str
    block_id: str
    version: str
    template_type: TemplateType
    block_content: str
    additional_description: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class EnforcedBlock:
    id: str
    project_id: str
    name: str
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    latest_version: EnforcedBlockVersion | None = None


@dataclass(slots=True)
class EnforcedLink:
    """One bucket running one version of a block."""

    id: str
    bucket_id: str
    bucket_name: str
    block_id: str
    version_id: str
    created_at: datetime


@dataclass(slots=True)
class ProvisionerCheck:
    """What a valid block holds: its provisioner types, in order."""

    types: list[str] = field(default_factory=list)


def check_content(template_type: TemplateType, content: str | None) -> ProvisionerCheck:
    """The provisioners of ``content`` or a 400/3 naming ``block_content`` (with the
    parser's line and column where it gives them)."""
    if content is None or not content.strip():
        raise invalid("block_content is required: one or more provisioner blocks.", field=FIELD)
    if len(content) > MAX_CONTENT:
        raise invalid(f"block_content is longer than {MAX_CONTENT} characters.", field=FIELD)
    if template_type is TemplateType.JSON:
        return _check_legacy_json(content)
    if template_type is TemplateType.HCL2:
        if content.lstrip().startswith("{"):
            return _check_hcl_json(content)
        # Native HCL's parser (a Lark grammar, about 3 MB resident) is imported only when a
        # block is checked: most servers never do.
        from packyard.domain.enforced_hcl import check_hcl

        return check_hcl(content)
    raise invalid("template_type must be HCL2 or JSON.", field="template_type")


def content_error(message: str) -> ApiError:
    return invalid(f"block_content: {message}", field=FIELD)


def check_meta(where: str, kind: str, attrs: dict[str, Any]) -> None:
    """The meta-arguments of provisioner ``kind`` (``attrs``: its attributes, a literal
    string as a ``str``) that Packer decodes without variables."""
    if "only" in attrs and "except" in attrs:
        raise content_error(f'{where}provisioner "{kind}" sets both only and except.')
    for name in _DURATIONS:
        if name in attrs:
            value = attrs[name]
            if not isinstance(value, str) or not _GO_DURATION.match(value):
                raise content_error(
                    f'{where}provisioner "{kind}": {name} must be a literal duration such as "30s".'
                )


# --- JSON forms ------------------------------------------------------------------------------


def _load_json(content: str) -> Any:
    try:
        return json.loads(content)
    except json.JSONDecodeError as e:
        raise content_error(
            f"JSON syntax error at line {e.lineno}, column {e.colno}: {e.msg}."
        ) from None


def _check_hcl_json(content: str) -> ProvisionerCheck:
    """HCL's JSON syntax (a ``.pkr.json`` body): ``{"provisioner": [{"shell": {…}}]}``."""
    data = _load_json(content)
    if not isinstance(data, dict):
        raise content_error("the JSON document must be an object.")
    extra = sorted(k for k in data if k != "provisioner")
    if extra:
        raise content_error(f'only "provisioner" is allowed at the top level, not "{extra[0]}".')
    if "provisioner" not in data:
        raise content_error("no provisioner block found.")
    groups = data["provisioner"]
    groups = groups if isinstance(groups, list) else [groups]
    out = ProvisionerCheck()
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not group:
            raise content_error(f"provisioner[{i}] must be an object keyed by provisioner type.")
        for kind, bodies in group.items():
            for body in bodies if isinstance(bodies, list) else [bodies]:
                if not isinstance(body, dict):
                    raise content_error(f'provisioner "{kind}" must be an object.')
                check_meta("", kind, body)
                out.types.append(kind)
    if not out.types:
        raise content_error("no provisioner block found.")
    return out


def _check_legacy_json(content: str) -> ProvisionerCheck:
    """The legacy JSON template form: ``{"provisioners": [{"type": "shell", …}]}``."""
    data = _load_json(content)
    if not isinstance(data, dict) or not isinstance(data.get("provisioners"), list):
        raise content_error('a JSON block is an object holding a "provisioners" list.')
    extra = sorted(k for k in data if k != "provisioners")
    if extra:
        raise content_error(f'only "provisioners" is allowed at the top level, not "{extra[0]}".')
    out = ProvisionerCheck()
    for i, item in enumerate(data["provisioners"]):
        kind = item.get("type") if isinstance(item, dict) else None
        if not isinstance(kind, str) or not kind:
            raise content_error(f'provisioners[{i}] needs a "type".')
        check_meta("", kind, {k: v for k, v in item.items() if k != "type"})
        out.types.append(kind)
    if not out.types:
        raise content_error("no provisioner found in provisioners.")
    return out
