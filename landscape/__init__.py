"""landscape: loss-landscape diagnostics for lottery-ticket research.

The Python API for notebooks:

    import landscape as ls
    config = ls.recipe("lenet_300_100", "mnist", steps="2ep")
    runs = ls.train(config, store="landscape-store", data_dir="../shared/data")
    run = ls.Store("landscape-store").open(runs[0].id)
    run.curves["test/acc"], run.metrics["final/test/acc"], run.checkpoint(0).model

    scores = ls.scores(ls.ScoresConfig(config, method="el2n", at="1ep", runs=10), data_dir="../shared/data")
    scores.arrays("scores")["score"]              # one per training example; higher is harder
    from landscape.api.diet import diet             # (landscape.diet is the package of the scores' maths)
    run = diet(config, ls.DietRequest(subset="easy", fraction=0.1, pretrain_steps="500it",
                                      scores_from=scores.id, then_imp=ls.ImpPlan(levels=8)))
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
    if name in ("scores", "DietRequest", "ImpPlan"):
        from .api import diet, scores
        return getattr(scores if name == "scores" else diet, name)
    if name == "ScoresConfig":
        from .diet import ScoresConfig
        return ScoresConfig
    if name in ("export_network", "import_network"):
        from .api import export, imported
        return getattr(export if name == "export_network" else imported, name)
    if name in ("Store", "Run"):
        from . import store
        return getattr(store, name)
    if name in ("report", "write_report"):
        from . import report
        return report.write_report if name == "write_report" else report
    raise AttributeError(name)


__all__ = ["UserError", "train", "TrainOptions", "recipe", "TrainConfig", "Store", "Run", "scores", "ScoresConfig",
           "DietRequest", "ImpPlan", "export_network", "import_network", "__version__"]
