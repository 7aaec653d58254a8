"""``embedrank serve --processes N``: N server processes on one port (SO_REUSEPORT).

The parent reserves the port (a bound, non-listening socket, so ``--port 0`` resolves to one
number for all), starts N children with multiprocessing's ``spawn`` (no fork after gRPC or ONNX
Runtime have started threads), waits until every child is serving, then writes --port-file. The
kernel spreads new connections over the children. SIGTERM/SIGINT are passed on to every child,
each of which drains as a single server does; a child that dies on its own takes the others
down with it (exit 1), so that whatever supervises us restarts the whole set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

from embedrank.server.config import ServerConfig

from embedrank.server.logformat import RequestIds, formatter, json_line

log = logging.getLogger(__name__)


def _child(config: ServerConfig, log_level: str, index: int) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(config.log_format, f"%(asctime)s %(levelname)s [{index}] %(name)s: %(message)s"))
    handler.addFilter(RequestIds())
    logging.basicConfig(level=log_level, handlers=[handler])
    from embedrank.server.app import serve
    from embedrank.model.errors import EmbedRankError

    try:
        asyncio.run(serve(config))
    except EmbedRankError as exc:
        log.error("process %d: %s", index, exc.message)
        raise SystemExit(2) from None


def _reserve(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    return sock


def supervise(config: ServerConfig, log_level: str) -> int:
    n = config.processes
    reserved = _reserve(config.host, config.port)
    port = reserved.getsockname()[1]
    # --http-port 0: one free port for all children too (their HTTP sockets use SO_REUSEPORT).
    http_reserved = _reserve(config.host, config.http_port) if config.http_port >= 0 else None
    http_port = http_reserved.getsockname()[1] if http_reserved is not None else config.http_port
    ctx = multiprocessing.get_context("spawn")
    # tokenizers sizes its pool to the machine in every process: give each its share.
    os.environ.setdefault("RAYON_NUM_THREADS", str(config.cores))
    work = Path(tempfile.mkdtemp(prefix="embedrank-procs-"))
    children = []
    for i in range(n):
        child_config = dataclasses.replace(
            config, port=port, port_file=str(work / f"port-{i}"), http_port=http_port,
            metrics_port=config.metrics_port + i if config.metrics_port > 0 else config.metrics_port,
        )
        proc = ctx.Process(target=_child, args=(child_config, log_level, i), name=f"embedrank-{i}")
        proc.start()
        children.append(proc)
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in children:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward)
    ready = False
    try:
        while True:
            if not ready and all((work / f"port-{i}").exists() for i in range(n)):
                ready = True
                reserved.close()
                if http_reserved is not None:
                    http_reserved.close()
                log.info("%d server processes listening on %s:%d", n, config.host, port)
                line = f"embedrank listening on {config.host}:{port} ({n} processes)"
                print(json_line("INFO", __name__, line) if config.log_format == "json" else line, flush=True)
                if config.port_file:
                    partial = f"{config.port_file}.{os.getpid()}.tmp"
                    Path(partial).write_text(f"{port}\n", encoding="utf-8")
                    os.replace(partial, config.port_file)
            dead = [proc for proc in children if not proc.is_alive()]
            if len(dead) == n:
                break
            if dead and not stopping:
                log.error("server process %s exited (%s); stopping the others", dead[0].name, dead[0].exitcode)
                forward(signal.SIGTERM, None)
            time.sleep(0.1)
    finally:
        reserved.close()
        if http_reserved is not None:
            http_reserved.close()
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    codes = [proc.exitcode for proc in children]
    return 0 if stopping and all(code == 0 for code in codes) else (2 if 2 in codes else 1)
