"""References to networks in the store, and where their histories meet.

    RUN                    a training run's final weights (RUN is an ID, a unique ID prefix or a name),
                           or an imported network (`landscape import`; its one checkpoint is step 0)
    RUN:STEP               its checkpoint at STEP: 500it, 2ep, 5k or end
    IMP@L                  level L of an IMP run: the ticket of replicate 0, final weights
                           (IMP@0 is the dense network)
    IMP@L/r1               ... of replicate 1
    IMP@L/reinit           ... a control instead of the ticket (reinit, random-prune, rescaled-reinit)
    IMP@L/reinit/r1:STEP   all of it, at a checkpoint of that member

A run of kind `aligned` (`landscape align`: a network permuted to match another) is a network
too: RUN (or RUN:end) names its weights, with its permuted mask.

Every experiment that takes a network (lmc, siblings, instability, and those to come) resolves
it here, so the syntax means the same thing everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError, StoreError
from ..steps import Step
from ..store import Run, Store
from ..train.config import TrainConfig
from .names import open_run

ROLES = ("ticket", "reinit", "random-prune", "rescaled-reinit")
# Runs that hold a network's weights as checkpoints: trained here, or imported from elsewhere.
NETWORK_KINDS = ("train", "imported", "aligned")  # the kinds that hold a network

REFERENCE_SYNTAX = "RUN, RUN:STEP (e.g. 3f9a1c:500it, run:end) or IMP@LEVEL[/ROLE][/rR][:STEP] (e.g. 7be204@3, 7be204@3/r1)"


@dataclass(frozen=True)
class Endpoint:
    """A network in the store: a training run and one of its checkpoints."""

    ref: str            # as written
    run: Run            # the training run whose weights these are
    step: int           # the iteration of the checkpoint
    step_given: bool    # whether the reference named a step
    imp: Run | None = None   # for IMP@L references: the IMP run, level, role and replicate
    level: int | None = None
    role: str | None = None
    replicate: int | None = None

    @property
    def canonical(self) -> str:
        return f"{self.run.id}:{self.step}it"

    @property
    def label(self) -> str:
        where = f"{self.run.name} ({self.run.id}) at {self.step}it"
        if self.imp is None:
            return where
        member = self.role if self.level else "dense"
        return f"{self.imp.name}@{self.level} {member} r{self.replicate}: {where}"

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(network_config(self.run))


def network_config(run: Run) -> dict:
    """The training configuration of the network a run holds (an aligned run keeps its source's)."""
    return run.config["network"] if run.kind == "aligned" else run.config


def resolve_endpoint(store: Store, text: str) -> Endpoint:
    """The network a reference names (see the module docstring for the syntax)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("empty network reference", f"write {REFERENCE_SYNTAX}")
    text = text.strip()
    run_text, colon, step_text = text.rpartition(":")
    if not colon:
        run_text, step_text = text, None
    if not run_text:
        raise ConfigError(f"cannot read {text!r} as a network reference", f"write {REFERENCE_SYNTAX}")
    run_text, at, level_text = run_text.rpartition("@")
    if not at:
        run_text, level_text = level_text, None
    run = open_run(store, run_text)
    imp = level = role = replicate = None
    if level_text is not None:
        if run.kind != "imp":
            raise ConfigError(f"{run_text} is a {run.kind} run, but RUN@LEVEL names a level of an IMP run",
                              f"write {REFERENCE_SYNTAX}")
        imp, (level, role, replicate) = run, _parse_level(level_text, text)
        run = _imp_member(store, imp, level, role, replicate)
    elif run.kind == "imp":
        raise ConfigError(f"{run_text} is an IMP run: name one of its levels",
                          f"e.g. {run_text}@1 for the level-1 ticket, {run_text}@0 for the dense network")
    elif run.kind not in NETWORK_KINDS:
        raise ConfigError(f"{run_text} is a {run.kind} run, not a trained network",
                          "name a training run, an imported or aligned network or an IMP level")
    total = int(run.plan.get("total_steps", max(run.checkpoint_steps, default=0)))
    if step_text is None or step_text.strip().lower() == "end":
        step = total
    else:
        step = Step.parse(step_text).resolve(int(run.plan.get("iters_per_epoch", 1)))
    if step not in run.checkpoint_steps:
        have = ", ".join(f"{s}it" for s in run.checkpoint_steps) or "none"
        what = "has not finished: it has no final checkpoint" if step == total and step_text is None \
            else f"has no checkpoint at {step}it"
        raise StoreError(f"run {run.id} ({run.name}) {what} (it has: {have})",
                         "choose a stored step, or retrain with --checkpoint-at")
    return Endpoint(text, run, step, step_text is not None, imp, level, role, replicate)


def _parse_level(spec: str, text: str) -> tuple[int, str, int]:
    parts = [p.strip() for p in spec.split("/")]
    if not parts[0].isdigit():
        raise ConfigError(f"cannot read {text!r}: {parts[0]!r} is not a level number", f"write {REFERENCE_SYNTAX}")
    level, role, replicate = int(parts[0]), "ticket", 0
    for part in parts[1:]:
        if part[:1] == "r" and part[1:].isdigit():
            replicate = int(part[1:])
        elif part in ROLES or part == "dense":
            role = "ticket" if part == "dense" else part
        else:
            raise ConfigError(f"cannot read {text!r}: {part!r} is neither a replicate (r0, r1...) nor a role "
                              f"({', '.join(ROLES)})", f"write {REFERENCE_SYNTAX}")
    return level, role, replicate


def _imp_member(store: Store, imp: Run, level: int, role: str, replicate: int) -> Run:
    levels = sorted(int(n) for n in imp.sections("levels"))
    if level not in levels:
        raise StoreError(f"IMP run {imp.id} ({imp.name}) has no level {level} (it has levels "
                         f"{', '.join(map(str, levels)) or 'none'})", "choose a finished level")
    record = imp.section(f"levels/{level:03d}")
    ids = record.get(role) or []
    if not ids:
        have = [r for r in ROLES if record.get(r)]
        raise StoreError(f"level {level} of IMP run {imp.id} has no {role} (it has: {', '.join(have)})",
                         "choose the ticket or a control it trained")
    if replicate >= len(ids):
        raise StoreError(f"IMP run {imp.id} has {len(ids)} replicate(s); r{replicate} does not exist",
                         "use r0" if len(ids) == 1 else f"use r0..r{len(ids) - 1}")
    return store.open(ids[replicate])



def lineage(store: Store, run: Run, step: int) -> list[tuple[str, int, int]]:
    """The segments of training that led to (run, step), oldest first: (run ID, from, to).

    A run that started from another run's checkpoint continues that run's history; one whose
    start weights were redrawn (reinit controls) or partly replaced (a fresh output layer) starts
    a history of its own.
    """
    segments = []
    while True:
        start = run.config.get("start")
        linked = bool(start) and not run.config.get("reinit") and not start.get("fresh")
        segments.append((run.id, int(start["step"]) if start else 0, step))
        if not linked or not store.exists(start["run"]):
            break
        run, step = store.open(start["run"]), int(start["step"])
    return segments[::-1]


def common_parent(store: Store, a: Endpoint, b: Endpoint) -> tuple[str, int] | None:
    """The latest checkpoint on both histories (siblings: where they were spawned; an IMP ticket
    and its dense run: the rewind point), or None."""
    parent = None
    for (ra, _, ta), (rb, _, tb) in zip(lineage(store, a.run, a.step), lineage(store, b.run, b.step)):
        if ra != rb:
            break
        parent = (ra, min(ta, tb))
        if ta != tb:
            break
    if parent is not None and parent[1] not in store.open(parent[0]).checkpoint_steps:
        return None
    return parent



__all__ = ["Endpoint", "network_config", "resolve_endpoint", "lineage", "common_parent", "NETWORK_KINDS", "ROLES",
           "REFERENCE_SYNTAX"]
