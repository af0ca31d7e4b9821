"""The data diet's science and bookkeeping: scores that equal their definitions, subsets of exactly
the size and order asked for, a pre-training that sees only its subset, IMP that rewinds to the
pre-trained weights, a population of S scoring runs equal to S separate runs, and bad input."""
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landscape.api.diet import DietRequest, ImpPlan, diet
from landscape.api.scores import scores
from landscape.data import device_splits, load_dataset
from landscape.diet import ForgettingCounter, ScoresConfig, el2n, grand_scores, proportional_counts, select_subset
from landscape.errors import ConfigError
from landscape.imp import ImpConfig
from landscape.models import build_model
from landscape.store import Store
from landscape.train.config import SubsetSpec, TrainConfig, recipe
from landscape.train.engine import Member, Plan, train_population


def small(**overrides):
    return recipe("lenet_300_100", "synthetic", **{**dict(steps="40it", batch_size=32, eval_every="20it",
                                                          optimizer="sgd", lr=0.05, momentum=0.9), **overrides})


# -- scores are their definitions -----------------------------------------------------------------

def test_el2n_is_the_norm_of_the_error_vector():
    logits = torch.tensor([[10.0, -10.0, -10.0], [0.0, 0.0, 0.0], [-30.0, 30.0, 0.0]])
    y = torch.tensor([0, 2, 0])
    scores_ = el2n(logits, y)
    expected = torch.stack([(torch.softmax(row.double(), 0) - F.one_hot(t, 3).double()).norm()
                            for row, t in zip(logits, y)])
    assert torch.allclose(scores_, expected)
    assert scores_[0] < 1e-8 and abs(scores_[2] - 2 ** 0.5) < 1e-8  # right: 0; confidently wrong: √2


@pytest.mark.parametrize("name, method", [("conv2", "norms"), ("conv2", "vmap"), ("vgg11", "norms"),
                                          ("resnet20", "norms"), ("lenet_300_100", "norms")])
def test_grand_equals_a_loop_of_per_example_backward_passes(name, method):
    shape = (1, 16, 16) if name.startswith("lenet") else (3, 16, 16)
    model = build_model(name, shape, 4, seed=0, width=0.25)
    model(torch.randn(32, *shape))  # BatchNorm running statistics away from their initial 0 and 1
    x, y = torch.randn(7, *shape), torch.randint(0, 4, (7,))
    fast = grand_scores(model, x, y, chunk=3, method=method)
    assert model.training  # left in the mode it was found in
    model.eval()
    slow = []
    for xi, yi in zip(x, y):
        model.zero_grad()
        F.cross_entropy(model(xi[None]), yi[None]).backward()
        slow.append(torch.sqrt(sum(p.grad.double().pow(2).sum() for p in model.parameters())))
    assert torch.allclose(fast, torch.stack(slow), rtol=1e-4)


def test_grand_falls_back_to_vmap_for_layers_it_has_no_rule_for():
    from landscape.diet.gradnorm import supports

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3))
    assert not supports(model)
    x, y = torch.randn(5, 1, 4, 4), torch.randint(0, 3, (5,))
    assert torch.allclose(grand_scores(model, x, y), grand_scores(model, x, y, method="vmap"))


def test_forgetting_counts_correct_to_incorrect_transitions():
    counter = ForgettingCounter(k=2, n=4, device=torch.device("cpu"))
    # member 0: example 0 goes right, wrong, right, wrong (2 events); example 1 never right;
    # example 2 always right; example 3 never presented. Member 1 mirrors on example 0.
    history = [[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]]
    for step, row in enumerate(history):
        idx = torch.tensor([[0, 1, 2], [0, 1, 2]])
        correct = torch.tensor([row, [1 - row[0], 1, 1]], dtype=torch.bool)
        counter.update(idx, correct)
    s = counter.scores()
    assert s[0, 0] == 2 and s[0, 2] == 0
    assert s[0, 1] == s[0, 0] + 1  # never learned: one above the most forgotten, so it ranks hardest
    assert torch.isnan(s[0, 3])
    assert s[1, 0] == 1 and s[1, 1] == 0


def test_the_engine_reports_each_batch_and_what_it_got_right():
    config = small(steps="10it", augment="none")
    data = load_dataset("synthetic", None)
    x = data.train_x[:320].float() / 255
    y = data.train_y[:320]
    seen = []

    class Hooks:
        def on_eval(self, step, metrics):
            self.metrics = metrics

        def on_checkpoint(self, step, states, *, requested):
            pass

        def on_progress(self, step):
            pass

        def on_batch(self, step, idx, correct):
            seen.append((idx.clone(), correct.clone()))

    hooks = Hooks()
    plan = Plan.make(replace(config, eval_every="10it"), 320)
    train_population(plan, [Member(build_model("lenet_300_100", (1, 8, 8), 10, seed=0), 0, 0)], x, y, [],
                     hooks=hooks)
    assert len(seen) == 10
    assert torch.equal(torch.cat([i[0] for i, _ in seen]).sort().values, torch.arange(320))  # one epoch
    accuracy = sum(c.sum().item() for _, c in seen) / 320
    assert accuracy == pytest.approx(hooks.metrics[0]["train_running/acc"])


# -- subsets ------------------------------------------------------------------------------------

def test_proportional_counts_add_up_exactly():
    sizes = np.array([5000, 4999, 1, 3333])
    for total in (1, 7, 100, 13333):
        counts = proportional_counts(total, sizes)
        assert counts.sum() == total and np.all(np.abs(counts - total * sizes / sizes.sum()) < 1)


def test_easy_and_hard_subsets_are_the_lowest_and_highest_scores_of_each_class():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [100, 200, 300, 400])
    scores_ = rng.random(1000)
    easy = select_subset(SubsetSpec("easy", 100, scores="s"), labels, scores_)
    hard = select_subset(SubsetSpec("hard", 100, scores="s"), labels, scores_)
    for subset, pick in ((easy, np.min), (hard, np.max)):
        assert len(subset) == 100 and len(set(subset)) == 100
        assert np.bincount(labels[subset]).tolist() == [10, 20, 30, 40]
    for c in range(4):
        chosen, rest = easy[labels[easy] == c], np.setdiff1d(np.flatnonzero(labels == c), easy)
        assert scores_[chosen].max() < scores_[rest].min()
    # an offset window skips the easiest of each class first
    window = select_subset(SubsetSpec("easy", 100, scores="s", offset=100), labels, scores_)
    assert not set(window) & set(easy)
    both = select_subset(SubsetSpec("easy", 200, scores="s"), labels, scores_)
    assert set(both) == set(easy) | set(window)
    # unbalanced: the globally easiest
    flat = select_subset(SubsetSpec("easy", 100, scores="s", balanced=False), labels, scores_)
    assert set(flat) == set(np.argsort(scores_)[:100])


def test_random_subsets_depend_on_their_seed_only():
    labels = np.arange(1000) % 10
    a = select_subset(SubsetSpec("random", 50, seed=1), labels)
    assert np.array_equal(a, select_subset(SubsetSpec("random", 50, seed=1), labels))
    assert not np.array_equal(a, select_subset(SubsetSpec("random", 50, seed=2), labels))
    assert np.bincount(labels[a]).tolist() == [5] * 10


def test_subsets_larger_than_the_data_are_refused():
    labels = np.arange(100) % 10
    with pytest.raises(ConfigError, match="needs more than the 100 examples"):
        select_subset(SubsetSpec("random", 90, offset=20), labels)


# -- configuration identity -----------------------------------------------------------------------

def test_new_optional_fields_leave_older_run_ids_unchanged():
    config = small()
    assert "subset" not in config.to_dict()["data"]
    assert "pretrained" not in ImpConfig(train=config).to_dict()
    # the ID of this configuration as stored before subsets existed
    assert config.run_id() == "7ccfd0562873"
    with_subset = replace(config, data=replace(config.data, subset=SubsetSpec("random", 10)))
    assert TrainConfig.from_dict(with_subset.to_dict()) == with_subset
    assert with_subset.run_id() != config.run_id()


# -- the API --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def el2n_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scores")
    return scores(ScoresConfig(small(), method="el2n", at="20it", runs=2), store=str(root)), Store(root)


def test_a_population_of_scoring_runs_equals_separate_runs(el2n_run, tmp_path):
    run, _ = el2n_run
    per_run = run.arrays("scores")["per_run"]
    seed1 = replace(small(), seeds=replace(small().seeds, init=1, data_order=1, augment=1))
    alone = scores(ScoresConfig(seed1, method="el2n", at="20it", runs=1), store=str(tmp_path))
    assert np.array_equal(alone.arrays("scores")["per_run"][0], per_run[1])
    assert np.allclose(run.arrays("scores")["score"], per_run.mean(0))


def test_forgetting_and_lmc_scores_cover_every_training_example(tmp_path):
    forgetting = scores(ScoresConfig(small(steps="2ep"), method="forgetting", runs=2), store=str(tmp_path))
    per_run = forgetting.arrays("scores")["per_run"]
    n = forgetting.section("scores")["n_train"]
    assert per_run.shape == (2, n) and np.isfinite(per_run).all() and (per_run >= 0).all()
    assert np.array_equal(per_run, np.round(per_run))  # event counts
    lmc = scores(ScoresConfig(small(), method="lmc", at="10it", runs=1), store=str(tmp_path))
    barrier = lmc.arrays("scores")["score"]
    assert barrier.shape == (n,) and (barrier >= 0).all()
    [parent, lmc_run] = lmc.section("scores")["members"]
    stored = Store(tmp_path).open(lmc_run).arrays("per_example")
    assert np.array_equal(barrier[stored["index"]], stored["barrier"])
    with pytest.raises(ConfigError, match="at least twice"):
        scores(ScoresConfig(small(), method="forgetting", runs=1), store=str(tmp_path))


def test_stored_scores_are_the_scores_of_the_stored_networks(el2n_run):
    run, store = el2n_run
    config = small()
    data = load_dataset("synthetic", None)
    train, _, _ = device_splits(data, run.config["train"]["data"]["val_size"], 0, "cpu")
    member = store.open(run.section("scores")["members"][0])
    model = build_model("lenet_300_100", (1, 8, 8), 10, seed=0)
    model.load_state_dict(member.checkpoint(20).model)
    model.eval()
    with torch.no_grad():
        expected = el2n(model(train.x), train.y).numpy()
    assert np.allclose(run.arrays("scores")["per_run"][0], expected)
    assert np.array_equal(run.arrays("scores")["label"], train.y.numpy())
    assert config.data.dataset == run.config["train"]["data"]["dataset"]
    gallery = run.arrays("gallery")
    easiest = gallery["easy_index"][gallery["easy_label"] == 3][0]
    in_class = np.flatnonzero(train.y.numpy() == 3)
    assert easiest == in_class[np.argmin(run.arrays("scores")["score"][in_class])]


def test_pretraining_sees_only_its_subset_and_imp_rewinds_to_it(el2n_run):
    run, store = el2n_run
    config = small()
    request = DietRequest(subset="easy", size=200, pretrain_steps="12it", scores_from=run.id,
                          then_imp=ImpPlan(levels=1))
    result = diet(config, request, store=str(store.root))
    index = result.arrays("subset")["index"]
    scores_ = run.arrays("scores")["score"]
    assert len(index) == 200
    assert np.array_equal(index, select_subset(SubsetSpec("easy", 200, scores=run.id), run.arrays("scores")["label"],
                                               scores_))
    [pre_id] = result.section("pretrain")["runs"]
    pre = store.open(pre_id)
    assert pre.plan["iters_per_epoch"] == 200 // 32

    # the same training done by hand on the subset's tensors gives the same weights, bitwise
    data = load_dataset("synthetic", None)
    train, _, _ = device_splits(data, pre.config["data"]["val_size"], 0, "cpu")
    x, y = train.x[torch.as_tensor(index)], train.y[torch.as_tensor(index)]
    model = build_model("lenet_300_100", (1, 8, 8), 10, seed=0)
    plan = Plan.make(TrainConfig.from_dict(pre.config), len(y))
    states = train_population(plan, [Member(model, 0, 0)], x, y, []).states
    stored = pre.checkpoint(12).model
    assert all(torch.equal(states[0].model[k], stored[k]) for k in stored)

    imp_run = store.open(result.section("imp")["run"])
    assert imp_run.config["pretrained"] == [pre_id] and imp_run.config["rewind"] == "12it"
    # the IMP configuration is the one `landscape imp` would make, so reports can compare them
    plain = ImpConfig(train=config, prune=ImpPlan().prune, rewind="12it").validate().to_dict()
    assert {**imp_run.config, "pretrained": None} == {**plain, "pretrained": None}
    dense = store.open(imp_run.section("levels/000")["dense"][0])
    assert dense.config["data"].get("subset") is None  # IMP trains on the full training split
    start = dense.checkpoint(12).model
    assert all(torch.equal(start[k], stored[k]) for k in stored)
    ticket = store.open(imp_run.section("levels/001")["ticket"][0])
    begin, mask = ticket.checkpoint(12).model, ticket.mask()
    for name, tensor in stored.items():
        assert torch.equal(begin[name], tensor * mask[name] if name in mask else tensor), name

    again = diet(config, request, store=str(store.root))
    assert again.id == result.id and again.section("pretrain")["runs"] == [pre_id]


def test_random_diet_needs_no_scores(tmp_path):
    result = diet(small(), DietRequest(subset="random", fraction=0.1, pretrain_steps="5it"), store=str(tmp_path))
    subset = result.section("subset")
    assert subset["scores"] == "" and subset["size"] == round(0.1 * subset["n_train"])
    assert [r.kind for r in Store(tmp_path).runs()].count("scores") == 0


# -- the command line -----------------------------------------------------------------------------

SMALL = ["--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "40it", "--batch-size", "32",
         "--eval-every", "20it"]


def landscape(*args):
    """The command in a subprocess, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "landscape.cli.main", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=180)


def in_process(*args) -> tuple[int, str, str]:
    """The command in this process (no interpreter start-up): exit code, stdout, stderr."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    import typer

    from landscape.cli.errors import run_guarded
    from landscape.cli.main import app

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_guarded(typer.main.get_command(app), list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", ["scores", "diet"])
def test_commands_have_help_with_examples(command):
    out = landscape(command, "--help").stdout
    assert "Example" in out and f"landscape {command}" in out


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("cli") / "store"
    code, _, err = in_process("scores", *SMALL, "--at", "10it", "--runs", "2", "--store", str(store), "--name", "sc")
    assert code == 0, err
    code, _, err = in_process("scores", "--model", "lenet_300_100", "--dataset", "synthetic-4", "--at", "0",
                              "--runs", "1", "--store", str(store), "--name", "other")
    assert code == 0, err
    return store


@pytest.mark.parametrize("args, message", [
    (["--subset", "easy", "--size", "100000", "--scores-from", "sc"], "larger than the training split"),
    (["--subset", "easy", "--fraction", "1.5", "--scores-from", "sc"], "must be in (0, 1]"),
    (["--subset", "easy", "--fraction", "0", "--scores-from", "sc"], "must be in (0, 1]"),
    (["--subset", "easy", "--fraction", "0.1", "--score", "loss"], "unknown score 'loss'"),
    (["--subset", "easy", "--fraction", "0.1", "--scores-from", "other"], "computed on synthetic-4"),
    (["--subset", "medium", "--fraction", "0.1"], "unknown subset 'medium'"),
    (["--subset", "easy", "--size", "10", "--fraction", "0.1", "--scores-from", "sc"], "either --size N or --fraction F"),
    (["--subset", "random", "--fraction", "0.5", "--offset", "60%"], "needs more than"),
    (["--subset", "random", "--fraction", "0.5", "--pretrain-steps", "40it", "--then-imp"], "leaves nothing for IMP"),
    (["--subset", "random", "--fraction", "0.5", "--pretrain-steps", "often"], "cannot read 'often'"),
])
def test_bad_diet_input_is_one_line_exit_2_and_nothing_written(cli_store, args, message):
    before = {p.name: p.read_bytes() for p in Path(cli_store).glob("*.h5")}
    code, _, err = in_process("diet", *SMALL, *args, "--store", str(cli_store))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert {p.name: p.read_bytes() for p in Path(cli_store).glob("*.h5")} == before


def test_diet_command_then_imp_and_imp_rewind_from(cli_store):
    proc = landscape("diet", *SMALL, "--subset", "easy", "--size", "100", "--scores-from", "sc", "--pretrain-steps",
                     "6it", "--name", "d1", "--store", str(cli_store))
    assert proc.returncode == 0, proc.stderr
    assert "easy subset of 100 examples" in proc.stdout and "landscape imp --rewind-from" in proc.stdout
    code, out, err = in_process("imp", *SMALL, "--levels", "1", "--controls", "none", "--rewind-from", "d1",
                                "--store", str(cli_store))
    assert code == 0, err
    assert "rewind to 6it" in out
    code, _, err = in_process("imp", *SMALL, "--levels", "1", "--rewind-from", "sc", "--store", str(cli_store))
    assert code == 2 and "is a scores run" in err
    code, _, err = in_process("imp", *SMALL, "--levels", "1", "--rewind-from", "d1", "--rewind", "5it",
                              "--store", str(cli_store))
    assert code == 2 and "--rewind and --rewind-from" in err


@pytest.mark.realdata
def test_easy_mnist_subset_from_real_scores(shared_data, tmp_path):
    """On MNIST: EL2N of an untrained LeNet scores all 55,000 training images; the easy 1% subset
    holds each digit in proportion, and a pre-training on it runs from θ0."""
    config = recipe("lenet_300_100", "mnist", steps="100it")
    run = scores(ScoresConfig(config, method="el2n", at="0", runs=1), store=str(tmp_path), data_dir=str(shared_data))
    labels = run.arrays("scores")["label"]
    assert len(labels) == 55_000 and run.arrays("gallery")["easy_x"].shape[1:] == (1, 28, 28)
    result = diet(config, DietRequest(subset="easy", fraction=0.01, pretrain_steps="20it", scores_from=run.id),
                  store=str(tmp_path), data_dir=str(shared_data))
    counts = np.array(result.section("subset")["class_counts"])
    assert counts.sum() == 550 and np.all(np.abs(counts - 550 * np.bincount(labels) / 55_000) < 1)
    assert Store(tmp_path).open(result.section("pretrain")["runs"][0]).complete
