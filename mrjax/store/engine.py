"""Where ingest tasks (and a scan's blocks, :mod:`mrjax.scan.workers`) run: a Dask cluster
(local or existing, :func:`dask_client`), or this process.

* ``scheduler="tcp://host:8786"`` submits to a running Dask cluster (``dask scheduler`` +
  ``dask worker``, or ``dask_jobqueue.SLURMCluster(...).scheduler_address``). Workers must see
  the input files and the store at the same paths (a shared file system).
* ``workers=N`` starts a ``distributed.LocalCluster`` of N single-threaded worker processes
  for the duration of the call (``workers=None``: one per core).
* ``workers=0`` runs the tasks one after the other in this process (no Dask; for debugging).

Tasks are submitted all at once; results are handed to ``on_result`` as they complete, with a
progress bar over the futures (rich, on a terminal) or one log line per finished task.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterable

LOCAL_CLUSTER = dict(threads_per_worker=1, processes=True, dashboard_address=None)


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_tasks(function: Callable, items: list, *, workers: int | None = None, scheduler: str | None = None,
              on_result: Callable, on_error: Callable, labels: list[str] | None = None, progress: bool | None = None,
              cluster_options: dict | None = None) -> None:
    """Apply ``function`` to every item; call ``on_result(item, result)`` as each finishes.

    A task that raises (or whose worker dies) calls ``on_error(item, exception)`` instead;
    the other tasks go on. Both callbacks return the lines that describe the outcome (one
    per trait). ``progress``: ``None`` draws a bar when stderr is a terminal and otherwise
    prints those lines; ``False`` is silent.
    """
    labels = labels or [str(i) for i in range(len(items))]
    with _Progress(len(items), progress) as bar:
        if workers == 0 and scheduler is None:
            for item, label in zip(items, labels):
                try:
                    result = function(item)
                except Exception as error:  # noqa: BLE001 - reported per task, never stops the others
                    bar.advance(label, on_error(item, error))
                else:
                    bar.advance(label, on_result(item, result))
            return
        for item, label, outcome in _distributed(function, items, labels, workers, scheduler, cluster_options):
            lines = on_error(item, outcome) if isinstance(outcome, BaseException) else on_result(item, outcome)
            bar.advance(label, lines)


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, cluster_options: dict | None = None):
    """A ``distributed.Client`` for the duration of a ``with``: on the running cluster at
    ``scheduler``, or on a ``LocalCluster`` of ``workers`` single-threaded processes
    (``None``: one per core), closed on exit."""
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is not None:
        client = Client(scheduler)
    else:
        n = default_workers() if workers is None else int(workers)
        if n < 1:
            raise ValueError(f"workers must be a positive number of processes (or 0 for this process), not {workers}")
        cluster = LocalCluster(n_workers=n, **{**LOCAL_CLUSTER, **(cluster_options or {})})
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _distributed(function, items, labels, workers, scheduler, cluster_options) -> Iterable:
    from distributed import as_completed

    with dask_client(workers, scheduler, cluster_options) as client:
        keys = [f"mrjax-ingest-{i}-{label}" for i, label in enumerate(labels)]
        futures = [client.submit(function, item, key=key, pure=False) for item, key in zip(items, keys)]
        owner = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                i = owner[future.key]
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - e.g. KilledWorker: this task only
                    outcome = error
                future.release()
                yield items[i], labels[i], outcome
        except BaseException:
            client.cancel(futures)
            raise


class _Progress:
    """A rich bar over the tasks on a terminal, else one line per finished trait on stderr."""

    def __init__(self, total: int, enabled: bool | None):
        self.total = total
        self.done = 0
        self.enabled = enabled is not False
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.fields[last]}"), console=Console(stderr=True), transient=False)
            self.task = self.bar.add_task("ingest", total=total, last="")

    def __enter__(self) -> "_Progress":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, label: str, lines) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, last=label)
        elif self.enabled:
            for line in lines or [label]:
                print(f"[{self.done}/{self.total}] {line}", file=sys.stderr, flush=True)
