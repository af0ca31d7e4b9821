"""Which code built a run's network and data, for models and datasets from outside landscape.

A run of `--model package.module:factory` (or a registered name) records the import path, the
package version and the sha256 of the module file under `model_code` in its stored configuration,
and likewise `dataset_code`. None of it is part of the run ID: rerunning the same command after
editing the model continues or reuses the stored run, and says that the code has changed.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..data import dataset_source
from ..errors import CodeChangedWarning
from ..models import model_source
from ..train.config import TrainConfig

_FIELDS = ("target", "version", "file_sha256")


def code_record(config: TrainConfig) -> dict[str, Any]:
    """`{"model_code": ..., "dataset_code": ...}` for the parts of `config` from outside ({} for
    the zoo and the built-in datasets, so their stored configurations are as before)."""
    record = {}
    model = model_source(config.model.name)
    if model is not None:
        record["model_code"] = model.code()
    dataset = dataset_source(config.data.dataset)
    if dataset is not None:
        record["dataset_code"] = dataset.code()
    return record


def code_changes(stored: dict[str, Any], config: TrainConfig) -> list[str]:
    """What differs between the code a run recorded and the code that `config` would use now."""
    changes = []
    for key, now in code_record(config).items():
        then = stored.get(key) or {}
        what = "model" if key == "model_code" else "dataset"
        differing = [f for f in _FIELDS if then.get(f, "") != now.get(f, "")]
        if differing:
            detail = ", ".join(f"{f} {str(then.get(f, ''))[:12] or '-'} -> {str(now.get(f, ''))[:12] or '-'}"
                               for f in differing)
            changes.append(f"the {what} code of {now['target']} has changed since this run was stored ({detail})")
    return changes


def warn_if_changed(run, config: TrainConfig, action: str) -> None:
    """A CodeChangedWarning per change, naming the run and what is done with it."""
    for change in code_changes(run.config, config):
        warnings.warn(f"run {run.id} ({run.name}): {change}; {action} it as stored", CodeChangedWarning,
                      stacklevel=3)
