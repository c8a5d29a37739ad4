"""Where a scan's blocks are estimated: in this process, or on the workers of a Dask cluster.

The host side of a block (outcome look-ups, harmonisation) runs in the scan's process; its
harmonised pairs are one task, :func:`estimate_block`, which calls the engine on the worker's
devices. Results are taken in block order, with at most ``window`` blocks in flight (memory
stays bounded: a block waiting for its turn holds only its harmonised pairs and estimates),
so the checkpoints, and every output, are those of one process: a block's numbers depend only
on its pairs, never on where it ran.

Clusters are those of the GWAS store's ingest (:func:`mrjax.store.engine.dask_client`):
``workers=N`` starts a ``LocalCluster`` of N single-threaded processes for the scan,
``scheduler="tcp://host:8786"`` uses a running one (its workers must import the same mrjax).
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from typing import Iterable, Iterator

import pandas as pd

from mrjax.outputs import StageTimer
from mrjax.scan.config import EstimationSettings
from mrjax.scan.estimate import estimate_tables


#: JAX settings a worker takes from the scan's process (the command line sets them there).
JAX_SETTINGS = ("jax_default_matmul_precision", "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")


def jax_settings() -> dict:
    """This process's values of :data:`JAX_SETTINGS`."""
    import jax

    return {name: getattr(jax.config, name) for name in JAX_SETTINGS}


def estimate_block(harmonised: pd.DataFrame, settings: EstimationSettings, devices: int | None = None,
                   jax_options: dict | None = None) -> dict:
    """:func:`mrjax.scan.estimate.estimate_tables` of one block, as a worker runs it: with the
    scan process's JAX settings (``jax_options``: matrix-product precision, compilation cache)
    and at most ``devices`` of the worker's devices."""
    import jax

    from mrjax import engine

    for name, value in (jax_options or {}).items():
        if getattr(jax.config, name) != value:
            jax.config.update(name, value)
    engine.set_devices(devices)
    return estimate_tables(harmonised, settings)


@contextmanager
def block_client(workers: int | None, scheduler: str | None):
    """A Dask client for the scan (None without a scheduler and with no or 0 workers: blocks
    then run in this process)."""
    if not workers and scheduler is None:
        yield None
        return
    from mrjax.store.engine import dask_client

    with dask_client(workers, scheduler) as client:
        yield client


def estimate_in_order(blocks: Iterable[tuple[object, pd.DataFrame]], settings: EstimationSettings, timings: StageTimer,
                      client=None, devices: int | None = None) -> Iterator[tuple[object, dict]]:
    """``(tag, estimates)`` for each ``(tag, harmonised)`` of ``blocks``, in their order.

    Without a ``client`` each block is estimated here when it comes; with one, blocks are
    submitted as they come, up to two per worker in flight, and their results taken in order."""
    if client is None:
        for tag, table in blocks:
            yield tag, estimate_tables(table, settings, timings)
        return
    window = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    options = jax_settings()
    pending: deque = deque()
    try:
        for tag, table in blocks:
            pending.append((tag, client.submit(estimate_block, table, settings, devices, options, pure=False)))
            if len(pending) >= window:
                yield _take(pending, timings)
        while pending:
            yield _take(pending, timings)
    finally:
        client.cancel([future for _, future in pending])


def _take(pending: deque, timings: StageTimer) -> tuple[object, dict]:
    tag, future = pending.popleft()
    with timings("estimate"):
        estimates = future.result()
    future.release()
    return tag, estimates
