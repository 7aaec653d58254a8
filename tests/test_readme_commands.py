"""Every shell command in every README works as written, checked against what it calls.

`embedrank ...` lines are parsed by the real CLI parser; `make` targets must exist; scripts and
their flags must exist; pip lines must install from the checkout (embedrank is not on PyPI);
grpcurl methods and JSON bodies are parsed with the real descriptors, curl routes and bodies with the
HTTP port's own route table and parsers; model names in the code
snippets must be ones that a documented step exports. The Go README's `replace` recipe is run
for real and its program is built. An unknown command fails the test: add a rule for it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from embedrank.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", *sorted((ROOT / "clients").glob("*/README.md")), *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


@dataclass
class Command:
    readme: Path
    line: str
    cwd: Path
    words: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def where(self) -> str:
        return f"{self.readme.relative_to(ROOT)}: {self.line!r}"


def blocks(readme: Path, langs: set[str]) -> Iterator[str]:
    for lang, body in FENCE.findall(readme.read_text(encoding="utf-8")):
        if lang in langs:
            yield body


def commands(readme: Path) -> Iterator[Command]:
    """Each command of each shell block, with the folder it runs in and the variables set before it."""
    variables: dict[str, str] = {}
    for body in blocks(readme, SHELL):
        cwd = readme.parent  # each block runs in the README's folder unless it says `cd`
        for line in re.sub(r"\\\n\s*", " ", body).splitlines():
            line = line.strip()
            assignment = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(\$\(.*\))", line)
            if assignment:  # NAME=$(command)
                variables[assignment.group(1)] = _assigned(assignment.group(2), cwd, readme, line)
                continue
            for part in _split(line):
                words = list(part)
                env = {}
                while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
                    name, _, value = words.pop(0).partition("=")
                    env[name] = value
                if not words:  # a plain assignment: NAME=value
                    for name, value in env.items():
                        variables[name] = _assigned(value, cwd, readme, line)
                    continue
                words = [_expand(w, variables, cwd) for w in words]
                if words[0] == "cd":
                    target = Path(words[1])
                    cwd = target if target.is_absolute() else (cwd / target if (cwd / target).is_dir() else ROOT / target)
                yield Command(readme, line, cwd, words, env)


def _split(line: str) -> Iterator[list[str]]:
    """The commands of one line, split at `&&` and `;` outside quotes; comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&")
    lexer.whitespace_split = True
    part: list[str] = []
    for token in lexer:
        if token in ("&&", ";"):
            yield part
            part = []
        else:
            part.append(token)
    if part:
        yield part


def _assigned(value: str, cwd: Path, readme: Path, line: str) -> str:
    if value == "$PWD":
        return str(cwd)
    found = re.fullmatch(r"\$\((.*)\)", value)
    if found:  # a command substitution: run it (the README's only one needs no network)
        words = shlex.split(found.group(1))
        assert words[0] == ".venv/bin/python", f"{readme.name}: {line!r}: add a rule for this substitution"
        result = subprocess.run([sys.executable, *words[1:]], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert result.returncode == 0, f"{readme.name}: {line!r} failed: {result.stderr[-2000:]}"
        return result.stdout.strip()
    return value


def _expand(word: str, variables: dict[str, str], cwd: Path) -> str:
    return re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), str(cwd) if m.group(1) == "PWD" else m.group(0)), word)


ALL = [c for readme in READMES for c in commands(readme)]


def test_the_readmes_have_commands() -> None:
    assert len(ALL) >= 20 and {c.words[0] for c in ALL} >= {"make", "embedrank", "go", "mvn", "pip"}


def _known_models() -> set[str]:
    """Model names that a documented step exports: the examples, and `--output models/NAME` lines."""
    names = set()
    for example in (ROOT / "clients" / "python" / "examples").glob("*.py"):
        text = example.read_text(encoding="utf-8")
        names |= set(re.findall(r'export_once\(.*?/ "([\w.-]+)"', text))
        for either in re.findall(r'rerank_name = "([\w.-]+)" if .* else "([\w.-]+)"', text):
            names |= set(either)
    for c in ALL:
        if c.words[:2] == ["embedrank", "export"] and "--output" in c.words:
            names.add(Path(c.words[c.words.index("--output") + 1]).name)
    return names - {"NAME"}


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]  # type: ignore[no-any-return]


def _check_embedrank(c: Command) -> None:
    synopsis = any(w.startswith("[") or "|" in w for w in c.words)
    if not synopsis:
        try:
            build_parser().parse_args(c.words[1:])
        except SystemExit as exc:
            raise AssertionError(f"{c.where()}: the CLI refuses it (exit {exc.code})") from None
        return
    sub = _subparser(c.words[1])
    options = {s: a for a in sub._actions for s in a.option_strings}
    for i, word in enumerate(c.words):
        flag = word.strip("[]")
        if flag.startswith("--"):
            assert flag in options, f"{c.where()}: no flag {flag} in `embedrank {c.words[1]}`"
            action = options[flag]
            if action.choices and i + 1 < len(c.words):
                listed = c.words[i + 1].strip("[]").split("|")
                assert set(listed) <= set(action.choices), f"{c.where()}: {flag} {listed} vs {list(action.choices)}"


def _check_script(c: Command, script: Path, args: list[str]) -> None:
    assert script.is_file(), f"{c.where()}: no such file {script}"
    text = script.read_text(encoding="utf-8")
    for word in args:
        if word.startswith("-"):
            flag = word.split("=")[0]
            assert f'"{flag}"' in text or f"{flag})" in text or f"{flag}|" in text, f"{c.where()}: {script.name} has no {flag}"


def _check_go(c: Command) -> None:
    sub = c.words[1]
    assert sub in ("mod", "work", "vet", "test", "run", "build"), f"{c.where()}: `go {sub}`: the module is not published"
    if sub == "run" and c.words[2] != ".":
        main = c.cwd / c.words[2] / "main.go"
        assert main.is_file(), f"{c.where()}: no {main}"
        text = main.read_text(encoding="utf-8")
        for word in c.words[3:]:
            if word.startswith("-"):
                assert re.search(rf'flag\.\w+\("{re.escape(word.lstrip("-"))}"', text), f"{c.where()}: no flag {word}"
            elif c.words[c.words.index(word) - 1] in ("-model", "-rerank-model"):
                assert word in _known_models(), f"{c.where()}: no documented step exports a model {word!r}"


def _check_mvn(c: Command) -> None:
    assert (c.cwd / "pom.xml").is_file(), f"{c.where()}: no pom.xml in {c.cwd}"
    if any(w.startswith("exec:java") for w in c.words):
        assert "-B" in c.words, f"{c.where()}: without -B (batch mode) Maven 3.8 colours its output with ANSI codes"
        args = next(w for w in c.words if w.startswith("-Dexec.args=")).partition("=")[2].split()
        for model in args[1:]:
            assert model in _known_models(), f"{c.where()}: no documented step exports a model {model!r}"


def _check_java(c: Command) -> None:
    assert c.words[1] == "-cp", f"{c.where()}: add a rule"
    main_class, args = c.words[3], c.words[4:]
    source = c.cwd / "src" / "main" / "java" / (main_class.replace(".", "/") + ".java")
    assert source.is_file(), f"{c.where()}: no {source}"
    for model in args[1:]:
        assert model in _known_models(), f"{c.where()}: no documented step exports a model {model!r}"


def _check_grpcurl(c: Command) -> None:
    from google.protobuf import json_format
    from google.protobuf.descriptor_pool import Default
    from grpc_health.v1 import health_pb2  # noqa: F401 (registers grpc.health.v1)

    from embedrank.v1 import classify_pb2, embed_pb2, models_pb2, rerank_pb2, tokenize_pb2  # noqa: F401 (register embedrank.v1)
    from embedrank.v1 import multivector_pb2, sparse_pb2  # noqa: F401 (register embedrank.v1)
    from embedrank.tei.v1 import tei_pb2  # noqa: F401 (registers tei.v1, TEI's gRPC API)

    last = c.words[-1]
    if last == "list":
        return
    service_name, _, method_name = last.rpartition("/")
    method = Default().FindServiceByName(service_name).FindMethodByName(method_name)
    assert method is not None, f"{c.where()}: no method {last}"
    if "-d" in c.words:
        from google.protobuf.message_factory import GetMessageClass

        json_format.Parse(c.words[c.words.index("-d") + 1], GetMessageClass(method.input_type)())


def _check_curl(c: Command) -> None:
    """`curl URL [-H ...] [-d JSON]`: the path is a route of the HTTP port (GET without -d, POST with
    it), and a body is read by the server's own parser for that route."""
    import json

    from embedrank.server.http import app

    url = next(w for w in c.words[1:] if re.match(r"^(https?://)?(localhost|127\.0\.0\.1)[:/]", w))
    path = re.sub(r"^(https?://)?[^/]+", "", url).partition("?")[0]
    body = c.words[c.words.index("-d") + 1] if "-d" in c.words else None
    method = "POST" if body is not None else "GET"
    pattern = {(m, re.sub(r"\{\w+\}", "[^/]+", p)) for m, p, _ in app.ROUTES}
    assert any(m == method and re.fullmatch(p, path) for m, p in pattern), f"{c.where()}: no route {method} {path}"
    if body is not None:
        from tests.test_openapi import check_body

        check_body(path, json.loads(body))  # the OpenAPI document's request schema and the handler's parser


def _check_docker(c: Command) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    if c.words[1] == "run":
        volume = next(w for i, w in enumerate(c.words) if c.words[i - 1] == "-v")
        mounted = volume.rpartition(":")[2]
        assert f"EMBEDRANK_MODEL_REPOSITORY={mounted}" in dockerfile, f"{c.where()}: the image does not serve {mounted}"
        port = next(w for i, w in enumerate(c.words) if c.words[i - 1] == "-p").rpartition(":")[2]
        assert f"EXPOSE {port}" in dockerfile and f"EMBEDRANK_PORT={port}" in dockerfile
    else:
        assert c.words[1] == "build" and c.words[-1] == "."


def _check_helm(c: Command) -> None:
    """`helm install NAME CHART --set a.b=v`: the chart is this repository's and every --set key is one of its values."""
    import yaml

    assert c.words[1] == "install", f"{c.where()}: only `helm install` is documented"
    chart = ROOT / c.words[3]
    assert (chart / "Chart.yaml").is_file(), f"{c.where()}: no chart at {c.words[3]}"
    values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    for i, word in enumerate(c.words):
        if c.words[i - 1] == "--set":
            node = values
            for part in word.partition("=")[0].split("."):
                assert isinstance(node, dict) and part in node, f"{c.where()}: the chart has no value {word}"
                node = node[part]


@pytest.mark.parametrize("c", ALL, ids=lambda c: f"{c.readme.relative_to(ROOT)}:{' '.join(c.words)[:60]}")
def test_readme_command(c: Command) -> None:
    program = c.words[0]
    if program == "embedrank":
        _check_embedrank(c)
    elif program == "make":
        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        for target in c.words[1:]:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{c.where()}: no make target {target}"
    elif program == "pip":
        for word in c.words[2:]:
            assert not re.match(r"^embedrank\b", word), f"{c.where()}: embedrank is not on PyPI; install from the checkout"
    elif program == ".venv/bin/python":
        _check_script(c, ROOT / c.words[1], c.words[2:])
    elif program == "bash":
        _check_script(c, ROOT / c.words[1], c.words[2:])
    elif program == "go":
        _check_go(c)
    elif program == "mvn":
        _check_mvn(c)
    elif program == "java":
        _check_java(c)
    elif program == "grpcurl":
        _check_grpcurl(c)
    elif program == "curl":
        _check_curl(c)
    elif program == "docker":
        _check_docker(c)
    elif program == "helm":
        _check_helm(c)
    elif program in ("cd", "mkdir"):
        pass  # cd is followed in commands(); a folder made just before may not exist here
    else:
        raise AssertionError(f"{c.where()}: no rule checks `{program}`; add one")


CALLS = re.compile(r'(?:\bencode|\brerank|\.Encode|\.Rerank)\w*\(\s*(?:ctx,\s*)?"([\w.-]+)"')


def test_code_snippets_use_models_that_a_step_exports() -> None:
    known = _known_models()
    assert {"minilm", "demo-reranker"} <= known, known
    used = {}
    for readme in READMES:
        for body in blocks(readme, {"python", "go", "java"}):
            for name in CALLS.findall(body):
                used[name] = readme.relative_to(ROOT)
    assert used, "no client calls found in the READMEs' code"
    unknown = {name: where for name, where in used.items() if name not in known}
    assert not unknown, f"models no documented step exports: {unknown} (known: {sorted(known)})"


@pytest.mark.slow
def test_go_readme_replace_recipe_builds_its_program(tmp_path: Path) -> None:
    """Runs the Go README's recipe (module, replace directive, tidy) and builds its program."""
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("go is not installed; CI needs it")
        pytest.skip("go is not installed")
    readme = ROOT / "clients" / "go" / "README.md"
    recipe = next(body for body in blocks(readme, SHELL) if "go mod edit -replace" in body)
    program = next(blocks(readme, {"go"}))
    hello = tmp_path / "hello"
    script = recipe.replace("/tmp/hello", str(hello)).replace("go mod tidy && go run .", "go mod tidy && go build -o hello .")
    script = script.replace("# save the program below as main.go, then:", f"cp {shlex.quote(str(tmp_path / 'main.go'))} main.go")
    (tmp_path / "main.go").write_text(program, encoding="utf-8")
    result = subprocess.run(
        ["bash", "-euc", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "GOFLAGS": "-buildvcs=false"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (hello / "hello").is_file()
