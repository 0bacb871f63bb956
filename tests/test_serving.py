"""``packyard serve`` hands over to the serving process (:mod:`packyard.serving`): a fresh
interpreter that imports none of the command line and learns its settings through a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from packyard.api.app import create_app
from packyard.api.schemas import build_openapi
from packyard.server import (
    HANDOVER_MAX_BYTES,
    SERVING_MODULE,
    Handover,
    ServeOptions,
    hand_over,
    serving_command,
)
from packyard.services.container import Services
from packyard.startup import StartupError
from tests.support.serve_process import ServeProcess, free_port, run_cli

COMMAND_LINE_PACKAGES = ("typer", "rich", "click", "packyard.cli")


def _options(data_dir: Path, **changes: object) -> ServeOptions:
    fields: dict[str, object] = {
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": free_port(),
        "database_url": None,
        "tls_cert": None,
        "tls_key": None,
        "no_tls": True,
        "public_address": None,
        "log_level": "warning",
    }
    return ServeOptions(**(fields | changes))  # type: ignore[arg-type]


def _serving(
    handover: Handover,
    env: dict[str, str] | None = None,
    command: Callable[[int], list[str]] = serving_command,
) -> subprocess.CompletedProcess[str]:
    """The serving process run as ``hand_over`` runs it (or as ``command`` runs it), with
    ``handover`` in its pipe."""
    read_end, write_end = os.pipe()
    os.write(write_end, handover.to_json())
    os.close(write_end)
    try:
        return subprocess.run(
            command(read_end),
            pass_fds=(read_end,),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(read_end)


def test_the_serving_process_imports_nothing_of_the_command_line() -> None:
    loaded = (
        f"sorted(m for m in sys.modules for p in {COMMAND_LINE_PACKAGES} "
        "if m == p or m.startswith(p + '.'))"
    )
    probe = f"import json, sys, packyard.serving, packyard.api.app; print(json.dumps({loaded}))"
    result = subprocess.run(
        [sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


def _runtime_distributions() -> set[str]:
    """Packyard's runtime requirements and theirs, with the extras they ask for (normalised)."""
    seen: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [("packyard", frozenset())]
    while todo:
        name, extras = todo.pop()
        key = f"{canonicalize_name(name)}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requirements:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return {key.partition("[")[0] for key in seen}


def test_the_serving_process_imports_only_what_a_users_install_has() -> None:
    # The benchmark and the tests run the server from the development environment: a package
    # only the dev extra installs, imported by a library when present (granian imports
    # watchfiles and python-dotenv), would be measured as if it were Packyard's.
    probe = (
        "import json, sys; before = set(sys.modules); "
        "import packyard.serving, packyard.api.app; "
        "print(json.dumps(sorted({m.partition('.')[0] for m in set(sys.modules) - before})))"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True
    )
    owners = metadata.packages_distributions()
    runtime = _runtime_distributions()
    foreign = {
        module: owners[module]
        for module in json.loads(result.stdout)
        if module in owners and not {canonicalize_name(d) for d in owners[module]} & runtime
    }
    assert foreign == {}


# The serving module's main() in a probe that reports, once main() has given up on a
# database nothing listens on (after building the routes), what the process imported.
_MAIN_PROBE = (
    "import json, sys\n"
    "from packyard import serving\n"
    "try:\n"
    "    serving.main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(json.dumps({'routes': 'packyard.api.routes' in sys.modules,"
    " 'pydantic.v1': sys.modules.get('pydantic.v1') is not None}))\n"
)


def test_the_serving_process_builds_its_routes_without_pydantic_v1(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    url = f"postgresql://packyard@127.0.0.1:{free_port()}/packyard"
    result = _serving(
        Handover(_options(data_dir, database_url=url), None, None, False),
        command=lambda fd: [sys.executable, "-P", "-c", _MAIN_PROBE, str(fd)],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"routes": True, "pydantic.v1": False}


def test_fastapi_imports_pydantic_v1_unless_the_serving_process_leaves_it_out() -> None:
    # Should FastAPI stop importing it, this fails and leave_out_pydantic_v1 can go.
    probe = (
        "import json, sys, packyard.api.app; "
        "print(json.dumps(sys.modules.get('pydantic.v1') is not None))"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) is True


def test_serve_becomes_the_serving_process_with_nothing_on_its_command_line(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir, "--no-tls", "--log-level", "warning") as server:
        assert server.process is not None
        pid = server.process.pid
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        assert argv[1:7] == ["-P", "-X", "no_debug_ranges", "-OO", "-m", SERVING_MODULE]
        assert len(argv) == 8
        assert json.loads((data_dir / "server.json").read_text())["pid"] == pid
        assert httpx.get(server.base_url + "/openapi.json", timeout=10).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"])  # the document is the same on both
def test_the_served_api_document_is_the_one_built_with_docstrings(
    services: Services, tmp_path: Path
) -> None:
    # The serving process runs without docstrings (-OO): whatever the document says must
    # come from explicit descriptions, or it would lose it there.
    built = build_openapi(create_app(services, background_jobs=False))
    with ServeProcess(tmp_path / "data", "--no-tls", "--log-level", "warning") as server:
        served = httpx.get(server.base_url + "/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(built))


def test_a_handover_reads_back_as_it_was_written(tmp_path: Path) -> None:
    handover = Handover(
        _options(
            tmp_path / "data",
            tls_cert=tmp_path / "cert.pem",
            tls_key=tmp_path / "key.pem",
            no_tls=False,
            database_url_file=tmp_path / "url",
            workers=3,
            metrics_token="t",
        ),
        tmp_path / "cert.pem",
        tmp_path / "key.pem",
        self_signed=False,
    )
    assert Handover.from_json(handover.to_json()) == handover


def test_a_database_unusable_once_handed_over_is_one_line_and_status_2(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    closed = free_port()
    url = f"postgresql://packyard:hunter2@127.0.0.1:{closed}/packyard"
    result = _serving(Handover(_options(data_dir, database_url=url), None, None, False))
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and f"127.0.0.1:{closed}" in line
    assert "hunter2" not in line


def _colour_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TERM")}
    return env | settings


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"FORCE_COLOR": "1"},
        {"FORCE_COLOR": "1", "NO_COLOR": "1"},
        {"FORCE_COLOR": "1", "TERM": "dumb"},
    ],
    ids=["piped", "forced", "no-color", "dumb-terminal"],
)
def test_the_serving_process_prints_its_error_as_the_command_line_does(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    url = f"postgresql://packyard@127.0.0.1:{free_port()}/packyard"
    env = _colour_env(**settings)
    serving = _serving(Handover(_options(data_dir, database_url=url), None, None, False), env)
    [line] = serving.stderr.splitlines()
    message = line.split(" ", 1)[1]
    cli = subprocess.run(
        [sys.executable, "-c", _CLI_FAIL, message],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert serving.stderr == cli.stderr


# The command line's own error line (``fail``), printed without a Typer app around it.
_CLI_FAIL = """
import sys
from packyard.cli.common import fail
try:
    fail(sys.argv[1])
except BaseException:
    pass
"""


def test_settings_too_large_to_hand_over_are_refused_before_the_banner(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = run_cli(
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(free_port()),
        "--no-tls",
        PACKYARD_METRICS_TOKEN="t" * HANDOVER_MAX_BYTES,
    )
    assert result.returncode == 2
    [error] = result.stderr.splitlines()
    assert error.startswith("error: ") and f"{HANDOVER_MAX_BYTES // 1024} KiB" in error
    assert result.stdout == ""  # no banner, no first admin's credentials
    assert not (data_dir / "server.json").exists()


def test_an_interpreter_that_cannot_be_executed_is_a_startup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-python"
    monkeypatch.setattr(sys, "executable", str(missing))
    with pytest.raises(StartupError) as refused:
        hand_over(Handover(_options(tmp_path / "data"), None, None, False))
    assert str(missing) in refused.value.message
