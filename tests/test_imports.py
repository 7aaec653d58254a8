import subprocess
import sys


def test_server_import_does_not_pull_torch_or_the_exporter() -> None:
    code = (
        "import sys, embedrank.server.app, embedrank.server.cli, embedrank.client;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('torch','transformers','sentence_transformers')"
        " or m.startswith('embedrank.exporter.pipeline')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_help_works_without_exporter_dependencies() -> None:
    result = subprocess.run([sys.executable, "-m", "embedrank.server.cli", "serve", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "--max-batch-tokens" in result.stdout and "EMBEDRANK_MAX_BATCH_TOKENS" in result.stdout
