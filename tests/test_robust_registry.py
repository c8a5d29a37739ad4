"""The robust2 methods through ``mrjax.mr`` with the settings of ``R_EQUIVALENTS`` reproduce
the R goldens (one call per method id over all five datasets; see the per-estimator golden
tests for the full comparisons and tolerances)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mrjax
from mrjax.methods import METHODS, R_EQUIVALENTS

from _golden_data import rel_err
from _robust_golden import NAMES, robust_golden

OURS = ("divw", "pivw", "raps", "raps_mle")


@pytest.fixture(scope="module")
def data(shared_data):
    return robust_golden(shared_data)


def test_every_golden_label_is_mapped(data):
    """With both halves of issue 14 merged, every label of the five goldens has an equivalent."""
    for name in NAMES:
        for section in ("mendelianrandomization", "mr_raps"):
            for label in data.golden[name][section]:
                key = f"{section}.{label}"
                assert key in R_EQUIVALENTS, key
                assert R_EQUIVALENTS[key][0] in METHODS


@pytest.mark.parametrize("label", ["mendelianrandomization.divw_no_overdispersion",
                                   "mr_raps.mle_huber_odFALSE", "mr_raps.mr.raps_huber_odTRUE"])
def test_mr_with_r_equivalent_settings(data, label):
    method, settings = R_EQUIVALENTS[label]
    table = data.batch.instruments[["SNP", "beta.exposure", "se.exposure", "beta.outcome", "se.outcome", "exposure", "outcome"]]
    out = mrjax.mr(table, methods=[method], **settings)
    section, key = label.split(".", 1)
    for name in NAMES:
        want = data.golden[name][section][key]
        row = out[out["exposure"] == name].iloc[0]
        b, se = (want["Estimate"], want["StdError"]) if section == "mendelianrandomization" else (want["beta.hat"], want["beta.se"])
        assert rel_err(row["b"], b) <= 1e-6 and rel_err(row["se"], se) <= 1e-6, (name, row["b"], b)
        assert np.isfinite(row["lo_ci"]) and row["lo_ci"] < row["b"] < row["up_ci"]
