"""Where the audit log is streamed: ``PACKYARD_AUDIT_SINKS``, a comma-separated list of

- ``stdout``: one JSON record per line on the server's standard output;
- ``file:/path/audit.jsonl``: JSON lines appended to a file (created 0600), fsynced per batch;
  the file is opened for each batch, so a log rotation that moves it is picked up;
- ``syslog:udp://host[:514]``, ``syslog:tcp://host[:601]``, ``syslog:unix:/dev/log``: RFC 5424
  messages (facility authpriv, severity info, warning for a FAILED entry; app ``packyard``,
  msgid ``audit``) whose message is the JSON record; TCP frames are octet-counted (RFC 6587);
  an entry too large for a datagram is sent with its shared fields only (``"truncated": true``);
- ``https://collector.example/path``: each batch POSTed as JSON lines
  (``application/x-ndjson``), ``PACKYARD_AUDIT_HTTP_TOKEN`` as a bearer token if set. Any
  answer but 2xx is a failure (redirects are not followed); connections time out.

The HTTPS sink calls public addresses only: a host that resolves to a private, loopback,
link-local (cloud metadata), shared or reserved address is refused, and the connection goes to
the address that was checked (no second lookup). ``PACKYARD_AUDIT_ALLOW_PRIVATE=1`` lifts the
rule (a collector on the local network), and with it plain ``http://`` URLs are accepted.

A sink's :meth:`Sink.send` either accepts a whole batch or raises :class:`SinkError`; the
streamer (:mod:`packyard.services.audit`) retries then from the same entry.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import socket
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from packyard import __version__
from packyard.services.outbound import forbidden

MAX_SINK_NAME = 128  # audit_cursors.sink
FACILITY_AUTHPRIV = 10
SEVERITY_INFO = 6
SEVERITY_WARNING = 4
MAX_DATAGRAM = 60_000  # below UDP's 65 507-byte payload, with room for the header
_SHARED_FIELDS = (
    "status",
    "action",
    "description",
    "organization_id",
    "project_id",
    "timestamp",
    "actor",
    "error",
    "id",
    "seq",
    "request_id",
    "source_address",
)


class SinkError(Exception):
    """The sink did not take the batch; the message is safe to log (no token, no query)."""


class Sink(Protocol):
    name: str  # the cursor key: stable across restarts, no secrets

    def send(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


def _line(record: Mapping[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


class StdoutSink:
    name = "stdout"

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        try:
            out = sys.stdout.buffer
            out.write(b"".join(_line(r) for r in records))
            out.flush()
        except (OSError, ValueError, AttributeError) as exc:
            raise SinkError(f"cannot write to standard output: {exc}") from None

    def close(self) -> None:
        pass


class FileSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = _name(f"file:{path}")

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        data = b"".join(_line(r) for r in records)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise SinkError(f"cannot open {self.path}: {exc.strerror}") from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)

    def close(self) -> None:
        pass


def syslog_frame(record: Mapping[str, Any], hostname: str, pid: int, at: datetime) -> bytes:
    """One RFC 5424 message carrying ``record`` as JSON."""
    severity = SEVERITY_INFO if record.get("status") == "OK" else SEVERITY_WARNING
    stamp = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    header = f"<{FACILITY_AUTHPRIV * 8 + severity}>1 {stamp} {hostname} packyard {pid} audit - "
    return header.encode() + orjson.dumps(record)


def _hostname() -> str:
    name = "".join(c for c in socket.gethostname() if 33 <= ord(c) <= 126)
    return name[:255] or "-"


class SyslogSink:
    """``transport`` ``udp``, ``tcp`` or ``unix``; ``address`` (host, port) or a socket path."""

    def __init__(self, transport: str, address: tuple[str, int] | str, timeout_s: float) -> None:
        self.transport = transport
        self.address = address
        self.timeout_s = timeout_s
        where = address if isinstance(address, str) else f"//{address[0]}:{address[1]}"
        self.name = _name(f"syslog:{transport}:{where}")
        self._sock: socket.socket | None = None
        self._stream = transport == "tcp"

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        try:
            if self.transport == "unix":
                assert isinstance(self.address, str)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                try:
                    sock.connect(self.address)
                except OSError:
                    sock.close()
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.settimeout(self.timeout_s)
                    sock.connect(self.address)
                    self._stream = True
            else:
                assert isinstance(self.address, tuple)
                kind = socket.SOCK_STREAM if self.transport == "tcp" else socket.SOCK_DGRAM
                host, port = self.address
                family, _, _, _, target = socket.getaddrinfo(host, port, type=kind)[0]
                sock = socket.socket(family, kind)
                sock.settimeout(self.timeout_s)
                sock.connect(target)
        except OSError as exc:
            raise SinkError(f"cannot reach {self.name}: {exc.strerror or exc}") from None
        sock.settimeout(self.timeout_s)
        self._sock = sock
        return sock

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        sock = self._connect()
        hostname, pid = _hostname(), os.getpid()
        try:
            for record in records:
                at = _record_time(record)
                frame = syslog_frame(record, hostname, pid, at)
                if not self._stream and len(frame) > MAX_DATAGRAM:
                    short = {k: record[k] for k in _SHARED_FIELDS if k in record}
                    frame = syslog_frame({**short, "truncated": True}, hostname, pid, at)
                if self.transport == "tcp":
                    sock.sendall(str(len(frame)).encode() + b" " + frame)
                elif self._stream:
                    sock.sendall(frame + b"\n")
                else:
                    sock.send(frame)
        except OSError as exc:
            self.close()
            raise SinkError(f"cannot send to {self.name}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _record_time(record: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(record.get("timestamp")))
    except ValueError:
        return datetime.now(UTC)


# --- HTTPS, to public addresses only -----------------------------------------------------


def refused_address(address: str) -> str | None:
    """Why the HTTPS sink may not connect to ``address`` (an IP), or ``None``: the rules of
    webhooks (:func:`packyard.services.outbound.forbidden`)."""
    kind = forbidden(ipaddress.ip_address(address.split("%", 1)[0]))
    return None if kind is None else f"{address} is {kind}"


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the checked address ``ip`` while verifying the certificate of ``host``."""

    def __init__(self, host: str, port: int, ip: str, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._ip = ip
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


@dataclass
class HttpSink:
    url: str
    allow_private: bool
    timeout_s: float
    token: str | None = field(default=None, repr=False)
    name: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self._scheme = parts.scheme
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        port = f":{parts.port}" if parts.port else ""
        self.name = _name(f"{parts.scheme}://{self._host}{port}{parts.path}")

    def _address(self) -> str:
        try:
            found = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise SinkError(f"cannot resolve {self._host}: {exc.strerror or exc}") from None
        addresses = [str(target[0]) for *_, target in found]
        if not addresses:
            raise SinkError(f"{self._host} has no address")
        if not self.allow_private:
            for address in addresses:  # every one: a later lookup could pick any
                reason = refused_address(address)
                if reason is not None:
                    raise SinkError(
                        f"refused to send to {self.name}: {reason} "
                        "(PACKYARD_AUDIT_ALLOW_PRIVATE=1 allows it)"
                    )
        return addresses[0]

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        address = self._address()
        conn: http.client.HTTPConnection
        if self._scheme == "https":
            conn = _PinnedHTTPSConnection(
                self._host, self._port, address, self.timeout_s, ssl.create_default_context()
            )
        else:
            conn = _PinnedHTTPConnection(self._host, self._port, address, self.timeout_s)
        headers = {
            "Content-Type": "application/x-ndjson",
            "User-Agent": f"packyard/{__version__}",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(
                "POST", self._target, body=b"".join(_line(r) for r in records), headers=headers
            )
            response = conn.getresponse()
            response.read(64 * 1024)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            # The type only: an exception's text could carry the URL's query.
            raise SinkError(f"cannot reach {self.name} ({type(exc).__name__})") from None
        finally:
            conn.close()
        if not 200 <= status < 300:
            raise SinkError(f"{self.name} answered HTTP {status}")

    def close(self) -> None:
        pass


# --- configuration -----------------------------------------------------------------------


def _name(text: str) -> str:
    if len(text) <= MAX_SINK_NAME:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: MAX_SINK_NAME - 17]}#{digest}"


def parse_sinks(
    raw: str, *, allow_private: bool, http_token: str | None, timeout_s: float = 10.0
) -> list[Sink]:
    """The sinks ``raw`` (``PACKYARD_AUDIT_SINKS``) names; :class:`ValueError` with a message
    for the operator when one cannot be used."""
    sinks: list[Sink] = []
    for spec in (s.strip() for s in raw.split(",")):
        if not spec:
            continue
        sink = _sink(spec, allow_private=allow_private, token=http_token, timeout_s=timeout_s)
        if any(s.name == sink.name for s in sinks):
            raise ValueError(f"{spec} is named twice")
        sinks.append(sink)
    return sinks


def _sink(spec: str, *, allow_private: bool, token: str | None, timeout_s: float) -> Sink:
    if spec == "stdout":
        return StdoutSink()
    if spec.startswith("file:"):
        path = Path(spec[len("file:") :])
        if not path.is_absolute():
            raise ValueError(f"{spec}: the file must be an absolute path")
        if path.is_dir():
            raise ValueError(f"{spec}: {path} is a directory")
        return FileSink(path)
    if spec.startswith("syslog:unix:"):
        socket_path = spec[len("syslog:unix:") :]
        if not socket_path.startswith("/"):
            raise ValueError(f"{spec}: the socket must be an absolute path")
        return SyslogSink("unix", socket_path, timeout_s)
    if spec.startswith(("syslog:udp://", "syslog:tcp://")):
        transport = spec[len("syslog:") : len("syslog:") + 3]
        try:
            parts = urlsplit(spec[len("syslog:") :])
            port = parts.port or (514 if transport == "udp" else 601)
        except ValueError:
            raise ValueError(f"{spec}: not a valid host:port") from None
        if not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"{spec}: expected syslog:{transport}://host:port")
        return SyslogSink(transport, (parts.hostname, port), timeout_s)
    if spec.startswith(("https://", "http://")):
        try:
            parts = urlsplit(spec)
            _ = parts.port
        except ValueError:
            raise ValueError(f"{_without_secrets(spec)}: not a valid URL") from None
        if not parts.hostname:
            raise ValueError(f"{_without_secrets(spec)}: not a valid URL")
        if parts.username or parts.password:
            raise ValueError(
                f"{_without_secrets(spec)}: put credentials in PACKYARD_AUDIT_HTTP_TOKEN, "
                "not in the URL"
            )
        if parts.scheme == "http" and not allow_private:
            raise ValueError(
                f"{spec}: plain http only with PACKYARD_AUDIT_ALLOW_PRIVATE=1; use https"
            )
        if not allow_private:
            try:
                reason = refused_address(parts.hostname)
            except ValueError:
                reason = None  # a name: checked at each connection
            if reason is not None:
                raise ValueError(f"{spec}: {reason} (PACKYARD_AUDIT_ALLOW_PRIVATE=1 allows it)")
        return HttpSink(spec, allow_private, timeout_s, token)
    raise ValueError(
        f"{spec[:64]!r} is not a sink: use stdout, file:/path, syslog:udp://host:port, "
        "syslog:tcp://host:port, syslog:unix:/path or https://host/path"
    )


def _without_secrets(spec: str) -> str:
    try:
        parts = urlsplit(spec)
        return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
    except ValueError:
        return spec.rsplit("@", maxsplit=1)[-1][:64]
