"""Service principals, client secrets, access tokens and per-project authorization."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import jwt
from sqlalchemy.exc import IntegrityError

from packyard.domain.enums import Role
from packyard.domain.models import Caller, Principal
from packyard.domain.rules import printable, utcnow
from packyard.errors import ApiError, Code, not_found, unauthenticated
from packyard.ids import new_id
from packyard.services.throttle import LoginThrottle
from packyard.store.engine import Store
from packyard.store.tenancy import SettingsRepo, TenancyRepo

log = logging.getLogger("packyard.auth")

TOKEN_TTL = timedelta(hours=1)
ROLE_CACHE_TTL_S = 5.0
VERIFIED_TOKENS_KEPT = 10_000
TOKEN_AUDIENCE = "packyard"  # noqa: S105 - an audience name, not a secret
_SIGNING_KEY = "token_signing_key"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    """A slow, salted scrypt hash: ``scrypt$N$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_secret(secret: str, encoded: str) -> bool:
    """Constant-time comparison of ``secret`` against a stored hash."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@cache
def _dummy_hash() -> str:
    """Checked when the client id is unknown, so unknown ids and wrong secrets take as long."""
    return hash_secret(secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class NewCredentials:
    principal: Principal
    client_secret: str
    role: Role
    project_id: str


class _RoleCache:
    """A small, bounded, thread-safe TTL map of (principal, org, project) → Caller."""

    def __init__(self, ttl_s: float, size: int) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._items: dict[tuple[str, str, str], tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Caller | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: tuple[str, str, str], caller: Caller) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl_s, caller)


class AuthService:
    def __init__(self, store: Store, throttle: LoginThrottle | None = None) -> None:
        self.store = store
        self.throttle = throttle or LoginThrottle()
        self._key: bytes | None = None
        self._key_lock = threading.Lock()
        self._roles = _RoleCache(ROLE_CACHE_TTL_S, 10_000)
        self._tokens: dict[str, tuple[float, str]] = {}  # token -> (expiry, principal id)
        self._tokens_lock = threading.Lock()

    def signing_key(self) -> bytes:
        if self._key is None:
            with self._key_lock:
                if self._key is None:
                    self._key = bytes.fromhex(self._load_or_create_key())
        return self._key

    def _load_or_create_key(self) -> str:
        with self.store.read() as conn:
            stored = SettingsRepo(conn).get(_SIGNING_KEY)
        if stored is not None:
            return stored
        try:
            with self.store.write() as conn:
                return SettingsRepo(conn).put_if_absent(_SIGNING_KEY, secrets.token_hex(32))
        except IntegrityError:
            # another process stored its key first: use that one
            with self.store.read() as conn:
                raced = SettingsRepo(conn).get(_SIGNING_KEY)
            assert raced is not None
            return raced

    def create_principal(
        self, *, name: str, role: Role, organization_id: str, project_id: str
    ) -> NewCredentials:
        client_secret = secrets.token_urlsafe(48)
        principal = Principal(
            id=new_id(),
            client_id=f"packyard-{secrets.token_hex(10)}",
            name=name,
            organization_id=organization_id,
        )
        secret_hash = hash_secret(client_secret)
        with self.store.write() as conn:
            repo = TenancyRepo(conn)
            project = repo.get_project(project_id)
            if project is None or project.organization_id != organization_id:
                raise not_found(
                    f"Project {project_id[:64]} does not exist in organization {organization_id}."
                )
            repo.add_principal(principal, secret_hash, utcnow())
            repo.bind_role(principal.id, project_id, role)
        return NewCredentials(
            principal=principal, client_secret=client_secret, role=role, project_id=project_id
        )

    def authenticate_client(
        self, client_id: str, client_secret: str, *, address: str | None = None
    ) -> Principal | None:
        """Check client credentials; ``None`` for an unknown id or a wrong secret.

        Raises a 429/8 error (with a ``google.rpc.RetryInfo`` detail) while the client id or
        the remote ``address`` is locked out after repeated failures; see
        :mod:`packyard.services.throttle`. Neither the secret nor any token is ever logged.
        """
        self.throttle.check(client_id, address)
        with self.store.read() as conn:
            found = TenancyRepo(conn).principal_by_client_id(client_id)
        if found is None:
            verify_secret(client_secret, _dummy_hash())
            principal = None
        else:
            principal = found[0] if verify_secret(client_secret, found[1]) else None
        if principal is None:
            self.throttle.failed(client_id, address)
            log.warning(
                "client authentication failed for client id %s from %s",
                printable(client_id),
                address or "unknown address",
            )
            return None
        self.throttle.succeeded(client_id)
        return principal

    def issue_token(self, principal: Principal) -> IssuedToken:
        now = utcnow()
        claims = {
            "sub": principal.id,
            "aud": TOKEN_AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int((now + TOKEN_TTL).timestamp()),
            "jti": new_id(),
        }
        token = jwt.encode(claims, self.signing_key(), algorithm="HS256")
        return IssuedToken(access_token=token, expires_in=int(TOKEN_TTL.total_seconds()))

    def principal_id_from_token(self, token: str) -> str:
        """Validate a bearer token's signature, audience and expiry (no database access).

        A token whose signature checked out once is remembered until it expires:
        the same string is valid until then, and a client sends it thousands of times.
        """
        verified = self._tokens.get(token)
        if verified is not None and time.time() < verified[0]:
            return verified[1]
        try:
            claims = jwt.decode(
                token,
                self.signing_key(),
                algorithms=["HS256"],
                audience=TOKEN_AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("The access token has expired.") from None
        except jwt.PyJWTError:
            raise unauthenticated("The access token is not valid.") from None
        sub = claims.get("sub")
        if not isinstance(sub, str):
            raise unauthenticated("The access token is not valid.")
        with self._tokens_lock:
            if len(self._tokens) >= VERIFIED_TOKENS_KEPT:
                self._tokens.clear()
            self._tokens[token] = (float(claims["exp"]), sub)
        return sub

    def authorize(self, token: str, organization_id: str, project_id: str) -> Caller:
        """The caller acting on one project; 404/5 when it has no role there."""
        principal_id = self.principal_id_from_token(token)
        cached = self._roles.get((principal_id, organization_id, project_id))
        if cached is not None:
            return cached
        with self.store.read() as conn:
            repo = TenancyRepo(conn)
            found = repo.caller_role(principal_id, organization_id, project_id)
            if found is None:
                if not repo.principal_exists(principal_id):
                    raise unauthenticated("The access token's principal no longer exists.")
                raise ApiError(
                    Code.NOT_FOUND,
                    f"Project {project_id} in organization {organization_id} does not exist "
                    "or is not accessible.",
                )
        name, role = found
        caller = Caller(
            principal_id=principal_id,
            name=name,
            organization_id=organization_id,
            project_id=project_id,
            role=role,
        )
        self._roles.put((principal_id, organization_id, project_id), caller)
        return caller

    def authorize_cached(self, token: str, organization_id: str, project_id: str) -> Caller | None:
        """The caller from a recent lookup, without touching the database (``None`` if unknown).

        The token itself is always verified. Roles are remembered for
        ``ROLE_CACHE_TTL_S`` seconds per process, so a changed role applies
        within that time.
        """
        principal_id = self.principal_id_from_token(token)
        return self._roles.get((principal_id, organization_id, project_id))

    def principal_for_token(self, token: str) -> str:
        principal_id = self.principal_id_from_token(token)
        with self.store.read() as conn:
            if not TenancyRepo(conn).principal_exists(principal_id):
                raise unauthenticated("The access token's principal no longer exists.")
        return principal_id
