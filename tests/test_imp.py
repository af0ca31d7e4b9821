"""IMP's science and bookkeeping: exact sparsity, rewinding to the stored checkpoint, controls that
differ only where they should, resumption after kill -9, extension, transfer and bad input."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from landscape.api.imp import imp
from landscape.imp import ImpConfig, PruneConfig, TicketSource
from landscape.prune import layer_report, layerwise_schedule
from landscape.store import Store
from landscape.train.config import recipe


def small(rewind="0", controls=("reinit", "random-prune", "rescaled-reinit"), replicates=2, dataset="synthetic",
          **train):
    config = recipe("lenet_300_100", dataset, **{**dict(steps="60it", batch_size=32, eval_every="20it",
                                                      optimizer="sgd", lr=0.05, momentum=0.9), **train})
    return ImpConfig(train=config, rewind=rewind, controls=controls, replicates=replicates,
                     prune=PruneConfig(fraction=0.2, overrides=(("fc3.weight", 0.1),)))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("imp")
    return imp(small(rewind="20it"), 2, store=str(root)), Store(root)


def test_masks_have_exactly_the_sparsity_of_the_schedule(finished):
    run, store = finished
    sizes = {"fc1.weight": 64 * 300, "fc2.weight": 300 * 100, "fc3.weight": 100 * 10}
    schedule = layerwise_schedule(sizes, 0.2, 2, overrides={"fc3.weight": 0.1})
    for level in (1, 2):
        record = run.section(f"levels/{level:03d}")
        for rid in record["ticket"]:
            counts = layer_report(store.open(rid).mask())
            assert {n: k for n, (k, _) in counts.items()} == schedule[level]
            assert record["kept"] == [schedule[level][n] for n in record["layers"]]


def test_a_rewound_ticket_starts_from_the_dense_checkpoint(finished):
    run, store = finished
    dense = run.section("levels/000")["dense"]
    for level in (1, 2):
        record = run.section(f"levels/{level:03d}")
        for r, rid in enumerate(record["ticket"]):
            ticket = store.open(rid)
            assert ticket.config["start"]["run"] == dense[r] and ticket.config["start"]["step"] == 20
            start, mask = ticket.checkpoint(20).model, ticket.mask()
            rewound = store.open(dense[r]).checkpoint(20).model
            for name, tensor in rewound.items():
                expected = tensor * mask[name] if name in mask else tensor
                assert torch.equal(start[name], expected), name
            final = ticket.checkpoint(ticket.checkpoint_steps[-1]).model
            assert all(torch.all(final[n][~m] == 0) for n, m in mask.items())


def test_controls_differ_from_the_ticket_only_where_they_should(finished):
    run, store = finished
    record = run.section("levels/002")
    for r in range(2):
        ticket = store.open(record["ticket"][r])
        reinit = store.open(record["reinit"][r])
        rescaled = store.open(record["rescaled-reinit"][r])
        random = store.open(record["random-prune"][r])
        mask = ticket.mask()
        assert all(torch.equal(mask[n], reinit.mask()[n]) for n in mask)  # same mask
        t0, r0, s0 = (x.checkpoint(20).model for x in (ticket, reinit, rescaled))
        assert not torch.equal(t0["fc1.weight"], r0["fc1.weight"])  # fresh weights
        # rescaled-reinit is the same fresh draw, each unit scaled up by sqrt(fan-in / kept)
        kept = mask["fc2.weight"].sum(1, keepdim=True).float()
        torch.testing.assert_close(s0["fc2.weight"], r0["fc2.weight"] * torch.sqrt(300 / kept.clamp(min=1)))
        rmask = random.mask()
        assert layer_report(rmask) == layer_report(mask) and not torch.equal(rmask["fc1.weight"], mask["fc1.weight"])
        assert torch.equal(random.checkpoint(20).model["fc1.bias"], t0["fc1.bias"])  # rewound weights


def test_more_levels_extend_the_same_run(finished, tmp_path):
    run, store = finished
    first = run.section("levels/002")["ticket"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in store.root.glob("*.h5") if p.stem != run.id}
    extended = imp(small(rewind="20it"), 3, store=str(store.root))
    assert extended.id == run.id and extended.complete
    assert extended.sections("levels") == ["000", "001", "002", "003"]
    assert extended.section("levels/002")["ticket"] == first
    for p in store.root.glob("*.h5"):  # earlier member runs were reused, not retrained
        if p.name in mtimes:
            assert p.stat().st_mtime_ns == mtimes[p.name], p.name


def test_a_killed_imp_resumes_to_the_same_result(tmp_path, cli_in_process):
    args = ["imp", "--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "160it", "--batch-size", "16",
            "--eval-every", "40it", "--levels", "3", "--controls", "reinit", "--optimizer", "sgd", "--lr", "0.05"]

    def cli(store, **kw):
        return subprocess.Popen([sys.executable, "-m", "landscape.cli.main", *args, "--store", str(store)],
                                env={**os.environ, "LANDSCAPE_SAVE_INTERVAL": "0"}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, **kw)

    cli_in_process(*args, "--store", tmp_path / "straight", check=0)
    killed = tmp_path / "killed"
    proc = cli(killed)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(killed.glob("*.h5"))) < 6:  # index, dense, levels 1-2 begun
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not Store(killed).runs("imp")[0].complete  # it really was cut off mid-run
    cli_in_process(*args, "--store", killed, check=0)
    a, b = Store(tmp_path / "straight"), Store(killed)
    [ia] = a.runs("imp")
    [ib] = b.runs("imp")
    assert ia.id == ib.id and ib.complete
    for level in ("001", "002", "003"):
        ra, rb = ia.section(f"levels/{level}"), ib.section(f"levels/{level}")
        assert ra["ticket"] == rb["ticket"] and ra["reinit"] == rb["reinit"]
        for rid in ra["ticket"] + ra["reinit"]:
            wa, wb = a.open(rid), b.open(rid)
            assert wa.metrics["final/test/acc"] == wb.metrics["final/test/acc"]
            fa, fb = (w.checkpoint(w.checkpoint_steps[-1]).model for w in (wa, wb))
            assert all(torch.equal(fa[k], fb[k]) for k in fa)


def test_transfer_to_other_classes_and_input_shape(finished, tmp_path):
    run, store = finished
    target = small(dataset="synthetic-4", controls=("reinit",), replicates=1)
    config = ImpConfig(train=target.train, controls=("reinit",), ticket_from=TicketSource(run.id, 2))
    moved = imp(config, 2, store=str(store.root))
    assert moved.config["train"]["data"]["adapt"] is None  # same input shape: nothing to adapt
    ticket = store.open(moved.section("levels/002")["ticket"][0])
    source = store.open(run.section("levels/002")["ticket"][0])
    mask, source_mask = ticket.mask(), source.mask()
    assert torch.equal(mask["fc1.weight"], source_mask["fc1.weight"])
    assert mask["fc3.weight"].shape == (4, 100)  # a new output layer for 4 classes...
    density = source_mask["fc3.weight"].float().mean()
    assert abs(mask["fc3.weight"].float().mean() - density) < 0.01  # ...pruned to the ticket's density
    start = ticket.checkpoint(ticket.checkpoint_steps[0]).model
    rewound = store.open(run.section("levels/000")["dense"][0]).checkpoint(20).model
    assert torch.equal(start["fc1.weight"], rewound["fc1.weight"] * mask["fc1.weight"])
    rgb = ImpConfig(train=small(dataset="synthetic-rgb").train, controls=(), ticket_from=TicketSource(run.id, 1))
    assert imp(rgb, 1, store=str(store.root)).config["train"]["data"]["adapt"] == "1x8x8"


@pytest.mark.parametrize("args, message", [
    (["--levels", "0"], "--levels 0 must be at least 1"),
    (["--prune-fraction", "1.5"], "prune fraction 1.5"),
    (["--rewind", "10ep"], "rewind step 10ep"),
    (["--exclude", "fc9.weight"], "no prunable layer 'fc9.weight'"),
    (["--controls", "magic"], "unknown control 'magic'"),
    (["--ticket-from", "TRAIN@1"], "not an IMP run"),
    (["--ticket-from", "IMP@7"], "has no level 7"),
    (["--ticket-from", "IMP"], "RUN@LEVEL"),
])
def test_bad_input_is_one_line_exit_2_and_the_store_unchanged(finished, cli_in_process, args, message):
    run, store = finished
    train_id = run.section("levels/000")["dense"][0]
    args = [a.replace("TRAIN", train_id).replace("IMP", run.id) for a in args]
    before = {p.name: p.read_bytes() for p in store.root.glob("*.h5")}
    proc = cli_in_process("imp", "--dataset", "synthetic", "--steps", "60it", "--store", str(store.root), *args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in store.root.glob("*.h5")} == before
