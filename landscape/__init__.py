"""landscape: loss-landscape diagnostics for lottery-ticket research.

The Python API for notebooks:

    import landscape as ls
    config = ls.recipe("lenet_300_100", "mnist", steps="2ep")
    runs = ls.train(config, store="landscape-store", data_dir="../shared/data")
    run = ls.Store("landscape-store").open(runs[0].id)
    run.curves["test/acc"].steps, run.metrics["final/test/acc"], run.checkpoint(0).model

    imp = ls.imp(ls.ImpConfig(config), levels=3, store="landscape-store", data_dir="../shared/data")
    result = ls.lmc(f"{imp.id}@1", f"{imp.id}@1/r1", store="landscape-store")  # needs --replicates 2
    scores = ls.scores(ls.ScoresConfig(config, method="el2n", at="1ep", runs=10), data_dir="../shared/data")
    scores.arrays("scores")["score"]              # one per training example; higher is harder
    run = ls.diet(config, ls.DietRequest(subset="easy", fraction=0.1, pretrain_steps="500it",
                                         scores_from=scores.id, then_imp=ls.ImpPlan(levels=8)))
    ls.to_dataframe("landscape-store")            # one row per run (needs pandas)

Every top-level name is the API object, whatever was imported before: `ls.train` is the function
even after `import landscape.train.config` (which binds the subpackage `train` on this module).
"""
__version__ = "0.1.0"

import importlib
import sys
import types

from .errors import UserError  # noqa: E402

# Name -> (module, attribute). Heavy imports (torch, h5py) load on first use, so `landscape --help`
# stays fast.
_API = {
    "train": ("landscape.api.train", "train"),
    "TrainOptions": ("landscape.api.train", "TrainOptions"),
    "recipe": ("landscape.train.config", "recipe"),
    "TrainConfig": ("landscape.train.config", "TrainConfig"),
    "imp": ("landscape.api.imp", "imp"),
    "ImpConfig": ("landscape.imp.config", "ImpConfig"),
    "PruneConfig": ("landscape.imp.config", "PruneConfig"),
    "lmc": ("landscape.api.lmc", "lmc"),
    "LmcSettings": ("landscape.api.lmc", "LmcSettings"),
    "siblings": ("landscape.api.siblings", "siblings"),
    "instability": ("landscape.api.instability", "instability"),
    "scores": ("landscape.api.scores", "scores"),
    "ScoresConfig": ("landscape.diet.config", "ScoresConfig"),
    "diet": ("landscape.api.diet", "diet"),
    "DietRequest": ("landscape.api.diet", "DietRequest"),
    "ImpPlan": ("landscape.api.diet", "ImpPlan"),
    "Store": ("landscape.store", "Store"),
    "Run": ("landscape.store", "Run"),
    "to_dataframe": ("landscape.store.frame", "to_dataframe"),
    "export_network": ("landscape.api.export", "export_network"),
    "import_network": ("landscape.api.imported", "import_network"),
    "write_report": ("landscape.report", "write_report"),
    "report": ("landscape.report", None),   # the package: report.build_report, report.write_report
    "sweep": ("landscape.sweep", "sweep"),  # a grid of experiments on Dask (the package is callable too)
}


def _load(name: str):
    module, attribute = _API[name]
    value = importlib.import_module(module)
    return value if attribute is None else getattr(value, attribute)


def __getattr__(name):
    if name in _API:
        return _load(name)
    raise AttributeError(f"module 'landscape' has no attribute {name!r}")


class _Landscape(types.ModuleType):
    """The package's module type: API names that are also subpackages (train, imp, lmc, diet) stay
    the API object. Importing a subpackage sets it as an attribute of its parent; that assignment
    lands in `_subpackages` instead of replacing the function."""


def _api_property(name: str) -> property:
    def get(module):
        return _load(name)

    def set_(module, value):
        module.__dict__.setdefault("_subpackages", {})[name] = value

    return property(get, set_)


for _name in ("train", "imp", "lmc", "diet", "report", "sweep"):
    setattr(_Landscape, _name, _api_property(_name))
sys.modules[__name__].__class__ = _Landscape

__all__ = ["UserError", "__version__", *_API]
