"""Padding, batch and bucket invariance of the MendelianRandomization estimators (issue 14),
the stochastic ones (median, mode-based) included under a fixed seed; and what a trait with
too few instruments gets. Two settings sets cover every code path with lmrob (IVW p = 1,
Egger p = 2) and the penalised/t variants; shapes ``[4, 16]`` and ``[4, 32]`` compile once each.
"""

from __future__ import annotations

import numpy as np
import pytest

import mrjax  # noqa: F401
from mrjax.batch import trait_keys
from mrjax.engine import run_methods
from mrjax.estimators.common import Reason, make_params

from test_properties import TRAITS, UIDS, WIDE, WIDTH, pack, traits_data

SETS = {
    "robust": (("mrivw", "mregger", "mrmedian", "mrmbe", "mrmaxlik"), make_params(robust=True, iterations=64)),
    "penalized_t": (("mrivw", "mregger", "mrmedian", "mrmaxlik"),
                    make_params(robust=True, penalized=True, distribution="t", weighting="penalized", model="fixed",
                                iterations=64)),
}
COUNTS = [(16, 3, 9, 2), (1, 12, 5, 16)]


def run(data, uids, methods, params, width=WIDTH):
    keys = trait_keys(5, np.concatenate([uids, np.zeros(TRAITS - len(uids), dtype=np.uint32)]))
    out = run_methods(pack(data, width), keys, methods, params)
    return {m: {f: np.asarray(v) for f, v in e._asdict().items() if v is not None} for m, e in out.items()}


@pytest.mark.parametrize("which", list(SETS))
@pytest.mark.parametrize("seed,counts", list(enumerate(COUNTS)))
def test_padding_and_batch_change_nothing(which, seed, counts):
    methods, params = SETS[which]
    data = traits_data(100 + seed, counts)
    batched = run(data, UIDS, methods, params)
    wide = run(data, UIDS, methods, params, WIDE)
    for m in methods:
        for f, v in batched[m].items():
            np.testing.assert_allclose(v, wide[m][f], rtol=1e-9, equal_nan=True, err_msg=f"{m}.{f} padding")
    for i in range(TRAITS):  # the trait alone, in row 0 (another row and bucket composition)
        alone = run([data[i]], UIDS[i : i + 1], methods, params)
        for m in methods:
            for f, v in batched[m].items():
                np.testing.assert_allclose(v[i], alone[m][f][0], rtol=1e-9, equal_nan=True, err_msg=f"{m}.{f} batch")


def test_seed_and_trait_identity_drive_the_bootstrap():
    methods, params = SETS["robust"]
    data = traits_data(7, (12, 12, 12, 12))
    same = [data[0]] * 4
    out = run(same, np.array([1, 1, 2, 3], dtype=np.uint32), methods, params)
    for m in ("mrmedian", "mrmbe"):
        se = out[m]["se"]
        assert se[0] == se[1] and se[1] != se[2], m  # same trait uid, same draws; another uid, others
        assert out[m]["b"][0] == out[m]["b"][2]  # the point estimate is deterministic


def test_too_few_instruments_give_nan_with_reason():
    methods, params = SETS["robust"]
    out = run(traits_data(3, (1, 2, 3, 4)), UIDS, methods, params)
    need = {"mrivw": 2, "mregger": 3, "mrmedian": 3, "mrmbe": 3, "mrmaxlik": 2}
    for m in methods:
        for i, n in enumerate((1, 2, 3, 4)):
            if n < need[m]:
                assert np.isnan(out[m]["b"][i]) and np.isnan(out[m]["lo_ci"][i]), (m, n)
                assert out[m]["reason"][i] == Reason.TOO_FEW_SNPS, (m, n)
            else:
                assert out[m]["reason"][i] in (Reason.OK, Reason.NOT_CONVERGED), (m, n)
        assert out[m]["nsnp"].tolist() == [1, 2, 3, 4]
