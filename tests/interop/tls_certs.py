"""A throwaway test CA and a server certificate it signed, made with the openssl CLI.

The clients of the wss:// column trust the CA (their --ca FILE) and check the server's
certificate the way they would check any other: chain to a trusted CA, host name (the
certificate names 127.0.0.1 and localhost), validity dates. Nothing turns verification off."""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import subprocess

EC_P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


@dataclasses.dataclass(frozen=True)
class CertFiles:
    ca: pathlib.Path    # the CA certificate, what clients trust
    cert: pathlib.Path  # the server's certificate (--tls-cert)
    key: pathlib.Path   # its key (--tls-key)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_test_ca(directory: pathlib.Path) -> CertFiles:
    if not shutil.which("openssl"):
        raise RuntimeError("the openssl command is needed to make the test certificates")
    d = directory
    _openssl("req", "-x509", *EC_P256, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
             "-days", "2", "-subj", "/CN=websock interop test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-new", *EC_P256, "-keyout", str(d / "server.key"),
             "-out", str(d / "server.csr"), "-subj", "/CN=127.0.0.1")
    (d / "server.ext").write_text("basicConstraints=critical,CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\n"
                                  "extendedKeyUsage=serverAuth\n"
                                  "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"),
             "-CAkey", str(d / "ca.key"), "-set_serial", "0x1919", "-days", "2",
             "-extfile", str(d / "server.ext"), "-out", str(d / "server.crt"))
    return CertFiles(ca=d / "ca.crt", cert=d / "server.crt", key=d / "server.key")
