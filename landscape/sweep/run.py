"""`landscape.sweep(spec)`: every task of a sweep, submitted to Dask stage by stage.

    import landscape as ls
    result = ls.sweep("experiments/imp_lenet_sweep.toml", store="runs", workers=2)
    result.failed, [t.runs for t in result.tasks]

    from distributed import Client
    result = ls.sweep(spec, client=Client("tcp://head:8786"))   # an existing cluster

Stages run in order; within one, tasks run as workers free up. Tasks whose runs are stored
complete are not submitted; the rest are keyed by run ID, so duplicates compute once.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, UserError
from ..store import Store
from . import clusters
from .collect import inputs_for, receive
from .plan import Task, plan_stage, predicted
from .progress import Board
from .spec import Produced, Spec, load_spec
from .task import TOPIC, Outcome, Payload, run_task


@dataclass
class TaskReport:
    stage: str
    label: str
    key: str
    status: str                  # done | reused | failed | skipped | stored (dry run) | missing (dry run)
    runs: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    duplicates: int = 0


@dataclass
class SweepResult:
    tasks: list[TaskReport]
    dashboard: str | None = None
    seconds: float = 0.0
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def failed(self) -> list[TaskReport]:
        return [t for t in self.tasks if t.status in ("failed", "skipped")]

    def count(self, status: str) -> int:
        return sum(1 for t in self.tasks if t.status == status)


@dataclass(frozen=True)
class Where:
    """Where to run: an existing client, a scheduler address, a SLURM cluster, or a LocalCluster."""

    workers: int | None = None
    threads_per_task: int = 1
    scheduler: str | None = None
    slurm: clusters.SlurmOptions | None = None
    gpus_per_task: float | None = None
    collect: bool = False
    connect_timeout_s: float = 10.0


def sweep(spec: str | Path | Mapping[str, Any] | Spec, client=None, *, store: str | None = None,
          data_dir: str | None = None, workers: int | None = None, threads_per_task: int = 1,
          scheduler: str | None = None, slurm: clusters.SlurmOptions | None = None,
          gpus_per_task: float | None = None, collect: bool = False, dry_run: bool = False,
          status_every_s: float = 30.0, live: bool | None = None, lock_wait_s: float = 3600.0,
          connect_timeout_s: float = 10.0, on_plan=None) -> SweepResult:
    """Run (or, with `dry_run`, list) every task of `spec`; see the module docstring."""
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    where = Where(workers, threads_per_task, scheduler, slurm, gpus_per_task, collect, connect_timeout_s)
    if collect and client is None and scheduler is None:
        raise ConfigError("--collect ships run files to workers that share no filesystem with this machine",
                          "give --scheduler ADDRESS of such a cluster (a local cluster shares this store)")
    # Workers may have another working directory and environment: they get the client's store and
    # data root as absolute paths (a spec's own `store` or `data_dir` option still wins).
    from ..data import data_root

    the_store = Store(store)
    defaults = {"store": str(the_store.root.absolute()), "data_dir": str(data_root(data_dir).absolute())}
    first = plan_stage(spec.stages[0], {}, defaults, the_store)  # every bad option fails here, nothing submitted
    if on_plan:
        on_plan(first)
    if dry_run:
        return _dry_run(spec, first, defaults, the_store)
    started = time.monotonic()
    with _client(client, where) as live_client:
        engine = _Engine(live_client, where, the_store, status_every_s, live, lock_wait_s)
        result = engine.run(spec, first, defaults)
    result.seconds = time.monotonic() - started
    return result


def _dry_run(spec: Spec, first: list[Task], defaults: dict, store: Store) -> SweepResult:
    reports, produced = [], {}
    tasks: list[Task] | None = first
    for index, stage in enumerate(spec.stages):
        if tasks is None:
            if any(r not in produced for r in stage.refs):
                waits = ", ".join(r for r in stage.refs if r not in produced)
                reports.append(TaskReport(stage.name, f"(expands when stage {waits} has run)", "-", "missing"))
                continue
            tasks = plan_stage(stage, produced, defaults, store)
        for t in tasks:
            reports.append(TaskReport(t.stage, t.label, t.key, "stored" if t.stored else "missing",
                                      list(t.run_ids or []), duplicates=len(t.duplicates)))
        offered = predicted(tasks)
        if offered is not None:
            produced[stage.name] = offered
        tasks = None
    return SweepResult(reports)


@contextlib.contextmanager
def _client(client, where: Where):
    """The client to submit to; a cluster this call started is closed when it ends."""
    if client is not None:
        yield client
        return
    if where.scheduler:
        owned = clusters.connect(where.scheduler, where.connect_timeout_s)
        cluster = None
    else:
        from distributed import Client

        cluster = (clusters.slurm_cluster(where.slurm, where.threads_per_task) if where.slurm
                   else clusters.local_cluster(where.workers, where.threads_per_task))
        owned = Client(cluster)
    try:
        yield owned
    finally:
        with contextlib.suppress(Exception):
            owned.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


class _Engine:
    def __init__(self, client, where: Where, store: Store, status_every_s: float, live: bool | None,
                 lock_wait_s: float):
        self.client, self.where, self.store = client, where, store
        self.board = Board({}, every_s=status_every_s, live=live)
        self.lock_wait_s = lock_wait_s
        self.reports: list[TaskReport] = []
        self.stage_reports: list[TaskReport] = []
        self.outcomes: dict[str, Outcome] = {}

    def resources(self) -> dict[str, float]:
        gpus = self.where.gpus_per_task
        if gpus is None:  # a GPU cluster: one GPU per task unless asked otherwise
            gpus = 1.0 if any(o.get("GPU", 0) > 0 for o in clusters.worker_resources(self.client)) else 0.0
        if gpus < 0:
            raise ConfigError(f"--gpus-per-task {gpus:g} must not be negative")
        return {"GPU": gpus} if gpus > 0 else {}

    def run(self, spec: Spec, first: list[Task], defaults: dict) -> SweepResult:
        resources = self.resources()
        clusters.check_resources(self.client, resources)
        address = clusters.dashboard(self.client)
        if address:
            print(f"Dask dashboard: {address}", file=self.board.stream, flush=True)
        with contextlib.suppress(Exception):
            self.client.subscribe_topic(TOPIC, lambda event: self.board.event(event[1]))
        produced: dict[str, list[Produced]] = {}
        self.board.start()
        try:
            for index, stage in enumerate(spec.stages):
                missing = [r for r in stage.refs if r not in produced]
                if missing:
                    self.reports.append(TaskReport(stage.name, f"(needs stage {', '.join(missing)})", "-", "skipped",
                                                   error="an earlier stage failed"))
                    continue
                tasks = first if index == 0 else plan_stage(stage, produced, defaults, self.store)
                outcomes = self.run_stage(tasks, resources)
                # Later stages refer to the runs that were made; a failed task is in the summary.
                ok = [(t, outcomes[t.key]) for t in tasks if outcomes[t.key].status != "failed"]
                if ok:
                    produced[stage.name] = [Produced(t.point, tuple(o.runs)) for t, o in ok]
        finally:
            self.board.stop()
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(TOPIC)
        return SweepResult(self.reports, address, outcomes=self.outcomes)

    def run_stage(self, tasks: list[Task], resources: dict[str, float]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        futures = {}
        for t in tasks:
            self.board.add(t.key, f"{t.stage} {t.label}")
            if t.stored:
                outcomes[t.key] = Outcome(t.key, "reused", runs=list(t.run_ids or []))
                self._report(t, outcomes[t.key])
                continue
            inputs = inputs_for(self._store(t.flags), t.run_ids, t.flags) if self.where.collect else {}
            payload = Payload(t.key, t.command, t.flags, self.where.threads_per_task, self.lock_wait_s,
                              inputs, self.where.collect)
            futures[t.key] = self.client.submit(run_task, payload, key=t.key, pure=False, retries=0,
                                                resources=resources or None, priority=-t.rank)
        by_key = {t.key: t for t in tasks}
        try:
            while futures:
                for key in [k for k, f in futures.items() if f.done()]:
                    outcomes[key] = self._outcome(key, futures.pop(key), self._store(by_key[key].flags))
                    self._report(by_key[key], outcomes[key])
                self.board.tick()
                time.sleep(0.2)
        except KeyboardInterrupt:
            # Workers stop their tasks; every run stays resumable from its last resume point.
            self.client.cancel(list(futures.values()), force=True)
            raise
        # The summary lists tasks in the order of the spec, whatever order they finished in.
        done = {r.key: r for r in self.stage_reports}
        self.reports += [done[t.key] for t in tasks]
        self.stage_reports = []
        return outcomes

    def _store(self, flags: dict) -> Store:
        return Store(flags["store"]) if flags.get("store") else self.store

    def _outcome(self, key: str, future, store: Store) -> Outcome:
        try:
            outcome = future.result()
        except Exception as exc:  # a crash, not a user error: a bug, or a task that killed its worker repeatedly
            return Outcome(key, "failed", error=f"error: {type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            future.release()
        if outcome.files:
            try:
                receive(store, outcome.files)
            except UserError as exc:  # the file arrived damaged
                outcome.status, outcome.error = "failed", exc.line()
            outcome.files = {name: (digest, b"") for name, (digest, _) in outcome.files.items()}
        return outcome

    def _report(self, task: Task, outcome: Outcome) -> None:
        self.outcomes[task.key] = outcome
        self.board.finish(task.key, outcome.status)
        seconds = max(0.0, outcome.ended - outcome.started)
        self.stage_reports.append(TaskReport(task.stage, task.label, task.key, outcome.status, list(outcome.runs),
                                             outcome.error, seconds, len(task.duplicates)))
