"""Where a change came from (request id, source address), for the audit log.

The request observer sets it for every request that may change something; service calls
made on worker threads see it too (context variables follow them). Outside a request
(operator commands, the scheduler) it is empty.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str = ""
    source_address: str = ""


NONE = RequestContext()
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "packyard_request", default=NONE
)


def current() -> RequestContext:
    return _current.get()


def may_change() -> bool:
    """Whether the current request is one that may change something (not a ``GET``)."""
    return _current.get() is not NONE


def enter(context: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(context)


def leave(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)
