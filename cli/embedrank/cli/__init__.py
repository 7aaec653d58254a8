"""The `embedrank` command: `serve` (embedrank.server) and `export` (embedrank.exporter).

It stands above both; neither imports the other, nor this.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from embedrank.cli import logs
from embedrank.exporter import cli as export_cli
from embedrank.server import config as config_mod
from embedrank.model.errors import EmbedRankError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_LEVEL_ENV = "EMBEDRANK_LOG_LEVEL"


def _add_log_level(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, default=default,
        help=f"DEBUG, INFO, WARNING or ERROR (default: INFO for serve, WARNING for export) [env {LOG_LEVEL_ENV}]",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the tests check the READMEs' commands against it."""
    parser = argparse.ArgumentParser(prog="embedrank", description=__doc__)
    _add_log_level(parser, default=os.environ.get(LOG_LEVEL_ENV))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Serve every model of a model repository over gRPC.")
    config_mod.add_arguments(serve)

    export = sub.add_parser("export", help="Export a sentence-transformers checkpoint into a model repository.")
    export_cli.add_arguments(export)
    # --log-level also after the sub-command (`embedrank serve --log-level DEBUG`); SUPPRESS keeps a
    # value given before it when it is not repeated.
    for subparser in (serve, export):
        _add_log_level(subparser, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level is not None and args.log_level not in LOG_LEVELS:  # from the env: argparse checks only flags
        parser.error(f"{LOG_LEVEL_ENV}={args.log_level!r}: choose one of {', '.join(LOG_LEVELS)}")
    logs.configure(args.log_level or ("INFO" if args.command == "serve" else "WARNING"))
    try:
        if args.command == "serve":
            config = config_mod.from_namespace(args)
            if config.log_format != "text":
                logs.configure(args.log_level or "INFO", config.log_format)
            if config.processes > 1:
                from embedrank.server.supervise import supervise

                return supervise(config, args.log_level or "INFO")
            from embedrank.server.app import serve as run_server

            asyncio.run(run_server(config))
            return 0
        return export_cli.run(args)
    except EmbedRankError as exc:
        print(f"embedrank {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

