"""The README's "Your own model and data" example runs as written: its shell block (a module file,
IMP, LMC, export, import, IMP from the imported network), then its Python block."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def section_blocks(title: str) -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```(\w+)\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


@pytest.mark.slow  # six commands in subprocesses: about 30 s of CPU
def test_your_own_model_and_data_example_runs(tmp_path):
    blocks = section_blocks("Your own model and data")
    assert [lang for lang, _ in blocks] == ["bash", "python"]
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "LANDSCAPE_STORE": str(tmp_path / "store")}
    shell = subprocess.run(["bash", "-euo", "pipefail", "-c", blocks[0][1]], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert shell.returncode == 0, shell.stderr
    assert "level  2" in shell.stdout and "error barrier" in shell.stdout and "imported ticket.pt" in shell.stdout
    for name in ("ticket.pt", "ticket.masks.pt", "ticket.pt.json"):
        assert (tmp_path / name).is_file()
    python = subprocess.run([sys.executable, "-c", blocks[1][1]], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert python.returncode == 0, python.stderr
    assert "64%" in python.stdout  # two levels of 20% pruning leave 64% of each layer
