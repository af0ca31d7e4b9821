"""The command line as a user meets it: help with examples, one-line errors with exit code 2, the
store unchanged by bad input, and a killed training run that resumes to the same result."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from landscape.store import Store

SMALL = ["--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "30it", "--batch-size", "32",
         "--eval-every", "10it", "--checkpoint-at", "0,10it,end"]


def landscape(*args, env=None, check=None):
    proc = subprocess.run([sys.executable, "-m", "landscape.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


def snapshot(root: Path):
    return {p.name: p.read_bytes() for p in root.glob("*.h5")} if root.exists() else {}


@pytest.mark.parametrize("command", [["train"], ["imp"], ["ls"], ["show"], ["report"], ["models"], ["data", "fetch"],
                                     ["data", "list"], ["export"], ["import"]])
def test_every_command_has_help_with_an_example(command, cli_in_process):
    out = cli_in_process(*command, "--help", check=0).stdout
    assert "Example" in out and "landscape" in out


def test_the_installed_command_helps_and_refuses_bad_input_in_one_line(tmp_path):
    """The process a user starts: help on stdout, a bad option one line on stderr, exit code 2."""
    assert "Example" in landscape("train", "--help", check=0).stdout
    proc = landscape("train", "--dataset", "synthetic", "--bogus", "--store", str(tmp_path / "store"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "No such option" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "store").exists()


def test_no_command_declares_an_option_twice():
    """Two options with one name on a command: click parses only the last one, and the other is
    silently ignored (`hessian --json` and `surface --json` printed tables this way)."""
    import typer.main

    from landscape.cli.main import app

    def commands(cmd, path=()):
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield " ".join(path), cmd
        for name, sub in (subs or {}).items():
            yield from commands(sub, (*path, name))

    found = list(commands(typer.main.get_command(app)))
    assert len(found) > 20 and any(name == "hessian" for name, _ in found)
    twice = {}
    for name, cmd in found:
        opts = [o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]
        if len(opts) != len(set(opts)):
            twice[name] = sorted({o for o in opts if opts.count(o) > 1})
    assert not twice, twice


def test_train_show_ls_report(tmp_path, cli_in_process):
    store = tmp_path / "store"
    out = cli_in_process("train", *SMALL, "--store", str(store), check=0).stdout
    [run] = Store(store).runs()
    assert run.id in out and run.complete and run.checkpoint_steps == [0, 10, 30]
    assert run.curves["step"].tolist() == [0, 10, 20, 30]
    assert run.config["seeds"] == {"init": 0, "data_order": 0, "augment": 0}
    assert run.environment["torch"] == torch.__version__
    listing = cli_in_process("ls", "--store", str(store), check=0).stdout
    assert run.id in listing and "complete" in listing
    shown = cli_in_process("show", run.id[:6], "--store", str(store), check=0).stdout
    assert "optim.lr" in shown and "final/test/acc" in shown and "0it, 10it, 30it" in shown
    report = tmp_path / "r.html"
    cli_in_process("report", run.name, "--store", str(store), "--out", str(report), check=0)
    assert report.stat().st_size > 1_000_000  # plotly.js inlined
    # the same command again reuses the finished run: the file is not touched
    before = run.path.stat().st_mtime_ns
    cli_in_process("train", *SMALL, "--store", str(store), check=0)
    assert run.path.stat().st_mtime_ns == before


def test_replicates_train_as_one_population_of_separate_runs(tmp_path, cli_in_process):
    store = tmp_path / "store"
    cli_in_process("train", *SMALL, "--replicates", "3", "--name", "pop", "--store", str(store), check=0)
    runs = {r.name: r for r in Store(store).runs()}
    assert sorted(runs) == ["pop-r0", "pop-r1", "pop-r2"]
    assert [runs[f"pop-r{i}"].config["seeds"]["init"] for i in range(3)] == [0, 1, 2]
    # member 1 of the population equals a separate run with seed 1
    cli_in_process("train", *SMALL, "--seed", "1", "--store", str(tmp_path / "alone"), check=0)
    [alone] = Store(tmp_path / "alone").runs()
    assert alone.id == runs["pop-r1"].id
    a, b = alone.checkpoint(30).model, runs["pop-r1"].checkpoint(30).model
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory):
    """A store holding one small finished run, trained once for the tests that copy it."""
    from typer.main import get_command

    from landscape.cli.errors import run_guarded
    from landscape.cli.main import app

    store = tmp_path_factory.mktemp("trained") / "store"
    assert run_guarded(get_command(app), ["train", *SMALL, "--store", str(store)]) == 0
    return store


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "alexnet", "--dataset", "synthetic"], "unknown model"),
    (["train", "--dataset", "imagenet"], "unknown dataset"),
    (["train", "--dataset", "mnist", "--data-dir", "{tmp}/nodata"], "MNIST"),
    (["train", "--dataset", "synthetic", "--steps", "ten"], "cannot read 'ten' as a step"),
    (["train", "--dataset", "synthetic", "--lr", "-0.1"], "learning rate"),
    (["train", "--dataset", "synthetic", "--steps", "10it", "--store", "{tmp}/file/store"], "cannot write to the store"),
    (["train", "--dataset", "synthetic", "--checkpoint-at", "5ep", "--steps", "1ep"], "beyond the end"),
    (["train", "--dataset", "synthetic", "--from", "nope:0"], "no run 'nope'"),
    (["train", "--dataset", "synthetic", "--bogus"], "No such option"),
    (["show", "deadbeef"], "no run 'deadbeef'"),
    (["report", "deadbeef"], "no run 'deadbeef'"),
    (["data", "fetch", "imagenet"], "imagenet"),
])
def test_bad_input_is_one_line_exit_2_and_the_store_unchanged(tmp_path, trained_store, cli_in_process, args, message):
    (tmp_path / "file").write_text("")
    store = tmp_path / "store"
    shutil.copytree(trained_store, store)
    before = snapshot(store)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--store" not in args and args[0] != "data":
        args += ["--store", str(store)]
    proc = cli_in_process(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(store) == before


def test_truncated_run_file_is_a_one_line_error(tmp_path, trained_store, cli_in_process):
    store = tmp_path / "store"
    shutil.copytree(trained_store, store)
    [path] = store.glob("*.h5")
    path.write_bytes(path.read_bytes()[:2000])
    proc = cli_in_process("show", path.stem, "--store", str(store))
    assert proc.returncode == 2 and "damaged" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_killed_run_resumes_to_the_same_result(tmp_path, cli_in_process):
    """kill -9 in the middle of training, rerun the same command: identical final weights."""
    args = ["train", "--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "12ep", "--batch-size", "16",
            "--eval-every", "1ep", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.02"]
    cli_in_process(*args, "--store", str(tmp_path / "straight"), check=0)
    [straight] = Store(tmp_path / "straight").runs()

    store = tmp_path / "killed"
    env = {**os.environ, "LANDSCAPE_SAVE_INTERVAL": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "landscape.cli.main", *args, "--store", str(store)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until some epochs are stored, then kill mid-run
        files = list(store.glob("*.h5"))
        if files:
            try:
                run = Store(store).open(files[0].stem)
                if run.resume_step and run.resume_step >= 3 * run.plan["iters_per_epoch"]:
                    break
            except Exception:
                pass
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = Store(store).open(straight.id)
    assert not interrupted.complete and interrupted.resume_step < interrupted.plan["total_steps"]

    cli_in_process(*args, "--store", str(store), check=0)
    resumed = Store(store).open(straight.id)
    assert resumed.complete
    a, b = straight.checkpoint(straight.checkpoint_steps[-1]).model, resumed.checkpoint(resumed.checkpoint_steps[-1]).model
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.curves["step"].tolist() == straight.curves["step"].tolist()
    for key in ("val/loss", "test/acc", "train/loss"):
        assert resumed.curves[key].tolist() == pytest.approx(straight.curves[key].tolist(), nan_ok=True)
