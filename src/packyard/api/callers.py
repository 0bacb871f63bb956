"""Who an API request's bearer token acts for on a project: the caller, with its role.

The token is verified on the event loop (CPU only; a token naming a signing key this process
has not read yet is verified by the lookup below, which reads it). The role comes from the auth
service's short-lived role cache or, once it has left it (``ROLE_CACHE_TTL_S`` after it
was read), from the database, as a read (:func:`packyard.api.calls.run_read`) whatever the
request's method. The requests of the same token and project that need the role while it
is being read wait for that one lookup instead of each making their own. Within one request
the answer, a refusal included, is kept in its scope: the read cache asks first, and the
route asks again only when the cache cannot answer.

Under load the role leaves the cache while many requests are in flight, and all of them
needed it at once. The response cache cannot tell what a caller may see without its role,
so the cached reads among them each took the normal, uncached path: PostgreSQL's cached
ListBuckets waited for them up to 120 ms every 5 s, 35 ms at p99 against 9 ms with the
role kept (size S, 16 connections, measured in the eighteenth pass).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import partial

from starlette.types import Scope

from packyard.api.calls import run_read
from packyard.domain.models import Caller
from packyard.errors import ApiError
from packyard.services.container import Services

_LookupKey = tuple[str, str, str]  # (token, organization id or "", project id)
_ANSWERED = "packyard.caller"  # scope key: (_LookupKey, the caller or the ApiError refusing it)


class Callers:
    """The callers of one application's requests; used from its event loop only."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._lookups: dict[_LookupKey, asyncio.Future[Caller]] = {}

    async def caller(
        self, scope: Scope, token: str, organization_id: str | None, project_id: str
    ) -> Caller:
        """The caller of the request (``scope``) on the project (of ``organization_id`` when
        given); raises the :class:`~packyard.errors.ApiError` it is refused with (401, 404)."""
        key = (token, organization_id or "", project_id)
        answered = scope.get(_ANSWERED)
        if answered is not None and answered[0] == key:
            if isinstance(answered[1], ApiError):
                raise answered[1]
            known: Caller = answered[1]
            return known
        try:
            found = self._services.auth.authorize_cached(*key)
            if found is None:
                found = await self._lookup(key, organization_id)
        except ApiError as refused:
            scope[_ANSWERED] = (key, refused)
            raise
        scope[_ANSWERED] = (key, found)
        return found

    def _lookup(self, key: _LookupKey, organization_id: str | None) -> Awaitable[Caller]:
        """The role lookup of ``key`` in flight, started if there is none."""
        lookup = self._lookups.get(key)
        if lookup is None:
            token, _, project_id = key
            lookup = asyncio.ensure_future(
                run_read(
                    self._services,
                    self._services.auth.authorize,
                    token,
                    organization_id,
                    project_id,
                )
            )
            self._lookups[key] = lookup
            lookup.add_done_callback(partial(self._landed, key))
        # Shielded: a request whose client goes away must not cancel the lookup others await.
        return asyncio.shield(lookup)

    def __len__(self) -> int:
        """The lookups in flight."""
        return len(self._lookups)

    def _landed(self, key: _LookupKey, lookup: asyncio.Future[Caller]) -> None:
        del self._lookups[key]
        if not lookup.cancelled():
            lookup.exception()  # retrieved here too: every request awaiting it may have gone
