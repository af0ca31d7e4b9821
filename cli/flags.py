"""Flags shared by every command that trains: declared once, attached to each command's signature."""
from __future__ import annotations

import inspect
from typing import Annotated, Any, Callable, Optional

import typer


def _flag(name: str, annotation: Any, default: Any, help: str, *decls: str, show_default: bool = True):
    option = typer.Option(*decls, help=help, show_default=show_default)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, option])


def _recipe(name: str, annotation: Any, help: str, *decls: str):
    """A flag whose default comes from the model's recipe."""
    return _flag(name, Optional[annotation], None, f"{help} [default: recipe]", *decls, show_default=False)


RENAME = _flag("rename", bool, False, "Move --name to this run from the run that holds it (else that is an error).",
              "--rename")

TRAIN_FLAGS = [
    _flag("model", str, "lenet_300_100", "Network, e.g. lenet_300_100, conv4, resnet20 (see `landscape models`), "
          "or your own: package.module:factory."),
    _flag("dataset", str, "digits", "Dataset: mnist, cifar10, digits, mnist1d, imagefolder:PATH... (see "
          "`landscape data list`), or your own: package.module:factory."),
    _recipe("steps", str, "Training length: 500it, 2ep or 50k."),
    _recipe("batch_size", int, "Batch size."),
    _recipe("optimizer", str, "sgd, adam or adamw."),
    _recipe("lr", float, "Learning rate."),
    _recipe("momentum", float, "SGD momentum."),
    _recipe("nesterov", bool, "Nesterov momentum.", "--nesterov/--no-nesterov"),
    _recipe("weight_decay", float, "Weight decay."),
    _recipe("schedule", str, "constant, step or cosine."),
    _recipe("milestones", str, "Step-schedule milestones, e.g. 80ep,120ep."),
    _recipe("gamma", float, "Step-schedule factor."),
    _recipe("warmup", str, "Linear warm-up length, e.g. 500it."),
    _recipe("augment", str, "none, flip, crop or crop-flip (default by dataset)."),
    _recipe("val_size", int, "Validation examples held out of train (default 10%, at most 5000)."),
    _flag("split_seed", int, 0, "Seed of the train/validation split."),
    _flag("seed", int, 0, "Seed for init, data order and augmentation alike."),
    _recipe("init_seed", int, "Seed of the initial weights (default --seed)."),
    _recipe("data_seed", int, "Seed of the data order (default --seed)."),
    _recipe("augment_seed", int, "Seed of the augmentation (default --seed)."),
    _flag("replicates", int, 1, "K replicates with seeds seed..seed+K-1, trained as one population."),
    _flag("init", str, "kaiming_normal", "kaiming_normal, kaiming_uniform, glorot_normal or glorot_uniform; "
          "own keeps your model's own (seeded) initialisation."),
    _flag("width", float, 1.0, "Width multiplier of the network."),
    _flag("checkpoint_at", str, "0,end", "Steps to keep weights at, e.g. 0,100it,2ep,end."),
    _flag("eval_every", str, "1ep", "Evaluate on validation and test every this many steps."),
    _flag("eval_train", bool, False, "Also evaluate the network on the un-augmented training split at every "
          "evaluation (train/*; always done at the end). train_running/* is the running average of the "
          "training minibatches.", "--eval-train/--no-eval-train"),
    _flag("name", Optional[str], None, "A readable name for the run: up to 100 letters, digits and -_.@; on a run "
          "that exists under another name, an added name.", show_default=False),
    RENAME,
    _flag("json_", bool, False, "Print one JSON document (the run as `landscape show --json` prints it) instead of "
          "text.", "--json"),
    _flag("device", str, "auto", "cpu, cuda or auto."),
    _flag("population_path", str, "auto", "Population layout: auto, loop or vmap."),
    _flag("store", Optional[str], None, "Store directory [env LANDSCAPE_STORE; default ./landscape-store].",
          show_default=False),
    _flag("data_dir", Optional[str], None, "Data root [env LANDSCAPE_DATA; default ./data].", show_default=False),
    _flag("wait", Optional[float], None, "Seconds to wait for a run another process is writing, then reuse it "
          "[env LANDSCAPE_WAIT; default: no limit].", show_default=False),
]


def with_flags(flags: list[inspect.Parameter]) -> Callable[[Callable], Callable]:
    """Give `fn(own flags..., **flags)` these flags as keyword-only parameters."""
    def attach(fn: Callable) -> Callable:
        # eval_str: with postponed annotations the signature holds strings, and typer reads option
        # declarations (such as `--from`) from the evaluated Annotated types.
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
        fn.__signature__ = sig.replace(parameters=own + flags)
        return fn
    return attach


with_train_flags = with_flags(TRAIN_FLAGS)
