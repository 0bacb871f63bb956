"""Where the server's time goes: a py-spy sample of the running process, summarised."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

# First match wins: file path fragments → the layer they belong to.
LAYERS = [
    ("packyard/api/render", "packyard: rendering (api/render.py)"),
    ("packyard/api", "packyard: routes, deps, middleware"),
    ("packyard/services/auth", "packyard: auth (token check, caller role)"),
    ("packyard/services", "packyard: services"),
    ("packyard/store", "packyard: store (repositories, row mapping)"),
    ("packyard/domain", "packyard: domain"),
    ("sqlalchemy", "SQLAlchemy"),
    ("psycopg", "psycopg driver"),
    ("sqlite3", "sqlite3 driver"),
    ("jwt", "PyJWT"),
    ("fastapi", "FastAPI"),
    ("starlette", "Starlette"),
    ("pydantic", "pydantic"),
    ("anyio", "anyio (threadpool hand-off)"),
    ("granian", "granian (HTTP server, Python side)"),
    ("uvicorn", "uvicorn (HTTP)"),
    ("asyncio", "asyncio"),
    ("threading", "threading"),
    ("concurrent", "threading"),
    ("orjson", "orjson"),
]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def profile_during(
    pid: int,
    seconds: float,
    load: Callable[[], object],
    workdir: Path,
    *,
    gil: bool,
) -> dict[str, Any] | None:
    """Sample ``pid`` with py-spy while ``load()`` runs and summarise the samples.

    ``gil``: only the thread holding the GIL (Python CPU time, the bottleneck of
    a one-process server); otherwise every busy thread, waits on the database
    included (wall time).
    """
    tool = py_spy()
    if tool is None:
        return None
    raw = workdir / f"py-spy-{pid}-{'gil' if gil else 'all'}.raw"
    cmd = [
        tool,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",  # with --workers N, the supervisor's worker processes serve
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "200",
        "--nolineno",
        "--format",
        "raw",
        "--output",
        str(raw),
        *(["--gil"] if gil else []),
    ]
    result: dict[str, Any] = {}

    def sample() -> None:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        result["rc"] = proc.returncode
        result["stderr"] = proc.stderr[-500:]

    sampler = threading.Thread(target=sample)
    sampler.start()
    load()
    sampler.join()
    if result.get("rc") != 0 or not raw.exists():
        return {"error": f"py-spy failed: {result.get('stderr', '')}"}
    summary = summarise(raw.read_text())
    raw.unlink()
    return summary


def _parse(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m.group("func"), m.group("file")


# Leaves that mean "waiting", should py-spy's idle detection let one through.
IDLE = {
    "wait",
    "Condition.wait",
    "Event.wait",
    "_wait_for_tstate_lock",
    "select",
    "poll",
    "Popen.poll",  # granian's supervisor watching its workers
}
EVENT_LOOP = "event loop: uvloop and granian (native code driving the loop)"
# Frames under which only the event loop's native code runs.
_LOOP_FRAMES = {"Runner.run", "MPServer._spawn_asgi_lifespan_worker"}


def _layer(file: str, func: str = "") -> str:
    if func in _LOOP_FRAMES:
        return EVENT_LOOP
    for fragment, name in LAYERS:
        if fragment in file:
            return name
    return "other"


def summarise(raw: str, top: int = 25) -> dict[str, Any]:
    """Self time per layer and per function, inclusive time per packyard function."""
    total = 0
    self_layer: Counter[str] = Counter()
    self_func: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    inclusive_layer: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse(f) for f in stack.split(";") if f]
        if not frames:
            continue
        func, file = frames[-1]
        if func in IDLE:
            continue
        total += count
        self_layer[_layer(file, func)] += count
        self_func[f"{func} ({_short(file)})"] += count
        seen: set[str] = set()
        layers: set[str] = set()
        for f, fl in frames:
            layers.add(_layer(fl))
            if "packyard" in fl:
                key = f"{f} ({_short(fl)})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
        for name in layers:
            inclusive_layer[name] += count

    def pct(c: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(n)] if total else []

    return {
        "samples": total,
        "self_by_layer": pct(self_layer, 30),
        "inclusive_by_layer": pct(inclusive_layer, 30),
        "self_by_function": pct(self_func, top),
        "inclusive_packyard_functions": pct(inclusive, top),
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def render(summary: dict[str, Any], title: str) -> str:
    if "samples" not in summary:
        return f"{title}: {summary.get('error', 'no samples')}\n"
    lines = [title, "=" * len(title), f"samples: {summary['samples']}", ""]
    sections = [
        ("Self time by layer (% of samples)", "self_by_layer"),
        (
            "Inclusive time by layer (% of samples with the layer on the stack)",
            "inclusive_by_layer",
        ),
        ("Self time by function", "self_by_function"),
        ("Inclusive time of packyard functions", "inclusive_packyard_functions"),
    ]
    for heading, key in sections:
        lines.append(heading)
        lines.extend(f"  {p:5.1f}%  {name}" for name, p in summary[key])
        lines.append("")
    return "\n".join(lines)
