"""Gradual magnitude pruning: the cubic schedule's exact densities at every pruning step, pruning among
the alive weights, and a killed run resuming to the identical result (the mask is training state)."""
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from landscape.api.gmp import final_density, gmp
from landscape.errors import ConfigError
from landscape.prune.gmp import gmp_density, gmp_steps
from landscape.store import Run, Store
from landscape.train.config import GmpSpec, recipe

TRAIN = dict(steps="80it", batch_size=16, eval_every="10it", optimizer="sgd", lr=0.05, momentum=0.9, width=0.25)


def test_the_cubic_schedule():
    assert gmp_steps(10, 50, 15) == [10, 25, 40, 50]
    assert gmp_density(10, start=10, end=50, initial=1.0, final=0.1) == 1.0
    assert gmp_density(50, start=10, end=50, initial=1.0, final=0.1) == pytest.approx(0.1)
    assert gmp_density(30, start=10, end=50, initial=0.8, final=0.1) == pytest.approx(1 - (0.9 + (0.2 - 0.9) / 8))


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_densities_equal_the_cubic_schedule_at_every_pruning_step(tmp_path, scope):
    spec = GmpSpec(0.1, start="10it", end="50it", every="10it", scope=scope)
    after = ("0", "11it", "21it", "31it", "41it", "51it", "end")  # each checkpoint just after a pruning step
    [run] = gmp(recipe("lenet_300_100", "synthetic", checkpoint_at=",".join(after), **TRAIN), spec, store=str(tmp_path))
    previous = None
    for step in (10, 20, 30, 40, 50):
        state = run.checkpoint(step + 1)
        d = 0.1 if step == 50 else gmp_density(step, start=10, end=50, initial=1.0, final=0.1)
        sizes = {n: m.numel() for n, m in state.mask.items()}
        kept = {n: int(m.sum()) for n, m in state.mask.items()}
        if scope == "global":
            assert sum(kept.values()) == math.floor(d * sum(sizes.values())) if d < 1 else sum(sizes.values())
        else:
            assert all(kept[n] == (math.floor(d * sizes[n]) if d < 1 else sizes[n]) for n in sizes)
        for n, m in state.mask.items():
            assert (state.model[n][~m] == 0).all()  # pruned weights are zero
            if previous is not None:
                assert not (m & ~previous[n]).any()  # only alive weights are pruned; none revive
        previous = state.mask
    assert final_density(run) == pytest.approx(0.1, abs=1e-3)


class Cut(Exception):
    pass


def test_an_interrupted_gmp_run_resumes_identically(tmp_path, monkeypatch):
    """In-process twin of the kill -9 test below (which is slow): stop the run mid-pruning by
    raising from the progress callback, rerun, compare with an uninterrupted run bit for bit."""
    monkeypatch.setenv("LANDSCAPE_SAVE_INTERVAL", "0")
    config = recipe("lenet_300_100", "synthetic", **{**TRAIN, "steps": "120it"})
    spec = GmpSpec(0.05, start="10it", end="90it", every="10it")

    def stop(done, total):
        if done == 47:
            raise Cut

    with pytest.raises(Cut):
        gmp(config, spec, store=str(tmp_path / "cut"), progress=stop, save_interval_s=0.0)
    [cut] = Store(tmp_path / "cut").runs()
    resume = cut.resume_state()
    assert not cut.complete and resume.step == 40 and resume.mask is not None
    assert sum(int(m.sum()) for m in resume.mask.values()) < sum(m.numel() for m in resume.mask.values())
    [b] = gmp(config, spec, store=str(tmp_path / "cut"))
    [a] = gmp(config, spec, store=str(tmp_path / "straight"))
    fa, fb = a.checkpoint(120), b.checkpoint(120)
    assert all(torch.equal(fa.model[k], fb.model[k]) for k in fa.model)
    assert all(torch.equal(fa.mask[k], fb.mask[k]) for k in fa.mask)
    assert list(a.curves["test/acc"]) == list(b.curves["test/acc"])


@pytest.mark.slow
def test_a_killed_gmp_run_resumes_identically(tmp_path):
    args = ["gmp", "--dataset", "synthetic", "--steps", "300it", "--batch-size", "16", "--eval-every", "10it",
            "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--final-density", "0.05",
            "--start", "20it", "--end", "200it", "--every", "20it", "--width", "0.5"]

    def cli(store):
        return subprocess.Popen([sys.executable, "-m", "landscape.cli.main", *args, "--store", str(store)],
                                env={**os.environ, "LANDSCAPE_SAVE_INTERVAL": "0"}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    killed = tmp_path / "killed"
    proc = cli(killed)
    deadline, cut = time.time() + 240, None
    while time.time() < deadline and proc.poll() is None:
        files = list(killed.glob("*.h5"))
        if files:
            try:
                step = Run(files[0]).resume_step
            except Exception:
                step = None
            if step is not None and 70 <= step < 250:
                os.kill(proc.pid, signal.SIGKILL)
                cut = step
                break
        time.sleep(0.02)
    proc.wait()
    assert cut is not None, "the run finished before it could be killed"
    [cut_run] = Store(killed).runs()
    assert not cut_run.complete
    resume = cut_run.resume_state()
    assert resume.mask is not None and sum(int(m.sum()) for m in resume.mask.values()) < \
        sum(m.numel() for m in resume.mask.values())  # cut after pruning began
    assert cli(killed).wait(timeout=300) == 0
    assert cli(tmp_path / "straight").wait(timeout=300) == 0
    [a], [b] = Store(tmp_path / "straight").runs(), Store(killed).runs()
    assert a.id == b.id and b.complete
    fa, fb = a.checkpoint(300), b.checkpoint(300)
    assert all(torch.equal(fa.model[k], fb.model[k]) for k in fa.model)
    assert all(torch.equal(fa.mask[k], fb.mask[k]) for k in fa.mask)
    assert a.metrics["final/test/acc"] == b.metrics["final/test/acc"]


@pytest.mark.parametrize("spec, message", [
    (dict(final_density=0.1, start="50it", end="10it"), "not before its end"),
    (dict(final_density=0.1, initial_density=0.05), "not below the initial density"),
    (dict(final_density=1.5), "must be in (0, 1]"),
    (dict(final_density=0.1, end="80it"), "not before the end of training"),
])
def test_bad_gmp_requests_write_nothing(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        gmp(recipe("lenet_300_100", "synthetic", **TRAIN), GmpSpec(**{"every": "10it", **spec}), store=str(tmp_path))
    assert not list(tmp_path.glob("*.h5"))


@pytest.mark.slow
def test_vmap_and_loop_populations_prune_alike(tmp_path):
    config = recipe("lenet_300_100", "synthetic", **{**TRAIN, "steps": "40it"})
    spec = GmpSpec(0.2, start="5it", end="25it", every="5it", scope="layerwise")
    loop = gmp(config, spec, replicates=2, store=str(tmp_path / "loop"), path="loop")
    vmap = gmp(config, spec, replicates=2, store=str(tmp_path / "vmap"), path="vmap")
    for a, b in zip(loop, vmap):
        fa, fb = a.checkpoint(40), b.checkpoint(40)
        assert all(torch.equal(fa.mask[k], fb.mask[k]) for k in fa.mask)
        assert all(torch.allclose(fa.model[k], fb.model[k], atol=1e-5) for k in fa.model)
