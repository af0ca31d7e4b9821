"""Where a request runs: its store, device and data, resolved once, in one place.

Every entry point of the api (train, imp, lmc, instability, scores, diet, and inspecting) starts
from a `Context`, so the rules are the same everywhere: a store for reading must exist and be a
directory; a store for writing is created and must be writable; `--device auto` is the GPU when
there is one; datasets are loaded once per context (see requests.DataCache).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError
from ..store import Run, Store, store_root

if TYPE_CHECKING:  # torch is imported only by the entry points that compute
    import torch

    from .requests import DataCache


def readable_store(root: str | Path | None = None) -> Store:
    """The store at `root` (else $LANDSCAPE_STORE, else ./landscape-store), which must exist."""
    path = store_root(root)
    if path.is_file():
        raise StoreError(f"the store {path} is a file, not a directory of runs",
                         "pass the store's directory with --store or LANDSCAPE_STORE")
    if not path.exists():
        raise StoreError(f"no store at {path} (the directory does not exist)",
                         "pass the store's directory with --store or LANDSCAPE_STORE; `landscape train` creates one")
    return Store(path)


@dataclass
class Context:
    """The store, device and data cache of one request."""

    store: Store
    device_name: str = "auto"
    data_dir: str | None = None
    _device: "torch.device | None" = field(default=None, repr=False)
    _data: "DataCache | None" = field(default=None, repr=False)

    @classmethod
    def for_reading(cls, store: str | Path | None = None) -> "Context":
        return cls(readable_store(store))

    @classmethod
    def for_writing(cls, store: str | Path | None = None, device: str = "auto",
                    data_dir: str | None = None, wait_s="default") -> "Context":
        s = Store(store, wait_s=wait_s)
        s.ensure_writable()
        return cls(s, device, data_dir)

    @classmethod
    def of(cls, options) -> "Context":
        """The context of a `TrainOptions` (store, device, data_dir), for writing."""
        return cls.for_writing(options.store, options.device, options.data_dir, getattr(options, "wait_s", "default"))

    @property
    def device(self) -> "torch.device":
        if self._device is None:
            from .train import resolve_device

            self._device = resolve_device(self.device_name)
        return self._device

    @property
    def data(self) -> "DataCache":
        """Evaluation splits, loaded once per dataset for this context."""
        if self._data is None:
            from .requests import DataCache

            self._data = DataCache(self.data_dir, self.device)
        return self._data

    def open(self, ref: str) -> Run:
        """A run by ID, ID prefix, name or alias."""
        from .names import open_run

        return open_run(self.store, ref)


__all__ = ["Context", "readable_store"]
