"""Serialized read responses, served again only while provably exact.

The consumer read path (GetChannel, GetVersion, GetBucket, the lists and
SearchExternalArtifact) is answered from memory when the same request, by a
caller who sees the same buckets and restricted channels on the same project,
was answered before and nothing it shows changed since:

1. the caller is authorized exactly as on the normal path, by the same lookup
   (:mod:`packyard.api.callers`: the token is always verified, the role comes from
   the short-lived role cache or the database); a refused caller takes the normal
   path, which answers with the proper error;
2. the generation of what the response depends on is read from the database by
   the probe (:mod:`packyard.store.probe`), one statement on every request: for a
   request about a bucket, the keys of that bucket, of the buckets its ancestry
   edges lead to, of the project and the global key; for a project-wide request
   (the registry, ListBuckets, search), every key of the project;
3. a stored response is sent only if it was computed at that very generation and
   no scheduled revocation took effect since it was computed;
4. a response is stored the second time it is asked for at one generation (what
   is read once between writes is not worth storing).

On a miss the generation (and which keys the response depends on) is read
*before* the normal path computes the response, so the stored response is never
older than its generation. Every write transaction bumps the keys of what it
changes before it commits (:mod:`packyard.store.generations`), so a response
cached before a write is never served after that write has returned, by this
server or any other server on the same database; pushes into one bucket leave
the cached responses about unrelated buckets of the project valid.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from packyard.api.callers import Callers
from packyard.api.calls import run
from packyard.domain.access import ViewKey, view_key
from packyard.services.container import Services
from packyard.store.generations import Buckets
from packyard.store.probe import GenerationProbe, open_probe

_PROJECT_PATH = re.compile(
    r"^/packer/2023-01-01/organizations/(?P<org>[^/]+)/projects/(?P<project>[^/]+)/(?P<rest>.+)$"
)
# GetRegistry, ListBuckets, GetBucket, ListBucketAncestry, ListChannels, GetChannel,
# ListChannelAssignmentHistory, ListVersions, GetVersion, ListBuilds, GetBuild.
_CACHEABLE_GET = re.compile(
    r"^(?:registry|buckets(?:/[^/]+(?:/ancestry|/channels(?:/[^/]+(?:/history)?)?"
    r"|/versions(?:/[^/]+(?:/builds(?:/[^/]+)?)?)?)?)?)$"
)
_CACHEABLE_POST = "_search/external_artifact"  # SearchExternalArtifact: a read with a body
MAX_KEYED_BODY = 4096
_HIT = (b"x-packyard-cache", b"hit")  # marks answers served from the cache
_ENTRY_OVERHEAD = 512  # bytes of bookkeeping counted per entry besides key and body
SEEN_KEPT = 20_000  # keys remembered as asked once (see ResponseCache.seen_twice)

CacheKey = tuple[bytes, bytes, bytes, ViewKey]


@dataclass(frozen=True, slots=True)
class CachedResponse:
    generation: int
    expires: float  # epoch seconds; inf when no scheduled revocation is pending
    start: Message
    body: bytes
    size: int
    route: object = None  # the route that answered (labels the request's metrics)
    buckets: Buckets = None  # the bucket keys ``generation`` sums (None: the project's all)

    def answers(self, generation: int, buckets: Buckets, now: float) -> bool:
        """Whether this response is exact for a request that read ``generation`` of the keys
        ``buckets`` at ``now``: nothing it shows changed since it was computed."""
        return self.generation == generation and self.buckets == buckets and now < self.expires


class ResponseCache:
    """A least-recently-used map bounded by bytes. Used from the event loop thread only."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        # Lookups by outcome: served from the cache, shared with the same request in flight
        # (CachedReadMiddleware._shared), or computed.
        self.hits = 0
        self.shared = 0
        self.misses = 0
        self._items: OrderedDict[CacheKey, CachedResponse] = OrderedDict()
        # hash(key) -> generation: asked once at that generation, not stored. Hashes keep
        # this small whatever the keys; a collision only stores a response early.
        self._seen: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def lookups(self) -> dict[str, int]:
        """The lookups so far by outcome, as ``/metrics`` labels them."""
        return {"hit": self.hits, "shared": self.shared, "miss": self.misses}

    def peek(self, key: CacheKey) -> CachedResponse | None:
        """The entry stored for ``key``, valid or not (the LRU order stays as it is)."""
        return self._items.get(key)

    def get(
        self, key: CacheKey, generation: int, now: float, buckets: Buckets = None
    ) -> CachedResponse | None:
        """The entry for ``key`` if it answers a request that read ``generation`` of the keys
        ``buckets`` (:meth:`CachedResponse.answers`)."""
        entry = self._items.get(key)
        if entry is None or not entry.answers(generation, buckets, now):
            return None
        self._items.move_to_end(key)
        return entry

    def seen_twice(self, key: CacheKey, generation: int) -> bool:
        """Whether ``key`` was already asked for at ``generation`` (and so is worth storing).

        Storing costs a read of the project's validity on a worker thread. A
        response read once per generation, as Packer reads its version between
        writes, would never be served from the cache, so it is stored only when
        it is asked for a second time with nothing changed in between.
        """
        digest = hash(key)
        if self._seen.get(digest) == generation:
            del self._seen[digest]
            return True
        if len(self._seen) >= SEEN_KEPT:
            self._seen.clear()
        self._seen[digest] = generation
        return False

    def put(self, key: CacheKey, entry: CachedResponse) -> None:
        self.discard(key)
        if entry.size > self.max_bytes // 4:
            return  # one huge page must not flush everything else
        while self._items and self.bytes + entry.size > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.bytes -= evicted.size
        self._items[key] = entry
        self.bytes += entry.size

    def discard(self, key: CacheKey) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old.size


class ReadCache:
    """The cache plus its database probe; the probe lives as long as the app's lifespan."""

    def __init__(self, services: Services, max_bytes: int) -> None:
        self.services = services
        self.responses = ResponseCache(max_bytes)
        self.probe: GenerationProbe | None = None
        self.probes = 0  # generation lookups so far (statements outside SQLAlchemy)

    def open(self) -> None:
        self.probe = open_probe(self.services.store)

    async def close(self) -> None:
        probe, self.probe = self.probe, None
        if probe is not None:
            await probe.aclose()


class CachedReadMiddleware:
    def __init__(self, app: ASGIApp, cache: ReadCache, callers: Callers) -> None:
        self.app = app
        self.cache = cache
        self.callers = callers
        # The responses being computed to be stored (``_fill``), by key: the same request
        # arriving meanwhile at the same generation waits for that answer (``_shared``).
        self._flights: dict[CacheKey, _Flight] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        probe = self.cache.probe
        target = _cacheable_target(scope) if probe is not None else None
        if probe is None or target is None:
            await self.app(scope, receive, send)
            return
        org, project_id, bucket = target
        body, receive = await _keyed_body(scope, receive)
        view = await self._view(scope, org, project_id)
        if body is None or view is None:
            await self.app(scope, receive, send)
            return
        key: CacheKey = (_raw_path(scope), scope.get("query_string", b""), body, view)
        responses = self.cache.responses
        # The keys of the stored response (its bucket's ancestry neighbours included),
        # else those of the request alone: enough to tell a second ask from a first.
        stored = responses.peek(key)
        keys = stored.buckets if stored is not None else None if bucket is None else (bucket,)
        self.cache.probes += 1
        generation = await probe.generation(project_id, keys)
        if generation is None:
            await self.app(scope, receive, send)
            return
        hit = responses.get(key, generation, time.time(), keys)
        if hit is not None:
            responses.hits += 1
        elif (flight := self._flights.get(key)) and flight.joins(generation, keys):
            hit = await self._shared(flight, generation, keys)
            if hit is not None:
                responses.shared += 1
        if hit is not None:
            scope["route"] = hit.route
            await send(hit.start)
            await send({"type": "http.response.body", "body": hit.body})
            return
        responses.misses += 1
        if responses.seen_twice(key, generation) and key not in self._flights:
            await self._fill(key, generation, keys, project_id, bucket, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _view(self, scope: Scope, org: str, project_id: str) -> ViewKey | None:
        """Which buckets and restricted channels the caller sees (responses differ on
        nothing else between callers), or ``None`` when the request is refused."""
        token = _bearer(scope)
        if token is None:
            return None
        try:
            caller = await self.callers.caller(scope, token, org, project_id)
        except Exception:  # refused (the route renders the refusal kept in the scope), or
            return None  # something else failed: the route looks the caller up again
        return view_key(caller)

    @staticmethod
    async def _shared(flight: _Flight, generation: int, keys: Buckets) -> CachedResponse | None:
        """The response of the same request in flight, once computed, if it answers this
        one as exactly as a stored response would (:meth:`CachedResponse.answers`: this
        request read the same generation of the same keys, so every write it must see had
        committed before that response's generation was read). After a write, the readers
        of a popular channel thus wait for one answer instead of each computing it."""
        # Shielded: a waiter whose client goes away must not cancel the computation others
        # wait for.
        entry = await asyncio.shield(flight.answer)
        if entry is None or not entry.answers(generation, keys, time.time()):
            return None
        return entry

    async def _fill(
        self,
        key: CacheKey,
        generation: int,
        keys: Buckets,
        project_id: str,
        bucket: str | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        flight = _Flight(generation, keys, asyncio.get_running_loop().create_future())
        self._flights[key] = flight
        entry: CachedResponse | None = None
        try:
            entry = await self._computed(key, project_id, bucket, scope, receive, send)
        finally:
            del self._flights[key]
            flight.answer.set_result(entry)
        if entry is not None:
            self.cache.responses.put(key, entry)

    async def _computed(
        self,
        key: CacheKey,
        project_id: str,
        bucket: str | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> CachedResponse | None:
        """The response of the normal path, sent to the client, and as an entry to store
        if it is a complete 200."""
        services = self.cache.services
        validity = await run(services, services.generations.validity, project_id, bucket)
        start: Message | None = None
        chunks: list[bytes] = []
        complete = False

        async def capture(message: Message) -> None:
            nonlocal start, complete
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, capture)
        if start is None or start["status"] != 200 or not complete:
            return None
        body = b"".join(chunks)
        expires = validity.until.timestamp() if validity.until is not None else math.inf
        headers = list(start.get("headers", []))
        size = len(body) + sum(len(k) + len(v) for k, v in headers)
        size += len(key[0]) + len(key[1]) + len(key[2]) + _ENTRY_OVERHEAD
        stored = {"type": "http.response.start", "status": 200, "headers": [*headers, _HIT]}
        return CachedResponse(
            validity.generation,
            expires,
            stored,
            body,
            size,
            scope.get("route"),
            validity.buckets,
        )


@dataclass(frozen=True, slots=True)
class _Flight:
    """A response being computed to be stored, for requests that read ``generation`` of the
    keys ``buckets``."""

    generation: int
    buckets: Buckets
    answer: asyncio.Future[CachedResponse | None]

    def joins(self, generation: int, buckets: Buckets) -> bool:
        return self.generation == generation and self.buckets == buckets


def _cacheable_target(scope: Scope) -> tuple[str, str, str | None] | None:
    """``(organization, project, bucket)`` when the request is a cacheable read, else
    ``None``; ``bucket`` is ``None`` for a project-wide read."""
    if scope["type"] != "http":
        return None
    match = _PROJECT_PATH.match(scope["path"])
    if match is None:
        return None
    method, rest = scope["method"], match["rest"]
    if method == "GET" and _CACHEABLE_GET.match(rest):
        pass
    elif not (method == "POST" and rest == _CACHEABLE_POST):
        return None
    if b"%" in _raw_path(scope):
        return None  # escaped paths take the normal path and its guards
    bucket = rest.split("/", 2)[1] if rest.startswith("buckets/") else None
    return match["org"], match["project"], bucket


def _raw_path(scope: Scope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    return raw if raw is not None else scope["path"].encode()


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


async def _keyed_body(scope: Scope, receive: Receive) -> tuple[bytes | None, Receive]:
    """The request body when it is small enough to key a response, and a ``receive`` that
    replays what was read (``None`` for a body too large to cache)."""
    if scope["method"] == "GET":
        return b"", receive
    messages: list[Message] = []
    size = 0
    more = True
    while more and size <= MAX_KEYED_BODY:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        more = message.get("more_body", False)

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    if more or size > MAX_KEYED_BODY or messages[-1]["type"] != "http.request":
        return None, replay
    body = b"".join(m.get("body", b"") for m in messages)
    return body, replay
