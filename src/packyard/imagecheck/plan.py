"""Reading a plan (``terraform show -json PLANFILE``): every image id it deploys.

An image id is read from the resource's planned values (``change.after``, with
``after_unknown`` for values known only after apply). Whether it came from an HCP
Packer data source is read from the configuration: the attribute's expression
references ``data.hcp_packer_artifact.NAME.external_identifier`` (or the older
``hcp_packer_image``), directly or through a module variable. A resource of any
type whose attribute takes such a value is checked too, as HCP Packer's run task
checks every resource referencing its data sources.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from packyard.imagecheck.models import ImageRef, PlanError
from packyard.imagecheck.rules import ImageRule, rule_for

# HCP Packer data sources, and the attribute of each that is an image id (None: none).
DATA_SOURCES: dict[str, str | None] = {
    "hcp_packer_artifact": "external_identifier",
    "hcp_packer_image": "cloud_image_id",  # deprecated predecessor of hcp_packer_artifact
    "hcp_packer_version": None,
    "hcp_packer_iteration": None,  # deprecated predecessor of hcp_packer_version
}

_UNKNOWN = object()  # a value Terraform will only know after apply
_KEY = re.compile(r'\[(?:"(?:[^"\\]|\\.)*"|[^\]]*)\]')  # an instance key: [0], ["a"]
_MAX_DEPTH = 32


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


def strip_keys(address: str) -> str:
    """``module.a[0].aws_instance.b["x"]`` → ``module.a.aws_instance.b``."""
    return _KEY.sub("", address)


@dataclass(slots=True)
class _Module:
    resources: dict[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    parent: str | None = None  # path of the calling module
    call: Mapping[str, Any] | None = None  # the module call's expressions in the parent


class _Config:
    """The plan's configuration, by module path (``""`` is the root module)."""

    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.modules: dict[str, _Module] = {}
        config = plan.get("configuration")
        root = config.get("root_module") if isinstance(config, dict) else None
        self._add("", root, None, None, 0)

    def _add(
        self,
        path: str,
        module: Any,
        parent: str | None,
        call: Mapping[str, Any] | None,
        depth: int,
    ) -> None:
        if not isinstance(module, dict) or depth > _MAX_DEPTH:
            return
        entry = _Module(parent=parent, call=call)
        self.modules[path] = entry
        listed = module.get("resources")
        for res in listed if isinstance(listed, list) else []:
            if isinstance(res, dict):
                key = (str(res.get("mode", "")), str(res.get("type", "")), str(res.get("name", "")))
                entry.resources[key] = res
        calls = module.get("module_calls")
        for name, mc in (calls if isinstance(calls, dict) else {}).items():
            if isinstance(mc, dict):
                sub = f"{path}.module.{name}" if path else f"module.{name}"
                exprs = mc.get("expressions") if isinstance(mc.get("expressions"), dict) else {}
                self._add(sub, mc.get("module"), path, exprs, depth + 1)

    def resource(self, module: str, mode: str, rtype: str, name: str) -> Mapping[str, Any] | None:
        entry = self.modules.get(module)
        return entry.resources.get((mode, rtype, name)) if entry else None

    def trace(
        self, refs: list[str], module: str, *, image_only: bool, depth: int = 0
    ) -> str | None:
        """The HCP Packer data source these references read, as an absolute address.

        With ``image_only``, only a reference to the data source's image id counts.
        ``var.X`` inside a module is followed to the module call's argument.
        """
        if depth > _MAX_DEPTH:
            return None
        prefix = f"{module}." if module else ""
        for ref in refs:
            parts = strip_keys(ref).split(".")
            if parts[0] == "data" and len(parts) >= 3 and parts[1] in DATA_SOURCES:
                wanted = DATA_SOURCES[parts[1]]
                if image_only and (wanted is None or parts[3:4] != [wanted]):
                    continue
                return f"{prefix}data.{parts[1]}.{parts[2]}"
            if parts[0] == "var" and len(parts) >= 2 and module:
                entry = self.modules.get(module)
                arg = (entry.call or {}).get(parts[1]) if entry else None
                if entry is not None and entry.parent is not None and isinstance(arg, dict):
                    found = self.trace(
                        _references(arg), entry.parent, image_only=image_only, depth=depth + 1
                    )
                    if found:
                        return found
        return None


def _is_expression(node: Any) -> bool:
    return isinstance(node, dict) and bool(node) and set(node) <= {"references", "constant_value"}


def _references(node: Any) -> list[str]:
    """Every reference in an expression or in a tree of nested blocks."""
    if _is_expression(node):
        return [str(r) for r in node.get("references") or []]
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    if isinstance(node, dict):
        return [r for value in node.values() for r in _references(value)]
    return []


def _path_references(expressions: Any, parts: list[str]) -> list[str]:
    """References of the expression(s) at a rule path (all blocks of a list)."""
    node: list[Any] = [expressions]
    for head in parts:
        name = head.removesuffix("[]")
        nxt: list[Any] = []
        for item in node:
            if _is_expression(item):  # an attribute holding the whole object
                nxt.append(item)
                continue
            sub = item.get(name) if isinstance(item, dict) else None
            if isinstance(sub, list):
                nxt.extend(sub)
            elif sub is not None:
                nxt.append(sub)
        node = nxt
    return [r for item in node for r in _references(item)]


def _image_paths(expressions: Any, trail: str, config: _Config, module: str) -> Iterator[str]:
    """Paths (rule syntax) of attributes whose value is an HCP Packer image id."""
    if not isinstance(expressions, dict):
        return
    for name, node in expressions.items():
        path = f"{trail}.{name}" if trail else str(name)
        if _is_expression(node):
            if config.trace(_references(node), module, image_only=True):
                yield path
        elif isinstance(node, list):
            seen: set[str] = set()
            for item in node:
                for sub in _image_paths(item, f"{path}[]", config, module):
                    if sub not in seen:
                        seen.add(sub)
                        yield sub
        elif isinstance(node, dict):
            yield from _image_paths(node, path, config, module)


def _walk(value: Any, unknown: Any, parts: list[str], trail: str) -> Iterator[tuple[str, Any]]:
    if not parts:
        if unknown is True:
            yield trail, _UNKNOWN
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
        yield f"{prefix}[*]", _UNKNOWN
        return
    items = sub if isinstance(sub, list) else []
    unknowns = sub_unknown if isinstance(sub_unknown, list) else []
    for i, item in enumerate(items):
        yield from _walk(item, unknowns[i] if i < len(unknowns) else None, rest, f"{prefix}[{i}]")


def _deferred_data_sources(plan: Mapping[str, Any]) -> set[str]:
    """Data sources Terraform reads only during apply (addresses without instance keys)."""
    out: set[str] = set()
    for rc in plan.get("resource_changes") or []:
        if isinstance(rc, dict) and rc.get("mode") == "data":
            actions = (rc.get("change") or {}).get("actions") or []
            if "read" in actions:
                out.add(strip_keys(str(rc.get("address", ""))))
    return out


@dataclass(slots=True)
class PlanImages:
    refs: list[ImageRef]
    scanned: int  # managed resources the plan deploys (create, replace, update, no-op)


def read_plan(plan: Any, rules: list[ImageRule]) -> PlanImages:
    """Every image id that the plan deploys, per resource and attribute."""
    if not isinstance(plan, dict) or (
        "resource_changes" not in plan and "format_version" not in plan
    ):
        raise PlanError("this is not the JSON of `terraform show -json PLANFILE`")
    changes = plan.get("resource_changes") or []
    if not isinstance(changes, list):
        raise PlanError("resource_changes is not a list: this is not a Terraform plan")
    config = _Config(plan)
    deferred = _deferred_data_sources(plan)
    refs: list[ImageRef] = []
    scanned = 0
    for rc in changes:
        if not isinstance(rc, dict) or rc.get("mode", "managed") != "managed":
            continue
        raw = rc.get("change")
        change: dict[str, Any] = raw if isinstance(raw, dict) else {}
        action = action_of([str(a) for a in change.get("actions") or []])
        if action is None:
            continue
        scanned += 1
        rtype = str(rc.get("type", ""))
        address = str(rc.get("address", rtype))
        module = strip_keys(str(rc.get("module_address", "")))
        res = config.resource(module, "managed", rtype, str(rc.get("name", "")))
        expressions = res.get("expressions") if res else None
        rule = rule_for(rtype, rules)
        if rule is not None:
            paths, platform = list(rule.paths), rule.platform
        else:
            paths, platform = list(_image_paths(expressions, "", config, module)), ""
        after, unknown = change.get("after"), change.get("after_unknown")
        seen: set[str] = set()  # two paths through one unknown list meet at one attribute
        for path in paths:
            parts = path.split(".")
            source = config.trace(_path_references(expressions, parts), module, image_only=False)
            for attribute, value in _walk(after, unknown, parts, ""):
                if attribute in seen:
                    continue
                seen.add(attribute)
                refs.append(
                    ImageRef(
                        address=address,
                        type=rtype,
                        action=action,
                        attribute=attribute,
                        platform=platform,
                        image_id=None if value is _UNKNOWN else str(value),
                        source="data_source" if source else "literal",
                        data_source=source,
                        data_source_deferred=source is not None and source in deferred,
                    )
                )
    return PlanImages(refs=refs, scanned=scanned)


def image_refs(plan: Any, rules: list[ImageRule]) -> list[ImageRef]:
    """Every image id that the plan deploys, per resource and attribute."""
    return read_plan(plan, rules).refs


def candidates(ref: ImageRef) -> list[str]:
    """Ids to search for: the value, and for GCE self-links/paths the bare image name."""
    assert ref.image_id is not None
    out = [ref.image_id]
    if ref.platform == "gce" and "/" in ref.image_id:
        out.append(ref.image_id.rstrip("/").rsplit("/", 1)[-1])
    return out


__all__ = ["DATA_SOURCES", "PlanImages", "action_of", "candidates", "image_refs", "read_plan"]
