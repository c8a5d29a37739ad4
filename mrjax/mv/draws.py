"""Normal draws for perturbing an MV analysis's summary statistics (MV-median's bootstrap,
MVMR-cML's data perturbation)."""

from __future__ import annotations

import jax

from mrjax.estimators.draws import slot_normals


def perturbation_normals(key, n_draws: int, shape, dtype):
    """Standard normals for the exposures (K columns ``[n_draws, S]``) and the outcome
    (``[n_draws, S]``): column ``j`` of the exposures from ``fold_in(kx, j)``, the outcome from
    ``ky`` (``kx, ky = split(key)``), each SNP slot's row by
    :func:`mrjax.estimators.draws.slot_normals` (the hash and Box–Muller normals the other
    bootstraps use), so that padding never changes them."""
    n, k = shape
    kx, ky = jax.random.split(key)

    def column(column_key):
        return slot_normals(column_key, n_draws, n, dtype, row_by_row=True).T

    return tuple(column(jax.random.fold_in(kx, j)) for j in range(k)), column(ky)
