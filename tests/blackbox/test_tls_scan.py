"""The TLS policy as a scanner sees it (issue 19): sslyze, from PyPI, scans the --tls-port
listener. Its nassl ships its own OpenSSL builds (a legacy one that still speaks SSL 2.0/3.0
and a modern one), so it offers what the system's OpenSSL no longer would and reports what
the server accepted. Asserted: only TLS 1.2 and 1.3 are accepted; every accepted suite is an
AEAD one with forward secrecy (an ephemeral key exchange); no client-initiated renegotiation
and no insecure (pre-RFC 5746) renegotiation; no TLS compression. What it found is printed."""

import subprocess

import pytest

from test_tls import certs, loop_thread, tls_factory  # noqa: F401 (pytest fixtures)

sslyze = pytest.importorskip("sslyze", reason="sslyze comes with tests/requirements.txt")

PROTOCOLS = {  # scan command name -> (label, whether the policy accepts it)
    "ssl_2_0_cipher_suites": ("SSL 2.0", False),
    "ssl_3_0_cipher_suites": ("SSL 3.0", False),
    "tls_1_0_cipher_suites": ("TLS 1.0", False),
    "tls_1_1_cipher_suites": ("TLS 1.1", False),
    "tls_1_2_cipher_suites": ("TLS 1.2", True),
    "tls_1_3_cipher_suites": ("TLS 1.3", True),
}
AEAD = ("_GCM_", "_CHACHA20_POLY1305_", "_CCM")  # IANA names: AES-GCM, ChaCha20-Poly1305, CCM
FORWARD_SECRET_TLS12 = ("TLS_ECDHE_", "TLS_DHE_")  # TLS 1.3's key exchange is always ephemeral


def scan(port: int):
    """Every protocol's cipher suites, renegotiation and compression, in one sslyze scan."""
    from sslyze import (ScanCommand, Scanner, ServerNetworkLocation, ServerScanRequest,
                        ServerScanStatusEnum)
    commands = {getattr(ScanCommand, name.upper()) for name in PROTOCOLS}
    commands |= {ScanCommand.SESSION_RENEGOTIATION, ScanCommand.TLS_COMPRESSION}
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(
        server_location=ServerNetworkLocation(hostname="localhost", port=port,
                                              ip_address="127.0.0.1"),
        scan_commands=commands)])
    [result] = list(scanner.get_results())
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    return result.scan_result


def completed(attempt):
    from sslyze import ScanCommandAttemptStatusEnum
    assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, attempt.error_trace
    return attempt.result


def rsa_cert(directory):
    """A self-signed RSA 2048 certificate: static RSA key exchange (no forward secrecy) and
    the ECDHE-RSA suites can only be offered with one."""
    cert, key = directory / "rsa.crt", directory / "rsa.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_sslyze_only_tls12_tls13_aead_forward_secrecy_no_reneg_no_compression(
        tls_factory, tmp_path, key_type):
    cert, key = rsa_cert(tmp_path) if key_type == "rsa" else (None, None)
    t = tls_factory(cert=cert, key=key)
    found = scan(t.tls_port)
    accepted = {}
    for name, (label, _) in PROTOCOLS.items():
        suites = completed(getattr(found, name)).accepted_cipher_suites
        accepted[label] = [(s.cipher_suite.name, s.ephemeral_key) for s in suites]
        print(f"[{key_type}] {label}: {len(suites)} accepted"
              + "".join(f"\n    {s.cipher_suite.name} ({s.ephemeral_key.type_name} "
                        f"{s.ephemeral_key.size} bits)" if s.ephemeral_key
                        else f"\n    {s.cipher_suite.name} (no ephemeral key)" for s in suites))
    reneg = completed(found.session_renegotiation)
    compression = completed(found.tls_compression)
    print(f"[{key_type}] renegotiation: client-initiated accepted "
          f"{reneg.client_renegotiations_success_count} times, "
          f"vulnerable to the client renegotiation DoS: "
          f"{reneg.is_vulnerable_to_client_renegotiation_dos}, "
          f"secure renegotiation (RFC 5746): {reneg.supports_secure_renegotiation}")
    print(f"[{key_type}] TLS compression: {compression.supports_compression}")

    for label, ok in PROTOCOLS.values():
        if ok:
            assert accepted[label], f"{label} refused"
        else:
            assert not accepted[label], f"{label} accepted: {[n for n, _ in accepted[label]]}"
    for label, suites in accepted.items():
        for name, key in suites:
            assert any(a in name for a in AEAD), f"{label}: {name} is not AEAD"
            assert key is not None, f"{label}: {name} without an ephemeral key"
            if label != "TLS 1.3":
                assert name.startswith(FORWARD_SECRET_TLS12), f"{label}: {name} is not (EC)DHE"
    assert reneg.client_renegotiations_success_count == 0
    assert not reneg.is_vulnerable_to_client_renegotiation_dos
    assert reneg.supports_secure_renegotiation  # the renegotiation_info extension: never legacy
    assert not compression.supports_compression
    assert t.srv.proc.poll() is None  # the scan's odd handshakes did not hurt the server
