"""TLS and mutual TLS: the files of --tls-cert, --tls-key and --tls-client-ca.

They are checked at start-up (readable, PEM, the key belongs to the certificate, the CA file holds
certificates), so that a mistake is one line naming the flag rather than handshakes that fail
later. ``reload()`` (SIGHUP) reads them again: new connections get the new certificate, open
connections carry on with the one they were set up with. A reload that fails the same checks is
logged and ignored; the server keeps the certificate it has.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import ssl
import threading
from pathlib import Path

import grpc

from embedrank.model.errors import ConfigError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None  # set: mutual TLS, clients must present a certificate signed by it

    @classmethod
    def from_flags(cls, cert: str, key: str, client_ca: str) -> TlsFiles | None:
        """From --tls-cert, --tls-key and --tls-client-ca; None (plaintext) without a certificate."""
        if not cert:
            return None
        return cls(Path(cert), Path(key), Path(client_ca) if client_ca else None)


@dataclasses.dataclass(frozen=True)
class _Pem:
    cert: bytes
    key: bytes
    client_ca: bytes | None


def _read(path: Path, flag: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{flag} {path}: not a PEM file (no -----BEGIN line); give the PEM form")
    return data


def read(files: TlsFiles) -> _Pem:
    """The three files, checked as a TLS library would use them. Raises ConfigError naming the flag."""
    cert = _read(files.cert, "--tls-cert")
    key = _read(files.key, "--tls-key")
    if b"CERTIFICATE-----" not in cert:
        raise ConfigError(f"--tls-cert {files.cert}: holds no certificate (-----BEGIN CERTIFICATE-----)")
    if b"PRIVATE KEY-----" not in key:
        raise ConfigError(f"--tls-key {files.key}: holds no private key (-----BEGIN ... PRIVATE KEY-----)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(files.cert, files.key)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ConfigError(
                f"--tls-key {files.key} does not belong to --tls-cert {files.cert}; give the key the certificate was issued for"
            ) from None
        raise ConfigError(f"--tls-cert {files.cert} / --tls-key {files.key}: unusable ({exc.reason or exc})") from None
    client_ca = None
    if files.client_ca is not None:
        client_ca = _read(files.client_ca, "--tls-client-ca")
        try:
            context.load_verify_locations(cafile=files.client_ca)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"--tls-client-ca {files.client_ca}: not a usable CA certificate ({exc.reason or exc})"
            ) from None
    return _Pem(cert, key, client_ca)


def _configuration(pem: _Pem) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration([(pem.key, pem.cert)], root_certificates=pem.client_ca)


class ServerCertificates:
    """The server's TLS credentials, whose certificate ``reload()`` replaces for new connections."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._initial = _configuration(read(files))
        self._pending: grpc.ServerCertificateConfiguration | None = None
        self._lock = threading.Lock()
        self._stamp = self._files_stamp()
        self.reloads = 0

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._initial, self._fetch, require_client_authentication=self.files.client_ca is not None
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # grpc asks before each handshake (on its own thread); None keeps the current configuration.
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def _files_stamp(self) -> tuple[tuple[int, int], ...]:
        paths = (self.files.cert, self.files.key, *((self.files.client_ca,) if self.files.client_ca else ()))
        stamp: list[tuple[int, int]] = []
        for path in paths:
            try:
                st = os.stat(path)  # follows symlinks: a Kubernetes Secret volume swaps a ..data link
            except OSError:
                stamp.append((0, -1))
                continue
            stamp.append((st.st_mtime_ns, st.st_size))
        return tuple(stamp)

    def reload_if_changed(self) -> bool:
        """Reload when a file changed since the last read (polled with the model repository, so
        that a rotated Secret is picked up without a SIGHUP)."""
        if self._files_stamp() == self._stamp:
            return False
        return self.reload()

    def reload(self) -> bool:
        """Read the files again; True when the next handshakes use them."""
        stamp = self._files_stamp()
        try:
            pem = read(self.files)
        except ConfigError as exc:
            self._stamp = stamp  # reported once; tried again when the files change or on SIGHUP
            log.error("TLS reload refused, still serving the previous certificate: %s", exc.message)
            return False
        with self._lock:
            self._pending = _configuration(pem)
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS: certificate files re-read (%s); new connections use them", self.files.cert)
        return True
