"""What a server process loads: not httpx's command-line client, nor the HCL parser that
checks enforced blocks until one is checked (memory per server)."""

from __future__ import annotations

import json
import subprocess
import sys

_LOADED = """
import json, sys
import packyard.cli.main, packyard.server, packyard.api.app
import httpx
with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(204))) as client:
    status = client.get("http://packyard.invalid/").status_code
print(json.dumps({
    "status": status,
    "loaded": sorted({m.split(".")[0] for m in sys.modules} & {"pygments", "lark", "hcl2"}),
    "httpx_cli": sys.modules.get("httpx._main") is not None,
}))
"""


def test_a_server_loads_neither_the_httpx_cli_nor_the_hcl_parser() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == {"status": 204, "loaded": [], "httpx_cli": False}
