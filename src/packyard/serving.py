"""The serving process: what ``packyard serve`` becomes once it has checked its options and
prepared the database (:func:`packyard.server.hand_over`).

Run as ``python -P -m packyard.serving FD``, where FD is the read end of a pipe holding the
:class:`~packyard.server.Handover`. It imports the server and nothing of the command line,
and reports a failure as ``serve`` does: one line on standard error, exit status 2.
"""

from __future__ import annotations

import os
import sys

from packyard.server import Handover, serve
from packyard.startup import StartupError

EXIT_CANNOT_START = 2


def main(argv: list[str]) -> None:
    with os.fdopen(int(argv[0]), "rb") as pipe:
        handover = Handover.from_json(pipe.read())
    try:
        serve(handover)
    except StartupError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_CANNOT_START) from None


if __name__ == "__main__":
    main(sys.argv[1:])
