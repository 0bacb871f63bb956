"""The audit sinks over real files, sockets and HTTP: what each receives, and the outbound
guard of the HTTP sink."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from packyard.domain.models import Operator
from packyard.services.audit import AuditSettings, AuditStreamer
from packyard.services.audit_sinks import (
    FileSink,
    HttpSink,
    SinkError,
    SyslogSink,
    parse_sinks,
)
from packyard.startup import StartupError
from packyard.store.engine import Store
from tests.support.audit import add, add_failure, caller

FRAME = re.compile(
    r"<(?P<pri>\d+)>1 (?P<time>\S+) (?P<host>\S+) packyard (?P<pid>\d+) audit - (?P<msg>\{.*\})"
)


def _project() -> str:
    return str(uuid.uuid4())


def test_file_sink_appends_private_json_lines_and_resumes(store: Store, tmp_path: Path) -> None:
    project = _project()
    add(store, project, caller(project, "alice"), bucket="web")
    add_failure(store, project, caller(project, "alice"), bucket="web")
    [sink] = parse_sinks(f"file:{tmp_path}/audit.jsonl", allow_private=False, http_token=None)
    assert isinstance(sink, FileSink)
    first_run = AuditStreamer(store, [sink], owner="one")
    first_run.step()
    first_run.close()  # stopped: its lease released
    path = tmp_path / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["seq"], r["status"], r["bucket"]["name"]) for r in first] == [
        (1, "OK", "web"),
        (2, "FAILED", "web"),
    ]
    assert {"id", "seq", "request_id", "source_address", "actor", "timestamp"} <= set(first[0])
    # a restart (a new streamer, the same sink) appends only what is new
    add(store, project, caller(project, "alice"))
    [again] = parse_sinks(f"file:{tmp_path}/audit.jsonl", allow_private=False, http_token=None)
    assert AuditStreamer(store, [again], owner="two").step() == 1
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [1, 2, 3]


def test_syslog_over_udp(store: Store) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    project = _project()
    add(store, project, caller(project, "alice"), bucket="web")
    add_failure(store, project, caller(project, "alice"))
    [sink] = parse_sinks(f"syslog:udp://127.0.0.1:{port}", allow_private=False, http_token=None)
    try:
        assert AuditStreamer(store, [sink], owner="a").step() == 2
        frames = [receiver.recv(65535).decode() for _ in range(2)]
    finally:
        sink.close()
        receiver.close()
    parsed = [FRAME.fullmatch(f) for f in frames]
    assert all(parsed), frames
    ok, failed = (p for p in parsed if p is not None)
    assert (int(ok["pri"]), int(failed["pri"])) == (10 * 8 + 6, 10 * 8 + 4)  # authpriv
    assert int(ok["pid"]) == os.getpid()
    assert ok["time"].endswith("Z")
    assert json.loads(ok["msg"])["bucket"]["name"] == "web"
    assert json.loads(failed["msg"])["status"] == "FAILED"


def test_syslog_over_tcp_is_octet_counted(store: Store) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received = bytearray()

    def accept() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    reader = threading.Thread(target=accept)
    reader.start()
    for _ in range(2):
        add(store, None, Operator(), "Created project")
    sink = SyslogSink("tcp", ("127.0.0.1", port), 5.0)
    AuditStreamer(store, [sink], owner="a").step()
    sink.close()
    reader.join(5)
    server.close()
    messages = []
    data = bytes(received)
    while data:
        length, _, rest = data.partition(b" ")
        messages.append(rest[: int(length)].decode())
        data = rest[int(length) :]
    assert [json.loads(FRAME.fullmatch(m)["msg"])["seq"] for m in messages] == [1, 2]  # type: ignore[index]


class _Collector(BaseHTTPRequestHandler):
    answers: list[int]
    bodies: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append((dict(self.headers.items()), body))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, type[_Collector]]]:
    handler = type("Handler", (_Collector,), {"answers": [], "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ingest?source=packyard", handler
    server.shutdown()
    server.server_close()


def test_http_sink_posts_json_lines_and_retries_until_accepted(
    store: Store, collector: tuple[str, type[_Collector]]
) -> None:
    url, handler = collector
    handler.answers = [500]
    project = _project()
    for _ in range(3):
        add(store, project, caller(project))
    settings = AuditSettings(
        sinks=url, allow_private=True, http_token="s3cret", backoff_base_s=0.0, backoff_max_s=0.0
    )
    streamer = AuditStreamer(store, settings.build_sinks(), settings, owner="a")
    assert streamer.step() == 0  # 500: not accepted, the cursor stays
    assert streamer.step() == 3  # the same batch again
    assert streamer.step() == 0
    assert len(handler.bodies) == 2
    first, second = handler.bodies
    assert first[1] == second[1]
    headers = second[0]
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Content-Type"] == "application/x-ndjson"
    assert [json.loads(line)["seq"] for line in second[1].splitlines()] == [1, 2, 3]


def test_http_sink_refuses_private_addresses_unless_allowed(
    store: Store, collector: tuple[str, type[_Collector]]
) -> None:
    url, handler = collector
    port = url.split(":")[2].split("/")[0]
    for spec in (f"https://127.0.0.1:{port}/x", "https://169.254.169.254/", "https://10.1.2.3/"):
        with pytest.raises(ValueError, match="ALLOW_PRIVATE"):
            parse_sinks(spec, allow_private=False, http_token=None)
    with pytest.raises(ValueError, match="https"):
        parse_sinks(url, allow_private=False, http_token=None)  # plain http
    with pytest.raises(StartupError):
        AuditSettings(sinks="https://[::1]/x").build_sinks()
    # a name is checked when it is resolved, at each connection
    sink = HttpSink(f"https://localhost:{port}/x", False, 5.0)
    with pytest.raises(SinkError, match="loopback"):
        sink.send([{"seq": 1}])
    project = _project()
    add(store, project, caller(project))
    assert AuditStreamer(store, [sink], owner="a").step() == 0
    assert handler.bodies == []


@pytest.mark.parametrize(
    "spec",
    [
        "syslog:udp://",
        "syslog:tcp://host:99999",
        "file:relative/audit.jsonl",
        "ftp://host/x",
        "https://user:pw@collector.example/x",
        "stdout,stdout",
    ],
)
def test_bad_sink_specs_stop_the_start(spec: str) -> None:
    with pytest.raises(StartupError) as raised:
        AuditSettings.from_env({"PACKYARD_AUDIT_SINKS": spec})
    assert "PACKYARD_AUDIT_SINKS" in raised.value.message
    assert "pw" not in raised.value.message
