"""Compute that writes the store: the Python API behind the commands.

Each module here runs one kind of experiment and records it as runs in the store; the layers below
(data, models, the engine, pruning, interpolation) know nothing about files.
"""
from .train import TrainOptions, train

__all__ = ["TrainOptions", "train"]
