"""People who use the console: accounts, passwords, sign-in and browser sessions.

A person's role on a project gives exactly the rights the same role gives a service principal
on the API: the console acts through the same services with a :class:`Caller` made from the
session, so every rule lives in one place.

Passwords are hashed with argon2id. Sign-in failures are throttled per email and per address;
while one of them is locked out no password is checked at all (people choose guessable
passwords, unlike the random client secrets of principals), and the answer is the same whether
or not the email exists, as is the time it takes. Sessions live in the database (valid on every
worker and every server sharing it) under the SHA-256 of the cookie's value, end after
``SESSION_IDLE`` without use or ``SESSION_MAX`` after sign-in, and end at once when their user is
disabled or given a new password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from packyard.config import env_number
from packyard.domain.access import may_manage_access
from packyard.domain.enums import Role
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Caller, Operator, Project, User, UserRecord, WebSession
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code, invalid, not_found
from packyard.ids import new_id
from packyard.services.journal import record
from packyard.services.recording import simple
from packyard.services.throttle import FailureCounter, throttled
from packyard.store.engine import Store
from packyard.store.tenancy import TenancyRepo
from packyard.store.users import SessionRepo, UserRepo

SESSION_IDLE = timedelta(minutes=env_number("PACKYARD_SESSION_IDLE_MINUTES", 120, minimum=1))
SESSION_MAX = timedelta(hours=env_number("PACKYARD_SESSION_MAX_HOURS", 12, minimum=0.1))
# A session's last use is written at most this often: a page view is not a write.
TOUCH_EVERY = timedelta(seconds=60)
FIRST_ADMIN = "admin@localhost"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_EMAIL = 320
SIGN_IN_WINDOW_S = 15 * 60.0
SIGN_IN_FAILURES_PER_EMAIL = 10
SIGN_IN_FAILURES_PER_ADDRESS = 50

Actor = Caller | Operator


@dataclass(frozen=True, slots=True)
class NewPassword:
    """A user and a password made for it, which exists in clear only in this answer."""

    record: UserRecord
    password: str


@cache
def _hasher() -> PasswordHasher:
    # argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane): about as slow
    # to guess as the library's 64 MiB default, with a third of its memory per sign-in, which
    # matters with up to four sign-ins hashing at once in every worker.
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def _hash(password: str) -> str:
    return _hasher().hash(password)


def _verify(password: str, encoded: str | None) -> bool:
    try:
        return _hasher().verify(encoded or _dummy_hash(), password) and encoded is not None
    except (VerificationError, InvalidHashError):
        return False


def session_key(token: str) -> str:
    """What the database keeps of a session cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(value: str | None) -> str:
    email = (value or "").strip().lower()
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or not domain
        or len(email) > MAX_EMAIL
        or any(c.isspace() for c in email)
    ):
        raise invalid("Enter an email address such as ana@example.com.", field="email")
    if not email.isprintable() or not email.isascii():
        raise invalid("The email address may only hold plain ASCII characters.", field="email")
    return email


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise invalid(f"Use at least {MIN_PASSWORD} characters.", field="password")
    if len(password) > MAX_PASSWORD:
        raise invalid(f"Use at most {MAX_PASSWORD} characters.", field="password")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in password):
        raise invalid("The password holds characters that are not text.", field="password")
    return password


def new_password() -> str:
    return secrets.token_urlsafe(18)


class SignInThrottle:
    def __init__(self) -> None:
        self.per_email = FailureCounter(limit=SIGN_IN_FAILURES_PER_EMAIL, window=SIGN_IN_WINDOW_S)
        self.per_address = FailureCounter(
            limit=SIGN_IN_FAILURES_PER_ADDRESS, window=SIGN_IN_WINDOW_S
        )

    def check(self, email: str, address: str | None) -> None:
        wait = self.per_email.wait(email)
        if address:
            wait = max(wait, self.per_address.wait(address))
        if wait > 0:
            raise throttled(wait)

    def failed(self, email: str, address: str | None) -> None:
        self.per_email.failed(email)
        if address:
            self.per_address.failed(address)


class UserService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.throttle = SignInThrottle()

    # --- accounts, by the operator or a project's admins ------------------------------------

    def create(
        self,
        actor: Actor,
        organization_id: str,
        project_id: str,
        *,
        email: str,
        role: Role,
        password: str | None = None,
    ) -> NewPassword:
        """A new user with a role on the project and a generated password (or ``password``).

        An email that already has an account gets the role on this project too, and keeps
        its password (which is then not shown)."""
        _authorize(actor, organization_id, project_id)
        email = normalize_email(email)
        chosen = check_password(password) if password is not None else new_password()
        with self.store.write(affects_reads=False) as conn:
            repo = UserRepo(conn)
            _project(conn, organization_id, project_id)
            found = repo.by_email(email)
            if found is None:
                user = User(id=new_id(), email=email, disabled=False, created_at=utcnow())
                repo.add(user, _hash(chosen))
            else:
                user = found[0]
                if repo.find(project_id, user.id) is not None:
                    raise ApiError(
                        Code.ALREADY_EXISTS, f"{email} already has a role on this project."
                    )
                chosen = ""
            repo.bind_role(user.id, project_id, role)
            found_record = repo.find(project_id, user.id)
            assert found_record is not None
            record(
                conn, project_id, actor, _change(AuditAction.CREATE, "Created user", found_record)
            )
        return NewPassword(record=found_record, password=chosen)

    def list_for_project(
        self, actor: Actor, organization_id: str, project_id: str
    ) -> list[UserRecord]:
        _authorize(actor, organization_id, project_id)
        with self.store.read() as conn:
            _project(conn, organization_id, project_id)
            return UserRepo(conn).project_users(project_id)

    def update(
        self,
        actor: Actor,
        organization_id: str,
        project_id: str,
        ref: str,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
    ) -> UserRecord:
        """Change a user's role on the project and/or disable (ending its sessions) or
        enable it. A person cannot disable or demote themselves."""
        _authorize(actor, organization_id, project_id)
        with self.store.write(affects_reads=False) as conn:
            repo = UserRepo(conn)
            _project(conn, organization_id, project_id)
            target = _user(repo, project_id, ref)
            if isinstance(actor, Caller) and actor.principal_id == target.user.id:
                raise ApiError(
                    Code.FAILED_PRECONDITION,
                    "You cannot change your own access; ask another admin.",
                )
            if disabled is not None:
                _whole_account(repo, actor, target)
            if role is not None and target.role is None:
                repo.bind_role(target.user.id, project_id, role)
            elif role is not None and role is not target.role:
                repo.set_role(target.user.id, project_id, role)
            if disabled is not None and disabled != target.user.disabled:
                repo.set_disabled(target.user.id, disabled)
                if disabled:
                    SessionRepo(conn).delete_for_user(target.user.id)
            updated = repo.find(project_id, target.user.id)
            assert updated is not None
            record(conn, project_id, actor, _change(AuditAction.UPDATE, "Updated user", updated))
        return updated

    def reset_password(
        self, actor: Actor, organization_id: str, project_id: str, ref: str
    ) -> NewPassword:
        """A new generated password; the user's sessions end."""
        _authorize(actor, organization_id, project_id)
        password = new_password()
        with self.store.write(affects_reads=False) as conn:
            repo = UserRepo(conn)
            _project(conn, organization_id, project_id)
            target = _user(repo, project_id, ref)
            _whole_account(repo, actor, target)
            repo.set_password(target.user.id, _hash(password))
            SessionRepo(conn).delete_for_user(target.user.id)
            change = _change(AuditAction.UPDATE, "Reset user password", target)
            record(conn, project_id, actor, change)
        return NewPassword(record=target, password=password)

    def create_first_admin(self, organization_id: str, project_id: str) -> NewPassword | None:
        """The first start's admin user, ``admin@localhost`` (``None`` once any user exists):
        its password is shown once and kept nowhere in clear."""
        with self.store.read() as conn:
            if UserRepo(conn).count():
                return None
        try:
            return self.create(
                Operator(), organization_id, project_id, email=FIRST_ADMIN, role=Role.ADMIN
            )
        except (IntegrityError, ApiError):
            return None  # another server starting on the same database made it first

    # --- the person themselves ----------------------------------------------------------------

    def change_password(self, session_token: str, current: str, new: str) -> None:
        """Change one's own password; every other session of the person ends."""
        check_password(new)
        key = session_key(session_token)
        with self.store.read() as conn:
            session = SessionRepo(conn).get(key)
            found = UserRepo(conn).by_email(session.user.email) if session else None
        if session is None or found is None:
            raise ApiError(Code.UNAUTHENTICATED, "Your session has ended; sign in again.")
        if not _verify(current, found[1]):
            raise invalid("The current password is not right.", field="current_password")
        with self.store.write(affects_reads=False) as conn:
            UserRepo(conn).set_password(session.user.id, _hash(new))
            sessions = SessionRepo(conn)
            sessions.delete_for_user(session.user.id)
            sessions.add(key, session.user.id, session.csrf_token, session.created_at)

    def sign_in(self, email: str, password: str, *, address: str | None) -> tuple[str, WebSession]:
        """A new session (its cookie value and the session) for the right email and password.

        Every failure answers the same 401/16, whatever was wrong; past the throttle's limit
        429/8 (for right and wrong passwords alike, and without checking them)."""
        normalized = (email or "").strip().lower()[:MAX_EMAIL]
        self.throttle.check(normalized, address)
        with self.store.read() as conn:
            found = UserRepo(conn).by_email(normalized)
        user, encoded = found if found is not None else (None, None)
        if not _verify(password[:MAX_PASSWORD], encoded) or user is None or user.disabled:
            self.throttle.failed(normalized, address)
            raise ApiError(Code.UNAUTHENTICATED, "The email or the password is not right.")
        token = secrets.token_urlsafe(32)
        now = utcnow()
        session = WebSession(
            user=user, csrf_token=secrets.token_urlsafe(32), created_at=now, last_seen_at=now
        )
        with self.store.write(affects_reads=False) as conn:
            sessions = SessionRepo(conn)
            sessions.delete_stale(now - SESSION_MAX, now - SESSION_IDLE)
            sessions.add(session_key(token), user.id, session.csrf_token, now)
        return token, session

    def session(self, token: str | None) -> WebSession | None:
        """The live session a cookie names, or ``None`` (unknown, expired, user disabled)."""
        if not token or len(token) > 128:
            return None
        key = session_key(token)
        with self.store.read() as conn:
            session = SessionRepo(conn).get(key)
        if session is None:
            return None
        now = utcnow()
        if now - session.created_at > SESSION_MAX or now - session.last_seen_at > SESSION_IDLE:
            self.sign_out(token)
            return None
        if now - session.last_seen_at > TOUCH_EVERY:
            with self.store.write(affects_reads=False) as conn:
                SessionRepo(conn).touch(key, now)
        return session

    def sign_out(self, token: str) -> None:
        with self.store.write(affects_reads=False) as conn:
            SessionRepo(conn).delete(session_key(token))

    def projects(self, user: User) -> list[tuple[Project, Role | None]]:
        """The projects the user may open with their role there; ``None`` where they hold
        grants on some of its buckets only."""
        with self.store.read() as conn:
            return UserRepo(conn).projects_of(user.id)

    def caller(self, session: WebSession, project_id: str) -> Caller:
        """The person acting on one project, with the role they hold there; 404/5 without."""
        with self.store.read() as conn:
            found = UserRepo(conn).access_on(session.user.id, project_id)
        if found is None:
            raise not_found("This project does not exist or you have no access to it.")
        organization_id, role, granted = found
        return Caller(
            principal_id=session.user.id,
            name=session.user.email,
            organization_id=organization_id,
            project_id=project_id,
            role=role,
            bucket_roles=granted,
            person=True,
        )


def _change(action: AuditAction, description: str, r: UserRecord) -> Change:
    # Never a password or its hash.
    user = {
        "id": r.user.id,
        "email": r.user.email,
        "role": r.role.value if r.role is not None else "",
        "disabled": r.user.disabled,
    }
    return simple(action, description, user=user)


def csrf_matches(session: WebSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(
        session.csrf_token.encode(), (submitted or "").encode()
    )


def _authorize(actor: Actor, organization_id: str, project_id: str) -> None:
    if not may_manage_access(actor, organization_id, project_id):
        raise ApiError(Code.PERMISSION_DENIED, "Only the project's admins can manage its users.")


def _project(conn: Connection, organization_id: str, project_id: str) -> None:
    project = TenancyRepo(conn).get_project(project_id)
    if project is None or project.organization_id != organization_id:
        raise not_found(f"Project {project_id[:64]} does not exist in this organization.")


def _whole_account(repo: UserRepo, actor: Actor, target: UserRecord) -> None:
    """Disabling a person or resetting their password acts on every project they work on:
    a project's admins may do it only to people who work on their project alone."""
    if isinstance(actor, Caller) and len(repo.projects_of(target.user.id)) > 1:
        raise ApiError(
            Code.PERMISSION_DENIED,
            f"{target.user.email} also works on other projects; the operator manages the account.",
        )


def _user(repo: UserRepo, project_id: str, ref: str) -> UserRecord:
    found = repo.find(project_id, ref)
    if found is None:
        raise not_found(f"No user {ref[:128]} has a role on this project.")
    return found


__all__ = [
    "SESSION_IDLE",
    "SESSION_MAX",
    "NewPassword",
    "UserService",
    "csrf_matches",
    "session_key",
]
