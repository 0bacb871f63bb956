"""What a server process loads: not httpx's command-line client (memory per server)."""

from __future__ import annotations

import json
import subprocess
import sys

_LOADED = """
import json, sys
import packyard.server
import httpx
with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(204))) as client:
    status = client.get("http://packyard.invalid/").status_code
print(json.dumps({
    "status": status,
    "loaded": sorted({m.split(".")[0] for m in sys.modules} & {"pygments"}),
    "httpx_cli": sys.modules.get("httpx._main") is not None,
}))
"""


def test_httpx_works_without_its_command_line_client() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == {"status": 204, "loaded": [], "httpx_cli": False}
