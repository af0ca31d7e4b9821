"""Iterative magnitude pruning into the store: `landscape imp`.

An IMP run is an index in the store (kind "imp") over ordinary training runs: the dense run of
each replicate (level 0), then per level the ticket and its controls, each a run of its own,
trained together as one population. Levels are the unit of resumption: rerunning the same
request skips recorded levels and continues the first incomplete one, whose member runs resume
from their own last resume points; asking for more levels extends a finished run.

Transfer (Morcos et al. 2019): with `ticket_from`, the masks of levels 1..L of another IMP run, and
that run's rewound weights, are trained under this run's dataset and optimizer. A different class
count replaces the output layer (fresh init; pruned to the ticket's output density, or dense); a
different input shape adapts the images to the ticket's (see landscape.data.adapt).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from ..environment import describe
from ..errors import ConfigError
from ..imp import ImpConfig, TicketSource, level_branches, next_masks
from ..imp.levels import draw_seed
from ..imp.retrain import Retraining
from ..models import build_model
from ..prune import full_mask, layer_report, random_mask_like
from ..store import Run, Store
from ..steps import Step
from ..train.config import StartFrom, TrainConfig
from .context import Context
from .names import check_name, claim, generated
from .refs import NETWORK_KINDS
from .train import TrainOptions, load_for, phase, plan_for, resolve_val_size, tell_names, train

ROLES = ("ticket", "reinit", "random-prune", "rescaled-reinit")


def imp(config: ImpConfig, levels: int, options: TrainOptions | None = None, *,
        on_level: Callable[[Run, int], None] | None = None, **option_values) -> Run:
    """Run (or continue, or extend) IMP to `levels` levels; return the IMP run.

    `on_level(run, level)` is called as each level is recorded (levels already stored included)."""
    options = replace(options or TrainOptions(), **option_values)
    if not isinstance(levels, int) or levels < 1:
        raise ConfigError(f"--levels {levels} must be at least 1")
    config = config.validate()
    check_name(options.name)   # before the store is touched
    context = Context.of(options)
    store = context.store
    source = _check_source(store, config.ticket_from, levels) if config.ticket_from else None
    if source is not None:
        config = _adapt_to_source(config, source, options)
    if config.pretrained:
        config = _check_pretrained(store, config, options)
    template, rewind_step, retraining = _check_request(config, options)

    imp_id = config.run_id()
    claim(store, imp_id, options.name, options.rename)
    with store.writer(imp_id) as writer:
        if not store.exists(imp_id):
            writer.create(name=options.name or generated(store, imp_id, config.default_name()), kind="imp", config=config.to_dict(),
                          environment={**describe(context.device)},
                          plan={"rewind_step": rewind_step})
        run = store.open(imp_id)
        # A level whose member runs were removed (say, damaged and `landscape rm`-ed) is recomputed:
        # its surviving members are reused and the missing ones retrained, bit for bit.
        done = {int(name) for name in run.sections("levels") if _level_intact(store, run, name)}
        writer.write_section("request", attrs={"levels": levels}, run_attrs={"status": "running"})

        member_options = replace(options, name=None)
        name = run.name
        replicates = f" × {config.replicates} replicates" if config.replicates > 1 else ""
        phase(options, f"level 0/{levels} · dense{replicates}")
        dense = _level_zero(config, done, writer, member_options, name)
        if on_level:
            on_level(store.open(imp_id), 0)
        masks = {r: full_mask(template) for r in range(config.replicates)}
        tickets = dict(dense)
        for level in range(1, levels + 1):
            if level in done:
                record = store.open(imp_id).section(f"levels/{level:03d}")
                tickets = {r: rid for r, rid in enumerate(record["ticket"])}
                masks = {r: store.open(tickets[r]).mask() for r in tickets}
                if on_level:
                    on_level(store.open(imp_id), level)
                continue
            controls = len(config.controls)
            phase(options, f"level {level}/{levels} · ticket" + (f" + {controls} control{'s' * (controls > 1)}"
                                                                  if controls else "") + replicates)
            branches = []
            for r in range(config.replicates):
                if source is None:
                    previous = store.open(tickets[r])
                    final = previous.checkpoint(previous.checkpoint_steps[-1]).model
                    masks[r] = next_masks(final, masks[r], config, template, level, r)
                    base, start = retraining.branch(config.replicate(r), dense_run=dense[r], trained_run=tickets[r],
                                                    trained_step=previous.checkpoint_steps[-1])
                else:
                    base = config.replicate(r)
                    start, masks[r] = _transferred(config, source, level, r, template)
                branches += level_branches(config, level, r, base, start, masks[r])
            runs = train([b.config for b in branches], member_options, masks=[b.mask for b in branches],
                         names=[f"{name}-L{level}-{b.role}-r{b.replicate}" for b in branches])
            record = {role: [run.id for b, run in zip(branches, runs) if b.role == role]
                      for role in ROLES if any(b.role == role for b in branches)}
            tickets = {r: rid for r, rid in enumerate(record["ticket"])}
            counts = layer_report(masks[0])
            kept = sum(k for k, _ in counts.values())
            total = sum(t for _, t in counts.values())
            writer.write_section(
                f"levels/{level:03d}",
                attrs={**record, "density": kept / total, "layers": list(counts),
                       **({"iterations": retraining.iterations(level)} if source is None else {}),
                       "kept": [counts[n][0] for n in counts], "total": [counts[n][1] for n in counts]},
                run_attrs={"levels_done": max(done | {level})})
            done.add(level)
            if on_level:
                on_level(store.open(imp_id), level)
        writer.write_section("request", attrs={"levels": levels}, run_attrs={"status": "complete"})
    tell_names(store, [store.open(imp_id)], [options.name], options)
    return store.open(imp_id)


def _level_intact(store: Store, run: Run, level: str) -> bool:
    record = run.section(f"levels/{level}")
    members = [i for role in ("dense", *ROLES) for i in record.get(role) or []]
    return all(store.exists(i) and store.open(i).complete for i in members)


def _level_zero(config: ImpConfig, done: set[int], writer, options: TrainOptions, name: str) -> dict[int, str]:
    dense_configs = [config.replicate(r) for r in range(config.replicates)]
    if config.pretrained:
        # Continue from the pre-training (weights only: rewinding never restores optimizer state).
        step = int(Step.parse(config.rewind).value)
        dense_configs = [replace(c, start=StartFrom(run, step, with_optimizer=False)).validate()
                         for c, run in zip(dense_configs, config.pretrained)]
    runs = train(dense_configs, options, names=[f"{name}-L0-dense-r{r}" for r in range(config.replicates)])
    if 0 not in done:
        writer.write_section("levels/000", attrs={"dense": [r.id for r in runs], "ticket": [r.id for r in runs],
                                                  "density": 1.0}, run_attrs={"levels_done": 0})
        done.add(0)
    return {r: run.id for r, run in enumerate(runs)}


def _check_request(config: ImpConfig, options: TrainOptions) -> tuple[torch.nn.Module, int, Retraining]:
    """Everything that can be wrong with a request, checked before anything is written."""
    dataset = load_for(config.train, options.data_dir)
    plan = plan_for(replace(config.train, checkpoint_at=()), dataset)  # the rewind step is checked here
    rewind = Step.parse(config.rewind).resolve(plan.iters_per_epoch)
    if rewind >= plan.total_steps:
        raise ConfigError(f"rewind step {config.rewind} ({rewind} iterations) is not before the end of training "
                          f"({plan.total_steps} iterations)", "rewind to an earlier step, e.g. --rewind 0")
    t = config.train
    template = build_model(t.model.name, dataset.input_shape, dataset.num_classes, seed=0, init=t.model.init,
                           width=t.model.width)
    names = set(template.prunable)
    for name in [n for n, _ in config.prune.overrides] + list(config.prune.exclude):
        if name not in names:
            raise ConfigError(f"{t.model.name} has no prunable layer {name!r}",
                              f"prunable layers: {', '.join(template.prunable)}")
    return template, rewind, _retraining(config, plan, rewind)


def _retraining(config: ImpConfig, plan, rewind: int) -> Retraining:
    budget = plan.total_steps - rewind
    if config.retrain_steps is not None:
        budget = Step.parse(config.retrain_steps).resolve(plan.iters_per_epoch)
        if budget < 1:
            raise ConfigError(f"--retrain-steps {config.retrain_steps} is less than one iteration", "e.g. 2ep")
        if config.retrain == "lr-rewind" and budget > plan.total_steps:
            raise ConfigError(f"--retrain-steps {config.retrain_steps} ({budget} iterations) is longer than the "
                              f"schedule it replays ({plan.total_steps} iterations)", "use at most --steps")
    return Retraining(config.retrain, plan.total_steps, rewind, budget, plan.schedule(plan.total_steps - 1))


def _check_pretrained(store: Store, config: ImpConfig, options: TrainOptions) -> ImpConfig:
    """The pre-trained runs must be finished runs of this network on this data (a subset of it
    allowed); the rewind step becomes the step they ended at."""
    from .subsets import data_identity

    runs = [store.open(ref) for ref in config.pretrained]
    ours = resolve_val_size(config.train, load_for(config.train, options.data_dir))
    steps = set()
    for run in runs:
        if run.kind not in NETWORK_KINDS:
            raise ConfigError(f"--rewind-from {run.id} is a {run.kind} run",
                              "name a pre-training (diet) run, a training run or an imported network")
        if not run.complete:
            raise ConfigError(f"pre-training run {run.id} is not finished", "finish it first (rerun its command)")
        theirs = TrainConfig.from_dict(run.config)
        if run.kind == "imported":  # trained elsewhere: only the network and the dataset must match
            same = (theirs.model.name, theirs.model.width, theirs.data.dataset) == \
                (ours.model.name, ours.model.width, ours.data.dataset)
        else:
            same = theirs.model == ours.model and data_identity(theirs.data) == data_identity(ours.data)
        if not same:
            raise ConfigError(f"pre-training run {run.id} trained {theirs.model.name} on {theirs.data.dataset}, "
                              f"this IMP run is {ours.model.name} on {ours.data.dataset} (or splits it differently)",
                              "pre-train the same network on the same dataset and validation split")
        steps.add(run.checkpoint_steps[-1])
    if len(steps) > 1:
        raise ConfigError(f"the pre-trained runs ended at different steps ({sorted(steps)})", "pre-train them alike")
    return replace(config, pretrained=tuple(r.id for r in runs), rewind=f"{steps.pop()}it").validate()


def _check_source(store: Store, source: TicketSource, levels: int) -> Run:
    run = store.open(source.run)
    if run.kind != "imp":
        raise ConfigError(f"--ticket-from {source.run} is a {run.kind} run, not an IMP run",
                          "name an IMP run, e.g. RUN@LEVEL from `landscape ls`")
    have = sorted(int(n) for n in run.sections("levels"))
    if source.level not in have or source.level < 1:
        raise ConfigError(f"IMP run {run.id} has no level {source.level} (it has levels {have[1:] or 'none'} "
                          f"beyond the dense level 0)", "choose a finished level")
    if levels > source.level:
        raise ConfigError(f"--levels {levels} goes beyond the transferred ticket's level {source.level}",
                          f"use --levels {source.level} or less")
    return run


def _adapt_to_source(config: ImpConfig, source: Run, options: TrainOptions) -> ImpConfig:
    """The target must use the source's architecture; its images are adapted to the source's input;
    its tickets start where the source's did (its rewind step)."""
    s = ImpConfig.from_dict(source.config).train
    config = replace(config, rewind=source.config["rewind"]).validate()
    t = config.train
    if (s.model.name, s.model.width) != (t.model.name, t.model.width):
        raise ConfigError(f"the ticket is a {s.model.name} (width {s.model.width}), this run a {t.model.name} "
                          f"(width {t.model.width})", "transfer tickets between runs of the same architecture")
    source_shape = tuple(int(v) for v in _source_input_shape(source, options))
    target = load_for(t, options.data_dir)
    if target.input_shape != source_shape:
        shape = "x".join(str(v) for v in source_shape)
        config = replace(config, train=replace(t, data=replace(t.data, adapt=shape)))
    return config


def _source_input_shape(source: Run, options: TrainOptions) -> tuple[int, int, int]:
    return load_for(ImpConfig.from_dict(source.config).train, options.data_dir).input_shape


def _transferred(config: ImpConfig, source: Run, level: int, replicate: int,
                 template: torch.nn.Module) -> tuple[StartFrom, dict]:
    """Where the transferred ticket of `level` starts, and its mask on this run's network."""
    store = Store(source.path.parent)
    record = source.section(f"levels/{level:03d}")
    r = replicate % len(record["ticket"])
    ticket = store.open(record["ticket"][r])
    dense_id = source.section("levels/000")["dense"][r]
    mask = ticket.mask()
    out_name = template.output_layer
    out_bias = out_name.rsplit(".", 1)[0] + ".bias"
    fresh: tuple[str, ...] = ()
    if tuple(mask[out_name].shape) != tuple(dict(template.named_parameters())[out_name].shape):
        fresh = tuple(n for n in (out_name, out_bias) if n in dict(template.named_parameters()))
        full = full_mask(template)[out_name]
        if config.ticket_from.output == "pruned":
            density = mask[out_name].float().mean().item()
            kept = torch.zeros(full.numel(), dtype=torch.bool)
            kept[: round(density * full.numel())] = True
            shuffled = random_mask_like({out_name: kept.view_as(full)},
                                        seed=draw_seed(config.replicate(replicate).seeds, level, 7))
            mask = {**mask, out_name: shuffled[out_name]}
        else:
            mask = {**mask, out_name: full}
    if config.ticket_from.init == "trained":
        # The transfer baseline: the source's trained, pruned network, fine-tuned on this data
        # with this run's schedule from its start.
        start = StartFrom(ticket.id, ticket.checkpoint_steps[-1], with_optimizer=False, fresh=fresh, at=0)
    else:
        start = StartFrom(dense_id, int(source.plan["rewind_step"]), with_optimizer=False, fresh=fresh)
    return start, mask
