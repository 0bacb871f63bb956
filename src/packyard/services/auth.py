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

import jwt

from packyard.domain.enums import Role
from packyard.domain.models import Caller, Principal
from packyard.domain.rules import printable, utcnow
from packyard.errors import ApiError, Code, not_found, unauthenticated
from packyard.ids import new_id
from packyard.services.keys import KeyRing, KeysUnread
from packyard.services.throttle import LoginThrottle
from packyard.store.engine import Store
from packyard.store.tenancy import TenancyRepo

log = logging.getLogger("packyard.auth")

TOKEN_TTL = timedelta(hours=1)
ROLE_CACHE_TTL_S = 5.0
VERIFIED_TOKENS_KEPT = 10_000
TOKEN_AUDIENCE = "packyard"  # noqa: S105 - an audience name, not a secret


def hash_secret(secret: str) -> str:
    """``sha256$<hex digest>`` of a server-generated secret.

    Client secrets are 48 random bytes made by Packyard, never chosen by a person: guessing one,
    or inverting its digest, is out of reach however fast the hash. A slow hash would add
    nothing but CPU per token request, and that CPU is what let failed attempts crowd out the
    owner's (see :mod:`packyard.services.throttle`). People's passwords are another matter and
    get a slow hash.
    """
    return f"sha256${hashlib.sha256(secret.encode()).hexdigest()}"


def verify_secret(secret: str, encoded: str) -> bool:
    """Constant-time comparison of ``secret`` against a stored hash (``sha256$`` or the
    ``scrypt$`` of databases made before 0.2, rehashed at the next successful use)."""
    scheme, _, rest = encoded.partition("$")
    if scheme == "sha256":
        actual = hashlib.sha256(secret.encode()).hexdigest()
        return hmac.compare_digest(actual.encode(), rest.encode())
    if scheme != "scrypt":
        return False
    try:
        n, r, p, salt, digest = rest.split("$")
        expected = base64.b64decode(digest)
        computed = hashlib.scrypt(
            secret.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, expected)


_DUMMY_HASH = hash_secret(secrets.token_urlsafe(48))


def client_id_for_log(client_id: str, *, known: bool) -> str:
    """A known client id as it is; anything else only as a fingerprint, since people paste
    secrets into the client id field."""
    if known:
        return printable(client_id)
    digest = hashlib.sha256(client_id.encode("utf-8", "replace")).hexdigest()[:12]
    return f"<unknown, {len(client_id)} chars, sha256 {digest}>"


def new_client_secret() -> tuple[str, str]:
    """A new client secret and its stored hash."""
    secret = secrets.token_urlsafe(48)
    return secret, hash_secret(secret)


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


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a verified token speaks for, and at which of the principal's token versions."""

    principal_id: str
    token_version: int


@dataclass(frozen=True, slots=True)
class _Verified:
    identity: TokenIdentity
    expires: float
    key_id: str


class RoleCache:
    """A small, bounded, thread-safe TTL map of (principal, org, project) → (Caller, version)."""

    def __init__(self, ttl_s: float, size: int) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._items: dict[tuple[str, str, str], tuple[float, Caller, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str], token_version: int) -> Caller | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic() or item[2] != token_version:
            return None
        return item[1]

    def put(self, key: tuple[str, str, str], caller: Caller, token_version: int) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl_s, caller, token_version)


class AuthService:
    def __init__(self, store: Store, throttle: LoginThrottle | None = None) -> None:
        self.store = store
        self.throttle = throttle or LoginThrottle()
        self.keys = KeyRing(store)
        self.roles = RoleCache(ROLE_CACHE_TTL_S, 10_000)
        self._tokens: dict[str, _Verified] = {}
        self._tokens_lock = threading.Lock()

    def signing_key(self) -> bytes:
        """The current signing key's bytes (created on first use)."""
        return self.keys.current().secret

    def create_principal(
        self, *, name: str, role: Role, organization_id: str, project_id: str
    ) -> NewCredentials:
        with self.store.write() as conn:
            return self.add_principal(
                TenancyRepo(conn),
                name=name,
                role=role,
                organization_id=organization_id,
                project_id=project_id,
            )

    @staticmethod
    def add_principal(
        repo: TenancyRepo, *, name: str, role: Role, organization_id: str, project_id: str
    ) -> NewCredentials:
        """A new principal with a role on one project, inside the caller's transaction."""
        client_secret, secret_hash = new_client_secret()
        principal = Principal(
            id=new_id(),
            client_id=f"packyard-{secrets.token_hex(10)}",
            name=name,
            organization_id=organization_id,
        )
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

        The right secret always succeeds. Failures are counted per client id and per remote
        ``address``; past the limit a wrong secret answers 429/8 (with a
        ``google.rpc.RetryInfo`` detail) and is no longer logged, see
        :mod:`packyard.services.throttle`. Neither the secret nor any token is ever logged, nor
        a client id that matches no principal (it may be a secret pasted in the wrong field).
        """
        with self.store.read() as conn:
            found = TenancyRepo(conn).principal_by_client_id(client_id)
        if found is not None and verify_secret(client_secret, found[1]):
            principal, stored = found
            self.throttle.succeeded(client_id)
            if not stored.startswith("sha256$"):
                with self.store.write() as conn:
                    TenancyRepo(conn).rehash_secret(principal.id, hash_secret(client_secret))
            return principal
        if found is None:
            verify_secret(client_secret, _DUMMY_HASH)  # unknown ids take as long
        self.throttle.check(client_id, address)
        self.throttle.failed(client_id, address)
        log.warning(
            "client authentication failed for client id %s from %s",
            client_id_for_log(client_id, known=found is not None),
            address or "unknown address",
        )
        return None

    def issue_token(self, principal: Principal) -> IssuedToken:
        now = utcnow()
        key = self.keys.issuing_key()
        claims = {
            "sub": principal.id,
            "aud": TOKEN_AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int((now + TOKEN_TTL).timestamp()),
            "jti": new_id(),
            "ver": principal.token_version,
        }
        token = jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.id})
        return IssuedToken(access_token=token, expires_in=int(TOKEN_TTL.total_seconds()))

    def verify_token(self, token: str, *, may_read: bool = True) -> TokenIdentity:
        """Validate a bearer token's key, signature, audience and expiry (no database access
        but the key ring's reads; without ``may_read``, :class:`KeysUnread` instead of one).

        A token whose signature checked out once is remembered until it expires or its key
        is retired: the same string is valid until then, and a client sends it thousands of
        times.
        """
        verified = self._tokens.get(token)
        if (
            verified is not None
            and time.time() < verified.expires
            and self.keys.still_valid(verified.key_id, may_read=may_read)
        ):
            return verified.identity
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise unauthenticated("The access token is not valid.") from None
        if key_id is not None and not isinstance(key_id, str):
            raise unauthenticated("The access token is not valid.")
        key = self.keys.verifying_key(key_id, may_read=may_read)
        if key is None:
            raise unauthenticated(
                "The access token's signing key was retired; " + _RECOVERY_HINT + "."
            )
        try:
            claims = jwt.decode(
                token,
                key.secret,
                algorithms=["HS256"],
                audience=TOKEN_AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("The access token has expired.") from None
        except jwt.PyJWTError:
            raise unauthenticated("The access token is not valid.") from None
        sub, version = claims.get("sub"), claims.get("ver", 1)
        if not isinstance(sub, str) or type(version) is not int:
            raise unauthenticated("The access token is not valid.")
        identity = TokenIdentity(principal_id=sub, token_version=version)
        with self._tokens_lock:
            if len(self._tokens) >= VERIFIED_TOKENS_KEPT:
                self._tokens.clear()
            self._tokens[token] = _Verified(identity, float(claims["exp"]), key.id)
        return identity

    def authorize(self, token: str, organization_id: str | None, project_id: str) -> Caller:
        """The caller acting on one project, with its project role and bucket grants; 404/5
        when it holds neither there. Without ``organization_id``, the project's own."""
        identity = self.verify_token(token)
        key = (identity.principal_id, organization_id or "", project_id)
        cached = self.roles.get(key, identity.token_version)
        if cached is not None:
            return cached
        with self.store.read() as conn:
            repo = TenancyRepo(conn)
            found = repo.caller_access(identity.principal_id, organization_id, project_id)
            if found is None:
                self._require_current(repo, identity)
                where = f" in organization {organization_id}" if organization_id else ""
                raise ApiError(
                    Code.NOT_FOUND,
                    f"Project {project_id}{where} does not exist or is not accessible.",
                )
        version = found.token_version
        if version != identity.token_version:
            raise _revoked()
        caller = Caller(
            principal_id=identity.principal_id,
            name=found.name,
            organization_id=found.organization_id,
            project_id=project_id,
            role=found.role,
            bucket_roles=found.bucket_roles,
        )
        self.roles.put(key, caller, version)
        return caller

    def authorize_cached(self, token: str, organization_id: str, project_id: str) -> Caller | None:
        """The caller from a recent lookup, without touching the database (``None`` if unknown,
        or if the token's key must be read first: :meth:`authorize` does that).

        The token itself is always verified. Roles are remembered for
        ``ROLE_CACHE_TTL_S`` seconds per process, so a changed role, a disabled principal or a
        rotated secret applies within that time.
        """
        try:
            identity = self.verify_token(token, may_read=False)
        except KeysUnread:
            return None
        return self.roles.get(
            (identity.principal_id, organization_id, project_id), identity.token_version
        )

    def principal_for_token(self, token: str) -> str:
        identity = self.verify_token(token)
        with self.store.read() as conn:
            self._require_current(TenancyRepo(conn), identity)
        return identity.principal_id

    @staticmethod
    def _require_current(repo: TenancyRepo, identity: TokenIdentity) -> None:
        version = repo.token_version(identity.principal_id)
        if version is None:
            raise unauthenticated("The access token's principal no longer exists or is disabled.")
        if version != identity.token_version:
            raise _revoked()


# Stock HCP clients keep service-principal tokens in this file until they expire, and do not
# ask for a new one on a 401: the message tells the person reading Packer's output what to do.
_RECOVERY_HINT = "request a new token (HCP SDK clients: delete ~/.config/hcp/creds-cache.json)"


def _revoked() -> ApiError:
    return unauthenticated(
        "The access token was revoked (its principal was disabled or its tokens revoked); "
        + _RECOVERY_HINT
        + "."
    )
