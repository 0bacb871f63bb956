"""Throttling of failed client authentication on the token endpoint (in-process).

The right secret is never refused: it is checked before the throttle is consulted, so nobody
who merely knows a client id (or shares an address with an attacker, as every pipeline behind
a TLS-terminating proxy does) can lock its owner out. Checking a secret costs microseconds
(see :func:`packyard.services.auth.hash_secret`), so checking it always costs nothing either.

Every failed attempt (unknown client id or wrong secret) is counted twice: against the client
id and against the remote address. When either count reaches its limit inside the sliding
window, further failures answer HTTP 429 with a ``Retry-After`` header instead of 401 and are
no longer logged, until the oldest counted failure leaves the window: an attacker gets no
more than a fixed number of log lines per window, and a misconfigured pipeline is told to back
off. A successful authentication clears the client id's count (not the address's).

Counters live in the server process: they reset on restart and are not shared between servers
on one PostgreSQL database.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from packyard.errors import ApiError, Code

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
DEFAULT_WINDOW_S = 60.0
DEFAULT_CLIENT_FAILURES = 10
DEFAULT_ADDRESS_FAILURES = 50
MAX_TRACKED_KEYS = 10_000
MAX_KEY_CHARS = 128


class FailureCounter:
    """Failures per key in a sliding window; thread-safe and bounded in memory."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        stamps = self._failures.get(key)
        if stamps is None:
            return None
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
            return None
        return stamps

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it is not locked out."""
        key = key[:MAX_KEY_CHARS]
        with self._lock:
            now = self.clock()
            stamps = self._recent(key, now)
            if stamps is None or len(stamps) < self.limit:
                return 0.0
            return max(stamps[-self.limit] + self.window - now, 0.0)

    def failed(self, key: str) -> None:
        key = key[:MAX_KEY_CHARS]
        with self._lock:
            now = self.clock()
            stamps = self._recent(key, now)
            if stamps is None:
                self._evict(now)
                stamps = self._failures[key] = deque(maxlen=self.limit)
            stamps.append(now)
            self._failures.move_to_end(key)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key[:MAX_KEY_CHARS], None)

    def _evict(self, now: float) -> None:
        if len(self._failures) < self.max_keys:
            return
        for key in list(self._failures):
            self._recent(key, now)
        while len(self._failures) >= self.max_keys:
            self._failures.popitem(last=False)


@dataclass
class LoginThrottle:
    """The token endpoint's two counters: per client id and per remote address."""

    per_client: FailureCounter = field(
        default_factory=lambda: FailureCounter(
            limit=DEFAULT_CLIENT_FAILURES, window=DEFAULT_WINDOW_S
        )
    )
    per_address: FailureCounter = field(
        default_factory=lambda: FailureCounter(
            limit=DEFAULT_ADDRESS_FAILURES, window=DEFAULT_WINDOW_S
        )
    )

    @classmethod
    def with_limits(
        cls,
        *,
        client_failures: int,
        address_failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> LoginThrottle:
        return cls(
            per_client=FailureCounter(limit=client_failures, window=window, clock=clock),
            per_address=FailureCounter(limit=address_failures, window=window, clock=clock),
        )

    def check(self, client_id: str, address: str | None) -> None:
        """Raise a RESOURCE_EXHAUSTED error while the client id or address is locked out."""
        wait = self.per_client.wait(client_id)
        if address:
            wait = max(wait, self.per_address.wait(address))
        if wait > 0:
            raise throttled(wait)

    def failed(self, client_id: str, address: str | None) -> None:
        self.per_client.failed(client_id)
        if address:
            self.per_address.failed(address)

    def succeeded(self, client_id: str) -> None:
        self.per_client.clear(client_id)


def throttled(wait: float) -> ApiError:
    """A 429/8 error carrying a ``google.rpc.RetryInfo`` detail with whole seconds."""
    seconds = max(math.ceil(wait), 1)
    return ApiError(
        Code.RESOURCE_EXHAUSTED,
        f"Too many failed authentication attempts; retry in {seconds} s.",
        details=[{"@type": RETRY_INFO, "retry_delay": f"{seconds}s"}],
    )


def retry_after(error: ApiError) -> int | None:
    """The whole seconds of an error's RetryInfo detail, if it has one."""
    for detail in error.details:
        if detail.get("@type") == RETRY_INFO:
            delay = str(detail.get("retry_delay", "")).removesuffix("s")
            try:
                return max(math.ceil(float(delay)), 1)
            except ValueError:
                return None
    return None
