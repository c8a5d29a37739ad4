"""``mrjax.mr`` / ``analyse`` split a large width group into trait chunks bounded by the memory
budget (:data:`mrjax.batch.MEMORY_BUDGET_ELEMENTS`, via :func:`mrjax.batch.panel_row_elements`):
a power of two traits per chunk and the last chunk padded to the next power of two, with the
same tables as one unchunked call (a trait's numbers never depend on the traits beside it)."""

import numpy as np
import pandas as pd

import mrjax
from mrjax import api, batch
from mrjax.batch import PANEL_BUCKETS, panel_row_elements

METHODS = ("ivw", "weighted_median", "weighted_mode")
N_BOOT = 20


def _table(n_traits, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_traits):
        n = int(rng.integers(3, 13))
        bx = rng.normal(0.1, 0.03, n)
        rows.append(pd.DataFrame({
            "SNP": [f"rs{j}" for j in range(n)], "exposure": f"x{i:03d}", "outcome": "y",
            "beta.exposure": bx, "se.exposure": rng.uniform(0.01, 0.02, n),
            "beta.outcome": 0.2 * bx + rng.normal(0, 0.02, n), "se.outcome": rng.uniform(0.01, 0.03, n),
        }))
    return pd.concat(rows, ignore_index=True)


def test_budget_chunks_are_powers_of_two():
    nsnp = np.full(1000, 10)
    per_trait = panel_row_elements(1000)(16)
    assert per_trait == 16_000
    plan = PANEL_BUCKETS.plan(nsnp, row_elements=panel_row_elements(1000), budget=600 * per_trait)
    # 600 fit: chunks of 512, the last (488 traits) padded to 512
    assert [len(index) for index, _ in plan] == [512, 512]
    assert [int((index >= 0).sum()) for index, _ in plan] == [512, 488]
    plan = PANEL_BUCKETS.plan(np.full(300, 10), row_elements=panel_row_elements(1000), budget=600 * per_trait)
    assert [len(index) for index, _ in plan] == [320]  # fits: one bucket, rows as before
    plan = PANEL_BUCKETS.plan(np.full(1100, 10), row_elements=panel_row_elements(1000), budget=600 * per_trait)
    assert [len(index) for index, _ in plan] == [512, 512, 128]
    assert sorted(np.concatenate([i[i >= 0] for i, _ in plan]).tolist()) == list(range(1100))


def test_chunked_analyse_equals_one_call(monkeypatch):
    data = batch.from_frame(_table(150, seed=5))
    whole = mrjax.analyse(data, METHODS, n_boot=N_BOOT, seed=7, include=())
    assert [b.instruments.bx.shape for b in api._buckets(data, np.float64, N_BOOT)] == [(192, 16)]
    # 64 traits per call: chunks of 64, 64 and 22 (padded to 32)
    monkeypatch.setattr(batch, "MEMORY_BUDGET_ELEMENTS", 64 * api.PANEL_DRAW_COPIES * panel_row_elements(N_BOOT)(16))
    assert [b.instruments.bx.shape for b in api._buckets(data, np.float64, N_BOOT)] == [(64, 16), (64, 16), (32, 16)]
    chunked = mrjax.analyse(data, METHODS, n_boot=N_BOOT, seed=7, include=())
    # Estimates and bootstrap SEs bit for bit; p-values (and the tables' other columns) to 1e-12
    # relative, as the engine's batch-composition property test (XLA's vectorised special
    # functions may round the last bit of a p-value differently with the call's row count).
    np.testing.assert_array_equal(chunked.mr[["b", "se"]].to_numpy(), whole.mr[["b", "se"]].to_numpy())
    for name in ("mr", "heterogeneity", "pleiotropy", "leave_one_out", "single_snp"):
        pd.testing.assert_frame_equal(getattr(chunked, name), getattr(whole, name), check_exact=False, rtol=1e-12,
                                      atol=0, obj=name)
    assert np.isfinite(chunked.mr["se"]).all()
