"""Enforced provisioner blocks in native HCL: checked as Packer parses them (see
:mod:`packyard.domain.enforced`), on python-hcl2's Lark grammar."""

from __future__ import annotations

from typing import Any

from hcl2.api import parses_to_tree
from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from packyard.domain.enforced import ProvisionerCheck, check_meta, content_error


def check_hcl(content: str) -> ProvisionerCheck:
    """The provisioners of a native HCL body, checked as Packer parses it."""
    try:
        tree = parses_to_tree(content if content.endswith("\n") else content + "\n")
    except UnexpectedInput as e:
        raise content_error(
            f"HCL syntax error at line {e.line}, column {e.column}: {_what(e)}."
        ) from None
    except (LarkError, ValueError) as e:
        raise content_error(f"HCL syntax error: {str(e).splitlines()[0]}.") from None
    body = _child(tree, "body")
    out = ProvisionerCheck()
    for item in body.children if body is not None else []:
        if not isinstance(item, Tree) or item.data == "new_line_or_comment":
            continue
        where = _position(item)
        if item.data != "block":
            raise content_error(f"{where}only provisioner blocks are allowed at the top level.")
        parts = [c for c in item.children if isinstance(c, Tree)]
        name = _text(parts[0]) if parts else ""
        labels = [p for p in parts[1:] if p.data in ("string", "identifier")]
        if name != "provisioner":
            raise content_error(
                f'{where}unexpected block "{name}": only provisioner blocks are allowed.'
            )
        if len(labels) != 1:
            raise content_error(
                f"{where}a provisioner block takes exactly one label, its type: "
                'provisioner "shell" { … }.'
            )
        kind = _text(labels[0])
        if not kind:
            raise content_error(f"{where}the provisioner type is empty.")
        inner = next((p for p in parts if p.data == "body"), None)
        literals = {name: _literal(expr) for name, expr in _attributes(inner).items()}
        check_meta(where, kind, literals)
        out.types.append(kind)
    if not out.types:
        raise content_error("no provisioner block found.")
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
