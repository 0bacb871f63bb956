"""The one error type of Packyard.

Every failure that reaches a client is an :class:`ApiError` carrying a gRPC
canonical code. The API layer renders it as a ``google.rpc.Status`` body and
maps the code to an HTTP status with :data:`HTTP_STATUS` (the grpc-gateway
mapping that HCP uses). The CLI renders it as a one-line message.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Code(IntEnum):
    """gRPC canonical status codes."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


class ApiError(Exception):
    """A failure with a gRPC code, a human message and optional Status details.

    ``http_status`` overrides the table for the few pairings that live HCP
    answers differently from grpc-gateway (e.g. 400 with code 6 when a build's
    parent is overridden); clients branch on the code, never on the status.
    """

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []
        self.http_status = http_status if http_status is not None else HTTP_STATUS[code]

    def status_body(self) -> dict[str, Any]:
        """The ``google.rpc.Status`` JSON object for this error."""
        return {"code": int(self.code), "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"ApiError({self.code.name}, {self.message!r})"


def invalid(message: str, *, field: str | None = None) -> ApiError:
    """A 400/3 error; with ``field`` it carries a ``google.rpc.BadRequest`` detail."""
    details: list[dict[str, Any]] = []
    if field is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "field_violations": [
                    {
                        "field": field,
                        "description": message,
                        "reason": "",
                        "localized_message": None,
                    }
                ],
            }
        )
    return ApiError(Code.INVALID_ARGUMENT, message, details=details)


def not_found(message: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, message)


def precondition(message: str) -> ApiError:
    return ApiError(Code.FAILED_PRECONDITION, message)


def already_exists(message: str) -> ApiError:
    return ApiError(Code.ALREADY_EXISTS, message)


def permission_denied(message: str) -> ApiError:
    return ApiError(Code.PERMISSION_DENIED, message)


def unauthenticated(message: str = "The request is not authenticated.") -> ApiError:
    return ApiError(Code.UNAUTHENTICATED, message)


def database_unavailable() -> ApiError:
    return ApiError(Code.UNAVAILABLE, "The registry database is unavailable; retry later.")
