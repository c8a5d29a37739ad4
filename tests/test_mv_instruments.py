"""Host-side MV pipeline: joint instruments of several exposures and the signed LD matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bed_reader import open_bed

import mrjax

DATA = Path(mrjax.__file__).parent / "example_data"
PANEL = DATA / "demo_panel"


@pytest.fixture(scope="module")
def mv_table(demo_mv_table):
    return demo_mv_table


def test_every_snp_has_every_exposure_on_one_allele(mv_table):
    exposures, outcome, table = mv_table
    wide = table.pivot(index="SNP", columns="exposure", values="beta.exposure")
    assert list(wide.columns) == ["exp_01", "exp_02"] and wide.notna().all().all()
    # Each instrument passes p < 5e-8 for at least one exposure, and the effects are the GWAS
    # values, sign-flipped where the GWAS reports the other allele.
    best = table.groupby("SNP")["pval.exposure"].min()
    assert (best < 5e-8).all()
    for _, row in table.iterrows():
        src = exposures[(exposures["exposure"] == row["exposure"]) & (exposures["SNP"] == row["SNP"])].iloc[0]
        same = src["effect_allele"] == row["effect_allele.exposure"]
        assert same or src["effect_allele"] == row["other_allele.exposure"]
        assert row["beta.exposure"] == pytest.approx(src["beta"] if same else -src["beta"], rel=1e-12)
    audit = mrjax.audit_of(table)
    assert set(audit["step"]) >= {"clump"}
    # Instruments are jointly clumped: no pair in LD above the threshold.
    panel = mrjax.LDPanel.load(PANEL)
    rows = panel.locate(wide.index)
    for i, row in enumerate(rows):
        r2 = panel.r2(row, np.delete(rows, i))
        assert np.nanmax(r2) <= 0.001 or np.all(panel.chrom[np.delete(rows, i)][r2 > 0.001] != panel.chrom[row])


def test_ld_matrix_is_signed_dosage_correlation(mv_table):
    _, _, table = mv_table
    first = table.drop_duplicates("SNP")
    snps, ea = first["SNP"].tolist(), first["effect_allele.exposure"].tolist()
    r = mrjax.ld_matrix(snps, ea, PANEL)
    bed = open_bed(str(PANEL) + ".bed")
    bim = pd.read_csv(str(PANEL) + ".bim", sep=r"\s+", header=None, names=["chr", "SNP", "cm", "pos", "a1", "a2"])
    idx = [int(np.flatnonzero(bim["SNP"] == s)[0]) for s in snps]
    g = bed.read(index=np.s_[:, idx], dtype="float64")  # count of allele 1 (bed-reader default)
    sign = np.array([1.0 if a == bim["a1"].iloc[i] else -1.0 for a, i in zip(ea, idx)])
    fam = pd.read_csv(str(PANEL) + ".fam", sep=r"\s+", header=None)
    founders = ((fam[2].astype(str) == "0") & (fam[3].astype(str) == "0")).to_numpy()
    want = np.corrcoef(g[founders].T) * np.outer(sign, sign)
    np.testing.assert_allclose(r.to_numpy(), want, rtol=1e-10, atol=1e-12)
    flipped = mrjax.ld_matrix(snps[:2], [table.drop_duplicates("SNP")["other_allele.exposure"].iloc[0], ea[1]], PANEL)
    assert flipped.iloc[0, 1] == pytest.approx(-r.iloc[0, 1])
    with pytest.raises(ValueError, match="not in the panel"):
        mrjax.ld_matrix(["rs_not_there"], ["A"], PANEL)
