"""Validate response bodies against the HCP swagger definitions in ../shared/reference.

The swagger has no ``required`` lists; we add ``additionalProperties: false`` so
a misspelt or invented field fails, and allow ``null`` wherever protojson emits
it for unpopulated fields.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest


def _shared_dir() -> Path:
    """The reference specs live in ../shared beside the checkout (PACKYARD_SHARED_DIR
    overrides); a clone of a local checkout (a clean-clone CI run in a temporary directory)
    finds them beside the checkout it was cloned from."""
    configured = os.environ.get("PACKYARD_SHARED_DIR")
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[2]
    beside = checkout.parent / "shared"
    if beside.is_dir():
        return beside
    try:
        origin = subprocess.run(
            ["git", "-C", str(checkout), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return beside
    origin_dir = Path(origin)
    if origin and origin_dir.is_absolute() and (origin_dir.parent / "shared").is_dir():
        return origin_dir.parent / "shared"
    return beside


SHARED = _shared_dir()
REFERENCE = SHARED / "reference"
PACKER_SPEC = REFERENCE / "hcp-packer-2023-01-01.swagger.json"
PACKER_2021_SPEC = REFERENCE / "hcp-packer-2021-04-30.swagger.json"
RM_SPEC = REFERENCE / "hcp-resource-manager-2019-12-10.swagger.json"


def available() -> bool:
    return PACKER_SPEC.exists()


def require() -> None:
    """Skip the calling test without the reference specs; in CI their absence is a failure."""
    if available():
        return
    reason = (
        f"the HCP reference specs are not at {REFERENCE} (they come with ../shared beside the "
        "checkout; set PACKYARD_SHARED_DIR to point elsewhere)"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
            out["properties"] = {
                name: {"anyOf": [prop, {"type": "null"}]}
                for name, prop in out["properties"].items()
            }
        return out
    if isinstance(schema, list):
        return [_strict(x) for x in schema]
    return schema


def _spec(path: Path) -> dict[str, Any]:
    require()
    return _load(path)


@cache
def _load(path: Path) -> dict[str, Any]:
    spec = json.loads(path.read_text())
    return {
        "operations": {
            op["operationId"]: op["responses"]["200"]["schema"]["$ref"]
            for ops in spec["paths"].values()
            for op in ops.values()
            if isinstance(op, dict) and "operationId" in op
        },
        "definitions": _strict(copy.deepcopy(spec["definitions"])),
    }


def validate(operation_id: str, body: Any, *, spec: Path = PACKER_SPEC) -> None:
    """Raise ``jsonschema.ValidationError`` if ``body`` does not fit the operation's 200 schema."""
    loaded = _spec(spec)
    ref = loaded["operations"][operation_id]
    schema = {"$ref": ref, "definitions": loaded["definitions"]}
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(body)


def validate_status(body: Any) -> None:
    """Raise unless ``body`` is a ``google.rpc.Status``."""
    validate_definition("google.rpc.Status", body)
    assert isinstance(body.get("code"), int)
    assert isinstance(body.get("message"), str)


def validate_definition(name: str, body: Any, *, spec: Path = PACKER_SPEC) -> None:
    loaded = _spec(spec)
    schema = {"$ref": f"#/definitions/{name}", "definitions": loaded["definitions"]}
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(body)
