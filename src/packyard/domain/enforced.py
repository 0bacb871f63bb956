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

from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

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
        return _check_hcl(content)
    raise invalid("template_type must be HCL2 or JSON.", field="template_type")


def _error(message: str) -> ApiError:
    return invalid(f"block_content: {message}", field=FIELD)


# --- native HCL ----------------------------------------------------------------------------


def _check_hcl(content: str) -> ProvisionerCheck:
    from hcl2.api import parses_to_tree  # heavy import (a Lark grammar): only when needed

    try:
        tree = parses_to_tree(content if content.endswith("\n") else content + "\n")
    except UnexpectedInput as e:
        raise _error(f"HCL syntax error at line {e.line}, column {e.column}: {_what(e)}.") from None
    except (LarkError, ValueError) as e:
        raise _error(f"HCL syntax error: {str(e).splitlines()[0]}.") from None
    body = _child(tree, "body")
    out = ProvisionerCheck()
    for item in body.children if body is not None else []:
        if not isinstance(item, Tree) or item.data == "new_line_or_comment":
            continue
        where = _position(item)
        if item.data != "block":
            raise _error(f"{where}only provisioner blocks are allowed at the top level.")
        parts = [c for c in item.children if isinstance(c, Tree)]
        name = _text(parts[0]) if parts else ""
        labels = [p for p in parts[1:] if p.data in ("string", "identifier")]
        if name != "provisioner":
            raise _error(f'{where}unexpected block "{name}": only provisioner blocks are allowed.')
        if len(labels) != 1:
            raise _error(
                f"{where}a provisioner block takes exactly one label, its type: "
                'provisioner "shell" { … }.'
            )
        kind = _text(labels[0])
        if not kind:
            raise _error(f"{where}the provisioner type is empty.")
        inner = next((p for p in parts if p.data == "body"), None)
        _check_meta(where, kind, _attributes(inner))
        out.types.append(kind)
    if not out.types:
        raise _error("no provisioner block found.")
    return out


def _what(e: UnexpectedInput) -> str:
    if isinstance(e, UnexpectedEOF) or getattr(getattr(e, "token", None), "type", "") == "$END":
        return "unexpected end of input"
    if isinstance(e, UnexpectedCharacters):
        return f"unexpected character {e.char!r}"
    token = getattr(e, "token", None)
    if token is None or not str(token).strip():
        return "unexpected input"
    return f"unexpected {str(token).strip().splitlines()[0][:20]!r}"


def _child(tree: Tree[Any], name: str) -> Tree[Any] | None:
    return next((c for c in tree.children if isinstance(c, Tree) and c.data == name), None)


def _text(node: Tree[Any] | Token) -> str:
    """The text of an identifier or a plain string (quotes dropped)."""
    if isinstance(node, Token):
        return str(node) if node.type not in ("DBLQUOTE",) and str(node) != '"' else ""
    return "".join(_text(c) for c in node.children)


def _position(node: Tree[Any]) -> str:
    token = next(node.scan_values(lambda v: isinstance(v, Token) and v.line is not None), None)
    if isinstance(token, Token):
        return f"line {token.line}, column {token.column}: "
    return ""


def _attributes(body: Tree[Any] | None) -> dict[str, Tree[Any]]:
    out: dict[str, Tree[Any]] = {}
    for item in body.children if body is not None else []:
        if isinstance(item, Tree) and item.data == "attribute":
            parts = [c for c in item.children if isinstance(c, Tree)]
            if len(parts) >= 2:
                out[_text(parts[0])] = parts[-1]
    return out


def _literal(expr: Tree[Any]) -> str | None:
    """The value of a plain string literal expression, else ``None``."""
    node: Tree[Any] | Token = expr
    while isinstance(node, Tree) and node.data == "expr_term" and len(node.children) == 1:
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "string":
        if any(isinstance(c, Tree) and c.data != "string_part" for c in node.children):
            return None
        return _text(node)
    return None


def _check_meta(where: str, kind: str, attrs: dict[str, Any]) -> None:
    if "only" in attrs and "except" in attrs:
        raise _error(f'{where}provisioner "{kind}" sets both only and except.')
    for name in _DURATIONS:
        if name in attrs:
            value = _literal(attrs[name]) if isinstance(attrs[name], Tree) else attrs[name]
            if not isinstance(value, str) or not _GO_DURATION.match(value):
                raise _error(
                    f'{where}provisioner "{kind}": {name} must be a literal duration such as "30s".'
                )


# --- JSON forms ------------------------------------------------------------------------------


def _load_json(content: str) -> Any:
    try:
        return json.loads(content)
    except json.JSONDecodeError as e:
        raise _error(f"JSON syntax error at line {e.lineno}, column {e.colno}: {e.msg}.") from None


def _check_hcl_json(content: str) -> ProvisionerCheck:
    """HCL's JSON syntax (a ``.pkr.json`` body): ``{"provisioner": [{"shell": {…}}]}``."""
    data = _load_json(content)
    if not isinstance(data, dict):
        raise _error("the JSON document must be an object.")
    extra = sorted(k for k in data if k != "provisioner")
    if extra:
        raise _error(f'only "provisioner" is allowed at the top level, not "{extra[0]}".')
    if "provisioner" not in data:
        raise _error("no provisioner block found.")
    groups = data["provisioner"]
    groups = groups if isinstance(groups, list) else [groups]
    out = ProvisionerCheck()
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not group:
            raise _error(f"provisioner[{i}] must be an object keyed by provisioner type.")
        for kind, bodies in group.items():
            for body in bodies if isinstance(bodies, list) else [bodies]:
                if not isinstance(body, dict):
                    raise _error(f'provisioner "{kind}" must be an object.')
                _check_meta("", kind, body)
                out.types.append(kind)
    if not out.types:
        raise _error("no provisioner block found.")
    return out


def _check_legacy_json(content: str) -> ProvisionerCheck:
    """The legacy JSON template form: ``{"provisioners": [{"type": "shell", …}]}``."""
    data = _load_json(content)
    if not isinstance(data, dict) or not isinstance(data.get("provisioners"), list):
        raise _error('a JSON block is an object holding a "provisioners" list.')
    extra = sorted(k for k in data if k != "provisioners")
    if extra:
        raise _error(f'only "provisioners" is allowed at the top level, not "{extra[0]}".')
    out = ProvisionerCheck()
    for i, item in enumerate(data["provisioners"]):
        kind = item.get("type") if isinstance(item, dict) else None
        if not isinstance(kind, str) or not kind:
            raise _error(f'provisioners[{i}] needs a "type".')
        _check_meta("", kind, {k: v for k, v in item.items() if k != "type"})
        out.types.append(kind)
    if not out.types:
        raise _error("no provisioner found in provisioners.")
    return out
