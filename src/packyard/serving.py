"""The serving process: what ``packyard serve`` becomes once it has checked its options and
prepared the database (:func:`packyard.server.hand_over`).

Run as ``python -P -X no_debug_ranges -m packyard.serving FD``, where FD is the read end of
a pipe holding the :class:`~packyard.server.Handover`. It imports the server and nothing of
the command line, and reports a failure as ``serve`` does: one line on standard error, exit
status 2.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from packyard.server import Handover, serve
from packyard.startup import StartupError, one_line

EXIT_CANNOT_START = 2
RED, RESET = "\x1b[31m", "\x1b[0m"


def main(argv: list[str]) -> None:
    leave_out_pydantic_v1()
    with os.fdopen(int(argv[0]), "rb") as pipe:
        handover = Handover.from_json(pipe.read())
    try:
        serve(handover)
    except StartupError as exc:
        print(_error_line(exc.message, colour=_colour(sys.stderr)), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CANNOT_START) from None


def leave_out_pydantic_v1() -> None:
    """Keep pydantic's v1 compatibility package out of this process (1.5 MB of a server's
    resident memory), which FastAPI imports only to ask whether a route's parameter (or an
    object it cannot encode) is a pydantic v1 model. FastAPI reads a failed import as "no",
    the right answer for Packyard, which has none; ``None`` in ``sys.modules`` is how the
    import system is told that a module must fail to import."""
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]


def _error_line(message: str, *, colour: bool) -> str:
    """The command line's error line (``packyard.cli.common.fail``), without importing rich
    for it: one line, ``error:`` in red on a terminal."""
    label = f"{RED}error:{RESET}" if colour else "error:"
    return f"{label} {one_line(message)}"


def _colour(stream: TextIO) -> bool:
    """Colour as rich decides it for the command line: off with ``NO_COLOR`` or a dumb
    terminal, forced by ``FORCE_COLOR``, otherwise on a terminal only."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or stream.isatty()


if __name__ == "__main__":
    main(sys.argv[1:])
