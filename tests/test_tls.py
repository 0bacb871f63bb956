"""The generated certificate is a short-lived leaf, renewed at start when due."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from packyard.tls import RENEW_BEFORE, VALIDITY, ensure_certificate


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def san(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(names.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in names.get_values_for_type(x509.IPAddress)},
    )


def test_a_new_certificate_is_a_leaf(tmp_path: Path) -> None:
    hosts = ["0.0.0.0", "10.1.2.3", "Registry.Example.Test"]  # noqa: S104
    found = ensure_certificate(tmp_path / "tls", hosts)
    assert found.generated == "created"
    cert = load(found.cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and not usage.value.key_cert_sign
    assert not usage.value.crl_sign and not usage.value.key_encipherment  # an EC key
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    dns, ips = san(cert)
    assert {"localhost", "registry.example.test"} <= dns
    assert ips == {"127.0.0.1", "::1", "10.1.2.3"}  # never the wildcard 0.0.0.0
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(days=397)
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    for path in (found.cert, found.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_valid_certificate_is_kept(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path, ["127.0.0.1"])
    again = ensure_certificate(tmp_path, ["127.0.0.1", "localhost"])
    assert again.generated is None
    assert load(again.cert).serial_number == load(first.cert).serial_number


@pytest.mark.parametrize(
    "age",
    [
        VALIDITY - RENEW_BEFORE + timedelta(days=1),  # 29 days left
        VALIDITY + timedelta(days=2),  # expired
    ],
)
def test_a_certificate_due_for_renewal_is_replaced(tmp_path: Path, age: timedelta) -> None:
    old = ensure_certificate(tmp_path, [], now=datetime.now(UTC) - age)
    old_serial = load(old.cert).serial_number
    renewed = ensure_certificate(tmp_path, [])
    assert renewed.generated not in (None, "created")
    cert = load(renewed.cert)
    assert cert.serial_number != old_serial
    assert cert.not_valid_after_utc - datetime.now(UTC) > VALIDITY - timedelta(days=1)


def test_a_certificate_missing_a_name_is_replaced(tmp_path: Path) -> None:
    ensure_certificate(tmp_path, ["127.0.0.1"])
    renewed = ensure_certificate(tmp_path, ["registry.example.test"])
    assert renewed.generated is not None
    assert "registry.example.test" in san(load(renewed.cert))[0]


def test_the_ca_certificate_of_older_versions_is_replaced(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Packyard self-signed")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    renewed = ensure_certificate(tmp_path, [])
    assert renewed.generated is not None
    cert = load(renewed.cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
