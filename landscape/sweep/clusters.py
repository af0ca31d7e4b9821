"""Where a sweep runs: a LocalCluster here, an existing Dask cluster by address, or SLURM jobs."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class SlurmOptions:
    jobs: int = 1
    cores: int = 1
    memory: str = "4GB"
    walltime: str = "01:00:00"
    queue: str | None = None
    gpus_per_job: int = 0
    adaptive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def default_workers(threads_per_task: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, threads_per_task))


def local_cluster(workers: int | None, threads_per_task: int, resources: dict[str, float] | None = None,
                  tasks_per_worker: int = 1):
    """Worker processes on this machine, each running `tasks_per_worker` tasks of `threads_per_task` threads."""
    from distributed import LocalCluster

    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers} must be at least 1")
    if threads_per_task < 1:
        raise ConfigError(f"--threads-per-task {threads_per_task} must be at least 1")
    n = workers or default_workers(threads_per_task)
    threads = str(threads_per_task)
    return LocalCluster(n_workers=n, threads_per_worker=tasks_per_worker, processes=True,
                        dashboard_address=":0" if _has_dashboard() else None, silence_logs=logging.ERROR,
                        resources=resources, env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})


def _has_dashboard() -> bool:
    try:
        import bokeh  # noqa: F401  (the dashboard needs it; without it there is none to offer)
    except ImportError:
        return False
    return True


def connect(address: str, timeout_s: float = 10.0):
    """A client of the cluster at `address`; one line if nothing answers there."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"no Dask scheduler answered at {address} within {timeout_s:g}s ({type(exc).__name__})",
                          "start one with `dask scheduler` (and workers with `dask worker ADDRESS`), "
                          "or check the address") from None
    except ValueError as exc:
        raise ConfigError(f"cannot read the scheduler address {address!r} ({exc})",
                          "write tcp://HOST:8786") from None


def slurm_cluster(options: SlurmOptions, threads_per_task: int, scale: bool = True):
    """A dask-jobqueue SLURMCluster: each job one worker with `cores` cores (and GPUs as a resource)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ConfigError("--cluster slurm needs dask-jobqueue", "pip install 'landscape[slurm]'") from None
    if options.jobs < 1 or options.cores < 1:
        raise ConfigError("--jobs and --cores must be at least 1")
    tasks = max(1, options.cores // threads_per_task)
    directives, worker_args = [], ["--nthreads", str(tasks)]
    env = [f"export OMP_NUM_THREADS={threads_per_task}", f"export MKL_NUM_THREADS={threads_per_task}"]
    if options.gpus_per_job:
        directives.append(f"--gres=gpu:{options.gpus_per_job}")
        worker_args += ["--resources", f"GPU={options.gpus_per_job}"]
    cluster = SLURMCluster(cores=options.cores, processes=1, memory=options.memory, walltime=options.walltime,
                           queue=options.queue, job_extra_directives=directives, worker_extra_args=worker_args,
                           job_script_prologue=env, scheduler_options={"dashboard_address": None}
                           if not _has_dashboard() else {}, **options.extra)
    if not scale:
        return cluster
    if options.adaptive:
        cluster.adapt(minimum_jobs=0, maximum_jobs=options.jobs)
    else:
        cluster.scale(jobs=options.jobs)
    return cluster


def dashboard(client) -> str | None:
    """The dashboard's address, when the scheduler serves one."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:  # a scheduler that cannot tell: no address to print
        return None
    return client.dashboard_link if "dashboard" in services else None


def worker_resources(client) -> list[dict[str, float]]:
    return [dict(w.get("resources") or {}) for w in client.scheduler_info().get("workers", {}).values()]


def check_resources(client, wanted: dict[str, float]) -> None:
    """Refuse at once a request that no worker can satisfy (Dask would wait forever)."""
    if not wanted:
        return
    offers = worker_resources(client)
    if not offers:
        return  # no workers yet (a queued SLURM job): they are checked as they come
    for name, amount in wanted.items():
        best = max((o.get(name, 0) for o in offers), default=0)
        if best < amount:
            have = ", ".join(sorted({f"{k}={v:g}" for o in offers for k, v in o.items()})) or "none"
            raise ConfigError(f"tasks ask for {name}={amount:g} but no worker offers that much "
                              f"(worker resources: {have})",
                              f"start workers with `dask worker ... --resources {name}=1`, or lower "
                              f"--gpus-per-task" if name == "GPU" else "start workers that offer it")
