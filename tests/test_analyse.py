"""``mrjax.analyse``: one batch, one diagnostics run, every table equal to the single-table
functions on the same data (and, through them, to the R goldens they are tested against)."""

from __future__ import annotations

import pandas as pd
import pytest

import mrjax
from mrjax import api

from _golden_data import load_golden


@pytest.fixture(scope="module")
def data(shared_data):
    frames = [load_golden(shared_data, name)[1] for name in ("bmi_chd", "ldl_chd", "hdl_chd")]
    table = pd.concat(frames, ignore_index=True)
    table["pval.exposure"] = 1e-9
    table["pval.outcome"] = 0.3
    table["samplesize.exposure"] = 300_000
    table["samplesize.outcome"] = 180_000
    table["eaf.exposure"] = 0.3
    return table


def test_analyse_equals_the_single_table_functions(data):
    methods = ["ivw", "egger_regression", "weighted_median"]
    result = mrjax.analyse(data, methods, n_boot=100, seed=3, heterogeneity_methods=["ivw", "egger_regression", "uwr"])
    pd.testing.assert_frame_equal(result.mr, api.mr(data, methods, n_boot=100, seed=3))
    pd.testing.assert_frame_equal(result.heterogeneity, api.heterogeneity(data, ["ivw", "egger_regression", "uwr"]))
    pd.testing.assert_frame_equal(result.pleiotropy, api.pleiotropy(data))
    pd.testing.assert_frame_equal(result.leave_one_out, api.leave_one_out(data))
    pd.testing.assert_frame_equal(result.single_snp, api.single_snp(data))
    pd.testing.assert_frame_equal(result.directionality, api.directionality(data))
    pd.testing.assert_frame_equal(result.strength, api.instrument_strength(data))


def test_analyse_runs_the_diagnostics_kernel_once(data, monkeypatch):
    calls = []
    real = api.run_diagnostics
    monkeypatch.setattr(api, "run_diagnostics", lambda instruments, **kw: calls.append(1) or real(instruments, **kw))
    batch = api.as_batch(data)
    n_buckets = len(list(batch.buckets()))
    mrjax.analyse(batch, ["ivw"], include=())
    assert len(calls) == n_buckets


def test_analyse_leaves_out_what_is_not_asked_for_and_rejects_unknown_tables(data):
    result = mrjax.analyse(data.drop(columns=["pval.outcome"]), ["ivw"])
    assert result.directionality is None  # Steiger needs both p-values
    assert mrjax.analyse(data, ["ivw"], include=()).strength is None
    with pytest.raises(ValueError, match="unknown table"):
        mrjax.analyse(data, ["ivw"], include=("forest",))
