"""Token signing keys: which key signs, which keys still verify, and rotation.

Keys live in the database, so every worker and every server sharing it agrees on them. Each
process keeps the keys in memory and reads them again every ``REFRESH_S`` seconds (and at
once, at most once a second, when a token names a key it does not know), so a rotation or a
retirement applies everywhere within that time. Tokens are issued with the key read from the
database at that moment, never with a remembered one.

A server reads them again on a thread of its own (:meth:`KeyRing.refreshing`): tokens are
verified on the event loop, which must never wait for the database (while it does not answer,
that wait would hold every request, ``/healthz`` included). There, a token naming a key not
read yet raises :class:`KeysUnread`, and is verified again where a read may wait. If the
refresher's reads keep failing, the keys grow stale: after ``STALE_LIMIT_S`` tokens are refused
as unavailable (503) until a read succeeds, so a rotation is never ignored for long. Without a
refresher (the command line, tests), the callers read them themselves when they are due.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from packyard.domain.models import SigningKey
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code, database_unavailable
from packyard.ids import new_id
from packyard.services.background import LoopThread, running
from packyard.store.engine import Store
from packyard.store.tenancy import SigningKeyRepo

REFRESH_S = 5.0
# The refresher reads twice per REFRESH_S, so one slow or failed read does not make it late.
BACKGROUND_REFRESH_S = REFRESH_S / 2
STALE_LIMIT_S = 3 * REFRESH_S
UNKNOWN_KEY_REFRESH_S = 1.0
INITIAL_KEY_ID = "initial"  # the first key of a database (also what migration 0003 names it)
KEY_BYTES = 32
THREAD_NAME = "packyard-signing-keys"

log = logging.getLogger(__name__)


class KeysUnread(Exception):
    """Verifying the token needs the keys read from the database, which the caller (the
    event loop) must not wait for: verify it where a read may wait."""


@dataclass(frozen=True, slots=True)
class Rotation:
    key: SigningKey
    retired: int  # keys that stop verifying at ``retire_at``
    retire_at: datetime


def current_of(keys: list[SigningKey], now: datetime) -> SigningKey | None:
    """The signing key: the newest one that is not retired or retiring."""
    usable = [k for k in keys if k.retire_at is None]
    if not usable:
        usable = [k for k in keys if k.valid_at(now)]
    return max(usable, key=lambda k: (k.created_at, k.id), default=None)


class KeyRing:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._current: SigningKey | None = None
        self._loaded_at = -float("inf")
        self._unknown_tried_at = -float("inf")
        self._refreshers = 0  # threads keeping the keys fresh (refreshing)
        self._failing = False  # the refresher's last read failed
        self._tried = threading.Event()  # the refresher has made its first pass
        self._lock = threading.Lock()

    def current(self) -> SigningKey:
        """The signing key as this process last read it (created on first use)."""
        self._refresh_if_stale()
        if self._current is None:
            self._load(create=True)
        assert self._current is not None
        return self._current

    def issuing_key(self) -> SigningKey:
        """The signing key as the database has it now: what new tokens are signed with."""
        self._load(create=True)
        assert self._current is not None
        return self._current

    def verifying_key(self, key_id: str | None, *, may_read: bool = True) -> SigningKey | None:
        """The key a token names (its ``kid``; none means the current key), if it still
        verifies. Without ``may_read``, raises :class:`KeysUnread` where it would read."""
        self._refresh_if_stale(may_read)
        if key_id is None:
            if self._current is None:
                if not may_read:
                    raise KeysUnread
                self._load(create=True)
            return self._current
        key = self._keys.get(key_id)
        # at most once a second, failed or not: forged key ids must not become a stream of reads
        now = self.clock()
        if key is None and now - max(self._loaded_at, self._unknown_tried_at) >= (
            UNKNOWN_KEY_REFRESH_S
        ):
            if not may_read:
                raise KeysUnread
            self._unknown_tried_at = now
            self._load(create=False)
            key = self._keys.get(key_id)
        if key is None or (key.retire_at is not None and not key.valid_at(utcnow())):
            return None
        return key

    def still_valid(self, key_id: str, *, may_read: bool = True) -> bool:
        """Whether tokens verified earlier with this key are still good."""
        return self.verifying_key(key_id, may_read=may_read) is not None

    def verifying_keys(self) -> list[SigningKey]:
        self._refresh_if_stale()
        now = utcnow()
        return [k for k in self._keys.values() if k.valid_at(now)]

    def rotate(self, grace: timedelta) -> Rotation:
        """A new signing key in one transaction; every other key stops verifying after
        ``grace`` (zero: at once)."""
        if grace < timedelta(0):
            raise ApiError(Code.INVALID_ARGUMENT, "The grace period cannot be negative.")
        now = utcnow()
        key = SigningKey(
            id=new_id(), secret=secrets.token_bytes(KEY_BYTES), created_at=now, retire_at=None
        )
        retire_at = now + grace
        with self.store.write() as conn:
            repo = SigningKeyRepo(conn)
            # keys retired long ago verify nothing: drop them so the table stays small
            repo.forget_retired_before(now - timedelta(days=1))
            repo.add(key)
            retired = repo.retire_all_but(key.id, retire_at)
        self._load(create=False)
        return Rotation(key=key, retired=retired, retire_at=retire_at)

    def refresh(self) -> None:
        """Read the keys again (the refresher's pass); the first one creates the initial key
        of a new database."""
        self._load(create=self._current is None)

    @contextmanager
    def refreshing(self, interval: float | None = None) -> Iterator[LoopThread]:
        """The keys read again every ``interval`` seconds (default ``BACKGROUND_REFRESH_S``)
        on a thread for the duration of the block, instead of by the callers when they are
        due (see the module docstring). Until its first read has landed
        (:meth:`wait_first_pass`), tokens are refused as unavailable."""
        self._tried.clear()
        self._refreshers += 1
        try:
            thread = LoopThread(
                THREAD_NAME, self._background_pass, interval=interval or BACKGROUND_REFRESH_S
            )
            with running(thread):
                yield thread
        finally:
            self._refreshers -= 1

    def _background_pass(self) -> None:
        try:
            self.refresh()
        except ApiError:
            if not self._failing:
                log.warning("Signing keys: the database is unavailable; retrying.")
            self._failing = True
        else:
            if self._failing:
                log.warning("Signing keys: read again; the database is back.")
            self._failing = False
        finally:
            self._tried.set()

    def wait_first_pass(self, timeout: float) -> bool:
        """Wait until the refresher has tried to read the keys (at most ``timeout`` s);
        whether it has."""
        return self._tried.wait(timeout)

    def _refresh_if_stale(self, may_read: bool = True) -> None:
        age = self.clock() - self._loaded_at
        if self._refreshers:
            if age >= STALE_LIMIT_S:
                raise database_unavailable()
        elif age >= REFRESH_S:
            if not may_read:
                raise KeysUnread
            self._load(create=False)

    def _load(self, *, create: bool) -> None:
        try:
            with self.store.read() as conn:
                keys = SigningKeyRepo(conn).all()
            if not keys and create:
                keys = self._create_initial()
        except SQLAlchemyError:
            raise database_unavailable() from None
        current = current_of(keys, utcnow())
        with self._lock:
            self._keys = {k.id: k for k in keys}
            self._current = current
            self._loaded_at = self.clock()

    def _create_initial(self) -> list[SigningKey]:
        initial = SigningKey(
            id=INITIAL_KEY_ID,
            secret=secrets.token_bytes(KEY_BYTES),
            created_at=utcnow(),
            retire_at=None,
        )
        try:
            with self.store.write() as conn:
                SigningKeyRepo(conn).add(initial)
        except IntegrityError:
            pass  # another process created it first: use that one
        with self.store.read() as conn:
            return SigningKeyRepo(conn).all()
