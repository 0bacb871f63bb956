"""Entry point: ``python -m bench run --size S`` (see bench/README.md)."""

from __future__ import annotations

import sys

from bench.cli import main

sys.exit(main())
