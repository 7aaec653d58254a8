"""Channel options shared by both clients."""

from __future__ import annotations

import importlib.resources
import ipaddress
import socket
from collections.abc import Sequence
from pathlib import Path

import grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# clients/service-config.json, the gRPC service config the Python, Go and Java clients share (copied
# into this package by protos/generate.sh): spread calls over every address the target resolves to
# (several replicas: a headless Service via dns:///, or a list of addresses), watch each replica's
# grpc.health.v1 status (one turning NOT_SERVING, draining after SIGTERM, gets no new calls), and
# retry UNAVAILABLE (server starting, draining, gone, or a dropped connection) a few times; a retry
# is balanced like a first attempt, onto another replica.
SERVICE_CONFIG = (importlib.resources.files("embedrank.client") / "service_config.json").read_text(encoding="utf-8")


def options() -> list[tuple[str, object]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.service_config", SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
    ]


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {token}"),) if token else None


def credentials(tls: bool | grpc.ChannelCredentials) -> grpc.ChannelCredentials | None:
    if tls is True:
        return grpc.ssl_channel_credentials()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    return None


def target(address: str | Sequence[str]) -> str:
    """A grpc target from one target string (``host:port``, ``dns:///host:port``, ``ipv4:...``)
    or from several ``host:port`` addresses (replicas), which become one ``ipv4:``/``ipv6:`` target.

    Host names in a list are resolved once, here; a name whose addresses change (a Kubernetes
    headless Service) belongs in ``dns:///name:port``, which grpc resolves again as it reconnects."""
    if isinstance(address, str):
        return address
    addresses = list(address)
    if not addresses:
        raise ValueError("no server address given")
    if len(addresses) == 1:
        return addresses[0]
    v4: list[str] = []
    v6: list[str] = []
    for item in addresses:
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"{item!r}: give each address as host:port (IPv6 as [addr]:port)")
        host = host.strip("[]")
        try:
            ips = [ipaddress.ip_address(host)]
        except ValueError:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
            ips = [ipaddress.ip_address(info[4][0]) for info in infos]
        for ip in dict.fromkeys(ips):
            (v4 if ip.version == 4 else v6).append(f"{ip}:{port}" if ip.version == 4 else f"[{ip}]:{port}")
    if v4 and v6:
        raise ValueError("mix of IPv4 and IPv6 addresses: grpc takes one family per target; give one")
    return ("ipv4:" + ",".join(v4)) if v4 else ("ipv6:" + ",".join(v6))


def tls_credentials(
    ca: str | Path | bytes | None = None, *, cert: str | Path | bytes | None = None, key: str | Path | bytes | None = None
) -> grpc.ChannelCredentials:
    """TLS trusting ``ca`` (PEM file or bytes; None = the system roots), presenting the client
    certificate ``cert`` with its ``key`` when the server asks for one (mutual TLS)."""
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs both cert= and key=")
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(ca), private_key=_pem(key), certificate_chain=_pem(cert)
    )


def _pem(value: str | Path | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()
