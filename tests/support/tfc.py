"""A simulated HCP Terraform for run-task tests, following the published protocol.

Two real HTTP servers on loopback, as in HCP Terraform: the API (``/api/v2/plans/…/json-output``,
which answers a 307 to a short-lived download URL, and ``/api/v2/task-results/…/callback``,
which records the PATCHes it receives) and the archive store the 307 points at, on another
origin (a request reaching it with an ``Authorization`` header is recorded: the token must not
leak across origins). Requests to the webhook are built as the integration docs describe
(``payload_version`` 1, every common and post-plan property) and signed byte for byte: the
body is serialised once, the lowercase hex HMAC-SHA512 of those very bytes goes into
``X-TFC-Task-Signature``, and the same bytes are sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from packyard.tls import ensure_certificate

PLANS = Path(__file__).parent.parent / "fixtures" / "terraform-plans"
USER_AGENT = "TFC/1.0 (+https://app.terraform.io; TFC)"


def sign(body: bytes, key: str) -> str:
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


@dataclass
class Callback:
    task_result_id: str
    authorization: str
    content_type: str
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body["data"]["attributes"]["status"])

    @property
    def outcomes(self) -> list[dict[str, Any]]:
        rel = self.body["data"].get("relationships") or {}
        return list((rel.get("outcomes") or {}).get("data") or [])


@dataclass
class Run:
    task_result_id: str
    plan_id: str
    token: str
    plan: bytes


@dataclass
class _State:
    runs: dict[str, Run] = field(default_factory=dict)  # by plan id
    callbacks: list[Callback] = field(default_factory=list)
    plan_gets: int = 0
    archive_gets: int = 0
    leaked_authorization: list[str] = field(default_factory=list)
    callback_failures: int = 0  # answer the next N callbacks with 503
    plan_failures: int = 0  # answer the next N plan requests with 503
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


def _handler(tfc: SimulatedTFC, role: str) -> type[BaseHTTPRequestHandler]:
    state = tfc.state

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _run_for_token(self) -> Run | None:
            auth = self.headers.get("Authorization", "")
            with state.lock:
                return next((r for r in state.runs.values() if auth == f"Bearer {r.token}"), None)

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if role == "archive":
                with state.lock:
                    state.archive_gets += 1
                    if self.headers.get("Authorization"):
                        state.leaked_authorization.append(self.headers["Authorization"])
                run = state.runs.get(parts[-1])
                if run is None or "sig=ok" not in self.path:
                    self._answer(404)
                    return
                self._answer(200, run.plan, {"Content-Type": "application/json"})
                return
            # /api/v2/plans/{plan_id}/json-output
            if (
                len(parts) == 5
                and parts[:3] == ["api", "v2", "plans"]
                and parts[4] == "json-output"
            ):
                with state.lock:
                    state.plan_gets += 1
                    failing = state.plan_failures > 0
                    state.plan_failures -= 1 if failing else 0
                if failing:
                    self._answer(503)
                    return
                run = self._run_for_token()
                if run is None or run.plan_id != parts[3]:
                    self._answer(401)
                    return
                location = f"{tfc.archive_url}/objects/{run.plan_id}?sig=ok"
                self._answer(307, headers={"Location": location})
                return
            self._answer(404)

        def do_PATCH(self) -> None:
            parts = self.path.strip("/").split("/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if role != "api" or len(parts) != 5 or parts[:3] != ["api", "v2", "task-results"]:
                self._answer(404)
                return
            with state.lock:
                failing = state.callback_failures > 0
                state.callback_failures -= 1 if failing else 0
            if failing:
                self._answer(503)
                return
            run = self._run_for_token()
            if run is None or run.task_result_id != parts[3]:
                self._answer(401)
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(422)
                return
            status = body.get("data", {}).get("attributes", {}).get("status")
            if body.get("data", {}).get("type") != "task-results" or status not in (
                "running",
                "passed",
                "failed",
            ):
                self._answer(422)
                return
            with state.changed:
                state.callbacks.append(
                    Callback(
                        parts[3],
                        self.headers.get("Authorization", ""),
                        self.headers.get("Content-Type", ""),
                        body,
                    )
                )
                state.changed.notify_all()
            self._answer(200, b"{}", {"Content-Type": "application/vnd.api+json"})

    return Handler


class _Listener:
    """One HTTP server thread on a fixed loopback port (TLS with ``tls``); it can go down and
    come back."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.server = self._bind(0)
        self.port = int(self.server.server_address[1])
        self.thread: threading.Thread | None = None
        self.start()

    def _bind(self, port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", port), self.handler)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        return server

    def start(self) -> None:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def restart(self) -> None:
        self.server = self._bind(self.port)
        self.start()


class SimulatedTFC:
    """HCP Terraform over plain HTTP, or over HTTPS with a certificate made in ``tls_dir``
    (:attr:`ca_file` is then the file a client must trust)."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        self.state = _State()
        self.ca_file: Path | None = None
        context: ssl.SSLContext | None = None
        if tls_dir is not None:
            found = ensure_certificate(tls_dir, ["127.0.0.1"])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(found.cert, found.key)
            self.ca_file = found.cert
        self.scheme = "https" if context is not None else "http"
        self.api = _Listener(_handler(self, "api"), context)
        self.archive = _Listener(_handler(self, "archive"), context)
        self.host = "127.0.0.1"

    @property
    def api_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.api.port}"

    @property
    def archive_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.archive.port}"

    def close(self) -> None:
        self.api.stop()
        self.archive.stop()

    # --- failures ------------------------------------------------------------------
    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """HCP Terraform unreachable (connection refused) inside the block."""
        self.api.stop()
        try:
            yield
        finally:
            self.api.restart()

    def fail_callbacks(self, times: int) -> None:
        with self.state.lock:
            self.state.callback_failures = times

    # --- runs ----------------------------------------------------------------------
    def new_run(self, plan: bytes | str) -> Run:
        raw = plan if isinstance(plan, bytes) else (PLANS / plan).read_bytes()
        run = Run(
            task_result_id=f"taskrs-{secrets.token_hex(8)}",
            plan_id=f"plan-{secrets.token_hex(8)}",
            token=secrets.token_urlsafe(24),
            plan=raw,
        )
        with self.state.lock:
            self.state.runs[run.plan_id] = run
        return run

    def payload(
        self, run: Run, *, stage: str = "post_plan", outcomes: bool = True
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "payload_version": 1,
            "stage": stage,
            "access_token": run.token,
            "capabilities": {"outcomes": outcomes},
            "configuration_version_download_url": (
                f"{self.api_url}/api/v2/configuration-versions/cv-1/download"
            ),
            "configuration_version_id": "cv-1",
            "is_speculative": False,
            "organization_name": "example-org",
            "project_id": "prj-1",
            "project_name": "Default Project",
            "run_app_url": "https://app.terraform.io/app/example-org/ws/runs/run-1",
            "run_created_at": "2026-12-05T14:00:00.000Z",
            "run_created_by": "someone",
            "run_id": f"run-{run.plan_id[5:]}",
            "run_message": "Triggered via API",
            "task_result_callback_url": (
                f"{self.api_url}/api/v2/task-results/{run.task_result_id}/callback"
            ),
            "task_result_enforcement_level": "mandatory",
            "task_result_id": run.task_result_id,
            "vcs_branch": None,
            "vcs_commit_url": None,
            "vcs_pull_request_url": None,
            "vcs_repo_url": None,
            "workspace_app_url": "https://app.terraform.io/app/example-org/ws",
            "workspace_id": "ws-1",
            "workspace_name": "ws",
            "workspace_working_directory": "",
        }
        if stage != "pre_plan":
            body["plan_json_api_url"] = f"{self.api_url}/api/v2/plans/{run.plan_id}/json-output"
        return body

    @staticmethod
    def deliver(
        url: str,
        payload: dict[str, Any],
        hmac_key: str | None,
        *,
        signature: str | None = None,
        verify: bool = False,
    ) -> httpx.Response:
        """POST ``payload`` to the run task's URL as HCP Terraform does."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        if signature is None:
            signature = sign(body, hmac_key) if hmac_key is not None else ""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-TFC-Task-Signature": signature,
        }
        return httpx.post(url, content=body, headers=headers, timeout=30, verify=verify)

    # --- what arrived --------------------------------------------------------------
    def callbacks(self, task_result_id: str | None = None) -> list[Callback]:
        with self.state.lock:
            return [
                c
                for c in self.state.callbacks
                if task_result_id is None or c.task_result_id == task_result_id
            ]

    def wait_final(self, task_result_id: str, timeout: float = 20) -> Callback:
        """The first final (passed/failed) callback of a task result."""
        deadline = time.monotonic() + timeout
        with self.state.changed:
            while True:
                final = [
                    c
                    for c in self.state.callbacks
                    if c.task_result_id == task_result_id and c.status != "running"
                ]
                if final:
                    return final[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no final callback for {task_result_id}")
                self.state.changed.wait(left)
