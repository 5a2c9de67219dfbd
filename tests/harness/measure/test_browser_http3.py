"""Chromium over HTTP/3: QUIC forced to the server's origin, its throwaway certificate
trusted by its key's hash (harness.measure.browser.quic). Every HTTP transport a page runs
arrives whole over HTTP/3, and seven EventSources in one page share one QUIC connection, so
the seventh does not wait as it does over HTTP/1.1's six connections per host."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import orjson
import pytest
from support import bench

from errors import UsageError
from harness.measure.browser.quic import page_base, quic_args, quic_origin, spki_hash
from harness.measure.paths.certificate import clients_certificate
from stacks import STACKS

HTTP3 = next(s.name for s in STACKS if "3" in s.http_versions)


def test_the_flags_force_quic_to_the_origin_and_trust_the_key_by_its_hash(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert, _ = clients_certificate(tmp_path)
    public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert spki_hash(cert) == digest
    args = quic_args(("--headless", "--disable-quic"), "http://10.214.0.2:8000", str(cert))
    assert "--disable-quic" not in args and "--headless" in args
    assert "--origin-to-force-quic-on=10.214.0.2:8000" in args
    assert f"--ignore-certificate-errors-spki-list={digest}" in args
    assert quic_origin("http://[::1]:9000/") == "[::1]:9000"
    assert page_base("http://127.0.0.1:8000/", True) == "https://127.0.0.1:8000"
    assert page_base("http://127.0.0.1:8000/", False) == "http://127.0.0.1:8000"
    with pytest.raises(UsageError, match="needs the server's certificate"):
        quic_args((), "http://127.0.0.1:8000", None)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_chromium_streams_every_http_transport_over_http3(tmp_path: Path) -> None:
    out = tmp_path / "run"
    flags = f"--client browser --stack {HTTP3} --http 3 --requests 4 --concurrency 2 --warmup 0"
    transports = ("--transports", "sse,chunked,long_poll,short_poll")
    done = bench("run", *flags.split(), *transports, "--out", str(out), "--quiet", timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    results = orjson.loads((out / "results.json").read_bytes())
    for transport, entry in results["transports"].items():
        records = entry["phase"]["requests"]
        assert [r["error_kind"] for r in records] == [None] * 4, transport
        assert {r["http_version"] for r in records} == {"HTTP/3"}, transport
        assert all(len(r["token_index"]) == r["source_tokens"] > 0 for r in records)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_seven_eventsources_share_one_quic_connection(tmp_path: Path) -> None:
    scenario = tmp_path / "seventh.toml"
    scenario.write_text(
        f'transports = ["sse"]\nclient = "browser"\nstreams_per_page = 7\nrequests = 7\n'
        f'concurrency = 7\nwarmup = 0\nstack = "{HTTP3}"\nhttp = "3"\n'
        '[source]\npreset = "steady"\nttft_ms = 100\ntokens_per_response = 60\n'
    )
    out = tmp_path / "run"
    done = bench("run", "--scenario", str(scenario), "--out", str(out), "--quiet", timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    records = orjson.loads((out / "results.json").read_bytes())["transports"]["sse"]["phase"][
        "requests"
    ]
    assert [r["error_kind"] for r in records] == [None] * 7
    assert {r["http_version"] for r in records} == {"HTTP/3"}
    last_first_token = max(r["recv_ns"][0] - r["started_ns"] for r in records)
    first_end = min(r["end_ns"] - r["started_ns"] for r in records)
    assert last_first_token < first_end  # the seventh did not wait for a stream to end
