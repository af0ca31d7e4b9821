import os
from pathlib import Path

# The networks in tests are tiny: one thread is faster than two, and immune to the slowdown that
# spinning OpenMP threads suffer when the cores are shared. Subprocesses inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LANDSCAPE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """Tests never read the user's store, data root or cache."""
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LANDSCAPE_STORE", raising=False)
    monkeypatch.delenv("LANDSCAPE_DATA", raising=False)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not found at {SHARED}: set LANDSCAPE_SHARED_DATA to the shared data folder")
    return SHARED


class CliResult:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli_in_process(capsys, monkeypatch):
    """`landscape ARGS` as the installed command runs it (the same guard: one line and exit code 2 on
    bad input), but in this process, so a test pays for importing torch once, not per command."""
    from typer.main import get_command

    from landscape.cli.errors import run_guarded
    from landscape.cli.main import app

    def run(*args, env=None, check=None) -> CliResult:
        capsys.readouterr()
        with monkeypatch.context() as patch:
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            code = run_guarded(get_command(app), [str(a) for a in args])
        out = capsys.readouterr()
        if check is not None:
            assert code == check, out.err
        return CliResult(code, out.out, out.err)

    return run
