"""A throwaway self-signed certificate, made at the start of a run, for what speaks TLS to
the benchmark's clients: nginx-h2's front, and a stack's HTTP/3 (QUIC) listener. It names
loopback and the packet emulator's far-end addresses, so it verifies through `net:` too."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


def make_certificate(
    work_dir: Path, host: str = HOST, also: Sequence[str] = ()
) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for `host` and the addresses `also`
    (subjectAltName IPs), valid two days: (certificate, key) in `work_dir`; the key readable
    by its owner only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tokenwire throwaway {host}")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(a)) for a in (host, *also)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = work_dir / CERT_FILE, work_dir / KEY_FILE
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_bytes)
    return cert_path, key_path


def clients_certificate(work_dir: Path) -> tuple[Path, Path]:
    """The certificate clients verify on any path: loopback and the emulator's far ends
    (made in `work_dir` once; a later call finds it there)."""
    from harness.measure.paths.net.namespace import emulator_addresses

    cert, key = work_dir / CERT_FILE, work_dir / KEY_FILE
    if cert.exists() and key.exists():
        return cert, key
    work_dir.mkdir(parents=True, exist_ok=True)
    return make_certificate(work_dir, also=emulator_addresses())
