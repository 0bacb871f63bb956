"""JSON responses: orjson-encoded, always ``application/json``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from packyard.errors import ApiError


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # UTC datetimes (from ``render.ts``) as RFC 3339 with "Z".
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> JSONBody:
    return JSONBody(error.status_body(), status_code=error.http_status, headers=headers)
