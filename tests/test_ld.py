"""The PLINK panel and plink 1.9's EM haplotype r²: golden pairs and independent references."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

from mrjax.ld.haplotype import cubic_real_roots, em_haplotype_frequencies, ld_from_counts
from mrjax.ld.panel import MISSING, LDPanel, clump_radius_bp, genotype_tables


@pytest.fixture(scope="module")
def panel(shared_data):
    return LDPanel.load(shared_data / "ldref" / "eur_sim")


@pytest.fixture(scope="module")
def golden_pairs(shared_data):
    return pd.read_csv(shared_data / "ldref" / "golden_r2_pairs.tsv", sep="\t")


def _pair_ld(panel, golden_pairs):
    rows_a = panel.locate(golden_pairs["SNP_A"])
    rows_b = panel.locate(golden_pairs["SNP_B"])
    assert (rows_a >= 0).all() and (rows_b >= 0).all()
    results = [panel.ld(a, [b]) for a, b in zip(rows_a, rows_b)]
    return {field: np.array([getattr(r, field)[0] for r in results]) for field in ("r2", "dprime", "n", "d")}


def test_panel_shape_and_founders(panel):
    assert panel.genotypes.shape == (38169, 503)
    assert panel.genotypes.dtype == np.int8
    assert set(np.unique(panel.genotypes)) == {MISSING, 0, 1, 2}
    assert panel.a1[0] == "T" and panel.a2[0] == "C" and panel.chrom[0] == "2"
    # A1 is the panel minor allele (plink --make-bed convention).
    assert (panel.allele1_frequency(np.arange(0, len(panel), 97)) <= 0.5 + 1e-12).all()


def test_em_r2_matches_plink_golden_pairs(panel, golden_pairs):
    ld = _pair_ld(panel, golden_pairs)
    np.testing.assert_array_equal(ld["n"], golden_pairs["N_BOTH_CALLED"])
    np.testing.assert_allclose(ld["r2"], golden_pairs["R2_EM"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ld["dprime"], golden_pairs["DPRIME"], rtol=1e-5, atol=1e-5)
    # The missing-call pairs and the pairs where genotype r² differs most are among them.
    assert (golden_pairs["N_BOTH_CALLED"] < 503).sum() >= 29
    assert np.abs(golden_pairs["R2_EM"] - golden_pairs["R2_GENO"]).max() > 0.05


def test_signed_d_agrees_with_plink_signed_correlation(panel, golden_pairs):
    """plink's --r is the signed A1-count correlation; where |r| is clearly nonzero its sign is
    the sign of the haplotype D (both orient on A1)."""
    ld = _pair_ld(panel, golden_pairs)
    clear = np.abs(golden_pairs["R_GENO"]) > 0.1
    assert clear.sum() > 50
    np.testing.assert_array_equal(np.sign(ld["d"][clear]), np.sign(golden_pairs["R_GENO"][clear]))


def test_genotype_tables_count_people_called_at_both():
    rng = np.random.default_rng(7)
    calls = rng.integers(0, 3, size=(6, 131)).astype(np.int8)
    calls[rng.random(calls.shape) < 0.1] = MISSING
    tables = genotype_tables(calls[0], calls[1:])
    classes = {2: 0, 1: 1, 0: 2}
    for k in range(1, 6):
        expected = np.zeros((3, 3))
        for a, b in zip(calls[0], calls[k]):
            if a != MISSING and b != MISSING:
                expected[classes[int(a)], classes[int(b)]] += 1
        np.testing.assert_array_equal(tables[k - 1], expected)


def _brute_force_r2(table):
    """Maximum-likelihood r² by direct numerical maximisation over the phase share x of the
    double heterozygotes (a fine grid, then a bounded scalar search around the best point)."""
    n = np.asarray(table, dtype=float)
    k11 = 2 * n[0, 0] + n[0, 1] + n[1, 0]
    k12 = 2 * n[0, 2] + n[0, 1] + n[1, 2]
    k21 = 2 * n[2, 0] + n[1, 0] + n[2, 1]
    k22 = 2 * n[2, 2] + n[1, 2] + n[2, 1]
    dh = n[1, 1]
    total = 2 * n.sum()

    def freqs(x):
        return (k11 + x) / total, (k12 + dh - x) / total, (k21 + dh - x) / total, (k22 + x) / total

    def negloglik(x):
        f = freqs(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = [k * np.log(fk) if k else 0.0 for k, fk in zip((k11, k12, k21, k22), f)]
            return -(sum(terms) + (dh * np.log(f[0] * f[3] + f[1] * f[2]) if dh else 0.0))

    grid = np.linspace(0, dh, 4001)
    values = np.array([negloglik(x) for x in grid])
    best = int(np.nanargmin(values))
    step = grid[1] - grid[0] if dh else 0.0
    if dh:
        lo, hi = max(0.0, grid[best] - step), min(dh, grid[best] + step)
        res = minimize_scalar(negloglik, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
        x = res.x if res.fun <= values[best] else grid[best]
    else:
        x = 0.0
    f11, f12, f21, _ = freqs(x)
    pa, pb = f11 + f12, f11 + f21
    d = f11 - pa * pb
    return d * d / (pa * (1 - pa) * pb * (1 - pb))


def test_em_matches_brute_force_likelihood_maximisation():
    rng = np.random.default_rng(2024)
    tables = []
    for _ in range(60):
        t = rng.integers(0, 25, size=(3, 3)).astype(float)
        t[1, 1] = rng.integers(0, 150)  # many double heterozygotes: several stationary points
        tables.append(t)
    tables.append(np.array([[40, 5, 0], [6, 30, 2], [0, 3, 20]], dtype=float))  # strong LD
    tables.append(np.array([[0, 0, 9], [0, 50, 0], [9, 0, 0]], dtype=float))  # only x-terms
    ours = ld_from_counts(np.stack(tables)).r2
    reference = np.array([_brute_force_r2(t) for t in tables])
    np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-8)


def test_monomorphic_pairs_have_no_r2():
    mono_a = np.array([[10, 20, 30], [0, 0, 0], [0, 0, 0]], dtype=float)  # A is A1/A1 in everyone
    mono_b = mono_a.T.copy()
    assert np.isnan(ld_from_counts(np.stack([mono_a, mono_b])).r2).all()
    # Polymorphic overall, monomorphic among the people called at both:
    a = np.array([2, 2, 2, 2, 0, 1, 2, 2], dtype=np.int8)
    b = np.array([1, 0, 2, 1, MISSING, MISSING, 0, 2], dtype=np.int8)
    assert np.isnan(ld_from_counts(genotype_tables(a, b[None, :])).r2[0])
    # No people called at both:
    b_none = np.full(8, MISSING, dtype=np.int8)
    assert np.isnan(ld_from_counts(genotype_tables(a, b_none[None, :])).r2[0])


def test_d_sign_follows_haplotype_phase():
    """Haplotypes A1-A1 / A2-A2 only → D > 0, r² = 1; A1-A2 / A2-A1 only → D < 0, r² = 1."""
    rng = np.random.default_rng(3)
    hap1 = rng.integers(0, 2, size=200)
    hap2 = rng.integers(0, 2, size=200)
    dosage_a = (hap1 + hap2).astype(np.int8)  # A1 copies at A
    in_phase = genotype_tables(dosage_a, dosage_a[None, :])
    swapped = genotype_tables(dosage_a, (2 - dosage_a)[None, :])
    ld = ld_from_counts(np.concatenate([in_phase, swapped]))
    np.testing.assert_allclose(ld.r2, [1.0, 1.0], atol=1e-12)
    assert ld.d[0] > 0 > ld.d[1]


def test_cubic_roots_match_numpy_roots():
    rng = np.random.default_rng(11)
    coef = rng.normal(size=(500, 3))
    roots, count = cubic_real_roots(coef[:, 0], coef[:, 1], coef[:, 2])
    for (a, b, c), r, k in zip(coef, roots, count):
        expected = np.roots([1.0, a, b, c])
        real = np.sort(expected[np.abs(expected.imag) < 1e-7].real)
        assert k == len(real)
        np.testing.assert_allclose(r[:k], real, atol=1e-7)


def test_em_frequencies_are_probabilities(panel):
    rows = np.arange(0, 400)
    tables = panel.genotype_tables(0, rows)
    f11, pa, pb, ok = em_haplotype_frequencies(tables)
    assert ok.any()
    f11, pa, pb = f11[ok], pa[ok], pb[ok]
    assert ((f11 >= -1e-12) & (f11 <= np.minimum(pa, pb) + 1e-12)).all()
    assert ((f11 - pa * pb) >= -np.minimum(pa * pb, (1 - pa) * (1 - pb)) - 1e-12).all()


def test_locate_and_variants(panel):
    rows = panel.locate(["rs119608934", "rs_not_there", "rs140519586"])
    assert rows.tolist() == [0, -1, 2]
    table = panel.variants([0, 2])
    assert table["SNP"].tolist() == ["rs119608934", "rs140519586"]
    assert table["pos"].tolist() == [101252189, 101254620]


def test_clump_radius_is_strictly_inside_kb():
    assert clump_radius_bp(250) == 249_999
    assert clump_radius_bp(10_000) == 9_999_999
    assert clump_radius_bp(0.5) == 499


def test_missing_panel_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"nothere\.bed.*not found"):
        LDPanel.load(tmp_path / "nothere")


def test_non_founders_are_excluded_and_duplicate_ids_warned(tmp_path):
    """A small panel written with bed-reader: 6 people, 2 of them with parents in the .fam."""
    from bed_reader import to_bed

    calls = np.array(
        [[2, 1, 0], [1, 1, 0], [0, MISSING, 2], [2, 2, 1], [1, 0, 0], [0, 0, 2]], dtype=np.int8
    )  # [people, variants]
    to_bed(
        tmp_path / "tiny.bed",
        calls,
        properties={
            "iid": ["a", "b", "c", "d", "kid1", "kid2"],
            "father": ["0", "0", "0", "0", "a", "c"],
            "mother": ["0", "0", "0", "0", "b", "d"],
            "sid": ["rs1", "rs2", "rs1"],
            "chromosome": ["1", "1", "1"],
            "bp_position": [100, 200, 300],
            "allele_1": ["A", "C", "G"],
            "allele_2": ["G", "T", "A"],
        },
    )
    with pytest.warns(UserWarning, match="rs1"):
        tiny = LDPanel.load(tmp_path / "tiny")
    assert tiny.people.tolist() == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(tiny.genotypes, calls[:4].T)
    assert tiny.locate(["rs1", "rs2"]).tolist() == [0, 1]
    assert tiny.ld(0, [1]).n[0] == 3  # person c is missing at rs2
