"""Secrets the server must read back, sealed at rest with a key kept outside the database.

A run task's HMAC key signs HCP Terraform's requests, so it cannot be hashed like a client
secret: the server needs it in clear to verify a signature and to hand it to a writer. It is
stored sealed (AES-256-GCM) with a key-encryption key that lives in a file, never in the
database: ``secret.key`` in the data directory (created 0600 at first start), or the file
``PACKYARD_SECRET_KEY_FILE`` names (servers sharing one PostgreSQL database must all use the
same one). A database dump alone therefore reveals no HMAC key.

A server whose key does not open the HMAC keys sealed in its database stops at start with one
line, rather than failing on the first run-task request. Before anything is sealed, a key other
than the one a first server recorded (``secret_key_check`` in the settings table) only draws a
warning: servers sharing a database that do not use run tasks keep starting as before.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from packyard.errors import ApiError, Code
from packyard.startup import StartupError, notice
from packyard.store.engine import Store
from packyard.store.schema import run_task_configs, webhooks
from packyard.store.tenancy import SettingsRepo

KEY_FILE = "secret.key"
SECRET_KEY_ENV = "PACKYARD_SECRET_KEY_FILE"  # noqa: S105 (a variable name)
KEY_BYTES = 32
_FORMAT = b"\x01"  # first byte of every sealed value: AES-256-GCM, 12-byte nonce
_NONCE_BYTES = 12
_CHECK_SETTING = "secret_key_check"
_CHECK_CONTEXT = b"packyard:secret-key-check"
_CHECK_PLAINTEXT = b"packyard"


class UnsealError(ApiError):
    """A sealed value this server's key does not open (another key sealed it, or it was
    altered). Answered as 400/9 with one line, never as a 500."""

    def __init__(self, what: str) -> None:
        super().__init__(
            Code.FAILED_PRECONDITION,
            f"The {what} cannot be decrypted with this server's secret key (secret.key in the "
            f"data directory, or {SECRET_KEY_ENV}): start the server with the key it was "
            "sealed with.",
        )


class Sealer:
    """Seals and opens small secrets with one AES-256-GCM key.

    ``context`` is authenticated but not stored: a value sealed for one row (one project's
    HMAC key) does not open as another's.
    """

    __slots__ = ("_aead", "source")

    def __init__(self, key: bytes, source: str = "") -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a secret key is {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self.source = source  # where the key came from, for messages

    def __repr__(self) -> str:
        return f"Sealer(source={self.source!r})"

    @classmethod
    def ephemeral(cls) -> Sealer:
        """A random key held in memory only: for tests and benchmarks. A server started by
        ``packyard serve`` always uses :func:`load_sealer`."""
        return cls(secrets.token_bytes(KEY_BYTES), "memory")

    def seal(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, *, context: bytes = b"", what: str = "stored secret") -> bytes:
        """The plaintext of ``sealed``; :class:`UnsealError` if this key did not seal it."""
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _FORMAT:
            raise UnsealError(what)
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, context)
        except InvalidTag:
            raise UnsealError(what) from None


def load_sealer(data_dir: Path) -> Sealer:
    """The server's key: ``$PACKYARD_SECRET_KEY_FILE`` if set (never created), else
    ``secret.key`` in the data directory, created 0600 with a random key if absent.

    Raises :class:`StartupError` (one line) for a file that cannot be read or holds no key.
    """
    configured = os.environ.get(SECRET_KEY_ENV, "").strip()
    path = Path(configured) if configured else data_dir / KEY_FILE
    named = f"{path} ({SECRET_KEY_ENV})" if configured else str(path)
    if not configured:
        try:
            _create_key_file(path)
        except OSError as exc:
            raise StartupError(
                f"cannot create the secret key file {path}: {exc.strerror or exc}"
            ) from None
    try:
        info = path.stat()
        text = path.read_bytes()
    except OSError as exc:
        raise StartupError(
            f"cannot read the secret key file {named}: {exc.strerror or exc}"
        ) from None
    key = parse_key(text)
    if key is None:
        raise StartupError(
            f"the secret key file {named} does not hold a key: it must hold {KEY_BYTES} random "
            "bytes in base64 (`openssl rand -base64 32`)"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        notice(
            f"warning: the secret key file {path} is accessible to other users "
            f"(mode {mode:04o}); `chmod 600 {path}`"
        )
    return Sealer(key, str(path))


def parse_key(text: bytes) -> bytes | None:
    """The key in a key file's text (base64, standard or URL-safe alphabet), or ``None``."""
    stripped = b"".join(text.split())
    if not stripped:
        return None
    padded = stripped + b"=" * (-len(stripped) % 4)
    for altchars in (None, b"-_"):
        with contextlib.suppress(binascii.Error, ValueError):
            key = base64.b64decode(padded, altchars=altchars, validate=True)
            if len(key) == KEY_BYTES:
                return key
    return None


def _create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` unless it exists: all at once (a temporary file
    linked into place), so no process ever reads a half-written key."""
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process created it first
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def hmac_key_context(project_id: str) -> bytes:
    """What a project's sealed run-task HMAC key is bound to."""
    return b"packyard:run-task-hmac:" + project_id.encode()


def webhook_key_context(webhook_id: str) -> bytes:
    """What a webhook's sealed HMAC key is bound to."""
    return b"packyard:webhook-hmac:" + webhook_id.encode()


def record_secret_key(conn: Connection, sealer: Sealer) -> None:
    """Make ``sealer``'s key the one this database names (after a reset of what it sealed)."""
    check = base64.b64encode(sealer.seal(_CHECK_PLAINTEXT, context=_CHECK_CONTEXT)).decode()
    SettingsRepo(conn).replace(_CHECK_SETTING, check)


def check_secret_key(store: Store, sealer: Sealer) -> None:
    """Refuse (:class:`StartupError`) a key that does not open the secrets sealed in this
    database; warn when nothing is sealed yet but another server recorded another key (servers
    sharing a database must share the key before a run task is created)."""
    check = base64.b64encode(sealer.seal(_CHECK_PLAINTEXT, context=_CHECK_CONTEXT)).decode()
    try:
        with store.write(affects_reads=False) as conn:
            stored = SettingsRepo(conn).put_if_absent(_CHECK_SETTING, check)
    except IntegrityError:  # another server on the same database recorded its key first
        with store.read() as conn:
            stored = SettingsRepo(conn).get(_CHECK_SETTING) or ""
    for what, context, sealed, remedy in _sealed_samples(store):
        try:
            sealer.open(sealed, context=context)
        except UnsealError:
            raise StartupError(
                f"the secret key in {sealer.source} is not the key this database's {what} are "
                f"sealed with: use that key file (servers sharing a database must all set "
                f"{SECRET_KEY_ENV} to the same key), or, if it is lost, {remedy}"
            ) from None
        return
    try:
        sealer.open(base64.b64decode(stored), context=_CHECK_CONTEXT)
    except (UnsealError, binascii.Error, ValueError):
        notice(
            f"warning: the secret key in {sealer.source} is not the one another server recorded "
            f"in this database; servers sharing a database must all set {SECRET_KEY_ENV} to the "
            "same key, or run tasks will fail on some of them"
        )


def _sealed_samples(store: Store) -> list[tuple[str, bytes, bytes, str]]:
    """One sealed secret of each kind the database holds: (what, context, sealed, remedy)."""
    with store.read() as conn:
        task = conn.execute(
            select(run_task_configs.c.project_id, run_task_configs.c.hmac_key_sealed).limit(1)
        ).first()
        hook = conn.execute(
            select(webhooks.c.id, webhooks.c.hmac_key_sealed)
            .where(webhooks.c.hmac_key_sealed.is_not(None))
            .limit(1)
        ).first()
    found = []
    if task is not None:
        found.append(
            (
                "run-task HMAC keys",
                hmac_key_context(task.project_id),
                bytes(task.hmac_key_sealed),
                "replace every run-task HMAC key with `packyard runtask reset-keys`",
            )
        )
    if hook is not None:
        found.append(
            (
                "webhook HMAC keys",
                webhook_key_context(hook.id),
                bytes(hook.hmac_key_sealed),
                "give each webhook a new HMAC key (`packyard webhooks` or Terraform)",
            )
        )
    return found
