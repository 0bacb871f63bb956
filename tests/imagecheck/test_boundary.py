"""``packyard.imagecheck`` is shared by the CLI and the server, so it loads neither."""

from __future__ import annotations

import json
import subprocess
import sys


def test_imagecheck_imports_only_the_standard_library() -> None:
    code = (
        "import json, sys; import packyard.imagecheck; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('packyard', 'sqlalchemy', 'httpx', 'pydantic', 'fastapi', 'typer', 'rich'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(out.stdout)
    assert {m.split(".")[1] for m in loaded if m.count(".")} <= {"imagecheck"}, loaded
    assert all(m.startswith("packyard") for m in loaded), loaded
