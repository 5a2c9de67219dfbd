"""Chromium over QUIC. HTTP/3: the flags that force QUIC to the server's origin and trust
its throwaway certificate by the hash of its public key (Chromium takes no QUIC to a
certificate that does not chain to a known root otherwise), and the page's https origin.
WebTransport: QUIC allowed, and the certificate trusted as a web app trusts one, by its
hash in `serverCertificateHashes` (no flag)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from errors import UsageError


def spki_hash(cert_file: str | Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's
    `--ignore-certificate-errors-spki-list` takes it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def quic_origin(base_url: str) -> str:
    """`host:port` of the server's HTTP/3 listener (the UDP port of its TCP port's number)."""
    parts = urlsplit(base_url)
    if parts.hostname is None or parts.port is None:
        raise UsageError(f"HTTP/3 needs a host and port in the server's URL, got {base_url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}"


def quic_args(args: tuple[str, ...], base_url: str, cert_file: str | None) -> list[str]:
    """`args` with QUIC allowed, forced to the server's origin, its certificate trusted."""
    if cert_file is None:
        raise UsageError("HTTP/3 in the browser needs the server's certificate to trust")
    return [
        *(a for a in args if a != "--disable-quic"),
        f"--origin-to-force-quic-on={quic_origin(base_url)}",
        f"--ignore-certificate-errors-spki-list={spki_hash(cert_file)}",
    ]


def certificate_hash(cert_file: str | Path) -> str:
    """SHA-256 of a PEM certificate's DER bytes, hex: what a page's `WebTransport` takes in
    `serverCertificateHashes` (the certificate must be ECDSA and valid at most 14 days)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def webtransport_args(args: tuple[str, ...], base_url: str) -> list[str]:
    """`args` with QUIC allowed (WebTransport runs over it); a page whose origin is not
    loopback (through net:) treated as a secure context, which `WebTransport` needs."""
    kept = [a for a in args if a != "--disable-quic"]
    if not is_loopback(urlsplit(base_url).hostname or ""):
        kept.append(f"--unsafely-treat-insecure-origin-as-secure={base_url.rstrip('/')}")
    return kept


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webtransport_url(base_url: str, path: str) -> str:
    """The WebTransport session's URL: the server's host, the UDP port of its number."""
    return f"https://{quic_origin(base_url)}{path}"


def page_base(base_url: str, http3: bool) -> str:
    """Where pages load and streams go: the server's https origin over HTTP/3, else as is."""
    if not http3:
        return base_url.rstrip("/")
    return f"https://{quic_origin(base_url)}"
