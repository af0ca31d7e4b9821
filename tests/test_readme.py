"""Every code block of README.md runs, so a documented example can never break unnoticed.

Blocks fenced as bash/sh/shell or python run in order, in one scratch directory (so a block may use
the runs an earlier one made, as a reader following the README would), in two variants:

- `test_readme_block` (default suite): each block with the substitutions of FAST applied, printed
  with the test's output, which shrink the work to seconds: the bundled 8×8 digits for MNIST (so
  no real data is needed), a few iterations for every training length, one IMP level, one replicate. The
  commands, flags and run names are otherwise those of the README.
- `test_readme_block_verbatim` (slow; real-data blocks skip when the data is absent): the blocks
  exactly as written, `../shared/data` being the shared data folder (the README's relative path is
  only right from a clone beside it).

Shell lines are run as a shell would, but `landscape ...` in this process (importing torch once
instead of per command, `$NAME` from an earlier `NAME=value` line), here-documents and blocks with
background jobs in bash (the jobs stopped when the block ends), `source .venv/bin/activate` as a no-op (this is that environment) and
`make` dry (`make -n`) in the default variant; anything else goes to bash. `--open` is checked by
recording the URL instead of starting a browser.
"""
from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import webbrowser
from pathlib import Path

import pytest

from conftest import REPO, SHARED

README = REPO / "README.md"
SHELLS = ("bash", "sh", "shell")

# (pattern, replacement, why): applied to every block of the default variant.
FAST = [
    (r"(?<!fashion-)\bmnist\b", "digits", "the bundled 8×8 digits instead of MNIST (no download)"),
    (r"--steps \S+", "--steps 20it", "20 iterations per run"),
    (r"--eval-every \S+", "--eval-every 10it", "evaluate every 10 iterations"),
    (r"--rewind [1-9]\S*", "--rewind 10it", "rewind within the 30 iterations"),
    (r"--pretrain-steps \S+", "--pretrain-steps 10it", "pre-train 10 iterations"),
    (r"--levels \d+", "--levels 1", "one IMP level"),
    (r"--runs \d+", "--runs 2", "two scoring runs"),
    (r"--replicates (?:[3-9]|\d\d+)\b", "--replicates 2", "at most two replicates (a pair, for blocks that compare r0 with r1)"),
    (r"-S\d+\b", "-S2", "... and the scores run's name says so"),
    (r"--at 1ep", "--at 10it", "score at 10 iterations (within the 20)"),
    (r"-at1ep-", "-at10it-", "... and the scores run's name says so"),
    (r"--start \S+ --end \S+ --every \S+", "--start 2it --end 12it --every 2it", "prune within the 20 iterations"),
    (r"(\w[\w-]*)@[2-9]\b", r"\1@1", "the one level there is"),
    (r"--checkpoint-at 0,1ep,2ep,end", "--checkpoint-at 0,5it,10it,end", "checkpoints within the 20 iterations"),
    (r"--grid \d+x\d+", "--grid 5x5", "a 5×5 loss surface"),
]
TRAINING = ("train", "imp", "scores", "diet", "siblings")
# Appended to geometry commands (after FAST, so `--steps` stays Lanczos steps): a 64-example loss and
# a handful of Lanczos steps and probes instead of 2,000 examples and a hundred of each.
GEOMETRY = {"hessian": "--examples 64 --steps 12 --probes 4 --density-probes 2 --density-steps 12",
            "surface": "--examples 64"}


def blocks() -> list[tuple[int, str, str]]:
    """(line number, language, code) of every fenced block of the README."""
    out, lines = [], README.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^```(\w*)\s*$", lines[i])
        if match:
            start, lang = i + 1, match.group(1)
            i += 1
            while not lines[i].startswith("```"):
                i += 1
            if lang in SHELLS or lang == "python":
                out.append((start, lang, "\n".join(lines[start:i])))
        i += 1
    return out


BLOCKS = blocks()
IDS = [f"line{line}-{lang}" for line, lang, _ in BLOCKS]


def fast(code: str, lang: str) -> str:
    for pattern, replacement, _ in FAST:
        code = re.sub(pattern, replacement, code)
    if lang in SHELLS:
        code = "\n".join(_shorten(line) for line in _lines(code))
    return code


def _shorten(line: str) -> str:
    command = _landscape_command(line)
    if command in TRAINING and "--steps" not in line:
        # A training command that keeps its recipe's length (tens of thousands of steps) gets 20 too.
        return re.sub(r"\blandscape (\S+)", r"landscape \1 --steps 20it", line, count=1)
    if command in GEOMETRY:
        return re.sub(r"\blandscape (\S+)", rf"landscape \1 {GEOMETRY[command]}", line, count=1)
    return line


def _lines(code: str) -> list[str]:
    """Shell lines, continuations joined."""
    return [line for line in code.replace("\\\n", " ").splitlines() if line.strip()]


def _landscape_command(line: str) -> str | None:
    words = [w for w in shlex.split(line, comments=True) if "=" not in w.split("-")[0]]
    return words[1] if len(words) > 1 and words[0] == "landscape" else None


def needs_real_data(code: str) -> bool:
    return "shared/data" in code


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One scratch directory for all blocks of a variant, the current directory while they run."""
    return tmp_path_factory.mktemp("readme")


@pytest.fixture
def in_workdir(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    return opened


def run_shell(code: str, dry_make: bool) -> None:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    if _background(code):
        # Background jobs (a Dask scheduler and workers) belong to the shell that started them: the
        # whole block goes to bash, as a reader pastes it; jobs it leaves running are stopped when it
        # ends, and the fixed port becomes a free one.
        script = "trap 'kill $(jobs -p) 2>/dev/null || true; wait || true' EXIT\n" + code.replace("8786", str(_free_port()))
        subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=True, env={**os.environ, "PATH": path})
        return
    variables: dict[str, str] = {}   # `NAME=value` lines, as the shell would keep them
    for kind, text in _segments(code):
        if kind == "heredoc":   # writes a file: bash, as a reader pastes it
            subprocess.run(["bash", "-euo", "pipefail", "-c", text], check=True,
                           env={**os.environ, **variables, "PATH": path})
        else:
            run_line(text, variables, dry_make)


def _segments(code: str) -> list[tuple[str, str]]:
    """("heredoc", lines) for each here-document with its command, ("line", line) for the rest."""
    out, lines, i = [], _lines(code), 0
    while i < len(lines):
        match = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", lines[i])
        if not match:
            out.append(("line", lines[i]))
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == match.group(1))
        out.append(("heredoc", "\n".join(lines[i:end + 1])))
        i = end + 1
    return out


def run_line(line: str, variables: dict[str, str], dry_make: bool) -> None:
    """One shell line: `landscape ...` in this process (torch imported once), the rest in bash."""
    from typer.main import get_command

    from landscape.cli.errors import run_guarded
    from landscape.cli.main import app

    expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), line)
    words = shlex.split(expanded, comments=True)
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    if not words:
        variables.update(env)
        return
    print(f"$ {line}")
    if words[0] == "landscape":
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            code_ = run_guarded(get_command(app), words[1:])
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        assert code_ == 0, f"`{line}` exited {code_}"
    elif words[:2] == ["source", ".venv/bin/activate"]:
        return   # this test runs inside that environment
    elif words[0] == "make":
        targets = [w for w in words[1:] if "=" not in w]
        if dry_make or "test" in targets:   # the suite does not run itself
            cmd = ["make", "-n", "-C", str(REPO), *words[1:]]
        else:
            cmd = ["make", "-C", str(REPO), *words[1:], f"DEMO_STORE={Path.cwd() / 'demo-store'}"]
        subprocess.run(cmd, check=True, env={**os.environ, **env})
    else:
        path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
        subprocess.run(["bash", "-c", line], check=True, env={**os.environ, **variables, **env, "PATH": path})


def _background(code: str) -> bool:
    return any(re.search(r"(?<!&)&\s*(#.*)?$", line) for line in _lines(code))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_block(lang: str, code: str, dry_make: bool) -> None:
    code = code.replace("../shared/data", str(SHARED))
    print(code)
    if lang == "python":
        sys.path.insert(0, os.getcwd())   # as `python` run in the reader's folder: modules written there import
        try:
            exec(compile(code, f"{README.name} block", "exec"), {"__name__": "__readme__"})
        finally:
            sys.path.remove(os.getcwd())
    else:
        run_shell(code, dry_make)


@pytest.mark.parametrize("line,lang,code", BLOCKS, ids=IDS)
def test_readme_block(line, lang, code, in_workdir):
    run_block(lang, fast(code, lang), dry_make=True)
    if "--open" in code:
        assert in_workdir and in_workdir[-1].startswith("file://")


@pytest.mark.slow
@pytest.mark.parametrize("line,lang,code", BLOCKS, ids=IDS)
def test_readme_block_verbatim(line, lang, code, in_workdir):
    if needs_real_data(code) and not (SHARED / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not found at {SHARED}: set LANDSCAPE_SHARED_DATA to the shared data folder")
    run_block(lang, code, dry_make=False)


def test_fast_variant_changes_only_lengths_and_dataset():
    """The default variant's substitutions leave every command and flag of the README in place."""
    for _, lang, code in BLOCKS:
        flags = set(re.findall(r"--[a-z-]+", code))
        assert flags <= set(re.findall(r"--[a-z-]+", fast(code, lang)))
