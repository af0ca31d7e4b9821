"""The HDF5 run store: one index file per run plus its parts; compute writes it, reports read it."""
from .store import Checkpoint, Run, RunSummary, RunWriter, Store, store_root

from .curves import Curve  # noqa: E402

__all__ = ["Checkpoint", "Curve", "Run", "RunSummary", "RunWriter", "Store", "store_root"]
