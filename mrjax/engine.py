"""The one jit/vmap boundary: every method for every trait of a bucket in one device call.

Per-trait estimator functions (``fn(t, key, params) -> Estimate``) are vmapped over the trait
axis and jitted once per (bucket shape, dtype, methods, n_boot). Each method draws from
``fold_in(trait_key, method_salt(method_id))`` — except the median and the mode families, whose
members share one draw set keyed by ``method_salt("median")`` / ``method_salt("mode")`` and
are computed in one pass (TwoSampleMR's ``mr_mode`` likewise uses one set of bootstrap draws
for the simple and weighted mode). Either way, adding or removing a method never changes
another method's random numbers, and a trait's key depends only on the seed and the trait.
"""

from __future__ import annotations

import functools
import zlib

import jax
import jax.numpy as jnp

from mrjax import diagnostics
from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params
from mrjax.estimators.median import MedianPanel, median_estimates
from mrjax.estimators.mode import ModePanel, mode_estimates
from mrjax.methods import METHODS, resolve

# Families computed in one pass from one shared draw set: (per-trait function, member ids).
FAMILIES = {
    "median": (median_estimates, MedianPanel._fields),
    "mode": (mode_estimates, ModePanel._fields),
}


def method_salt(method_id: str) -> int:
    """Stable 32-bit integer of a method id (CRC-32), folded into the trait key."""
    return zlib.crc32(method_id.encode("utf-8"))


def _as_batch(instruments: Instruments, keys: jax.Array | None):
    """Lift a single trait (``[width]`` fields) to a batch of one."""
    if instruments.bx.ndim == 1:
        instruments = jax.tree_util.tree_map(lambda a: a[None], instruments)
        if keys is not None and keys.ndim == 0:
            keys = keys[None]
        return instruments, keys, True
    if instruments.bx.ndim != 2:
        raise ValueError(f"instruments must be [traits, width] or [width]; got shape {instruments.bx.shape}")
    return instruments, keys, False


@functools.partial(jax.jit, static_argnames=("methods", "n_boot"))
def _run(instruments, keys, phi, penk, *, methods, n_boot):
    params = Params(n_boot=n_boot, phi=phi, penk=penk)
    families = {
        name: (fn, tuple(m for m in methods if m in members))
        for name, (fn, members) in FAMILIES.items()
    }
    in_family = {m for _, wanted in families.values() for m in wanted}
    singles = [m for m in methods if m not in in_family]

    def one_trait(t, key):
        out = {}
        for name, (fn, wanted) in families.items():
            if wanted:
                out.update(fn(t, jax.random.fold_in(key, method_salt(name)), params, wanted))
        for m in singles:
            out[m] = METHODS[m].fn(t, jax.random.fold_in(key, method_salt(m)), params)
        return {m: out[m] for m in methods}

    return jax.vmap(one_trait)(instruments, keys)


def run_methods(
    instruments: Instruments,
    keys: jax.Array,
    methods: tuple[str, ...],
    params: Params = Params(),
) -> dict[str, Estimate]:
    """Run ``methods`` on every trait of ``instruments`` in one jitted call.

    ``instruments`` fields are ``[T, K]`` (or ``[K]`` for one trait), ``keys`` ``[T]`` per-trait
    PRNG keys (``mrjax.batch.trait_keys``). Returns ``{method_id: Estimate}`` with ``[T]``
    arrays (scalars for a single trait). The computation runs in the dtype of the instruments
    (cast them with ``Instruments.astype(jnp.float32)`` for the float32 path).
    """
    methods = resolve(methods)
    instruments, keys, single = _as_batch(instruments, keys)
    if keys.shape[0] != instruments.bx.shape[0]:
        raise ValueError(f"{keys.shape[0]} keys for {instruments.bx.shape[0]} traits; give one key per trait")
    dtype = instruments.bx.dtype
    out = _run(
        instruments,
        keys,
        jnp.asarray(params.phi, dtype=dtype),
        jnp.asarray(params.penk, dtype=dtype),
        methods=methods,
        n_boot=int(params.n_boot),
    )
    if single:
        out = jax.tree_util.tree_map(lambda a: a[0], out)
    return out


_run_diagnostics = jax.jit(jax.vmap(diagnostics.trait_diagnostics))


def run_diagnostics(instruments: Instruments) -> diagnostics.Diagnostics:
    """Every per-trait diagnostic (heterogeneity of the five Q methods, Egger intercept,
    I²_GX, leave-one-out, single-SNP) for ``[T, K]`` instruments in one jitted call; see
    :class:`mrjax.diagnostics.Diagnostics` for the fields (``[T]`` or ``[T, K]``)."""
    instruments, _, single = _as_batch(instruments, None)
    out = _run_diagnostics(instruments)
    if single:
        out = jax.tree_util.tree_map(lambda a: a[0], out)
    return out


# --- Multivariable MR (mrjax.mv): every analysis of a padded [A, S, K] batch in one call. ---


@functools.partial(jax.jit, static_argnames=("specs",))
def _run_mv(instruments, keys, *, specs):
    from mrjax.mv.registry import MV_METHODS, spec_name

    def one(t, key):
        return {
            spec_name(s): MV_METHODS[s[0]].fn(t, jax.random.fold_in(key, method_salt(s[0])), **dict(s[1]))
            for s in specs
        }

    return jax.vmap(one)(instruments, keys)


def run_mv(instruments, keys: jax.Array, specs: tuple) -> dict:
    """Run MV method ``specs`` (``mrjax.mv.registry.resolve_specs``) on every analysis of a
    batched :class:`mrjax.mv.data.MVInstruments` (``[A, S, K]``) with ``[A]`` keys in one jitted
    call; returns ``{method_id: MVEstimate}`` with ``[A, K + 1]`` fields. Each method draws from
    ``fold_in(analysis_key, method_salt(method))``."""
    if keys.shape[0] != instruments.bx.shape[0]:
        raise ValueError(f"{keys.shape[0]} keys for {instruments.bx.shape[0]} analyses; give one key per analysis")
    return _run_mv(instruments, keys, specs=tuple(specs))


@jax.jit
def _run_mv_strength(instruments, sigma):
    from mrjax.mv import strength

    return jax.vmap(lambda t, s: (strength.strength(t, s), strength.pleiotropy(t, s)))(instruments, sigma)


def run_mv_strength(instruments, sigma: jax.Array):
    """Conditional F (MVMR and the conditional-F minimum) and the MVMR Q of every analysis;
    ``sigma [A, S, K, K]`` the per-SNP covariance of the exposure effects."""
    return _run_mv_strength(instruments, sigma)
