"""What the operator sees when a server or an administration command starts: notices and
start-up failures, one plain line each, never a traceback and never a password."""

from __future__ import annotations

import sys


class StartupError(SystemExit):
    """A condition the operator must fix before Packyard can start (unusable data
    directory, unreachable database, unreadable file).

    A ``SystemExit``: a command that does not catch it still ends with the one-line
    message on standard error and exit status 1, as Python prints a ``SystemExit``'s
    message. ``packyard serve`` catches it and prints it as its other errors.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")
        self.message = message

    def __str__(self) -> str:
        return self.message


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def notice(message: str) -> None:
    """One line on standard error, before logging is set up."""
    print(f"packyard: {message}", file=sys.stderr, flush=True)
