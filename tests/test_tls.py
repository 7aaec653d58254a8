"""TLS and mutual TLS: certificates made here (trustme), real servers, the three clients.

Matrix: TLS ok; plaintext client refused; wrong CA refused; mTLS without or with a wrong client
certificate refused; token + TLS; SIGHUP re-reads the certificate (open connections carry on, new
ones get the new one; a broken file is refused and the old one kept); start-up checks name the flag.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from embedrank.client import Client, EmbedRankError, tls_credentials
from embedrank.server.config import ServerConfig
from embedrank.model.errors import ConfigError
from tests.conftest import EMBEDRANK, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
MODEL = "tiny-bert"


class Pki:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""

    def __init__(self, folder: Path, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name=name)
        self.ca_pem = folder / f"{name}-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem))
        self.cert, self.key = self._issue(folder, f"{name}-server", "127.0.0.1", "localhost")
        self.client_cert, self.client_key = self._issue(folder, f"{name}-client", "client.example")

    def _issue(self, folder: Path, stem: str, *names: str) -> tuple[Path, Path]:
        leaf = self.ca.issue_cert(*names)
        cert, key = folder / f"{stem}.pem", folder / f"{stem}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        # PKCS#8: what grpc-java (Netty) reads; grpc's C core reads it too.
        private = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        key.write_bytes(private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ))
        return cert, key


@pytest.fixture(scope="module")
def pki(workdir: Path) -> Pki:
    return Pki(workdir / "tls", "good")


@pytest.fixture(scope="module")
def other_pki(workdir: Path) -> Pki:
    return Pki(workdir / "tls", "other")


def _repo(tiny_repo: Path, workdir: Path) -> Path:
    only = workdir / f"repo-tls-{time.monotonic_ns()}"
    shutil.copytree(tiny_repo / MODEL, only / MODEL)
    return only


@pytest.fixture(scope="module")
def tls_server(tiny_repo: Path, workdir: Path, pki: Pki) -> Iterator[ServerProcess]:
    """TLS (no client certificate asked) and a bearer token."""
    token = workdir / "tls" / "token"
    token.write_text("s3cret\n")
    with ServerProcess(
        _repo(tiny_repo, workdir), "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--auth-token-file", str(token)
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def mtls_server(tiny_repo: Path, workdir: Path, pki: Pki) -> Iterator[ServerProcess]:
    with ServerProcess(
        _repo(tiny_repo, workdir),
        "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--tls-client-ca", str(pki.ca_pem),
    ) as proc:
        yield proc


def _refused(target: str, creds: grpc.ChannelCredentials | None, **kw: object) -> EmbedRankError:
    with pytest.raises(EmbedRankError) as info:
        Client(target, tls=creds or False, timeout=5, **kw).encode(MODEL, ["refused"])  # type: ignore[arg-type]
    return info.value


def test_tls_with_token_ok(tls_server: ServerProcess, pki: Pki) -> None:
    with Client(tls_server.target, tls=tls_credentials(pki.ca_pem), token="s3cret") as client:
        assert client.encode(MODEL, ["over TLS"]).shape == (1, 32)
        assert client.get_model(MODEL).name == MODEL
    # "localhost" is the certificate's other name: host name checking passes too.
    with Client(f"localhost:{tls_server.port}", tls=tls_credentials(pki.ca_pem), token="s3cret") as client:
        assert client.encode(MODEL, ["by name"]).shape == (1, 32)


def test_tls_without_token_unauthenticated(tls_server: ServerProcess, pki: Pki) -> None:
    err = _refused(tls_server.target, tls_credentials(pki.ca_pem))
    assert err.code == grpc.StatusCode.UNAUTHENTICATED
    err = _refused(tls_server.target, tls_credentials(pki.ca_pem), token="wrong")
    assert err.code == grpc.StatusCode.UNAUTHENTICATED


def test_plaintext_client_refused(tls_server: ServerProcess) -> None:
    err = _refused(tls_server.target, None, token="s3cret")
    assert err.code == grpc.StatusCode.UNAVAILABLE


def test_wrong_ca_refused(tls_server: ServerProcess, other_pki: Pki) -> None:
    err = _refused(tls_server.target, tls_credentials(other_pki.ca_pem), token="s3cret")
    assert err.code == grpc.StatusCode.UNAVAILABLE


def test_mtls_with_client_certificate_ok(mtls_server: ServerProcess, pki: Pki) -> None:
    creds = tls_credentials(pki.ca_pem, cert=pki.client_cert, key=pki.client_key)
    with Client(mtls_server.target, tls=creds) as client:
        assert client.encode(MODEL, ["mutual"]).shape == (1, 32)


def test_mtls_without_client_certificate_refused(mtls_server: ServerProcess, pki: Pki) -> None:
    assert _refused(mtls_server.target, tls_credentials(pki.ca_pem)).code == grpc.StatusCode.UNAVAILABLE


def test_mtls_with_certificate_of_another_ca_refused(mtls_server: ServerProcess, pki: Pki, other_pki: Pki) -> None:
    creds = tls_credentials(pki.ca_pem, cert=other_pki.client_cert, key=other_pki.client_key)
    assert _refused(mtls_server.target, creds).code == grpc.StatusCode.UNAVAILABLE


def test_sighup_serves_the_new_certificate(tiny_repo: Path, workdir: Path, pki: Pki, other_pki: Pki) -> None:
    live = workdir / "tls" / "live"
    live.mkdir()
    cert, key = live / "server.pem", live / "server.key"
    shutil.copy(pki.cert, cert)
    shutil.copy(pki.key, key)
    proc = ServerProcess(_repo(tiny_repo, workdir), "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        old = Client(proc.target, tls=tls_credentials(pki.ca_pem))
        assert old.encode(MODEL, ["before"]).shape == (1, 32)
        # The new certificate is issued by another CA: whoever connects from now on must trust it.
        shutil.copy(other_pki.cert, cert)
        shutil.copy(other_pki.key, key)
        proc.proc.send_signal(signal.SIGHUP)
        _wait_for(proc, "certificate files re-read")
        with Client(proc.target, tls=tls_credentials(other_pki.ca_pem)) as new:
            assert new.encode(MODEL, ["after"]).shape == (1, 32)
        assert _refused(proc.target, tls_credentials(pki.ca_pem)).code == grpc.StatusCode.UNAVAILABLE
        # The connection made before the reload was not dropped: it still answers.
        assert old.encode(MODEL, ["still open"]).shape == (1, 32)
        old.close()

        # A broken file is refused loudly; the server keeps the certificate it has.
        key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        proc.proc.send_signal(signal.SIGHUP)
        _wait_for(proc, "TLS reload refused")
        with Client(proc.target, tls=tls_credentials(other_pki.ca_pem)) as new:
            assert new.encode(MODEL, ["kept"]).shape == (1, 32)
    finally:
        assert proc.stop() == 0


def test_changed_files_reread_without_sighup_when_polling(tiny_repo: Path, workdir: Path, pki: Pki, other_pki: Pki) -> None:
    live = workdir / "tls" / f"polled-{time.monotonic_ns()}"
    live.mkdir()
    cert, key = live / "server.pem", live / "server.key"
    shutil.copy(pki.cert, cert)
    shutil.copy(pki.key, key)
    proc = ServerProcess(_repo(tiny_repo, workdir), "--tls-cert", str(cert), "--tls-key", str(key), "--model-poll-s", "0.3")
    try:
        time.sleep(1.0)
        assert "certificate files re-read" not in proc.output()  # unchanged files: nothing re-read
        # As kubelet updates a Secret volume: new files, then one rename.
        staged = live / ".new"
        staged.mkdir()
        shutil.copy(other_pki.cert, staged / "server.pem")
        shutil.copy(other_pki.key, staged / "server.key")
        os.replace(staged / "server.key", key)
        os.replace(staged / "server.pem", cert)
        _wait_for(proc, "certificate files re-read")
        with Client(proc.target, tls=tls_credentials(other_pki.ca_pem)) as client:
            assert client.encode(MODEL, ["rotated"]).shape == (1, 32)
    finally:
        assert proc.stop() == 0


def _wait_for(proc: ServerProcess, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.output():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{proc.output()[-3000:]}"
        time.sleep(0.05)


def test_config_needs_cert_and_key_together() -> None:
    with pytest.raises(ConfigError, match="both --tls-cert and --tls-key"):
        ServerConfig(model_repository=Path("."), tls_cert="cert.pem")
    with pytest.raises(ConfigError, match="--tls-client-ca .* needs the server's own --tls-cert"):
        ServerConfig(model_repository=Path("."), tls_client_ca="ca.pem")


@pytest.mark.parametrize("problem", ["mismatch", "missing", "not-pem"])
def test_bad_tls_files_stop_the_server_with_one_line(
    tiny_repo: Path, workdir: Path, pki: Pki, other_pki: Pki, problem: str
) -> None:
    key, expected = {
        "mismatch": (other_pki.key, f"--tls-key {other_pki.key} does not belong to --tls-cert {pki.cert}"),
        "missing": (workdir / "tls" / "nowhere.key", "--tls-key " + str(workdir / "tls" / "nowhere.key") + ": cannot read it"),
        "not-pem": (pki.ca_pem.with_suffix(".der"), "not a PEM file"),
    }[problem]
    if problem == "not-pem":
        key.write_bytes(b"\x30\x82\x01\x00binary")
    result = subprocess.run(
        [*EMBEDRANK, "serve", "--model-repository", str(tiny_repo), "--port", "0",
         "--tls-cert", str(pki.cert), "--tls-key", str(key)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; CI needs it for the client TLS tests")
        pytest.skip(f"{name} is not installed")
    return found


def _client_env(mtls_server: ServerProcess, pki: Pki, other_pki: Pki) -> dict[str, str]:
    return {
        **os.environ,
        "EMBEDRANK_TLS_TARGET": f"localhost:{mtls_server.port}",
        "EMBEDRANK_TLS_CA": str(pki.ca_pem),
        "EMBEDRANK_TLS_CERT": str(pki.client_cert),
        "EMBEDRANK_TLS_KEY": str(pki.client_key),
        "EMBEDRANK_TLS_OTHER_CERT": str(other_pki.client_cert),
        "EMBEDRANK_TLS_OTHER_KEY": str(other_pki.client_key),
        "EMBEDRANK_TLS_MODEL": MODEL,
    }


def test_go_client_mtls(mtls_server: ServerProcess, pki: Pki, other_pki: Pki) -> None:
    go = _tool("go")
    result = subprocess.run(
        [go, "test", "-count=1", "-v", "-run", "^TestTLSE2E", "."], cwd=ROOT / "clients" / "go",
        env=_client_env(mtls_server, pki, other_pki), capture_output=True, text=True, timeout=600,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "--- PASS: TestTLSE2E" in out and "SKIP" not in out, out[-4000:]


def test_java_client_mtls(mtls_server: ServerProcess, pki: Pki, other_pki: Pki) -> None:
    mvn = _tool("mvn")
    result = subprocess.run(
        [mvn, "-B", "-q", "test", "-Dtest=TlsEndToEndTest", "-Dsurefire.failIfNoSpecifiedTests=false"],
        cwd=ROOT / "clients" / "java", env=_client_env(mtls_server, pki, other_pki),
        capture_output=True, text=True, timeout=900,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    xml = (ROOT / "clients" / "java" / "target" / "surefire-reports" / "TEST-dev.embedrank.client.TlsEndToEndTest.xml").read_text()
    assert 'skipped="0"' in xml and 'failures="0"' in xml and 'errors="0"' in xml and 'tests="0"' not in xml, xml[:1500]
