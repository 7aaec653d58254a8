import subprocess
import sys


def test_cli_help_works_without_exporter_dependencies() -> None:
    result = subprocess.run([sys.executable, "-m", "embedrank.cli", "serve", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "--max-batch-tokens" in result.stdout and "EMBEDRANK_MAX_BATCH_TOKENS" in result.stdout
