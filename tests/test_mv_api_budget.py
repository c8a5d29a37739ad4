"""``mrjax.mvmr`` bounds the memory of MVMR-cML with data perturbation: its perturbed data sets and
fits count towards :data:`mrjax.batch.MEMORY_BUDGET_ELEMENTS`, so a large batch runs in several
engine calls, and splitting it never changes a result."""

from __future__ import annotations

import numpy as np
import pandas as pd

import mrjax
import mrjax.batch
from mrjax import engine
from mrjax.mv.api import _row_elements
from mrjax.mv.registry import resolve_specs


def _long_table(n_analyses=5, nsnp=12, seed=4):
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_analyses):
        bx = rng.normal(0.1, 0.03, (nsnp, 2))
        sx = np.full((nsnp, 2), 0.01)
        by = bx @ np.array([0.3, -0.2]) + rng.normal(0, 0.01, nsnp)
        for j in range(nsnp):
            for e in range(2):
                rows.append({"analysis": f"a{a}", "SNP": f"rs{j}", "exposure": f"x{e}", "beta.exposure": bx[j, e],
                             "se.exposure": sx[j, e], "pval.exposure": 1e-9, "samplesize.exposure": 10000,
                             "outcome": "y", "beta.outcome": by[j], "se.outcome": 0.01})
    return pd.DataFrame(rows)


def test_perturbations_count_towards_the_budget():
    per_analysis = _row_elements(resolve_specs([("mv_cml", {"n": 1, "num_pert": 200})]), 2)
    assert per_analysis(32) >= 200 * 32 * 2 and per_analysis(64) >= 200 * 64 * 2  # the perturbed bx
    assert _row_elements(resolve_specs([("mv_cml", {"n": 1, "num_pert": 400})]), 2)(32) == 2 * per_analysis(32)
    assert _row_elements(resolve_specs([("mv_cml", {"n": 1, "dp": False})]), 2)(32) == 32 * 32 * 2


def test_a_batch_split_by_the_budget_gives_the_same_numbers(monkeypatch):
    table = _long_table(n_analyses=130)
    methods = [("mv_cml", {"n": 10000, "num_pert": 20})]
    whole = mrjax.mvmr(table, methods=methods, seed=5)
    calls = []
    run_mv = engine.run_mv
    monkeypatch.setattr(engine, "run_mv", lambda inst, keys, specs: calls.append(inst.bx.shape[0]) or run_mv(inst, keys, specs))
    # width 16: room for 192 analyses' 16 x 16 x 2 designs, but for 153 analyses' 20 x 16 x 2
    # perturbed exposure effects, so calls of 128 (a multiple of 64): two calls, not one
    monkeypatch.setattr(mrjax.batch, "MEMORY_BUDGET_ELEMENTS", 192 * 16 * 16 * 2)
    split = mrjax.mvmr(table, methods=methods, seed=5)
    assert len(calls) == 2 and max(calls) == 128, calls
    pd.testing.assert_frame_equal(whole, split, rtol=1e-10)
    assert whole["b"].notna().all()
