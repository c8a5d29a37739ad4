"""Padded instrument batches: grouping, inert padding, stable keys, input validation."""

import numpy as np
import pandas as pd
import pytest

import mrjax
from mrjax.batch import bucket_width, trait_keys


def _table():
    return pd.DataFrame(
        {
            "SNP": ["rs1", "rs2", "rs3", "rs1", "rs4"],
            "exposure": ["A", "A", "A", "B", "B"],
            "outcome": ["Y"] * 5,
            "beta_exposure": [0.1, -0.2, 0.3, 0.05, 0.07],
            "se_exposure": [0.01, 0.02, 0.03, 0.01, 0.01],
            "beta_outcome": [0.02, -0.01, 0.05, 0.0, 0.01],
            "se_outcome": [0.01, 0.01, 0.02, 0.01, 0.01],
        }
    )


def test_groups_traits_and_pads_inertly():
    batch = mrjax.from_frame(_table())
    assert list(batch.traits["exposure"]) == ["A", "B"]
    assert list(batch.traits["nsnp"]) == [3, 2]
    (bucket,) = list(batch.buckets(min_width=4))
    inst = bucket.instruments
    assert inst.bx.shape == (2, 4)
    np.testing.assert_array_equal(np.asarray(inst.mask), [[1, 1, 1, 0], [1, 1, 0, 0]])
    np.testing.assert_allclose(np.asarray(inst.bx)[0, :3], [0.1, -0.2, 0.3])
    assert np.asarray(inst.bx)[1, 2] == 1.0 and np.asarray(inst.by)[1, 2] == 0.0
    assert np.all(np.isfinite(np.asarray(inst.by) / np.asarray(inst.bx)))


def test_bucket_width_is_power_of_two_with_floor():
    assert [bucket_width(n) for n in (1, 3, 4, 5, 17, 30, 33)] == [4, 4, 4, 8, 32, 32, 64]


def test_trait_keys_depend_only_on_uid():
    uids = np.array([11, 22, 33], dtype=np.uint32)
    all_keys = trait_keys(0, uids)
    one = trait_keys(0, uids[1:2])
    import jax

    np.testing.assert_array_equal(jax.random.key_data(all_keys[1]), jax.random.key_data(one[0]))


def test_mr_keep_false_rows_are_excluded_and_recorded():
    df = _table().assign(mr_keep=[True, False, True, True, True])
    batch = mrjax.from_frame(df)
    assert list(batch.traits["nsnp"]) == [2, 2]
    assert list(batch.excluded["SNP"]) == ["rs2"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns="se_outcome"), "se.outcome"),
        (lambda d: d.assign(se_exposure=[0.01, 0.0, 0.03, 0.01, 0.01]), "must be > 0"),
        (lambda d: d.assign(beta_outcome=[0.02, np.nan, 0.05, 0.0, 0.01]), "rows 2"),
        (lambda d: d.assign(beta_exposure=["0.1", "x", "0.3", "0.05", "0.07"]), "not numeric"),
        (lambda d: d.assign(SNP=["rs1", "rs1", "rs3", "rs1", "rs4"]), "more than once"),
    ],
)
def test_malformed_input_names_the_problem(mutate, message):
    with pytest.raises(ValueError, match=message):
        mrjax.from_frame(mutate(_table()))


def test_missing_mr_keep_counts_as_false():
    df = _table().assign(mr_keep=pd.array([True, None, True, True, True], dtype="boolean"))
    batch = mrjax.from_frame(df)
    assert list(batch.excluded["SNP"]) == ["rs2"]
    df = _table().assign(mr_keep=[True, np.nan, True, True, True])
    assert list(mrjax.from_frame(df).excluded["SNP"]) == ["rs2"]


def test_wide_groups_are_never_merged_with_narrow_traits():
    """A few 5-instrument traits beside one 20,000-instrument trait keep their own narrow
    bucket (padding them to 32,768 would cost thousands of times their own work); groups up to
    MAX_MERGE_WIDTH still merge under a merging policy (the panel merges none)."""
    from mrjax.batch import MAX_MERGE_WIDTH, PANEL_BUCKETS, BucketPolicy

    plan = PANEL_BUCKETS.plan(np.array([5] * 10 + [20_000]))
    assert [(int((index >= 0).sum()), width) for index, width in plan] == [(10, 16), (1, 32_768)]
    merging = BucketPolicy()
    plan = merging.plan(np.array([5] * 10 + [20_000]))
    assert [(int((index >= 0).sum()), width) for index, width in plan] == [(10, 8), (1, 32_768)]
    merged = merging.plan(np.array([5] * 10 + [MAX_MERGE_WIDTH]))
    assert [(int((index >= 0).sum()), width) for index, width in merged] == [(11, MAX_MERGE_WIDTH)]
