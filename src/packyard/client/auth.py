"""OAuth2 client-credentials tokens, cached in memory and optionally on disk.

The token request is the one the HCP Go SDK makes: ``grant_type=client_credentials``
with the HCP API audience, the client id and secret in HTTP Basic (each
URL-escaped first); when the server answers 400/401 to that, the credentials
are sent again as form fields. A token is reused until it has less than
:data:`EXPIRY_MARGIN` left.

The optional on-disk cache has the shape of the HCP SDK's
``~/.config/hcp/creds-cache.json``: service-principal tokens under
``"service-principals"``, keyed by client id::

    {"login": null, "workloads": {},
     "service-principals": {"<client id>": {"access_token": "…",
                                            "access_token_expiry": "2030-01-01T00:00:00Z"}}}
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx

from packyard.client.connection import unreachable
from packyard.errors import ApiError, Code

API_AUDIENCE = "https://api.hashicorp.cloud"
EXPIRY_MARGIN = timedelta(seconds=15)
SP_KEY = "service-principals"


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str
    expiry: datetime | None  # None: no expiry given, never reused across requests

    def valid(self, now: datetime) -> bool:
        return self.expiry is not None and self.expiry - EXPIRY_MARGIN > now


def _parse_expiry(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    # Go writes up to nine fractional digits; Python reads six.
    head, dot, rest = text.partition(".")
    if dot:
        count = len(rest) - len(rest.lstrip("0123456789"))
        digits, tail = rest[:count], rest[count:]
        text = f"{head}.{digits[:6]}{tail}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class DiskCache:
    """Read and write service-principal tokens in the HCP SDK cache file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return raw if isinstance(raw, dict) else {}

    def get(self, client_id: str) -> Token | None:
        entries = self._read().get(SP_KEY)
        if not isinstance(entries, dict):
            return None
        entry = entries.get(client_id)
        if not isinstance(entry, dict) or not isinstance(entry.get("access_token"), str):
            return None
        return Token(entry["access_token"], _parse_expiry(entry.get("access_token_expiry")))

    def put(self, client_id: str, token: Token) -> None:
        if token.expiry is None:
            return
        data = self._read()
        data.setdefault("login", None)
        data.setdefault("workloads", {})
        entries = data.get(SP_KEY)
        if not isinstance(entries, dict):
            entries = {}
        now = datetime.now(UTC)
        # Garbage-collect expired entries, as the SDK does.
        entries = {
            k: v
            for k, v in entries.items()
            if isinstance(v, dict)
            and (
                v.get("refresh_token")
                or ((_parse_expiry(v.get("access_token_expiry")) or now) > now)
            )
        }
        entries[client_id] = {
            "access_token": token.access_token,
            "access_token_expiry": token.expiry.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }
        data[SP_KEY] = entries
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, self.path)
        except OSError:
            # A cache that cannot be written only costs a token request later.
            with contextlib.suppress(OSError):
                tmp.unlink()


def _oauth_failure(url: str, response: httpx.Response) -> ApiError:
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        description = body.get("error_description") or body.get("message")
        detail = ": ".join(str(x) for x in (error, description) if x)
    if not detail:
        detail = response.text.strip()[:200] or response.reason_phrase
    code = Code.UNAUTHENTICATED if response.status_code in (400, 401, 403) else Code.UNAVAILABLE
    return ApiError(
        code,
        f"cannot obtain an access token from {url}: {detail}",
        http_status=response.status_code,
    )


class ClientCredentials:
    """A thread-safe source of bearer tokens for one service principal.

    Example::

        source = ClientCredentials(http, "https://host/oauth2/token", "id", "secret")
        headers = {"Authorization": f"Bearer {source.token()}"}
    """

    def __init__(
        self,
        http: httpx.Client,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        cache: DiskCache | None = None,
    ) -> None:
        self.http = http
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._cache = cache
        self._token: Token | None = None
        self._lock = threading.Lock()
        self.requests = 0  # how many times the token endpoint was called

    def token(self) -> str:
        with self._lock:
            now = datetime.now(UTC)
            if self._token is not None and self._token.valid(now):
                return self._token.access_token
            if self._cache is not None:
                cached = self._cache.get(self.client_id)
                if cached is not None and cached.valid(now):
                    self._token = cached
                    return cached.access_token
            token = self._fetch(now)
            self._token = token
            if self._cache is not None:
                self._cache.put(self.client_id, token)
            return token.access_token

    def invalidate(self) -> None:
        """Forget the current token (after the API rejected it with 401)."""
        with self._lock:
            self._token = None

    def _post(self, data: dict[str, str], headers: dict[str, str]) -> httpx.Response:
        self.requests += 1
        try:
            return self.http.post(self.token_url, data=data, headers=headers)
        except httpx.HTTPError as exc:
            raise unreachable(self.token_url, exc, variable="HCP_AUTH_URL") from None

    def _fetch(self, now: datetime) -> Token:
        form = {"grant_type": "client_credentials", "audience": API_AUDIENCE}
        basic = base64.b64encode(
            f"{quote_plus(self.client_id)}:{quote_plus(self._secret)}".encode()
        ).decode()
        accept = {"Accept": "application/json"}
        response = self._post(form, {**accept, "Authorization": f"Basic {basic}"})
        if response.status_code in (400, 401):
            retry = {**form, "client_id": self.client_id, "client_secret": self._secret}
            response = self._post(retry, accept)
        if response.status_code != 200:
            raise _oauth_failure(self.token_url, response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise ApiError(
                Code.UNAUTHENTICATED,
                f"the token endpoint {self.token_url} returned no access_token.",
                http_status=response.status_code,
            )
        expires_in = body.get("expires_in")
        expiry = None
        if isinstance(expires_in, int | float) and expires_in > 0:
            expiry = now + timedelta(seconds=float(expires_in))
        return Token(body["access_token"], expiry)
