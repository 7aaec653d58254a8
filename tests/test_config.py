"""One source of configuration: flags, env vars, validation with messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedrank.server import config
from embedrank.model.errors import ConfigError


def test_flags_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDRANK_MAX_BATCH_TOKENS", "1234")
    monkeypatch.setenv("EMBEDRANK_MODEL_REPOSITORY", "/srv/models")
    cfg = config.parse(["--port", "0", "--device", "cpu", "--allow-fp16-on-cpu"])
    assert cfg.max_batch_tokens == 1234 and cfg.model_repository == Path("/srv/models")
    assert cfg.port == 0 and cfg.device is config.Device.CPU and cfg.allow_fp16_on_cpu
    assert config.parse(["--max-batch-tokens", "99"]).max_batch_tokens == 99  # the flag wins over the env


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--max-batch-tokens", "-1"], "--max-batch-tokens must be >= 0"),
        (["--port", "70000"], "--port must be 0..65535"),
        (["--min-batch-fill", "1.5"], "--min-batch-fill must be within 0..1"),
        (["--runtime-nice", "20"], "--runtime-nice must be 0..19"),
        (["--max-inputs-per-request", "100", "--max-inflight-inputs", "10"], "could never be admitted"),
        (["--threads", "x"], "--threads: cannot read 'x'"),
    ],
)
def test_bad_settings_say_what_to_fix(args: list[str], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(["--model-repository", "/m", *args])
    assert words in info.value.message


def test_threads_and_workers_follow_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # One single-threaded batch per core; a lone query on its own session over up to 4 cores.
    for cores, threads, workers, lone in ((2, 1, 2, 2), (8, 1, 8, 4), (16, 1, 16, 4), (1, 1, 1, 1)):
        monkeypatch.setattr(config.ServerConfig, "cores", property(lambda self, n=cores: n))
        cfg = config.ServerConfig(Path("/m"))
        assert (cfg.runtime_threads, cfg.runtime_workers, cfg.lone_threads) == (threads, workers, lone)
    assert config.ServerConfig(Path("/m"), small_batch_tokens=0).lone_threads == 0
    monkeypatch.setattr(config.ServerConfig, "cores", property(lambda self: 16))
    assert config.ServerConfig(Path("/m"), workers=2).runtime_threads == 8
    cfg = config.ServerConfig(Path("/m"), threads=1)
    assert (cfg.runtime_threads, cfg.runtime_workers) == (1, 16)
    cuda = config.ServerConfig(Path("/m"), device=config.Device.CUDA)
    assert (cuda.runtime_threads, cuda.runtime_workers, cuda.lone_threads) == (1, 4, 0)


def test_auth_token_file_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        config.ServerConfig(Path("/m"), auth_token_file=str(empty)).auth_tokens()
    with pytest.raises(ConfigError, match="cannot read it"):
        config.ServerConfig(Path("/m"), auth_token_file=str(tmp_path / "missing")).auth_tokens()


def test_a_container_cpu_limit_caps_the_cores(tmp_path: Path) -> None:
    """cgroup v2 cpu.max: a quota of 1.5 CPUs counts as 2; "max" or no file means no limit."""
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")
    assert config.cgroup_cpu_limit(limit) == 2
    limit.write_text("max 100000\n")
    assert config.cgroup_cpu_limit(limit) is None
    assert config.cgroup_cpu_limit(tmp_path / "missing") is None
    limit.write_text("garbage")
    assert config.cgroup_cpu_limit(limit) is None


def test_cores_follow_the_cgroup_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "cgroup_cpu_limit", lambda: 1)
    cfg = config.ServerConfig(Path("/m"))
    assert (cfg.cores, cfg.runtime_threads, cfg.runtime_workers) == (1, 1, 1)
