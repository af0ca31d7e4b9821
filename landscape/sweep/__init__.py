"""Sweeps: grids of experiments run on Dask (a LocalCluster, any cluster by address, or SLURM).

spec.py reads the TOML file, flags.py parses each grid point with its command's own CLI flags,
plan.py checks and keys the tasks, task.py is what a worker runs, run.py submits them stage by
stage, collect.py ships run files for workers without the store, clusters.py builds the cluster,
progress.py shows what is happening. The store is the only shared state.
"""
from .clusters import SlurmOptions
from .run import SweepResult, TaskReport, sweep
from .spec import Spec, load_spec

__all__ = ["sweep", "SweepResult", "TaskReport", "SlurmOptions", "Spec", "load_spec"]


# `landscape.sweep(spec)` is the API, and `landscape.sweep` is also this package once anything has
# imported it (the attribute is then the module, not the function): calling the module calls sweep.
def _install_call() -> None:
    import sys
    import types

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return sweep(*args, **kwargs)

    sys.modules[__name__].__class__ = _CallableModule


_install_call()
