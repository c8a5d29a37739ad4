"""Property tests (hypothesis) of the engine: batch composition, padding width, instrument order
and allele coding never change what they must not change.

Every example reuses two fixed shapes (``[4, 16]`` and ``[4, 32]``) so the kernels compile once;
bootstrap counts are small because only equality matters here.
"""

from __future__ import annotations

import jax
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mrjax  # noqa: F401
from mrjax.batch import make_instruments, trait_keys
from mrjax.engine import run_diagnostics, run_methods
from mrjax.estimators.common import Params
from mrjax.methods import METHODS

MINE = ("wald_ratio", "two_sample_ml", "egger_regression", "egger_regression_bootstrap", "ivw", "ivw_radial",
        "ivw_mre", "ivw_fe", "sign", "uwr", "grip")
METHODS_UNDER_TEST = MINE + ("weighted_median", "weighted_mode")
PARAMS = Params(n_boot=32)
TRAITS, WIDTH, WIDE = 4, 16, 32
EXAMPLES = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def traits_data(seed: int, counts):
    """Random summary statistics for ``len(counts)`` traits with the given instrument counts."""
    rng = np.random.default_rng(seed)
    out = []
    for n in counts:
        bx = rng.normal(0.08, 0.05, n)
        sx = rng.uniform(0.005, 0.02, n)
        by = rng.normal(0.2, 0.3) * bx + rng.normal(0, 0.01, n)
        sy = rng.uniform(0.005, 0.03, n)
        out.append((bx, sx, by, sy))
    return out


def pack(data, width, rows=TRAITS):
    """Pad per-trait arrays into ``[rows, width]`` instruments (traits first, empty rows after)."""
    arrays = {k: np.zeros((rows, width)) for k in ("bx", "sx", "by", "sy")}
    mask = np.zeros((rows, width), dtype=bool)
    for i, trait in enumerate(data):
        n = len(trait[0])
        for k, v in zip(("bx", "sx", "by", "sy"), trait):
            arrays[k][i, :n] = v
        mask[i, :n] = True
    return make_instruments(mask=mask, **arrays)


def run(data, uids, width=WIDTH):
    inst = pack(data, width)
    keys = trait_keys(11, np.concatenate([uids, np.zeros(TRAITS - len(uids), dtype=np.uint32)]))
    est = run_methods(inst, keys, METHODS_UNDER_TEST, PARAMS)
    diag = run_diagnostics(inst)
    return est, diag


def rows(tree, n):
    return [np.asarray(leaf)[:n] for leaf in jax.tree_util.tree_leaves(tree)]


def assert_close(a, b, rtol):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=0, equal_nan=True)


counts = st.lists(st.integers(1, 16), min_size=TRAITS, max_size=TRAITS)
seeds = st.integers(0, 2**31 - 1)
UIDS = np.array([101, 202, 303, 404], dtype=np.uint32)


@EXAMPLES
@given(seed=seeds, n=counts)
def test_batched_equals_per_trait_loop(seed, n):
    data = traits_data(seed, n)
    est, diag = run(data, UIDS)
    for i in range(TRAITS):
        alone_est, alone_diag = run([data[i]], UIDS[i : i + 1])
        batched = [np.asarray(leaf)[i : i + 1] for leaf in jax.tree_util.tree_leaves((est, diag))]
        assert_close(batched, rows((alone_est, alone_diag), 1), rtol=1e-12)


@EXAMPLES
@given(seed=seeds, n=counts)
def test_padding_width_changes_nothing(seed, n):
    data = traits_data(seed, n)
    narrow_est, narrow_diag = run(data, UIDS, WIDTH)
    wide_est, wide_diag = run(data, UIDS, WIDE)
    assert_close(rows(narrow_est, TRAITS), rows(wide_est, TRAITS), rtol=1e-10)  # bootstraps included
    for field in ("heterogeneity", "egger", "i2gx", "ivw"):
        assert_close(rows(getattr(narrow_diag, field), TRAITS), rows(getattr(wide_diag, field), TRAITS), rtol=1e-10)
    for field in ("loo", "single"):
        for a, b in zip(getattr(narrow_diag, field), getattr(wide_diag, field)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b)[:, :WIDTH], rtol=1e-10, equal_nan=True)
            assert np.isnan(np.asarray(b)[:, WIDTH:]).all()


def deterministic_outputs(est, diag):
    """Everything that does not depend on the PRNG: all fields of deterministic methods and
    the point estimates of the median/mode methods, plus the per-trait diagnostics."""
    out = []
    for m, e in est.items():
        if METHODS[m].stochastic:
            if m != "egger_regression_bootstrap":
                out.append(np.asarray(e.b))
        else:
            out.extend(np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(e))  # ci_disjoint None: no leaf
    out.extend(np.asarray(leaf) for leaf in jax.tree_util.tree_leaves((diag.heterogeneity, diag.egger, diag.i2gx, diag.ivw)))
    return out


@EXAMPLES
@given(seed=seeds, n=counts, data=st.data())
def test_instrument_order_changes_no_deterministic_output(seed, n, data):
    base = traits_data(seed, n)
    perms = [data.draw(st.permutations(range(k))) for k in n]
    shuffled = [tuple(np.asarray(a)[list(p)] for a in trait) for trait, p in zip(base, perms)]
    est, diag = run(base, UIDS)
    est2, diag2 = run(shuffled, UIDS)
    assert_close(deterministic_outputs(est, diag), deterministic_outputs(est2, diag2), rtol=1e-9)
    # Leave-one-out and single-SNP rows follow their instrument.
    for a, b in zip(diag.loo + diag.single, diag2.loo + diag2.single):
        a, b = np.asarray(a), np.asarray(b)
        for i, p in enumerate(perms):
            np.testing.assert_allclose(a[i, list(p)], b[i, : len(p)], rtol=1e-9, equal_nan=True)


@EXAMPLES
@given(seed=seeds, n=counts, data=st.data())
def test_flipping_an_instruments_alleles_changes_nothing(seed, n, data):
    base = traits_data(seed, n)
    flipped = []
    for trait, k in zip(base, n):
        j = data.draw(st.integers(0, k - 1))
        bx, sx, by, sy = (np.array(a, copy=True) for a in trait)
        bx[j], by[j] = -bx[j], -by[j]
        flipped.append((bx, sx, by, sy))
    est, diag = run(base, UIDS)
    est2, diag2 = run(flipped, UIDS)
    assert_close(deterministic_outputs(est, diag), deterministic_outputs(est2, diag2), rtol=1e-9)
    assert_close(list(diag.loo), list(diag2.loo), rtol=1e-9)
