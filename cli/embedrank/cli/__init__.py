"""The `embedrank` command: `serve` (embedrank.server), `export` (embedrank.exporter) and `pull`
(exports what `serve --model` names, then exits).

It stands above both; neither imports the other, nor this.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from embedrank.cli import logs
from embedrank.cli import models as model_specs
from embedrank.exporter import cli as export_cli
from embedrank.server import config as config_mod
from embedrank.model import flags
from embedrank.model.errors import EmbedRankError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_LEVEL_ENV = "EMBEDRANK_LOG_LEVEL"


def _add_log_level(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, default=default,
        help=f"DEBUG, INFO, WARNING or ERROR (default: INFO for serve, WARNING for export) [env {LOG_LEVEL_ENV}]",
    )


def _add_model(parser: argparse.ArgumentParser, *, then: str) -> None:
    parser.add_argument(
        "--model", action="append", metavar="SPEC",
        help=(f"{model_specs.SPEC_HELP}, repeatable: a checkpoint folder or hub id exported into --model-repository "
              "as NAME unless its verified export is there (keyed by hub commit or folder content, and the options: "
              f"{', '.join(model_specs.OPTIONS)}), {then}. E.g. minilm=./all-MiniLM-L6-v2:quantize=avx512-vnni "
              f"[env {model_specs.MODELS_ENV}, whitespace-separated]"),
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the tests check the READMEs' commands against it."""
    parser = argparse.ArgumentParser(prog="embedrank", description=__doc__)
    _add_log_level(parser, default=os.environ.get(LOG_LEVEL_ENV))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Serve every model of a model repository over gRPC.")
    config_mod.add_arguments(serve)
    _add_model(serve, then="then serves the repository (health NOT_SERVING until they are in)")

    pull = sub.add_parser("pull", help="Export each --model into the model repository unless it is there; then exit.")
    flags.add_arguments(pull, config_mod.ServerConfig, only=("model_repository",))  # serve's flag, declared once
    _add_model(pull, then="then exits (an init container's job: replicas sharing the volume serve one export)")

    export = sub.add_parser("export", help="Export a sentence-transformers checkpoint into a model repository.")
    export_cli.add_arguments(export)

    imp = sub.add_parser("import", help="Import a checkpoint that ships an ONNX graph of its transformer, without torch.")
    export_cli.add_arguments(imp, importing=True)
    # --log-level also after the sub-command (`embedrank serve --log-level DEBUG`); SUPPRESS keeps a
    # value given before it when it is not repeated.
    for subparser in (serve, pull, export, imp):
        _add_log_level(subparser, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level is not None and args.log_level not in LOG_LEVELS:  # from the env: argparse checks only flags
        parser.error(f"{LOG_LEVEL_ENV}={args.log_level!r}: choose one of {', '.join(LOG_LEVELS)}")
    logs.configure(args.log_level or ("INFO" if args.command in ("serve", "pull") else "WARNING"))
    try:
        if args.command == "pull":
            from embedrank.cli.pull import pull

            specs = model_specs.parse_all(args.model)
            if not specs:
                parser.error(f"pull: give at least one --model (or {model_specs.MODELS_ENV})")
            asyncio.run(pull(specs, Path(args.model_repository)))
            return 0
        if args.command == "serve":
            config = config_mod.from_namespace(args)
            if config.log_format != "text":
                logs.configure(args.log_level or "INFO", config.log_format)
            specs = model_specs.parse_all(args.model)
            from embedrank.cli.pull import pull

            if config.processes > 1:
                from embedrank.server.supervise import supervise

                asyncio.run(pull(specs, config.model_repository))  # before the processes start
                return supervise(config, args.log_level or "INFO")
            from embedrank.server.app import serve as run_server

            asyncio.run(run_server(config, (lambda: pull(specs, config.model_repository)) if specs else None))
            return 0
        return export_cli.run(args)
    except EmbedRankError as exc:
        print(f"embedrank {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

