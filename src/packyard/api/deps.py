"""Request dependencies: the services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from packyard.api.audit_failures import remember_caller
from packyard.api.callers import Callers
from packyard.api.calls import run
from packyard.domain.models import Caller
from packyard.errors import unauthenticated
from packyard.services.container import Services


async def services(request: Request) -> Services:
    return _services(request)


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("A bearer access token is required.")
    return token.strip()


async def caller(request: Request, organization_id: str, project_id: str) -> Caller:
    """The principal acting on the organization and project named in the path."""
    return await project_caller(request, organization_id, project_id)


async def project_caller(request: Request, organization_id: str | None, project_id: str) -> Caller:
    """The principal acting on the project (:mod:`packyard.api.callers`), remembered for the
    audit of a refused change. Not a sub-dependency: each one costs FastAPI a resolution
    pass."""
    callers: Callers = request.app.state.callers
    found = await callers.caller(request.scope, bearer_token(request), organization_id, project_id)
    remember_caller(request, found)
    return found


async def principal_id(request: Request, svc: Annotated[Services, Depends(services)]) -> str:
    return await run(svc, svc.auth.principal_for_token, bearer_token(request))


CallerDep = Annotated[Caller, Depends(caller)]
ServicesDep = Annotated[Services, Depends(services)]
PrincipalDep = Annotated[str, Depends(principal_id)]
