"""Self-signed TLS certificate for the first start (the HCP SDK insists on https auth).

The certificate is a leaf, not a CA: ``CA:FALSE`` (critical), key usage
``digitalSignature`` (an EC key), extended key usage ``serverAuth``, the names
clients use (``localhost``, the machine's name, the listen and public addresses,
``127.0.0.1``, ``::1``) and a validity of at most 397 days, the limit browsers and
TLS libraries hold public certificates to. Trusting it (``HCP_*_TLS`` unset with the
certificate in the trust store) therefore cannot let it vouch for any other
certificate. It is regenerated at start when it expires within
:data:`RENEW_BEFORE` or no longer names every address; clients that skip
verification (``HCP_*_TLS=insecure``) do not notice.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from packyard.files import (
    create_private_file,
    ensure_private_dir,
    tighten_with_notice,
    write_private,
)

VALIDITY = timedelta(days=397)
RENEW_BEFORE = timedelta(days=30)
_UNSPECIFIED = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 - wildcard listen addresses


@dataclass(frozen=True, slots=True)
class SelfSigned:
    cert: Path
    key: Path
    # None: the existing certificate was kept; otherwise why it was (re)generated.
    generated: str | None


def ensure_self_signed(directory: Path, extra_hosts: list[str] | None = None) -> tuple[Path, Path]:
    """Return (cert, key) paths, generating them on first use or when due for renewal."""
    found = ensure_certificate(directory, extra_hosts or [])
    return found.cert, found.key


def ensure_certificate(
    directory: Path, hosts: Iterable[str], *, now: datetime | None = None
) -> SelfSigned:
    """The certificate and key in ``directory``, (re)generated if missing, not a leaf
    certificate, expiring within :data:`RENEW_BEFORE`, or missing one of ``hosts``."""
    now = now or datetime.now(UTC)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    names = _names(hosts)
    ensure_private_dir(directory)
    with _locked(directory):
        reason = _renewal_reason(cert_path, key_path, names, now)
        if reason is None:
            tighten_with_notice(cert_path, key_path)
            return SelfSigned(cert_path, key_path, None)
        key = ec.generate_private_key(ec.SECP256R1())
        write_private(key_path.with_name("key.pem.new"), _key_pem(key))
        write_private(
            cert_path, _certificate(key, names, now).public_bytes(serialization.Encoding.PEM)
        )
        os.replace(key_path.with_name("key.pem.new"), key_path)
        return SelfSigned(cert_path, key_path, reason)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Servers starting together on one data directory generate one certificate."""
    create_private_file(directory / ".lock")
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    dns = {"localhost", socket.gethostname()}
    ips = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    for given in hosts:
        host = given.strip().strip("[]")
        if host in _UNSPECIFIED:
            continue
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if host.isascii():  # a certificate names hosts in their A-label (ASCII) form
                dns.add(host.lower())
            continue
        if not ip.is_unspecified:
            ips.add(ip)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(dns) if d]
    names += [x509.IPAddress(ip) for ip in sorted(ips, key=lambda a: (a.version, int(a)))]
    return names


def _renewal_reason(
    cert_path: Path, key_path: Path, names: list[x509.GeneralName], now: datetime
) -> str | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        return "created" if not cert_path.exists() else "the key was missing"
    except ValueError:
        return "the certificate or key could not be read"
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return "the key did not match the certificate"
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        present = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return "it lacked the extensions of a server certificate"
    if constraints.ca:
        return "it was a CA certificate"
    if cert.not_valid_after_utc - cert.not_valid_before_utc > VALIDITY + timedelta(days=1):
        return "its validity exceeded 397 days"
    if cert.not_valid_after_utc <= now:
        return "it had expired"
    if cert.not_valid_after_utc - now <= RENEW_BEFORE:
        return f"it expired on {cert.not_valid_after_utc:%Y-%m-%d}"
    missing = [n for n in names if n not in present]
    if missing:
        return "it did not name " + ", ".join(str(n.value) for n in missing)
    return None


def _certificate(
    key: ec.EllipticCurvePrivateKey, names: list[x509.GeneralName], now: datetime
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Packyard self-signed")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now - timedelta(minutes=5) + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,  # an EC key: no RSA key transport
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
