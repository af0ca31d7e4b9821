"""The HDF5 run store: one index file per run plus its parts; compute writes it, reports read it."""
from .store import Checkpoint, Run, RunSummary, RunWriter, Store, store_root

__all__ = ["Checkpoint", "Run", "RunSummary", "RunWriter", "Store", "store_root"]
