"""`train`, `imp`, `scores` and `diet`: their flags as training configurations and one api call each."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Any

from ..errors import ConfigError
from . import Command, Flags, options

_TRAIN_FIELDS = ("steps", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                 "gamma", "warmup", "augment", "val_size", "split_seed", "init", "width", "eval_every",
                 "checkpoint_at")


def base_config(args: Flags, replicate: int = 0):
    """The training configuration the flags describe, for replicate `replicate` (seeds shifted)."""
    from ..train.config import recipe

    milestones = tuple(m for m in (args["milestones"] or "").split(",") if m.strip()) or None
    flat = {k: args[k] for k in _TRAIN_FIELDS}
    flat["eval_train"] = True if args.get("eval_train") else None
    seed = args["seed"] + replicate
    seeds = {k: (args[k] + replicate if args[k] is not None else seed) for k in ("init_seed", "data_seed", "augment_seed")}
    return recipe(args["model"], args["dataset"], milestones=milestones, seed=seed, **seeds, **flat)


@lru_cache(maxsize=16)
def _train_examples(dataset: str, adapt: str | None, data_dir: str | None) -> int:
    from ..api.train import load_for
    from ..train.config import recipe

    config = recipe("lenet_300_100", dataset)
    if adapt:
        config = replace(config, data=replace(config.data, adapt=adapt))
    return len(load_for(config, data_dir).train_y)


def resolved(config, data_dir: str | None):
    """`config` with its validation size resolved as the api resolves it (the run ID depends on it)."""
    from ..train.config import default_val_size

    if config.data.val_size is not None:
        return config
    n = _train_examples(config.data.dataset, config.data.adapt, data_dir)
    return replace(config, data=replace(config.data, val_size=default_val_size(n)))


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------

def train_configs(args: Flags) -> list:
    from ..store import Store
    from ..train.config import StartFrom

    if args["replicates"] < 1:
        raise ConfigError(f"--replicates {args['replicates']} must be at least 1")
    start = None
    if args.get("start_from"):  # read first: a --from the store lacks is the error to report
        run_id, step = Store(args["store"]).resolve_checkpoint(args["start_from"])
        start = StartFrom(run=run_id, step=step)
    configs = [base_config(args, r) for r in range(args["replicates"])]
    return [(replace(c, start=start) if start else c).validate() for c in configs]


def _train(args: Flags, progress=None, notify=None) -> list:
    from ..api import train

    return train(train_configs(args), options(args, progress, notify))


def _train_ids(args: Flags) -> list[str]:
    return [resolved(c, args["data_dir"]).run_id() for c in train_configs(args)]


# ------------------------------------------------------------------------------------------------
# imp
# ------------------------------------------------------------------------------------------------

def ticket_source(text: str, output: str, store: str | None):
    """`RUN@LEVEL` as a TicketSource naming the run by its ID."""
    from ..imp import TicketSource
    from ..store import Store

    run, sep, level = text.rpartition("@")
    if not sep or not run or not level.strip().isdigit():
        raise ConfigError(f"cannot read {text!r} as a ticket", "write RUN@LEVEL, e.g. 3f9a1c@5")
    return TicketSource(run=Store(store).resolve(run), level=int(level), output=output)


def prune_config(args: Flags):
    from ..imp import PruneConfig

    overrides = {}
    for item in args.get("layer_fraction") or []:
        name, sep, value = item.partition("=")
        try:
            overrides[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"cannot read --layer-fraction {item!r}", "write NAME=FRACTION, e.g. fc3.weight=0.1") from None
    if args["output_fraction"] is not None:
        overrides[output_layer(args)] = args["output_fraction"]
    exclude = tuple(e.strip() for e in (args.get("exclude") or "").split(",") if e.strip())
    return PruneConfig(fraction=args["prune_fraction"], scope=args["scope"], criterion=args["criterion"],
                       overrides=tuple(overrides.items()), exclude=exclude)


def output_layer(args: Flags) -> str:
    """The model's output layer: zoo models build anywhere, so 8x8 digits suffice; a network from
    outside is built for the dataset it will train on."""
    from ..data import data_root, load_dataset
    from ..models import build_model, model_source

    if model_source(args["model"]) is None:
        return build_model(args["model"], (1, 8, 8), 10, seed=0).output_layer
    data = load_dataset(args["dataset"], data_root(args["data_dir"]))
    return build_model(args["model"], data.input_shape, data.num_classes, seed=0, init=args["init"],
                       width=args["width"]).output_layer


def controls(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip() and c.strip() != "none")


def pretrained(ref: str, replicates: int, store: str | None) -> tuple[str, ...]:
    """`--rewind-from`: a diet run (its pre-training runs) or a training run, one per replicate."""
    from ..store import Store

    run = Store(store).open(ref)
    runs = run.section("pretrain")["runs"] if run.kind == "diet" else [run.id]
    if len(runs) < replicates:
        raise ConfigError(f"--rewind-from {ref} has {len(runs)} pre-trained run(s), not one per replicate "
                          f"({replicates})", f"use --replicates {len(runs)}, or pre-train more replicates")
    return tuple(runs[:replicates])


def imp_config(args: Flags):
    from ..imp import ImpConfig

    ticket = None
    transfer_init = args.get("transfer_init", "ticket")
    if args["ticket_from"]:
        ticket = replace(ticket_source(args["ticket_from"], args["transfer_output"], args["store"]), init=transfer_init)
    elif transfer_init != "ticket":
        raise ConfigError("--transfer-init applies to a transferred ticket", "add --ticket-from RUN@LEVEL")
    if args["rewind_from"] and args["rewind"].strip() not in ("0", "0it"):
        raise ConfigError("--rewind and --rewind-from both say where tickets rewind to",
                          "drop --rewind: with --rewind-from, tickets rewind to the end of the pre-training")
    runs = pretrained(args["rewind_from"], args["replicates"], args["store"]) if args["rewind_from"] else ()
    if args.get("start_from"):
        if args["rewind_from"] or args["rewind"].strip() not in ("0", "0it"):
            raise ConfigError("--from already says where the dense run starts and tickets rewind to",
                              "drop --rewind and --rewind-from")
        from ..store import Store

        runs = (Store(args["store"]).resolve(args["start_from"]),) * args["replicates"]
    return ImpConfig(train=base_config(args), rewind=args["rewind"], controls=controls(args["controls"]),
                     replicates=args["replicates"], ticket_from=ticket, prune=prune_config(args), pretrained=runs,
                     retrain=args.get("retrain", "weight-rewind"), retrain_steps=args.get("retrain_steps"))


def _imp(args: Flags, progress=None, notify=None, on_level=None) -> list:
    from ..api.imp import imp

    return [imp(imp_config(args), args["levels"], options(args, progress, notify), on_level=on_level)]


def _check_imp(args: Flags) -> None:
    if not isinstance(args["levels"], int) or args["levels"] < 1:
        raise ConfigError(f"--levels {args['levels']} must be at least 1")
    imp_config(args).validate()


def _imp_ids(args: Flags) -> list[str] | None:
    # A transferred or pre-trained request is adapted to its source before it has an ID.
    if args["ticket_from"] or args["rewind_from"] or args.get("start_from"):
        return None
    return [imp_config(args).validate().run_id()]


def _imp_dense(args: Flags) -> list[str]:
    """The dense level-0 runs: IMP runs differing only in how they prune share them."""
    if args["ticket_from"] or args["rewind_from"] or args.get("start_from"):
        return []
    config = imp_config(args).validate()
    return [resolved(config.replicate(r), args["data_dir"]).run_id() for r in range(config.replicates)]


def _imp_complete(store, ids: list[str], args: Flags) -> bool:
    if not store.exists(ids[0]):
        return False
    run = store.open(ids[0])
    done = [int(level) for level in run.sections("levels")]
    return run.complete and max(done, default=-1) >= args["levels"]


# ------------------------------------------------------------------------------------------------
# scores and diet
# ------------------------------------------------------------------------------------------------

def scores_config(args: Flags, score: str):
    from ..diet import ScoresConfig

    return ScoresConfig(base_config(args), method=score, at=args["at"], runs=args["runs"])


def _scores(args: Flags, progress=None, notify=None) -> list:
    from ..api.scores import scores

    return [scores(scores_config(args, args["score"]), options(args, progress, notify))]


def _scores_ids(args: Flags) -> list[str]:
    config = scores_config(args, args["score"])
    return [replace(config, train=resolved(config.train, args["data_dir"])).validate().run_id()]


def parse_offset(text: str) -> int | float:
    """`500` as 500 examples; `10%` as the fraction 0.1."""
    value = text.strip()
    try:
        if value.endswith("%"):
            return float(value[:-1]) / 100
        return int(value)
    except ValueError:
        raise ConfigError(f"cannot read --offset {text!r}", "write a count (500) or a percentage (10%)") from None


def diet_request(args: Flags):
    from ..api.diet import DietRequest, ImpPlan

    plan = ImpPlan(levels=args["levels"], prune=prune_config(args), controls=controls(args["controls"])) \
        if args["then_imp"] else None
    return DietRequest(subset=args["subset"], size=args["size"], fraction=args["fraction"],
                       offset=parse_offset(args["offset"]), balanced=args["balanced"], seed=args["subset_seed"],
                       pretrain_steps=args["pretrain_steps"], score=args["score"], scores_from=args["scores_from"],
                       score_at=args["at"], score_runs=args["runs"], replicates=args["replicates"], then_imp=plan)


def _diet(args: Flags, progress=None, notify=None, on_level=None) -> list:
    from ..api.diet import diet

    request = diet_request(args)  # first: its refusals (--offset...) are the ones to report
    return [diet(base_config(args), request, options(args, progress, notify), on_level=on_level)]


def _check_diet(args: Flags) -> None:
    base_config(args).validate()
    request = diet_request(args)
    if request.then_imp is not None:
        request.then_imp.prune.validate()


def _title(kind: str):
    return lambda args: f"{kind}{args['model']} on {args['dataset']}"


COMMANDS: dict[str, Any] = {
    "train": Command(run=_train, check=lambda a: train_configs(a) and None, predict=_train_ids, title=_title("")),
    "imp": Command(run=_imp, check=_check_imp, predict=_imp_ids, complete=_imp_complete, title=_title("IMP "),
                   shares=_imp_dense),
    "scores": Command(run=_scores, check=lambda a: scores_config(a, a["score"]).validate() and None,
                      predict=_scores_ids, title=lambda a: f"{a['score']} scores, {a['model']} on {a['dataset']}"),
    "diet": Command(run=_diet, check=_check_diet, title=lambda a: f"diet {a['subset']} {a['model']} on {a['dataset']}"),
}
