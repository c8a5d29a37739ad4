"""Permutation-calibrated p-values for real MR analyses: a sign-flip randomisation test.

The null is built by flipping the sign of each instrument's outcome association at random,
``by*_j = s_j · by_j`` with independent ``s_j = ±1``, keeping ``bx_j, sx_j, |by_j|, sy_j`` —
every instrument's own statistics — and breaking only the link between the direction of the
outcome association and the exposure association.

Validity (a randomisation test in the sense of Fisher 1935; see Good, *Permutation,
Parametric and Bootstrap Tests of Hypotheses*, 2005, §3.7 on sign-flip tests): under the
sharp null ``by_j = α_j + sy_j η_j`` with no causal effect, noise ``η_j`` symmetric about zero
(normality is not needed), direct effects ``α_j`` symmetric about zero and independent of the
exposure associations (balanced pleiotropy or none), and instruments independent of each
other (LD-clumped), the signs of ``by`` given ``(bx, sx, sy, |by|)`` are independent fair
coins, so each sign pattern is equally likely and the p-value is exact (super-uniform) for
any estimator. The test therefore rejects for a causal effect *or* for directional
pleiotropy, like IVW does; for MR-Egger, whose slope allows directional pleiotropy, a
rejection may also reflect a non-zero intercept. Shuffling ``by`` across instruments was not
chosen: it needs ``(by_j, sy_j)`` to be exchangeable across SNPs, which fails whenever the
standard errors vary with allele frequency or sample size.

Statistic: the studentised ``|b / se|`` of each method (monotone in the method's own
p-value for a given trait), recomputed — bootstrap SE included — on every sign-flipped
dataset. ``pval_perm = (1 + #{|z*| >= |z|}) / (1 + n_valid)`` (Phipson & Smyth 2010, Stat Appl
Genet Mol Biol 9:39), so the smallest attainable p-value (the resolution) is
``1 / (n_perm + 1)``. Permuted datasets on which a method returns NaN are not counted.

Randomness: trait ``t``'s permutation ``q`` uses ``fold_in(trait_keys(fold_in(key(seed),
PERMUTATION_SALT), uid_t), q)``, so p-values do not depend on which other traits are in the
table, on the chunking, or on the device.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mrjax import engine
from mrjax import batch as batching
from mrjax.batch import Instruments, TraitBatch, as_key, from_frame, trait_keys
from mrjax.estimators.common import Params
from mrjax.methods import METHODS, resolve

PERMUTATION_SALT = 0x5E6F11B  # separates the permutation streams from the analysis streams
TIE_TOLERANCE = 1e-10  # relative: permuted statistics this close to the observed one count as ties
# Closed-form methods by default: a bootstrap method re-runs its whole bootstrap on every
# permuted dataset (cost n_perm × n_boot per trait); ask for it explicitly.
DEFAULT_PERMUTATION_METHODS = ("ivw", "egger_regression")


def sign_flip(instruments: Instruments, key: jax.Array) -> Instruments:
    """One trait's instruments with each real ``by_j`` multiplied by an independent random sign."""
    signs = jax.random.rademacher(key, instruments.by.shape, dtype=instruments.by.dtype)
    by = jnp.where(instruments.mask, signs * instruments.by, instruments.by)
    return Instruments(bx=instruments.bx, sx=instruments.sx, by=by, sy=instruments.sy, mask=instruments.mask)


def _abs_z(estimate) -> jax.Array:
    return jnp.abs(estimate.b / estimate.se)


def trait_exceedances(t: Instruments, root, observed, start, n_perm, *, n_chunk: int, methods: tuple[str, ...],
                      params: Params):
    """For permutations ``start .. start + n_chunk − 1`` (those ``< n_perm``) of one trait,
    count per method the permuted ``|z*| >= |z|`` (``observed``: ``{method: |z|}``) and the
    permutations with a finite ``|z*|``. Permutation ``q`` flips signs with the first half of
    ``split(fold_in(root, q))`` and runs the methods with the second."""
    index = start + jnp.arange(n_chunk, dtype=jnp.uint32)
    live = index < n_perm
    pair = jax.vmap(lambda q: jax.random.split(jax.random.fold_in(root, q)))(index)
    flipped = jax.vmap(sign_flip, in_axes=(None, 0))(t, pair[:, 0])
    dtype = t.bx.dtype
    results = jax.vmap(lambda ft, key: engine.trait_methods(
        ft, key, jnp.asarray(params.phi, dtype), jnp.asarray(params.penk, dtype), methods=methods, n_boot=int(params.n_boot),
    ))(flipped, pair[:, 1])
    exceed, valid = {}, {}
    for m in methods:
        z = _abs_z(results[m])
        finite = jnp.isfinite(z) & live
        exceed[m] = jnp.sum(finite & (z >= observed[m] * (1.0 - TIE_TOLERANCE)))
        valid[m] = jnp.sum(finite)
    return exceed, valid


def default_perm_chunk(width: int, n_traits: int, n_perm: int, methods: Sequence[str], params: Params) -> int:
    """Permutations per device call: a power of two keeping ``traits × chunk × width ×
    (n_boot for bootstrap methods)`` near :data:`mrjax.batch.MEMORY_BUDGET_ELEMENTS`."""
    stochastic = any(METHODS[m].stochastic for m in methods)
    per_perm = n_traits * width * (max(int(params.n_boot), 16) if stochastic else 16)
    size = max(1, batching.MEMORY_BUDGET_ELEMENTS // per_perm)
    cap = 1 << max(0, (int(n_perm) - 1).bit_length())
    return min(1 << (size.bit_length() - 1), cap)


def permutation_test(data: pd.DataFrame | TraitBatch, methods: Sequence[str] | None = None, n_perm: int = 1000,
                     seed=0, *, params: Params = Params(), chunk_size: int | None = None,
                     progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Sign-flip permutation p-values beside the analytic ones, for every trait of a
    harmonised table at once (see the module docstring for the null and its assumptions).

    ``data``: a harmonised long table (TwoSampleMR ``dat`` or snake_case twin; see
    :func:`mrjax.batch.from_frame`) or a :class:`~mrjax.batch.TraitBatch`. ``methods``:
    method ids (default :data:`DEFAULT_PERMUTATION_METHODS`). The analytic estimates use
    ``trait_keys(seed, uid)`` — the keys a scan with the same seed uses.

    Returns one row per trait and method: the trait columns, ``method_id, nsnp, b, se,
    pval`` (analytic), ``pval_perm``, ``n_perm`` (permuted datasets with a finite statistic)
    and ``pval_perm_min = 1/(n_perm + 1)``, the resolution of the permutation p-value.
    ``progress(k)`` is called with the number of trait-permutations finished.
    """
    if isinstance(n_perm, bool) or not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm must be a positive integer (got {n_perm!r})")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer (got {chunk_size!r})")
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = resolve(methods, default=DEFAULT_PERMUTATION_METHODS)
    batch = data if isinstance(data, TraitBatch) else from_frame(data)
    perm_root = jax.random.fold_in(as_key(seed), PERMUTATION_SALT)
    n_devices = len(engine.devices())

    frames = []
    for bucket in batch.buckets():
        real = bucket.real
        instruments = bucket.instruments
        observed = engine.run_methods(instruments, trait_keys(seed, bucket.uids), methods, params)
        observed_z = {m: _abs_z(observed[m]) for m in methods}
        roots = trait_keys(perm_root, bucket.uids)
        n_traits, width = instruments.bx.shape
        chunk = chunk_size or default_perm_chunk(width, n_traits, n_perm, methods, params)
        exceed = {m: np.zeros(n_traits, dtype=np.int64) for m in methods}
        valid = {m: np.zeros(n_traits, dtype=np.int64) for m in methods}
        starts = list(range(0, n_perm, chunk))
        for first in range(0, len(starts), n_devices):  # one chunk per device at a time
            pending = [
                (start, engine.map_traits(trait_exceedances, (instruments, roots, observed_z),
                                          (jnp.uint32(start), jnp.uint32(n_perm)), slot=i,
                                          n_chunk=chunk, methods=methods, params=params))
                for i, start in enumerate(starts[first : first + n_devices])
            ]
            for start, (ex, va) in pending:
                for m in methods:
                    exceed[m] += np.asarray(ex[m])
                    valid[m] += np.asarray(va[m])
                if progress is not None:
                    progress(int(real.sum()) * min(chunk, n_perm - start))
        traits = batch.traits.iloc[bucket.trait_index[real]].drop(columns=["trait_uid"]).reset_index(drop=True)
        for m in methods:
            est = observed[m]
            z_ok = np.isfinite(np.asarray(observed_z[m]))[real]
            n_valid = valid[m][real]
            p_perm = (1.0 + exceed[m][real]) / (1.0 + n_valid)
            frames.append(traits.assign(
                method_id=m,
                b=np.asarray(est.b)[real],
                se=np.asarray(est.se)[real],
                pval=np.asarray(est.pval)[real],
                pval_perm=np.where(z_ok & (n_valid > 0), p_perm, np.nan),
                n_perm=n_valid,
                pval_perm_min=1.0 / (n_perm + 1.0),
                _order=bucket.trait_index[real],
            ))
    table = pd.concat(frames, ignore_index=True)
    order = {m: i for i, m in enumerate(methods)}
    table = table.assign(_method=table["method_id"].map(order)).sort_values(["_order", "_method"], kind="stable")
    return table.drop(columns=["_order", "_method"]).reset_index(drop=True)
