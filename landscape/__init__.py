"""landscape: loss-landscape diagnostics for lottery-ticket research.

The Python API for notebooks:

    import landscape as ls
    config = ls.recipe("lenet_300_100", "mnist", steps="2ep")
    runs = ls.train(config, store="landscape-store", data_dir="../shared/data")
    run = ls.Store("landscape-store").open(runs[0].id)
    run.curves["test/acc"], run.metrics["final/test/acc"], run.checkpoint(0).model
"""
__version__ = "0.1.0"

from .errors import UserError  # noqa: E402


def __getattr__(name):
    # Heavy imports (torch, h5py) load on first use, so `landscape --help` stays fast.
    if name in ("train", "TrainOptions"):
        from . import api
        return getattr(api, name)
    if name in ("recipe", "TrainConfig"):
        from .train import config
        return getattr(config, name)
    if name in ("Store", "Run"):
        from . import store
        return getattr(store, name)
    if name in ("report", "write_report"):
        from . import report
        return report.write_report if name == "write_report" else report
    raise AttributeError(name)


__all__ = ["UserError", "train", "TrainOptions", "recipe", "TrainConfig", "Store", "Run", "__version__"]
