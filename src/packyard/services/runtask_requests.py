"""What Packyard does with a request HCP Terraform sends to a run task's endpoint.

The request is authenticated by ``X-TFC-Task-Signature``, the lowercase hex HMAC-SHA512 of
the raw body under the registry's HMAC key, checked before anything else is read or done.
The verification request HCP Terraform sends when the task is created (access token
``test-token``) needs nothing more; a run's request becomes a durable job
(:mod:`packyard.services.runtask_jobs`), and the endpoint answers at once.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

from packyard.errors import ApiError, Code, invalid, not_found
from packyard.services.runtask_jobs import (
    VERIFICATION_TOKEN,
    RunTaskJobService,
    RunTaskRequest,
    task_result,
)
from packyard.services.runtasks import RunTaskService, RunTaskTarget

# Stages whose request carries a plan to check; the others are answered "passed" with why not.
PLAN_STAGES = frozenset({"post_plan", "pre_apply", "post_apply"})


def signed(body: bytes, key: bytes, signature: str) -> bool:
    expected = hmac.new(key, body, hashlib.sha512).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


class RunTaskIntake:
    def __init__(self, runtasks: RunTaskService, jobs: RunTaskJobService) -> None:
        self.runtasks = runtasks
        self.jobs = jobs

    def target(self, api_id: str) -> RunTaskTarget:
        """The run task behind an endpoint id (404 without detail for an unknown one)."""
        target = self.runtasks.by_api_id(api_id)
        if target is None:
            raise not_found("Not found.")
        return target

    def accept(self, target: RunTaskTarget, body: bytes, signature: str, link_base: str) -> None:
        """Verify a request to ``target``'s endpoint and queue its check (nothing for the
        verification request); raises 401 for a missing or wrong signature, 400 for a
        request that is not a run task's or names a host Packyard may not call."""
        if not signed(body, target.hmac_key, signature):
            raise ApiError(Code.UNAUTHENTICATED, "The request signature is missing or wrong.")
        payload = _payload(body)
        callback = payload.get("task_result_callback_url")
        if payload.get("access_token") == VERIFICATION_TOKEN or not callback:
            return  # the verification request: nothing to check, nothing to send
        stage = _text(payload, "stage")
        plan_url = payload.get("plan_json_api_url") if stage in PLAN_STAGES else None
        if stage in PLAN_STAGES and (not isinstance(plan_url, str) or not plan_url):
            raise invalid(
                "The run task request has no valid plan_json_api_url.", field="plan_json_api_url"
            )
        for name, url in (("task_result_callback_url", callback), ("plan_json_api_url", plan_url)):
            refusal = self.jobs.settings.refusal(str(url)) if url is not None else None
            if refusal is not None:
                raise invalid(f"Packyard may not call the {name}: {refusal}.", field=name)
        # go-tfe's struct spells the key "capabilitites"; the docs say "capabilities".
        capabilities = payload.get("capabilities") or payload.get("capabilitites")
        job = RunTaskRequest(
            project_id=target.project_id,
            task_result_id=_text(payload, "task_result_id"),
            stage=stage,
            run_id=_text(payload, "run_id", required=False),
            workspace_name=_text(payload, "workspace_name", required=False),
            plan_json_api_url=plan_url if isinstance(plan_url, str) else None,
            callback_url=_text(payload, "task_result_callback_url"),
            access_token=_text(payload, "access_token"),
            outcomes=isinstance(capabilities, dict) and capabilities.get("outcomes") is True,
            on_untracked_image=target.on_untracked_image,
            link_base=link_base,
        )
        # At pre-plan there is no plan yet: the answer is decided now and only has to be sent.
        decided = (
            None
            if job.plan_json_api_url is not None
            else task_result(
                "passed",
                f"Packyard checks the images of a plan; at the {stage} stage there is none. "
                "Attach this run task at the post-plan or pre-apply stage.",
            )
        )
        self.jobs.enqueue(job, result=decided)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid("The request body is not valid JSON.", field="body") from None
    if not isinstance(payload, dict):
        raise invalid("The request body must be a JSON object.", field="body")
    return payload


def _text(payload: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = payload.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise invalid(f"The run task request has no valid {name}.", field=name)
    return value
