"""The training examples a configuration with a data subset trains on, from its scores run."""
from __future__ import annotations

import numpy as np

from ..diet.subset import select_subset
from ..errors import ConfigError
from ..store import Store
from ..train.config import DataConfig

# What must agree between a scores run and a run that picks examples by its scores: the same
# dataset, adapted the same way, split the same way, so that position i is the same image.
DATA_IDENTITY = ("dataset", "val_size", "split_seed", "adapt")


def data_identity(data: DataConfig | dict) -> dict:
    values = data if isinstance(data, dict) else vars(data)
    return {key: values.get(key) for key in DATA_IDENTITY}


def load_scores(store: Store, ref: str, data: DataConfig) -> tuple[str, np.ndarray, str]:
    """(run ID, score per training example, method) of scores run `ref`, checked against `data`."""
    run = store.open(ref)
    if run.kind != "scores":
        raise ConfigError(f"{ref} is a {run.kind} run, not a scores run", "name a run made by `landscape scores`")
    theirs, ours = data_identity(run.config["train"]["data"]), data_identity(data)
    if theirs != ours:
        differ = next(k for k in DATA_IDENTITY if theirs[k] != ours[k])
        raise ConfigError(f"scores run {run.id} was computed on {_describe(theirs)}, but this run trains on "
                          f"{_describe(ours)} (they differ in {differ})",
                          "compute scores on the same dataset and validation split (landscape scores)")
    return run.id, run.arrays("scores")["score"], run.section("scores")["method"]


def _describe(identity: dict) -> str:
    text = f"{identity['dataset']} (validation {identity['val_size']}, split seed {identity['split_seed']}"
    return text + (f", adapted to {identity['adapt']})" if identity["adapt"] else ")")


def subset_index(store: Store, data: DataConfig, labels: np.ndarray) -> np.ndarray:
    """Sorted positions in the training split that `data.subset` picks."""
    spec = data.subset
    scores = load_scores(store, spec.scores, data)[1] if spec.scores else None
    return select_subset(spec, labels, scores)
