"""Sign-flip permutation p-values: validity under the null, power, determinism, the flip itself."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import mrjax  # noqa: F401  (x64)
from mrjax.batch import make_instruments
from mrjax.permutation import permutation_test, sign_flip
from mrjax.simulation import Scenario, draw_instruments

N_PERM = 99
N_TRAITS = 128


def _table(scenario: Scenario, n_traits: int, seed: int) -> pd.DataFrame:
    """Simulated traits as a harmonised long table (one exposure per trait, one outcome)."""
    t = draw_instruments(scenario, n_traits, seed=seed)
    k = scenario.n_instruments
    arrays = {name: np.asarray(getattr(t, name))[:, :k].ravel() for name in ("bx", "sx", "by", "sy")}
    return pd.DataFrame({
        "SNP": [f"rs{j}" for _ in range(n_traits) for j in range(k)],
        "exposure": np.repeat([f"trait{i:03d}" for i in range(n_traits)], k),
        "outcome": "outcome",
        "beta.exposure": arrays["bx"], "se.exposure": arrays["sx"],
        "beta.outcome": arrays["by"], "se.outcome": arrays["sy"],
    })


@pytest.fixture(scope="module")
def null_result() -> pd.DataFrame:
    table = _table(Scenario(n_instruments=20, theta=0.0, mean_f=50), N_TRAITS, seed=1)
    return permutation_test(table, ["ivw"], n_perm=N_PERM, seed=5)


def test_permutation_p_uniform_under_the_null(null_result):
    p = null_result["pval_perm"].to_numpy()
    assert len(p) == N_TRAITS and (null_result["n_perm"] == N_PERM).all()
    # discrete uniform on {1/100, ..., 1}: mean 0.505, P(p <= 0.1) = 0.1
    assert abs(p.mean() - 0.505) < 4 * 0.29 / np.sqrt(N_TRAITS)
    for level in (0.1, 0.5):
        assert abs(np.mean(p <= level) - level) < 4 * np.sqrt(level * (1 - level) / N_TRAITS)
    # with valid instruments the analytic IVW p-value is calibrated too: the two agree in rank
    rho = sps.spearmanr(p, null_result["pval"]).statistic
    assert rho > 0.8
    assert np.allclose(null_result["pval_perm_min"], 1 / (N_PERM + 1))


def test_permutation_p_at_its_floor_under_a_strong_effect():
    table = _table(Scenario(n_instruments=20, theta=0.5, mean_f=100), N_TRAITS, seed=2)
    result = permutation_test(table, ["ivw"], n_perm=N_PERM, seed=5)
    assert (result["pval_perm"] == 1 / (N_PERM + 1)).all()
    assert (result["pval"] < 1e-6).all()


def test_permutation_p_independent_of_other_traits_and_chunking(null_result):
    table = _table(Scenario(n_instruments=20, theta=0.0, mean_f=50), N_TRAITS, seed=1)
    picked = ["trait003", "trait077", "trait120"]
    subset = permutation_test(table[table["exposure"].isin(picked)], ["ivw"], n_perm=N_PERM, seed=5)
    full = null_result.set_index("exposure").loc[picked]
    np.testing.assert_array_equal(subset["pval_perm"].to_numpy(), full["pval_perm"].to_numpy())
    chunked = permutation_test(table[table["exposure"].isin(picked)], ["ivw"], n_perm=N_PERM, seed=5, chunk_size=16)
    np.testing.assert_array_equal(chunked["pval_perm"].to_numpy(), full["pval_perm"].to_numpy())
    other_seed = permutation_test(table[table["exposure"].isin(picked)], ["ivw"], n_perm=N_PERM, seed=6)
    assert not np.array_equal(other_seed["pval_perm"].to_numpy(), full["pval_perm"].to_numpy())


def test_sign_flip_keeps_each_instruments_statistics():
    import jax

    t = make_instruments([0.1, 0.2, -0.3, 9.0], [0.01] * 4, [0.05, -0.02, 0.04, 7.0], [0.02] * 4,
                         mask=[True, True, True, False])
    flips = [sign_flip(t, jax.random.key(i)) for i in range(32)]
    by = np.stack([np.asarray(f.by) for f in flips])
    np.testing.assert_array_equal(np.abs(by[:, :3]), np.broadcast_to(np.abs(np.asarray(t.by))[:3], (32, 3)))
    assert (by[:, 3] == 0.0).all()  # padding stays inert
    assert ((by[:, :3] > 0).any(axis=0) & (by[:, :3] < 0).any(axis=0)).all()
    for f in flips:
        for name in ("bx", "sx", "sy", "mask"):
            np.testing.assert_array_equal(np.asarray(getattr(f, name)), np.asarray(getattr(t, name)))


def test_bad_arguments_raise_clear_errors():
    table = _table(Scenario(n_instruments=5, theta=0.0, mean_f=50), 2, seed=3)
    with pytest.raises(ValueError, match="n_perm"):
        permutation_test(table, ["ivw"], n_perm=0)
    with pytest.raises(ValueError, match="unknown method"):
        permutation_test(table, ["nope"], n_perm=10)
    with pytest.raises(ValueError, match="beta.outcome"):
        permutation_test(table.drop(columns="beta.outcome"), ["ivw"], n_perm=10)
