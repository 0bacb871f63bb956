"""One plain sentence for a request that got no HTTP answer (refused, TLS, timeout, DNS)."""

from __future__ import annotations

import re
import ssl

import httpx

from packyard.errors import ApiError, Code


def unreachable(url: str, exc: httpx.HTTPError, *, variable: str) -> ApiError:
    """``url`` could not be reached; ``variable`` is the ``HCP_*`` setting that names it.

    >>> refused = httpx.ConnectError("[Errno 111] Connection refused")
    >>> print(unreachable("https://h:1", refused, variable="HCP_API_ADDRESS").message[:40])
    cannot reach https://h:1: connection ref
    """
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", str(exc)) or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, httpx.TimeoutException):
        why = f"no answer in time; check {variable} and the network"
    elif _tls_verify_failed(exc) or "certificate verify failed" in lowered:
        detail = text.rsplit("certificate verify failed:", 1)[-1].strip(" ()_") or "untrusted"
        tls = "HCP_AUTH_TLS" if variable == "HCP_AUTH_URL" else "HCP_API_TLS"
        why = (
            f"its TLS certificate is not trusted ({detail}); install its CA, or set "
            f"{tls}=insecure for a self-signed certificate"
        )
    elif "wrong version number" in lowered or "record layer failure" in lowered:
        tls = "HCP_AUTH_URL" if variable == "HCP_AUTH_URL" else "HCP_API_TLS"
        why = f"it does not speak TLS; check {tls} (disabled for plain HTTP)"
    elif isinstance(exc, httpx.RemoteProtocolError):
        tls = "HCP_AUTH_URL" if variable == "HCP_AUTH_URL" else "HCP_API_TLS"
        why = f"it does not answer plain HTTP; check {tls} (unset or insecure for TLS)"
    elif "refused" in lowered:
        why = f"connection refused; check {variable} and that the server is running"
    elif "name or service not known" in lowered or "nodename nor servname" in lowered:
        why = f"unknown host; check {variable}"
    else:
        why = f"{' '.join(text.split())}; check {variable}"
    return ApiError(Code.UNAVAILABLE, f"cannot reach {url}: {why}", http_status=0)


def _tls_verify_failed(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
