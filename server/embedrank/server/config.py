"""Server configuration: every setting declared once (flag, env var, help) -> a frozen dataclass."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedrank.model import flags
from embedrank.model.errors import ConfigError
from embedrank.model.flags import setting
from embedrank.model.runtime.settings import Device, RuntimeFlags, RuntimeSettings, default_openvino_cache
from embedrank.server.engine.batcher import BatchLimits
from embedrank.server.engine.chunking import ChunkLimits
from embedrank.server.engine.served import Limits
from embedrank.server.engine.settings import EngineSettings
from embedrank.server.tokens import read_tokens


@dataclasses.dataclass(frozen=True)
class ServerConfig(RuntimeFlags):
    """Every `embedrank serve` setting; the ones `export` takes too come from RuntimeFlags."""

    model_repository: Path = setting(
        Path("models"),
        help=(
            "Folder of models: REPO/<name>/<version>/{model.onnx,tokenizer.json,manifest.json} (default: ./models, "
            "where `serve --model` exports)."
        ),
    )
    host: str = setting(
        "0.0.0.0",
        help=(
            "Address to listen on (127.0.0.1 for local only)."
        ),
    )
    port: int = setting(
        50051,
        help=(
            "Port to listen on; 0 picks a free one (printed at start and written to --port-file)."
        ),
    )
    device: Device = setting(
        Device.CPU,
        help=(
            "cpu, or cuda for the CUDA execution provider (needs onnxruntime-gpu instead of onnxruntime)."
        ),
    )
    threads: int = setting(
        0,
        help=(
            "Intra-op threads of one batch run; 0 = 1 on CPU (one single-threaded batch per core, see "
            "--workers; cores / --workers when that is set), 1 on CUDA. A lone query runs on its own "
            "session with min(cores, 4) threads (--small-batch-tokens)."
        ),
    )
    workers: int = setting(
        0,
        help=(
            "Batches of one model run at once (OpenVINO: its streams); 0 = cores / --threads on CPU (one "
            "per core by default), 4 on CUDA. An idle server splits a lone request over the idle workers."
        ),
    )
    processes: int = setting(
        1,
        help=(
            "Server processes sharing the port (SO_REUSEPORT; the kernel spreads connections over them), "
            "each with its own runtime and an equal share of the cores: one Python process (gRPC, "
            "tokenizing, numpy) cannot feed a GPU or many cores. SIGTERM drains them all; each serves "
            "/metrics on --metrics-port + its index."
        ),
    )
    max_batch_tokens: int = setting(
        0,
        help=(
            "Token budget of one batch (longest input x rows, as padded). Larger batches do not raise CPU "
            "throughput; they raise latency. 0 = the device's default: 8192 on CPU, 65536 on CUDA."
        ),
    )
    max_batch_size: int = setting(
        0,
        help=(
            "Most inputs in one batch, whatever their length. 0 = the device's default: 128 on CPU, 512 "
            "on CUDA."
        ),
    )
    min_batch_fill: float = setting(
        -1.0,
        help=(
            "A batch stops growing when its real tokens / padded tokens would fall below this (0..1); "
            "padding is wasted work on CPU. -1 = the device's default: 0.95 on CPU, 0 on CUDA (padding is "
            "cheap there)."
        ),
    )
    length_buckets: str = setting(
        "auto",
        help=(
            "Pad each batch's length up to the next of these token counts (comma-separated) and run each "
            "once at load: on CUDA every new length is slow the first time. auto = 16,32,64,128,256,512 "
            "on CUDA, none on CPU (exact lengths are fastest there); none = exact lengths."
        ),
    )
    gpu_mem_limit_mb: int = setting(
        0,
        help=(
            "CUDA: most GPU memory ONNX Runtime's arena may hold per model, which grows only as "
            "requested; 0 = sized from the model (4 x its file + 1 GiB)."
        ),
    )
    small_batch_tokens: int = setting(
        512,
        help=(
            "A lone input of at most this many tokens (a lone query) takes the low-latency path: it "
            "runs at once on the event-loop thread when nothing else is queued or running, on a "
            "second session with min(cores, 4) threads (ONNX Runtime: threads that spin during a run "
            "instead of waking per operator; OpenVINO: a latency-compiled model). It holds a second copy "
            "of the weights (about 90 MB for all-MiniLM-L6-v2 fp32). 0 = off."
        ),
    )
    cpu_arena: bool = setting(
        False,
        help=(
            "Keep ONNX Runtime's CPU memory arena: it holds on to its peak (a burst of long texts leaves "
            "hundreds of MB behind). Off by default: freed memory is handed back when the server goes "
            "idle."
        ),
    )
    runtime_nice: int = setting(
        5,
        help=(
            "How much lower (nice) the threads that run batches are scheduled than the event loop, 0..19 "
            "(Linux): under full load the loop still answers at once (health checks, over-cap refusals, "
            "new requests read and tokenized). 0 = the same priority."
        ),
    )
    max_inputs_per_request: int = setting(
        1024,
        help=(
            "Most texts (Encode) or documents (Rerank) in one request."
        ),
    )
    max_input_chars: int = setting(
        50_000,
        help=(
            "Longest text in characters; longer ones are refused before tokenizing."
        ),
    )
    max_inflight_inputs: int = setting(
        8192,
        help=(
            "Admission bound: inputs queued or running across all requests. Past it requests get "
            "RESOURCE_EXHAUSTED at once instead of waiting in an ever-longer queue."
        ),
    )
    max_chunks_per_text: int = setting(
        64,
        help=(
            "long_input CHUNK: most token windows one text (or document) may split into; a longer one is "
            "refused with INVALID_ARGUMENT. Each window is a full model run."
        ),
    )
    max_chunks_per_request: int = setting(
        1024,
        help=(
            "long_input CHUNK: most token windows in one request, all texts together (admission counts "
            "windows, not texts); --max-inflight-inputs caps it too."
        ),
    )
    stream_max_inflight: int = setting(
        16,
        help=(
            "Requests of one stream being worked on at once; the stream reads no further until one is "
            "answered."
        ),
    )
    max_message_mb: int = setting(
        32,
        help="Largest gRPC message, in MiB, both ways; also the largest HTTP request body (--http-port).",
    )
    shutdown_grace_s: float = setting(
        10.0,
        help=(
            "On SIGTERM: seconds in-flight requests get to finish."
        ),
    )
    allow_fp16_on_cpu: bool = setting(
        False,
        help=(
            "Serve fp16 graphs on the CPU provider anyway (slow; meant for CUDA)."
        ),
    )
    auth_token_file: str = setting(
        "",
        help=(
            "File holding the bearer token(s) every call must send (authorization: Bearer <token>), one a "
            "line: any of them is accepted, so a token is rotated by adding the new one, then removing the "
            "old. Re-read on SIGHUP (and when it changes, every --model-poll-s). Health checks and "
            "reflection stay open. Empty = no authentication. Use TLS (--tls-cert) when set."
        ),
    )
    metrics_port: int = setting(
        -1,
        help=(
            "Port of the Prometheus /metrics endpoint (embedrank_* series); -1 = off, 0 = any free port."
        ),
    )
    openvino_cache_dir: str = setting(
        "",
        help=(
            "OpenVINO compiled-model cache, so a restart does not compile again; empty = "
            "$XDG_CACHE_HOME/embedrank/openvino (~/.cache/...), 'off' = no cache."
        ),
    )
    port_file: str = setting(
        "",
        help=(
            "Write the bound port to this file once serving (useful with --port 0); empty = none."
        ),
    )
    tls_cert: str = setting(
        "",
        help=(
            "PEM certificate (chain) of the server; with --tls-key the server speaks TLS only. Re-read on "
            "SIGHUP, and every --model-poll-s when the files changed (a rotated Kubernetes Secret): new "
            "connections get the new one, open ones keep theirs. Empty = plaintext."
        ),
    )
    tls_key: str = setting(
        "",
        help=(
            "PEM private key of --tls-cert (re-read with it on SIGHUP)."
        ),
    )
    tls_client_ca: str = setting(
        "",
        help=(
            "Mutual TLS: PEM CA certificate(s); every client must present a certificate signed by one of "
            "them (re-read on SIGHUP). Empty = clients need no certificate."
        ),
    )
    max_connection_age_s: float = setting(
        0.0,
        help=(
            "Close each client connection (GOAWAY, in-flight calls finish) after about this many seconds, "
            "so that clients reconnect and rebalance across replicas added since; 0 = never. A few "
            "minutes suits replicas behind a headless Service."
        ),
    )
    head_timeout_s: float = setting(
        10.0,
        help=(
            "Both ports: a request's line and headers (HTTP), or a connection's TLS handshake and HTTP/2 "
            "preface and SETTINGS (gRPC), must all arrive within this many seconds of the first byte; a "
            "slower client (slowloris) gets 408 and its connection is closed. 0 = no limit."
        ),
    )
    body_timeout_s: float = setting(
        30.0,
        help=(
            "HTTP: a request body that makes no progress (no byte arrives) for this many seconds is "
            "dropped: 408, connection closed. Between reads, not for the whole body, as nginx's "
            "client_body_timeout. 0 = no limit."
        ),
    )
    idle_timeout_s: float = setting(
        75.0,
        help=(
            "Both ports: close a connection that has had no request or call for this many seconds (HTTP "
            "keep-alive; gRPC GOAWAY, the client reconnects when it next calls). Keep it LONGER than the "
            "idle timeout of the load balancer or proxy in front (AWS ALB 60 s), so that it is always the "
            "proxy that closes an idle connection, never the server under a request the proxy just sent. "
            "0 = never."
        ),
    )
    max_connections: int = setting(
        4096,
        help=(
            "Both ports, each, per process: most open client connections; past it a new connection is "
            "refused at once (HTTP: 503 and closed; gRPC: closed) rather than holding a file descriptor. "
            "0 = no limit (the process's open-file limit)."
        ),
    )
    grpc_max_concurrent_streams: int = setting(
        1024,
        help=(
            "gRPC: most calls open at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). Python's "
            "grpc.aio client does not wait for a free stream: its calls past the cap fail (INTERNAL), so keep it "
            "above what one client multiplexes (hundreds of streams on one channel). 0 = grpc's default (no limit)."
        ),
    )
    grpc_min_ping_interval_s: float = setting(
        30.0,
        help=(
            "gRPC: a client may ping (HTTP/2 PING, keepalive) at most this often; a ping sooner, or one "
            "without a call open, is a strike, and after 2 strikes the connection is closed (GOAWAY "
            "ENHANCE_YOUR_CALM \"too_many_pings\"): a ping flood costs the server nothing. Clients' "
            "keepalive time must be at least this."
        ),
    )
    model_poll_s: float = setting(
        2.0,
        help=(
            "Watch the model repository for new, broken or removed versions every this many seconds (also "
            "on SIGHUP): a poll reads the model folders' modification times and scans only when one "
            "changed (measured: an idle server used 0.050%% of a core with it, 0.033%% without). A new "
            "version is loaded and warmed before it takes new requests. 0 = only on SIGHUP."
        ),
    )
    default_model: str = setting(
        "",
        help=(
            "The model a request that names none gets, when it is of the kind the call needs (TEI's HTTP "
            "routes and tei.v1 name no model). Unset: the only model of that kind; with several, such a "
            "request is refused with a message naming them. A model field in the request always wins."
        ),
    )
    http_port: int = setting(
        -1,
        help=(
            "Also serve the HTTP conventions on this port, from the same process, models, admission, token "
            "and TLS: OpenAI's POST /v1/embeddings, Cohere/Jina's POST /v1/rerank and /v2/rerank, GET "
            "/v1/models, text-embeddings-inference's /embed, /rerank, /predict, ... and GET /health (docs/http.md). "
            "-1 = off, 0 = any free port (printed at start)."
        ),
    )

    otlp_endpoint: str = setting(
        "",
        help=(
            "Send OpenTelemetry traces to this OTLP collector URL: OTLP/gRPC (http://collector:4317; https:// "
            "for TLS), or OTLP/HTTP protobuf when the URL says so (a path ending in /v1/traces, or port 4318). "
            "Empty = off, unless OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is set; off costs nothing (the SDK is "
            "not even imported). The SDK's OTEL_* variables (sampler, headers, resource attributes, batch "
            "sizes) apply as it documents them (docs/deploy.md)."
        ),
    )
    otlp_service_name: str = setting(
        "embedrank",
        help=(
            "service.name of the traces (left at embedrank, OTEL_SERVICE_NAME wins when set)."
        ),
    )
    log_format: str = setting(
        "text",
        choices=("text", "json"),
        help=(
            "text (one line: time level logger: message) or json (one object a line: time, level, logger, "
            "message, and request_id / trace_id / span_id inside a request) for log collectors."
        ),
    )
    access_log: bool = setting(
        False,
        help=(
            "Log a line per request (logger embedrank.access, INFO): RPC or route, status, model, inputs, "
            "tokens, duration, request id; health checks and reflection are not logged."
        ),
    )

    def __post_init__(self) -> None:
        positive = (
            "max_inputs_per_request", "processes",
            "max_input_chars", "max_inflight_inputs", "stream_max_inflight", "max_message_mb",
            "max_chunks_per_text", "max_chunks_per_request",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if self.max_inputs_per_request > self.max_inflight_inputs:
            raise ConfigError(
                f"--max-inputs-per-request ({self.max_inputs_per_request}) must not exceed --max-inflight-inputs "
                f"({self.max_inflight_inputs}): such a request could never be admitted"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be 0..65535, got {self.port}")
        if self.threads < 0 or self.workers < 0:
            raise ConfigError("--threads and --workers must be >= 0 (0 = decided from the cores)")
        if not 0 <= self.runtime_nice <= 19:
            raise ConfigError(f"--runtime-nice must be 0..19 (0 = same priority as the event loop), got {self.runtime_nice}")
        if self.small_batch_tokens < 0:
            raise ConfigError(f"--small-batch-tokens must be >= 0 (0 = off), got {self.small_batch_tokens}")
        for name in ("max_batch_tokens", "max_batch_size", "gpu_mem_limit_mb"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0 (0 = the device's default), got {getattr(self, name)}")
        if self.min_batch_fill != -1.0 and not 0.0 <= self.min_batch_fill <= 1.0:
            raise ConfigError(f"--min-batch-fill must be within 0..1 (-1 = the device's default), got {self.min_batch_fill}")
        self.buckets  # noqa: B018 - validates --length-buckets
        if self.shutdown_grace_s < 0:
            raise ConfigError("--shutdown-grace-s must be >= 0")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("TLS needs both --tls-cert and --tls-key (EMBEDRANK_TLS_CERT, EMBEDRANK_TLS_KEY); one is missing")
        if self.tls_client_ca and not self.tls_cert:
            raise ConfigError("--tls-client-ca (mutual TLS) needs the server's own --tls-cert and --tls-key too")
        if self.max_connection_age_s < 0:
            raise ConfigError(f"--max-connection-age-s must be >= 0 (0 = no limit), got {self.max_connection_age_s}")
        if not -1 <= self.http_port <= 65535:
            raise ConfigError(f"--http-port must be -1 (off) or 0..65535, got {self.http_port}")
        for name in ("head_timeout_s", "body_timeout_s", "idle_timeout_s", "grpc_min_ping_interval_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0 (0 = no limit), got {getattr(self, name)}")
        for name in ("max_connections", "grpc_max_concurrent_streams"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0 (0 = no limit), got {getattr(self, name)}")
        if self.otlp_endpoint:
            parts = urllib.parse.urlsplit(self.otlp_endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"--otlp-endpoint {self.otlp_endpoint!r} is not a collector URL; give one like "
                    "http://127.0.0.1:4317 (OTLP/gRPC) or http://127.0.0.1:4318/v1/traces (OTLP/HTTP)"
                )
        if not self.otlp_service_name.strip():
            raise ConfigError("--otlp-service-name must not be empty (the default is embedrank)")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"--log-format must be text or json, got {self.log_format!r}")
        if self.model_poll_s < 0:
            raise ConfigError(f"--model-poll-s must be >= 0 (0 = only on SIGHUP), got {self.model_poll_s}")

    @property
    def tracing(self) -> bool:
        """Traces are exported: --otlp-endpoint, or the SDK's own endpoint variables (not OTEL_SDK_DISABLED)."""
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return False
        return bool(self.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                    or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))

    def auth_tokens(self) -> tuple[str, ...]:
        """The bearer tokens of auth_token_file (one a line, blank lines and # comments skipped);
        empty when authentication is off. Several: a token can be rotated without a gap."""
        if not self.auth_token_file:
            return ()
        return read_tokens(Path(self.auth_token_file))

    @functools.cached_property
    def cores(self) -> int:
        """The cores one server process may use, shared by --processes: its CPU affinity, capped by a
        cgroup CPU quota (a container's CPU limit, e.g. Kubernetes `resources.limits.cpu`, which the
        affinity does not show)."""
        total = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        quota = cgroup_cpu_limit()
        if quota is not None:
            total = min(total, quota)
        return max(1, total // self.processes)

    # The device's defaults for the settings left at "auto". On CPU padding is pure waste and small
    # batches cost little more per token, so the fill floor is high (0.95); on a GPU padding is cheap,
    # big batches win, and every new sequence length is slow the first time, so lengths are padded up
    # to a few buckets warmed at load. The measurements: docs/runtime-notes.md.
    _AUTO = {
        Device.CPU: {"max_batch_tokens": 8192, "max_batch_size": 128, "min_batch_fill": 0.95, "length_buckets": ""},
        Device.CUDA: {"max_batch_tokens": 65536, "max_batch_size": 512, "min_batch_fill": 0.0,
                      "length_buckets": "16,32,64,128,256,512"},
    }

    def _auto(self, name: str) -> Any:
        value = getattr(self, name)
        unset = value == "auto" if name == "length_buckets" else (value == -1.0 if name == "min_batch_fill" else not value)
        return self._AUTO[self.device][name] if unset else value

    @property
    def batch_tokens(self) -> int:
        return int(self._auto("max_batch_tokens"))

    @property
    def batch_size(self) -> int:
        return int(self._auto("max_batch_size"))

    @property
    def batch_fill(self) -> float:
        return float(self._auto("min_batch_fill"))

    @property
    def buckets(self) -> tuple[int, ...]:
        """Padded lengths, ascending; empty = exact lengths."""
        text = str(self._auto("length_buckets")).strip()
        if text.lower() in ("", "none", "off"):
            return ()
        try:
            values = sorted({int(part) for part in text.split(",") if part.strip()})
        except ValueError:
            raise ConfigError(f"--length-buckets: {text!r} is not a comma-separated list of token counts "
                              "(e.g. 32,64,128,256,512), 'auto' or 'none'") from None
        if not values or values[0] <= 0:
            raise ConfigError(f"--length-buckets: {text!r}: every bucket must be a positive token count")
        return tuple(values)

    def effective(self) -> dict[str, object]:
        """The batching and runtime settings actually in force (logged at start)."""
        return {
            "device": self.device.value, "threads": self.runtime_threads, "workers": self.runtime_workers,
            "lone_threads": self.lone_threads,
            "max_batch_tokens": self.batch_tokens, "max_batch_size": self.batch_size,
            "min_batch_fill": self.batch_fill, "length_buckets": ",".join(map(str, self.buckets)) or "none",
            "small_batch_tokens": self.small_batch_tokens if self.lone_threads else 0,
            "runtime_nice": self.runtime_nice,
            "gpu_mem_limit_mb": (self.gpu_mem_limit_mb or "auto") if self.device is Device.CUDA else "-",
        }

    @property
    def runtime_threads(self) -> int:
        """Intra-op threads of one batch run."""
        if self.threads:
            return self.threads
        if self.device is Device.CUDA:
            return 1
        if self.workers:
            return max(1, self.cores // self.workers)
        # One single-threaded batch per core: no thread hand-offs inside a run (measured faster than one
        # batch over all cores: docs/runtime-notes.md). A lone query still gets every core on its own session.
        return 1

    @property
    def runtime_workers(self) -> int:
        """Batches of one model that run at once."""
        if self.workers:
            return self.workers
        if self.device is Device.CUDA:
            return 4  # overlap host-side batch preparation with the GPU (4 measured best on an H100)
        return max(1, self.cores // self.runtime_threads)

    @functools.cached_property
    def runtime_settings(self) -> RuntimeSettings:
        """What every model's runtime is opened with (the "auto" values resolved for this device)."""
        cache = self.openvino_cache_dir
        return RuntimeSettings(
            device=self.device,
            threads=self.runtime_threads,
            workers=self.runtime_workers,
            allow_fp16_on_cpu=self.allow_fp16_on_cpu,
            allow_bf16_without_native=self.allow_bf16_without_native,
            openvino_cache_dir=None if cache == "off" else Path(cache) if cache else default_openvino_cache(),
            small_batch_tokens=self.small_batch_tokens,
            lone_threads=self.lone_threads,
            cpu_arena=self.cpu_arena,
            buckets=self.buckets,
            max_batch_tokens=self.batch_tokens,
            gpu_mem_limit_mb=self.gpu_mem_limit_mb,
            nice=self.runtime_nice,
        )

    @functools.cached_property
    def engine_settings(self) -> EngineSettings:
        """The engine's limits: per request, per batch, and in flight."""
        return EngineSettings(
            repository=self.model_repository,
            limits=Limits(
                max_inputs=self.max_inputs_per_request,
                max_chars=self.max_input_chars,
                batch=BatchLimits(
                    self.batch_tokens,
                    self.batch_size,
                    min_fill=self.batch_fill,
                    workers=self.runtime_workers,
                    inline_tokens=self.small_batch_tokens,
                    nice=self.runtime_nice,
                ),
                chunks=ChunkLimits(
                    per_text=self.max_chunks_per_text,
                    per_request=min(self.max_chunks_per_request, self.max_inflight_inputs),
                ),
            ),
            max_inflight_inputs=self.max_inflight_inputs,
            default_model=self.default_model,
        )

    @property
    def lone_threads(self) -> int:
        """Threads of the low-latency session a lone small batch runs on (0 = no such session):
        the cores, up to 4 (one short input scales poorly past that)."""
        if self.device is not Device.CPU or not self.small_batch_tokens:
            return 0
        return max(self.runtime_threads, min(self.cores, 4))


def cgroup_cpu_limit(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """CPUs allowed by a cgroup v2 quota ("200000 100000" = 2), rounded up; None without a quota."""
    try:
        quota, period = path.read_text(encoding="ascii").split()[:2]
        return None if quota == "max" else max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every ServerConfig field as a flag whose default is read from its env var."""
    flags.add_arguments(parser, ServerConfig)


def from_namespace(ns: argparse.Namespace) -> ServerConfig:
    return ServerConfig(**flags.values_from(ns, ServerConfig))


def parse(argv: Sequence[str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(prog="embedrank serve")
    add_arguments(parser)
    return from_namespace(parser.parse_args(argv))
