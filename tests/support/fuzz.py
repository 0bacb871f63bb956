"""Schema-driven fuzzing with schemathesis against a live Packyard server.

Seeded (hypothesis ``derandomize``) and bounded (a fixed number of examples per operation
and strategy), so every run sends the same requests and takes about the same time.

What every answer must satisfy:
- no 5xx, except 501 carrying ``code`` 12 (UNIMPLEMENTED), the documented answer of a
  route Packyard deliberately does not serve;
- every non-200 answer is a ``google.rpc.Status`` JSON body;
- every 200 answer validates against the operation's 200 schema.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy

from tests.support import swagger

Validate200 = Callable[[str, Any], None]


@dataclass
class FuzzStats:
    cases: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_status.items()))
        return f"{self.cases} cases ({statuses})"


def _pin_path(path: str, pins: dict[str, str]) -> str:
    for name, value in pins.items():
        path = path.replace("{" + name + "}", value)
    return path


def pin_location(spec: dict[str, Any], pins: dict[str, str], keep: set[str]) -> dict[str, Any]:
    """Keep the operations in ``keep``; write ``pins`` (path parameter -> value) into paths."""
    out = copy.deepcopy(spec)
    paths: dict[str, Any] = {}
    for path, operations in spec["paths"].items():
        kept: dict[str, Any] = {}
        for method, operation in operations.items():
            if not isinstance(operation, dict) or operation.get("operationId") not in keep:
                continue
            pinned_op = copy.deepcopy(operation)
            pinned_op["parameters"] = [
                p
                for p in operation.get("parameters", [])
                if not (p.get("in") == "path" and p.get("name") in pins)
            ]
            kept[method] = pinned_op
        if kept:
            paths[_pin_path(path, pins)] = kept
    out["paths"] = paths
    out.pop("host", None)
    out.pop("security", None)
    out.pop("securityDefinitions", None)
    return out


def operation_ids(spec: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (method.upper(), path): op["operationId"]
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and "operationId" in op
    }


def check_answer(response: Any, operation_id: str, validate_200: Validate200) -> str | None:
    """The first broken promise of one answer, or None."""
    status = response.status_code
    try:
        body: Any = json.loads(response.content) if response.content else None
    except ValueError:
        return f"{status} with a body that is not JSON: {response.content[:200]!r}"
    if status == 200:
        try:
            validate_200(operation_id, body)
        except Exception as exc:  # jsonschema errors, assertion errors
            return f"200 body does not fit the schema: {str(exc).splitlines()[0][:300]}"
        return None
    content_type = response.headers.get("content-type") or [""]
    if isinstance(content_type, list):  # schemathesis keeps every header as a list
        content_type = content_type[0]
    if not content_type.startswith("application/json"):
        return f"{status} is not JSON: {content_type}"
    try:
        swagger.validate_status(body)
        assert isinstance(body.get("details"), list)
    except Exception as exc:
        return f"{status} is not a google.rpc.Status: {str(exc)[:200]} {body!r:.200}"
    if status >= 500 and not (status == 501 and body["code"] == 12):
        return f"server error {status}: {body!r:.300}"
    return None


def fuzz(
    spec: dict[str, Any],
    *,
    base_url: str,
    token: str,
    validate_200: Validate200,
    examples: int,
    pinned: list[dict[str, str]],
    stats: FuzzStats,
) -> None:
    """Fuzz every operation of ``spec``: random path parameters (schema-valid and schema-
    violating requests), then each ``pinned`` set of existing resources (non-DELETE only).
    """
    schema = schemathesis.openapi.from_dict(spec)
    ids = operation_ids(spec)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # Deletions last, so the pinned resources survive the rest of the run.
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))
    try:
        for operation in operations:
            operation_id = ids[(operation.method.upper(), operation.path)]
            names = set(re.findall(r"{([^}]+)}", operation.path))
            strategies: list[SearchStrategy[Any]] = [
                operation.as_strategy(),
                operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
            ]
            if operation.method.upper() != "DELETE" and names:
                for pins in pinned:
                    if names <= set(pins):
                        values = {k: pins[k] for k in names}
                        strategies.append(operation.as_strategy(path_parameters=values))
            for strategy in strategies:
                _run(
                    strategy,
                    operation_id,
                    session,
                    base_url,
                    headers,
                    validate_200,
                    examples,
                    stats,
                )
    finally:
        session.close()


def _run(
    strategy: SearchStrategy[Any],
    operation_id: str,
    session: requests.Session,
    base_url: str,
    headers: dict[str, str],
    validate_200: Validate200,
    examples: int,
    stats: FuzzStats,
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy)
    def one(case: Any) -> None:
        # Failures are collected, not raised: raising would make hypothesis shrink (slow).
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        stats.cases += 1
        stats.by_status[response.status_code] += 1
        stats.by_operation[operation_id] += 1
        problem = check_answer(response, operation_id, validate_200)
        if problem and len(stats.failures) < 50:
            stats.failures.append(f"{operation_id} {case.method} {case.formatted_path}: {problem}")

    # Unsatisfiable: e.g. no schema-violating request exists for an operation without inputs.
    with contextlib.suppress(Unsatisfiable):
        one()
