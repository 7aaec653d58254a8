"""The `embedrank` command: `serve` and `export`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from embedrank.server import config as config_mod
from embedrank.server.errors import EmbedRankError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="embedrank", description=__doc__)
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default: INFO for serve, WARNING for export)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Serve every model of a model repository over gRPC.")
    config_mod.add_arguments(serve)
    serve.add_argument("--port-file", help="Write the bound port here once serving (useful with --port 0).")

    export = sub.add_parser("export", help="Export a sentence-transformers checkpoint into a model repository.")
    try:
        from embedrank.exporter.cli import add_arguments as add_export_arguments
    except ImportError:  # the server-only install has no exporter
        add_export_arguments = None
    if add_export_arguments is not None:
        add_export_arguments(export)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or ("INFO" if args.command == "serve" else "WARNING")).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        if args.command == "serve":
            from embedrank.server.app import serve as run_server

            asyncio.run(run_server(config_mod.from_namespace(args), port_file=args.port_file))
            return 0
        from embedrank.exporter.cli import run as run_export

        return run_export(args)
    except EmbedRankError as exc:
        print(f"embedrank {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
