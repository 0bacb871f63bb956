"""Requests to addresses that users choose (webhook URLs), guarded against SSRF.

A webhook URL is whatever a project's admin typed, so the server must not become a way into
the network it runs in. Before each request the host is resolved once; if any of its
addresses is loopback, private, link-local, carrier-grade NAT, multicast, unspecified,
reserved or a cloud metadata address, the request is refused. Otherwise the connection goes
to the checked address itself (the ``Host`` header and TLS SNI/certificate check keep the
name), so a DNS answer that changes between the check and the connection (rebinding) cannot
point it elsewhere. Redirects are never followed and proxy variables are ignored.

``PACKYARD_WEBHOOK_ALLOW_PRIVATE=1`` turns the address check off (receivers on the same
network); ``PACKYARD_WEBHOOK_ALLOWED_NETWORKS`` allows only the networks it lists
(comma-separated CIDRs).

The run-task worker does not use this module: it only calls the hosts an operator listed
(``PACKYARD_RUN_TASK_HOSTS``), an allow-list that is stricter than any address check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

_METADATA = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack…
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """The URL may not be called; the message says why (one clause, no secrets)."""


class Unresolved(Exception):
    """The host has no address now (a later attempt may find one)."""


def forbidden(address: IPAddress) -> str | None:
    """What kind of address that outbound requests must not reach ``address`` is, or ``None``."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            return forbidden(embedded)
    if address in _METADATA:
        return "a cloud metadata address"
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (
            isinstance(address, ipaddress.IPv4Address) and address in _CGNAT,
            "a shared (CGNAT) address",
        ),
        (address.is_private, "a private address"),
        (address.is_reserved or not address.is_global, "a reserved address"),
    )
    for hit, kind in checks:
        if hit:
            return kind
    return None


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 zone
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True, slots=True)
class Pinned:
    """A request pinned to a checked address: ``url`` names the address, ``host`` goes in
    the Host header and ``sni`` (https) in the TLS handshake and certificate check."""

    url: str
    host: str
    sni: str | None


@dataclass(frozen=True, slots=True)
class OutboundGuard:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolve: Resolver = field(default=system_resolver, compare=False)

    def check_address(self, address: IPAddress, host: str) -> None:
        if self.allow_private or any(address in n for n in self.allowed_networks):
            return
        kind = forbidden(address)
        if kind is not None:
            shown = str(address) if host == str(address) else f"{host} ({address})"
            raise Refused(
                f"{shown} is {kind}, which webhooks may not call "
                "(see PACKYARD_WEBHOOK_ALLOW_PRIVATE)"
            )

    def pin(self, url: str) -> Pinned:
        """Resolve ``url``'s host, check every address, and name the first one in the URL."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise Refused("it is not a valid URL") from None
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise Refused("it is not an http(s) URL")
        port = port or (443 if parts.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = self.resolve(host, port)
            except (OSError, UnicodeError):
                raise Unresolved(f"{host} could not be resolved (DNS lookup failed)") from None
            addresses = []
            for text in found:
                try:
                    addresses.append(ipaddress.ip_address(text))
                except ValueError:
                    continue
            if not addresses:
                raise Unresolved(f"{host} has no address")
        for address in addresses:
            self.check_address(address, host)
        chosen = addresses[0]
        shown = f"[{chosen}]" if chosen.version == 6 else str(chosen)
        netloc = shown if parts.port is None else f"{shown}:{parts.port}"
        userinfo, _, host_header = parts.netloc.rpartition("@")
        if userinfo:
            netloc = f"{userinfo}@{netloc}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        return Pinned(pinned, host_header, host if parts.scheme == "https" else None)


__all__ = ["OutboundGuard", "Pinned", "Refused", "Unresolved", "forbidden", "system_resolver"]
