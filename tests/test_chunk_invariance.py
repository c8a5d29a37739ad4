"""A scan's tables do not depend on ``chunk_size``: the traits of a chunk share device calls
(buckets of 2 or 64 rows), and no trait's numbers may depend on its neighbours in a call.

Methods: TwoSampleMR's default panel (t p-values: the incomplete beta; the medians' total
weight, once a sum XLA merged with the rank permutation's reduction in a batch-dependent order;
the modes' bootstraps), the diagnostics (chi-square p-values: the incomplete gamma) and MR-PRESSO.
"""


import pytest

from mrjax.scan import demo_config
from mrjax.scan.run import run_scan

TABLES = ("results.tsv", "heterogeneity.tsv", "pleiotropy.tsv", "leave_one_out.tsv", "single_snp.tsv", "presso.tsv")


@pytest.mark.slow
def test_chunk_size_changes_no_byte(tmp_path):
    small = dict(methods=("ivw", "egger_regression", "weighted_median", "simple_median", "simple_mode",
                          "weighted_mode"), n_boot=10, presso_draws=50, figures=False, report=False)
    for chunk in (2, 64):
        run_scan(demo_config(tmp_path / f"chunk{chunk}", chunk_size=chunk, **small))
    for name in TABLES:
        two, many = (tmp_path / f"chunk{c}" / name for c in (2, 64))
        assert two.read_bytes() == many.read_bytes(), f"{name} differs between --chunk-size 2 and 64"
