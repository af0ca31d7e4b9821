"""`landscape prune`, `landscape gmp` and `landscape imp --retrain` as a user meets them: help with
examples, and every bad input of issue 15 refused in one line with exit code 2, nothing written."""
import pytest
import typer

from landscape.cli.errors import run_guarded
from landscape.cli.main import app

COMMAND = typer.main.get_command(app)
TRAIN = ["--dataset", "synthetic", "--steps", "30it", "--batch-size", "32"]


def cli(capsys, *args):
    code = run_guarded(COMMAND, list(args))
    return code, capsys.readouterr()


@pytest.mark.parametrize("command", ["prune", "gmp", "imp"])
def test_help_has_examples(capsys, command):
    with pytest.raises(SystemExit):
        COMMAND.main(args=[command, "--help"], prog_name="landscape")
    out = capsys.readouterr().out
    assert "Example" in out and f"landscape {command}" in out


@pytest.mark.parametrize("args, message", [
    (["prune", "--density", "0.2,1.5"], "density 1.5 is outside (0, 1)"),
    (["prune", "--density", "0"], "density 0.0 is outside (0, 1)"),
    (["prune", "--method", "obd", "--density", "0.1"], "unknown pruning method 'obd'"),
    (["prune", "--method", "synflow", "--iterations", "0", "--density", "0.1"], "SynFlow iterations 0"),
    (["prune", "--controls", "retrain", "--density", "0.1"], "unknown control 'retrain'"),
    (["prune", "--examples-per-class", "0", "--density", "0.1"], "--examples-per-class 0"),
    (["imp", "--retrain", "finetune", "--retrain-steps", "0"], "--retrain-steps 0 must be positive"),
    (["imp", "--retrain", "lr-rewind", "--retrain-steps", "31it"], "longer than the schedule"),
    (["imp", "--transfer-init", "trained"], "--transfer-init applies to a transferred ticket"),
    (["gmp", "--final-density", "0.1", "--start", "20it", "--end", "10it"], "not before its end"),
    (["gmp", "--final-density", "0.5", "--initial-density", "0.4"], "not below the initial density"),
    (["gmp", "--final-density", "0.1", "--end", "40it"], "not before the end of training"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, message):
    store = tmp_path / "store"
    code, captured = cli(capsys, *args, *TRAIN, "--store", str(store))
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], captured.err
    assert not list(store.glob("*.h5")) if store.exists() else True
