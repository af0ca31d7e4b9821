"""`landscape sweep`: spec parsing, checks before submission, and real Dask clusters on 2 cores."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from landscape.errors import ConfigError, UserError
from landscape.store import Store
from landscape.sweep import load_spec, sweep
from landscape.sweep.spec import Produced, fill_refs

TINY = {"model": "lenet_300_100", "dataset": "digits", "steps": "12it", "batch_size": 32, "eval_every": "6it"}

MINIMAL = """
command = "train"
[options]
model = "lenet_300_100"
dataset = "digits"
steps = "30it"
[grid]
seed = [0, 1, 2, 3]
"""


def cli(*args, cwd=None, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "landscape.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def toml(options: dict) -> str:
    def value(v):
        return f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    return "\n".join(f"{k} = {value(v)}" for k, v in options.items())


def spec_text(command: str, options: dict, grid: str) -> str:
    return f'command = "{command}"\n[options]\n{toml(options)}\n[grid]\n{grid}\n'


# ------------------------------------------------------------------------------------------------
# The spec, without a cluster
# ------------------------------------------------------------------------------------------------

def test_minimal_form_expands_to_its_grid_and_dry_run_names_the_cli_run_ids(tmp_path):
    from landscape.api import train
    from landscape.calls import run_call
    from landscape.sweep.flags import parse_flags

    spec = load_spec(MINIMAL)
    assert [p["seed"] for p in spec.stages[0].points()] == [0, 1, 2, 3]
    result = sweep(MINIMAL, store=str(tmp_path / "s"), dry_run=True)
    assert [t.status for t in result.tasks] == ["missing"] * 4
    assert not (tmp_path / "s").exists()  # a dry run writes nothing
    # A grid point is the command line: the same flags, the same run.
    flags = parse_flags("train", {**spec.stages[0].points()[2], "store": str(tmp_path / "s")})
    [run] = run_call("train", flags)
    assert run.id == result.tasks[2].runs[0]
    again = sweep(MINIMAL, store=str(tmp_path / "s"), dry_run=True)
    assert [t.status for t in again.tasks] == ["missing", "missing", "stored", "missing"]
    assert train is not None


def test_grid_crosses_zip_varies_together_and_templates_fill():
    spec = load_spec("""
command = "imp"
[options]
name = "imp-s{seed}-{scope}"
[grid]
seed = [0, 1]
scope = ["layerwise", "global"]
[[zip]]
rewind = ["0", "500it"]
levels = [2, 3]
""")
    points = spec.stages[0].points()
    assert len(points) == 8
    assert {(p["rewind"], p["levels"]) for p in points} == {("0", 2), ("500it", 3)}
    from landscape.sweep.spec import fill_own
    assert fill_own(points[0])["name"] == "imp-s0-layerwise"


def test_stage_templates_expand_over_the_runs_of_an_earlier_stage():
    spec = load_spec("""
[[stage]]
name = "sibs"
command = "siblings"
[stage.options]
from = "parent:0"
[[stage]]
name = "pairs"
command = "lmc"
[stage.options]
run_a = "{sibs.runs[0]}"
run_b = "{sibs.runs[1]}"
[[stage]]
name = "each"
command = "instability"
[stage.options]
run = "{sibs.run}"
""")
    produced = {"sibs": [Produced({"from": "p:0"}, ("a1", "a2")), Produced({"from": "q:0"}, ("b1", "b2"))]}
    pairs = [fill_refs(p, spec.stages[1].refs, produced, "x") for p in spec.stages[1].points()][0]
    assert [(p["run_a"], p["run_b"]) for p in pairs] == [("a1", "a2"), ("b1", "b2")]
    each = fill_refs(spec.stages[2].points()[0], spec.stages[2].refs, produced, "x")
    assert [p["run"] for p in each] == ["a1", "a2", "b1", "b2"]
    with pytest.raises(ConfigError, match="run 5"):
        fill_refs({"run_a": "{sibs.runs[5]}"}, ("sibs",), produced, "x")


@pytest.mark.parametrize("text, message", [
    ('command = "train"\n[options\nmodel = 1\n', "line 2"),
    ('command = "teach"\n[grid]\nseed = [0]\n', "unknown command 'teach'"),
    (spec_text("train", TINY, "sed = [0, 1]"), "no option 'sed'"),
    (spec_text("train", TINY, 'optimizer = ["sgd", "adamm"]'), "optimizer=adamm"),
    (spec_text("train", TINY, "seed = []"), "empty"),
    (spec_text("train", TINY, "seed = [0]") + '[[stage]]\ncommand = "lmc"\n', "both a top-level command"),
    ('[[stage]]\ncommand = "lmc"\n[stage.options]\nrun_a = "{train.run}"\nrun_b = "x"\n', "no earlier stage named 'train'"),
])
def test_bad_input_is_refused_before_anything_is_submitted(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        sweep(path, store=str(tmp_path / "s"), client=object())  # a client it must never touch
    assert not (tmp_path / "s").exists()


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(spec_text("train", TINY, "seed = [0]"))
    proc = cli("sweep", str(path), "--store", str(tmp_path / "store"), "--collect")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "--collect needs --scheduler" in proc.stderr
    with pytest.raises(ConfigError, match="no Dask scheduler answered at tcp://127.0.0.1:9 within 1s"):
        sweep(path, store=str(tmp_path / "store"), scheduler="tcp://127.0.0.1:9", connect_timeout_s=1)
    assert not (tmp_path / "store").exists()


def test_slurm_cluster_is_built_from_the_flags():
    pytest.importorskip("dask_jobqueue")
    from landscape.sweep.clusters import SlurmOptions, slurm_cluster

    options = SlurmOptions(jobs=0 + 2, cores=8, memory="32GB", walltime="04:00:00", queue="gpu", gpus_per_job=1)
    cluster = slurm_cluster(options, threads_per_task=2, scale=False)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    sbatch = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH -p gpu" in sbatch and "#SBATCH -t 04:00:00" in sbatch and "#SBATCH --gres=gpu:1" in sbatch
    assert any(line.startswith("#SBATCH --cpus-per-task=8") for line in sbatch)
    assert any("--mem=" in line for line in sbatch)
    assert "--resources GPU=1" in script and "--nthreads 4" in script and "OMP_NUM_THREADS=2" in script


# ------------------------------------------------------------------------------------------------
# A real LocalCluster with 2 single-threaded workers
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           env={"OMP_NUM_THREADS": "1"})
    with Client(cluster) as c:
        yield c
    cluster.close()


def test_four_runs_land_resubmission_runs_none_and_duplicates_collapse(tmp_path, client):
    path = tmp_path / "s.toml"
    path.write_text(spec_text("train", TINY, "seed = [0, 1, 2, 1, 3]"))
    store = tmp_path / "store"
    result = sweep(path, client, store=str(store), status_every_s=0)
    assert [t.status for t in result.tasks] == ["done"] * 4 and sum(t.duplicates for t in result.tasks) == 1
    assert len(list(store.glob("*.h5"))) == 4 and all(r.complete for r in Store(store).runs())
    files = {p.name: p.stat().st_mtime_ns for p in store.glob("*.h5")}
    again = sweep(path, client, store=str(store), status_every_s=0)
    assert [t.status for t in again.tasks] == ["reused"] * 4 and not again.outcomes[again.tasks[0].key].pid
    assert files == {p.name: p.stat().st_mtime_ns for p in store.glob("*.h5")}


def test_imp_runs_sharing_a_dense_run_wait_for_it_and_reuse_it(tmp_path, client):
    imp = {**TINY, "levels": 1, "controls": "none"}
    path = tmp_path / "imp.toml"
    path.write_text(spec_text("imp", imp, "prune_fraction = [0.2, 0.5]"))
    result = sweep(path, client, store=str(tmp_path / "store"), status_every_s=0)
    assert [t.status for t in result.tasks] == ["done", "done"], [t.error for t in result.tasks]
    store = Store(tmp_path / "store")
    dense = {store.open(t.runs[0]).section("levels/000")["dense"][0] for t in result.tasks}
    assert len(dense) == 1  # one dense level 0, trained once, shared


def test_user_error_in_a_task_is_reported_not_retried_and_the_rest_go_on(tmp_path, client):
    spec = spec_text("train", TINY, "seed = [0]") + ""
    store = tmp_path / "store"
    sweep(spec, client, store=str(store), status_every_s=0)
    run_id = Store(store).runs()[0].id
    lmc = f"""
[[stage]]
name = "pairs"
command = "lmc"
[stage.options]
points = 3
run_a = "{run_id}:0"
[stage.grid]
run_b = ["{run_id}", "nosuchrun"]
"""
    result = sweep(lmc, client, store=str(store), status_every_s=0)
    assert [t.status for t in result.tasks] == ["done", "failed"]
    assert "no run 'nosuchrun'" in result.tasks[1].error and result.tasks[1].error.startswith("error: ")
    assert result.failed == [result.tasks[1]]


def test_a_resource_no_worker_offers_fails_at_once(tmp_path, client):
    with pytest.raises(ConfigError, match="no worker offers"):  # rather than waiting forever
        sweep(spec_text("train", TINY, "seed = [0]"), client, store=str(tmp_path / "s"), gpus_per_task=0.5)
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------------------------
# Slow: a killed worker, fake GPUs, collect mode, hand-started scheduler and workers
# ------------------------------------------------------------------------------------------------

def _weights(store: Path, run_id: str) -> dict[str, torch.Tensor]:
    run = Store(store).open(run_id)
    return run.checkpoint(run.checkpoint_steps[-1]).model


def _direct(store: Path, options: dict) -> str:
    """The same grid point run as `landscape train` would run it, in this process."""
    from landscape.calls import run_call
    from landscape.sweep.flags import parse_flags

    [run] = run_call("train", parse_flags("train", {**options, "store": str(store)}))
    return run.id


@pytest.mark.slow
def test_a_killed_worker_s_task_resumes_from_the_store_to_the_identical_result(tmp_path):
    from distributed import Client, LocalCluster

    options = {**TINY, "steps": "600it", "batch_size": 16, "eval_every": "100it"}
    env = {"OMP_NUM_THREADS": "1", "LANDSCAPE_SAVE_INTERVAL": "0.2"}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, env=env)
    client = Client(cluster)
    store = tmp_path / "store"
    holder = {}
    thread = threading.Thread(target=lambda: holder.update(result=sweep(
        spec_text("train", options, "seed = [3]"), client, store=str(store), status_every_s=0)))
    try:
        thread.start()
        killed = None
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and thread.is_alive():
            runs = [p for p in store.glob("*.h5")] if store.exists() else []
            if runs and (Store(store).open(runs[0].stem).resume_step or 0) >= 100:
                busy = [w for w, keys in client.processing().items() if keys]
                killed = client.run(os.getpid, workers=busy)[busy[0]]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        assert killed, "the run never reached a resume point"
        thread.join(300)
        result = holder["result"]
    finally:
        client.close()
        cluster.close()
    [task] = result.tasks
    assert task.status == "done" and result.outcomes[task.key].pid != killed
    reference = _direct(tmp_path / "reference", {**options, "seed": 3})
    assert reference == task.runs[0]
    ours, theirs = _weights(store, task.runs[0]), _weights(tmp_path / "reference", reference)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


@pytest.mark.slow
def test_fake_gpus_half_a_gpu_per_task_run_four_at_once(tmp_path):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                           resources={"GPU": 1}, env={"OMP_NUM_THREADS": "1"})
    with Client(cluster) as client:
        spec = spec_text("train", {**TINY, "steps": "400it", "device": "cpu"}, "seed = [0, 1, 2, 3]")
        result = sweep(spec, client, store=str(tmp_path / "store"), gpus_per_task=0.5, status_every_s=0)
        with pytest.raises(ConfigError, match="GPU=2"):
            sweep(spec, client, store=str(tmp_path / "store"), gpus_per_task=2)
    cluster.close()
    spans = [(o.started, o.ended) for o in result.outcomes.values()]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert [t.status for t in result.tasks] == ["done"] * 4, [t.error for t in result.tasks]
    assert most == 4


@pytest.mark.slow
def test_collect_mode_ships_byte_identical_run_files_back(tmp_path):
    from distributed import Client, LocalCluster

    from landscape.sweep.task import sha256

    options = {**TINY, "steps": "40it"}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        result = sweep(spec_text("train", options, "seed = [0, 1]"), client, store=str(tmp_path / "store"),
                       collect=True, status_every_s=0)
    store = tmp_path / "store"
    assert [t.status for t in result.tasks] == ["done", "done"]
    for task in result.tasks:
        files = result.outcomes[task.key].files
        [index] = [name for name in files if "/" not in name]
        assert index == f"{task.runs[0]}.h5" and len(files) > 1  # the index and its weight files
        assert all(name == index or name.startswith(f"{task.runs[0]}.parts/") for name in files)
        assert all(sha256((store / name).read_bytes()) == digest for name, (digest, _) in files.items())
        assert not any(Path(p).name.startswith("landscape-collect") for p in os.listdir(os.environ.get("TMPDIR", "/tmp"))
                       if task.key[:20] in p)
    seed1 = _direct(tmp_path / "reference", {**options, "seed": 1})
    ours, theirs = _weights(store, seed1), _weights(tmp_path / "reference", seed1)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def _readme_section() -> list[tuple[str, str]]:
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Running a study on a cluster", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def test_readme_section_has_the_sweep_file_local_run_scheduler_gpu_and_slurm():
    blocks = _readme_section()
    text = "\n".join(body for _, body in blocks)
    assert 'command = "train"' in text and "seed = [0, 1, 2, 3]" in text
    for needle in ("landscape sweep study.toml --workers 2", "dask scheduler", "dask worker", "--resources GPU=1",
                   "--cluster slurm", "flock", "os.replace", "ls.sweep("):
        assert needle in text, needle


@pytest.mark.slow
def test_readme_section_runs(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    script = ["set -e"]
    for index, (lang, body) in enumerate(_readme_section()):
        if lang in ("console", "text"):
            continue  # the SLURM example (its job script is tested above) and the GPU workers: not here
        script.append(f"export LANDSCAPE_STORE=$PWD/store-{index}")
        body = body.replace("8786", port)
        if lang == "bash":
            script.append(body)
        else:  # as a notebook runs it: no main module that worker processes would import again
            (tmp_path / f"block{index}.py").write_text(body)
            script.append(f"python -c \"exec(open('block{index}.py').read())\"")
    bin_dir = str(Path(sys.executable).parent)
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "4 to run (dry run" in out and "sweep: 4 done" in out and "sweep: 4 reused" in out
    assert out.count("sweep: 4 done") == 2  # locally, and on the hand-started workers
    assert "flock works" in out and "rename works" in out and "'done'" in out


def test_a_task_waits_for_a_run_another_process_is_writing_then_reuses_it(tmp_path):
    from landscape.calls import predict_runs
    from landscape.sweep.flags import parse_flags
    from landscape.sweep.task import Payload, run_task

    flags = parse_flags("train", {**TINY, "store": str(tmp_path / "s")})
    [run_id] = predict_runs("train", flags)
    writer = Store(tmp_path / "s").writer(run_id)  # its lock held, as by another task writing it
    threading.Timer(1.5, writer.close).start()
    started = time.time()
    outcome = run_task(Payload("k", "train", flags))
    assert outcome.status == "done" and outcome.runs == [run_id], outcome.error
    assert outcome.waited_s > 0 or outcome.ended - started >= 1.4


@pytest.mark.slow
def test_ctrl_c_cancels_the_sweep_cleanly_and_leaves_runs_resumable(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(spec_text("train", {**TINY, "steps": "20000it", "eval_every": "5000it"}, "seed = [0, 1]"))
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "landscape.cli.main", "sweep", str(path), "--store", str(store),
                             "--workers", "2", "--status-every", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "LANDSCAPE_SAVE_INTERVAL": "0.2"})
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if store.exists() and any((r.resume_step or 0) > 0 for r in Store(store).runs()):
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C on a terminal reaches the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err and "rerun the same command" in err  # one line, as for any command
    time.sleep(3)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no worker process outlives the sweep
    runs = Store(store).runs()
    assert runs and all(not r.complete for r in runs) and any(r.resume_step for r in runs)


def test_sweep_has_help_with_examples(capsys):
    from landscape.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "Examples" in out and "landscape sweep" in out and "--scheduler" in out


def test_imp_points_sharing_a_dense_run_are_ranked_so_its_first_user_runs_first(tmp_path):
    from landscape.sweep.plan import plan_stage

    spec = load_spec(spec_text("imp", {**TINY, "levels": 1}, "seed = [0, 1]\nprune_fraction = [0.2, 0.5]"))
    tasks = plan_stage(spec.stages[0], {}, {"store": str(tmp_path / "s")}, Store(tmp_path / "s"))
    assert [(t.label, t.rank) for t in tasks] == [("seed=0 prune_fraction=0.2", 0), ("seed=0 prune_fraction=0.5", 1),
                                                  ("seed=1 prune_fraction=0.2", 0), ("seed=1 prune_fraction=0.5", 1)]
    assert tasks[0].shares == tasks[1].shares != tasks[2].shares


def test_the_experiment_sweep_files_read_as_intended():
    root = Path(__file__).resolve().parents[1] / "experiments"
    imp = load_spec(root / "imp_lenet_sweep.toml")
    [stage] = imp.stages
    assert stage.command == "imp" and len(stage.points()) == 8
    assert {(p["rewind"], p["scope"]) for p in stage.points()} == {(r, s) for r in ("0", "500it")
                                                                   for s in ("layerwise", "global")}
    cifar = load_spec(root / "instability_cifar_sweep.toml")
    assert [s.command for s in cifar.stages] == ["train", "instability"] and cifar.stages[1].refs == ("parents",)
    assert cifar.stages[0].options["width"] < 1


def test_a_grid_point_s_flags_build_the_request_the_command_line_asks_for(tmp_path):
    from landscape.calls import check_call, options, predict_runs
    from landscape.calls.training import base_config, imp_config
    from landscape.sweep.flags import parse_flags

    store = str(tmp_path / "s")
    flags = parse_flags("train", {**TINY, "eval_train": True, "wait": 3, "rename": True, "name": "x", "store": store})
    assert base_config(flags) != base_config({**flags, "eval_train": False})
    where = options(flags)
    assert (where.store, where.name, where.wait_s, where.rename, where.path) == (store, "x", 3, True, "auto")

    point = {**TINY, "levels": 1, "store": store}
    finetune = parse_flags("imp", {**point, "retrain": "finetune", "retrain_steps": "6it"})
    assert (imp_config(finetune).retrain, imp_config(finetune).retrain_steps) == ("finetune", "6it")
    assert predict_runs("imp", finetune) != predict_runs("imp", parse_flags("imp", point))
    with pytest.raises(ConfigError, match="--transfer-init"):
        check_call("imp", parse_flags("imp", {**point, "transfer_init": "trained"}))
    with pytest.raises(ConfigError, match="--repair"):
        check_call("lmc", parse_flags("lmc", {"run_a": "a", "run_b": "b", "repair": True, "store": store}))


# Each swept command with its required options and some others off their defaults.
SWEPT = {
    "train": {**TINY, "from": "p:6it", "eval_train": True, "wait": 3, "name": "x", "replicates": 2},
    "imp": {**TINY, "levels": 2, "retrain": "finetune", "retrain_steps": "6it", "from": "p",
            "layer_fraction": ["fc1.weight=0.5", "fc2.weight=0.3"]},
    "scores": {**TINY, "score": "grand", "at": "6it", "runs": 3},
    "diet": {**TINY, "subset": "hard", "fraction": 0.5, "then_imp": True, "offset": "10%", "balanced": False},
    "siblings": {"from": "p:6it", "count": 3, "name": "s", "population_path": "loop"},
    "lmc": {"run_a": "a", "run_b": "b", "align": "weights", "repair": True, "points": 5, "per_example": True},
    "instability": {"run": "p", "at": "0,6it", "siblings": 3, "find_onset": True, "align": "activations"},
}
REQUIRED = {"siblings": ("from",), "lmc": ("run_a", "run_b"), "instability": ("run",)}


def test_the_command_line_and_a_grid_point_hand_the_same_flags_to_the_same_call(tmp_path, monkeypatch):
    """The CLI is a parser in front of landscape.calls: what it passes on is what a sweep passes on."""
    from dataclasses import replace

    from landscape.calls import measure, training
    from landscape.cli.main import main
    from landscape.sweep.flags import parse_flags, sweepable, to_argv

    assert sorted(SWEPT) == sweepable()
    seen = []

    def record(flags, progress=None, **hooks):
        seen.append((flags, hooks))
        raise ConfigError("recorded", "the test stops here")

    for table in (training.COMMANDS, measure.COMMANDS):
        for name, command in list(table.items()):
            monkeypatch.setitem(table, name, replace(command, run=record))
    for name, options in SWEPT.items():
        point = {**options, "store": str(tmp_path / "s")}
        with pytest.raises(SystemExit) as exit_:
            main([name, *to_argv(name, point)])
        assert exit_.value.code == 2
        flags, hooks = seen.pop()
        assert flags == parse_flags(name, point), name
        assert "notify" in hooks, name  # notes go through the CLI's console


def test_every_flag_of_a_swept_command_is_a_sweep_option_by_its_name():
    """`landscape sweep` takes each command's flags by their long name: a flag added later is sweepable."""
    import typer

    from landscape.cli.main import app
    from landscape.sweep.flags import parse_flags, sweepable

    group = typer.main.get_command(app)
    for name in sweepable():
        required = {key: "x" for key in REQUIRED.get(name, ())}
        for param in group.commands[name].params:
            long = next((o for o in param.opts if o.startswith("--")), None)
            if long is None:
                continue
            if param.is_flag:
                value, expected = not param.default, (not param.default,)
            elif param.multiple:
                value, expected = ["a=1", "b=2"], (["a=1", "b=2"],)
            else:  # 7 reads as an int, a float or a string alike
                value, expected = 7, (7, "7")
            parsed = parse_flags(name, {**required, long[2:]: value})
            assert parsed[param.name] in expected, (name, long)


def test_every_swept_command_builds_its_request_from_its_default_flags(tmp_path):
    """The calls read only flags the command has: its defaults (and required options) pass the checks."""
    from landscape.calls import check_call
    from landscape.sweep.flags import parse_flags, sweepable

    for name in sweepable():
        point = {key: "x" for key in REQUIRED.get(name, ())} or dict(TINY)
        if name == "diet":
            point["fraction"] = 0.5
        check_call(name, parse_flags(name, {**point, "store": str(tmp_path / "s")}))


def test_collect_brings_a_whole_run_back_index_and_weights(tmp_path):
    """--collect in one process: the task runs into a scratch store, and what travels back is the
    run file with every weight file it names (a run without them is damaged)."""
    from landscape.sweep.collect import receive
    from landscape.sweep.flags import parse_flags
    from landscape.sweep.task import Payload, run_task

    client = tmp_path / "client"
    flags = parse_flags("train", {**TINY, "seed": 0, "store": str(client)})
    outcome = run_task(Payload("k", "train", flags, 1, 10.0, {}, True))
    assert outcome.status == "done", outcome.error
    assert not client.exists()  # nothing written to the client's store by the task itself
    receive(Store(client), outcome.files)
    run = Store(client).open(outcome.runs[0])
    assert run.complete and len(outcome.files) > 1
    reference = _direct(tmp_path / "reference", {**TINY, "seed": 0})
    ours, theirs = _weights(client, run.id), _weights(tmp_path / "reference", reference)
    assert reference == run.id and all(torch.equal(ours[k], theirs[k]) for k in theirs)
