"""The doors of the gRPC port: grpc core's channel arguments for slow, idle and hostile clients
(issue 32; docs/deploy.md has the table, the HTTP port's are in server/http/limits.py).

grpc core does the work; these are its settings, chosen as grpc-go and Envoy choose theirs:

- ``grpc.server_handshake_timeout_ms`` (--head-timeout-s): a connection must finish its TLS
  handshake and send the HTTP/2 preface and SETTINGS in time, else it is closed (grpc's default
  is 120 s; a connection that never speaks is the gRPC slowloris).
- ``grpc.max_connection_idle_ms`` (--idle-timeout-s): GOAWAY to a connection with no call open for
  that long (grpc-go ``MaxConnectionIdle``; infinite by default); the client reconnects when it
  next calls.
- ``grpc.max_allowed_incoming_connections`` (--max-connections): past it grpc closes a new
  connection at once.
- ``grpc.max_concurrent_streams`` (--grpc-max-concurrent-streams): HTTP/2
  SETTINGS_MAX_CONCURRENT_STREAMS; a client queues calls past it itself (grpc core advertises no
  limit by default; Go's x/net/http2 server 250, nginx 128, Envoy's edge advice 100).
- Ping enforcement (--grpc-min-ping-interval-s): ``grpc.http2.min_ping_interval_without_data_ms``
  is how often a client may ping; a ping sooner, or any ping with no call open
  (``grpc.keepalive_permit_without_calls`` 0), is a strike, and ``grpc.http2.max_ping_strikes``
  (2) strikes close the connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (grpc-go's
  ``EnforcementPolicy``: 5 min, no pings without calls). 30 s lets a client keep a connection
  warm through a NAT or proxy that drops idle flows at 60 s.
- A stream whose reader stopped reading: HTTP/2 flow control stops grpc's writes once the peer's
  window (64 KiB per stream) is full, and our stream handlers write an answer before taking the
  next request, at most --stream-max-inflight requests ahead: the stream stops being read
  (tests/test_doors.py measures the server's memory with a client that never reads).
"""

from __future__ import annotations

# Strikes (pings sooner than allowed) before grpc closes the connection; grpc's and grpc-go's default.
MAX_PING_STRIKES = 2


def grpc_limits(
    *, head_timeout_s: float, idle_timeout_s: float, max_connections: int, max_concurrent_streams: int,
    min_ping_interval_s: float,
) -> list[tuple[str, int]]:
    """grpc.aio.server options for the settings (0 = grpc's own default, i.e. no limit)."""
    options: list[tuple[str, int]] = [
        ("grpc.http2.min_ping_interval_without_data_ms", int(min_ping_interval_s * 1000)),
        ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
        ("grpc.keepalive_permit_without_calls", 0),
    ]
    if head_timeout_s > 0:
        options.append(("grpc.server_handshake_timeout_ms", max(1, int(head_timeout_s * 1000))))
    if idle_timeout_s > 0:
        options.append(("grpc.max_connection_idle_ms", max(1, int(idle_timeout_s * 1000))))
    if max_connections > 0:
        options.append(("grpc.max_allowed_incoming_connections", max_connections))
    if max_concurrent_streams > 0:
        options.append(("grpc.max_concurrent_streams", max_concurrent_streams))
    return options
