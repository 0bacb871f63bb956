"""Bucket IAM policies (resource-manager GetIamPolicy / SetIamPolicy) and the IAM service's
BatchGetPrincipals: the calls of terraform-provider-hcp's bucket IAM resources and its
``hcp_iam_policy`` data source. Note the version-first resource-manager path."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request

from packyard.api import iam_wire
from packyard.api.calls import run
from packyard.api.deps import PrincipalDep, ServicesDep, bearer_token, project_caller
from packyard.api.iam_wire import SetIamPolicyBody
from packyard.api.responses import JSONBody
from packyard.domain.models import Caller
from packyard.errors import invalid

router = APIRouter(tags=["iam"])
_BUCKET_RESOURCE = re.compile(r"^packer/project/(?P<project>[^/]+)/bucket/(?P<bucket>[^/]+)$")


@router.get(
    "/2019-12-10/resource-manager/resources/iam-policy",
    operation_id="ResourceService_GetIamPolicy",
)
async def get_iam_policy(
    request: Request,
    svc: ServicesDep,
    resource_name: str | None = None,
    resource_id: str | None = None,
) -> JSONBody:
    caller, bucket = await _bucket_caller(request, resource_name, resource_id)
    found = await run(svc, svc.access.policy, caller, bucket)
    return JSONBody({"policy": iam_wire.policy(found)})


@router.put(
    "/2019-12-10/resource-manager/resources/iam-policy",
    operation_id="ResourceService_SetIamPolicy",
)
async def set_iam_policy(request: Request, body: SetIamPolicyBody, svc: ServicesDep) -> JSONBody:
    caller, bucket = await _bucket_caller(request, body.resource_name, body.resource_id)
    if body.policy is None:
        raise invalid("policy is required.", field="policy")
    bindings = iam_wire.requested_bindings(body.policy)
    found = await run(svc, svc.access.set_policy, caller, bucket, bindings, body.policy.etag or "")
    return JSONBody({"policy": iam_wire.policy(found)})


@router.get(
    "/iam/2019-12-10/organizations/{organization_id}/principals",
    operation_id="IamService_BatchGetPrincipals",
)
async def batch_get_principals(
    organization_id: str,
    principal: PrincipalDep,
    svc: ServicesDep,
    principal_ids: Annotated[list[str] | None, Query()] = None,
) -> JSONBody:
    found = await run(svc, svc.access.members, principal, organization_id, principal_ids or [])
    return JSONBody(iam_wire.principals(found))


async def _bucket_caller(
    request: Request, resource_name: str | None, resource_id: str | None
) -> tuple[Caller, str]:
    """The caller acting on the project a bucket's resource name names, and the bucket."""
    bearer_token(request)  # a request without a token is refused before its arguments
    if not resource_name:
        if resource_id:
            raise invalid(
                "Look bucket policies up by resource_name (packer/project/<project id>/bucket/"
                "<bucket name>); resource_id is not supported.",
                field="resource_id",
            )
        raise invalid("resource_name is required.", field="resource_name")
    match = _BUCKET_RESOURCE.fullmatch(resource_name)
    if match is None:
        raise invalid(
            f"resource_name {resource_name[:128]!r} is not a bucket: only "
            "packer/project/<project id>/bucket/<bucket name> has an IAM policy here.",
            field="resource_name",
        )
    return await project_caller(request, None, match["project"]), match["bucket"]
