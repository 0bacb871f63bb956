"""Container health check: exit 0 when the local Packyard answers ``GET /healthz`` with 200.

Tries https first (the server's default, a self-signed certificate on the loopback
address, so the certificate is not verified) and plain http second (``--no-tls``).
``PACKYARD_HEALTHCHECK_URL`` names another URL; ``PACKYARD_HEALTHCHECK_PORT`` another
port (default 8443). Standard library only.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def _loopback_context() -> ssl.SSLContext:
    """TLS without verification: the check talks to its own server over loopback, whose
    certificate is self-signed unless the operator gave one."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def ok(url: str) -> bool:
    context = _loopback_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S, context=context) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main() -> int:
    explicit = os.environ.get("PACKYARD_HEALTHCHECK_URL")
    port = os.environ.get("PACKYARD_HEALTHCHECK_PORT", "8443")
    urls = (
        [explicit]
        if explicit
        else [f"https://127.0.0.1:{port}/healthz", f"http://127.0.0.1:{port}/healthz"]
    )
    if any(ok(url) for url in urls):
        return 0
    print(f"unhealthy: no 200 from {' or '.join(urls)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
