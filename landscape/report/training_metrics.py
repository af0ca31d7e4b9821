"""Training metrics under today's names, for runs stored before and after issue 9.

Runs stored before issue 9 hold the running average of the (augmented) training minibatches under
train/*; newer ones hold it under train_running/*, and train/* is the network evaluated on the
un-augmented training split. Reports read every run through these two functions.
"""
from __future__ import annotations

from .framework import Run

_RUNNING = ("loss", "acc")


def honest_curves(curves: dict) -> dict:
    """Curves under today's names: an old run's train/* (a running average) becomes train_running/*."""
    if any(f"train_running/{k}" in curves for k in _RUNNING) or not any(f"train/{k}" in curves for k in _RUNNING):
        return curves
    out = {k: v for k, v in curves.items() if not k.startswith("train/")}
    out.update({f"train_running/{k}": curves[f"train/{k}"] for k in _RUNNING if f"train/{k}" in curves})
    return out


def honest_metrics(run: Run) -> dict:
    """Metrics under today's names: an old run's final/train/* (a running average) becomes
    final/train_running/*."""
    metrics = getattr(run, "metrics", None)
    metrics = metrics if isinstance(metrics, dict) else {}
    curves = getattr(run, "curves", None) or {}
    if any(f"train_running/{k}" in curves for k in _RUNNING):
        return metrics
    return {(k.replace("final/train/", "final/train_running/") if k.startswith("final/train/") else k): v
            for k, v in metrics.items()}
