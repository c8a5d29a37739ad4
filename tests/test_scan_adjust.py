"""``mrjax scan --adjust-for``: every exposure adjusted for another GWAS (one MV analysis each)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mrjax.report.html import multivariable_section
from mrjax.scan import ScanConfig, ScanError, run_scan

TRAITS = ["trait_007", "trait_014"]
ADJUST = "trait_025"


@pytest.fixture(scope="module")
def adjusted(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("adjust")
    gwas = pd.read_parquet(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", TRAITS + [ADJUST])])
    gwas["exposure"] = gwas["exposure"].astype(str)
    gwas[gwas["exposure"].isin(TRAITS)].to_parquet(folder / "exposures.parquet", index=False)
    gwas[gwas["exposure"] == ADJUST].drop(columns="exposure").to_parquet(folder / f"{ADJUST}.parquet", index=False)
    config = ScanConfig(exposures=(str(folder / "exposures.parquet"),), outcome=str(shared_data / "scan" / "outcome.parquet"),
                        out=str(folder / "out"), ld_ref=str(shared_data / "ldref" / "eur_sim"), outcome_name="outcome",
                        action=1, proxies=False, n_boot=100, presso_draws=0, methods=("ivw",), figures=False, report=False,
                        adjust_for=(str(folder / f"{ADJUST}.parquet"),))
    return run_scan(config), gwas[gwas["exposure"] == ADJUST], folder


def test_one_mv_analysis_per_exposure(adjusted):
    result, adjust_gwas, folder = adjusted
    res = result.tables["mvmr_results"]
    assert set(res["analysis"]) == set(TRAITS)
    assert set(res["exposure"]) == set(TRAITS) | {ADJUST, "(intercept)"}
    assert (folder / "out" / "mvmr_results.tsv").is_file() and (folder / "out" / "mvmr_strength.tsv").is_file()
    strength = result.tables["mvmr_strength"]
    assert strength["F"].notna().all() and len(strength) == 2 * len(TRAITS)
    # the GWAS sample sizes reach the conditional F (MendelianRandomization's nx), and the
    # CondFstat minimum lies at or below its value at the OLS start of R's nlminb
    expected_nx = gwas_sizes(folder, adjust_gwas)
    assert strength.set_index("exposure")["nx"].groupby(level=0).first().to_dict() == expected_nx
    assert strength["cond_f"].notna().all() and (strength["cond_f"] > 0).all()
    section = "\n".join(multivariable_section(result.tables))
    assert "Multivariable MR" in section and "CondFstat" in section
    assert all(name in section for name in TRAITS + [ADJUST])
    # MV-IVW of one analysis against numpy: the scan's instruments plus the adjust-for GWAS at
    # the same SNPs, its effect sign-flipped where its effect allele is the other allele.
    inst = result.tables["instruments"]
    inst = inst[(inst["direction"] == "forward") & (inst["exposure"] == TRAITS[0]) & inst["mr_keep"].astype(bool)]
    adj = adjust_gwas.set_index("SNP").loc[inst["SNP"]]
    same = (adj["effect_allele"].str.upper().to_numpy() == inst["effect_allele.exposure"].str.upper().to_numpy())
    bz = np.where(same, adj["beta"].to_numpy(), -adj["beta"].to_numpy())
    x = np.column_stack([inst["beta.exposure"].to_numpy(), bz])
    w = 1 / inst["se.outcome"].to_numpy() ** 2
    coef = np.linalg.solve((x * w[:, None]).T @ x, (x * w[:, None]).T @ inst["beta.outcome"].to_numpy())
    ivw = res[(res["analysis"] == TRAITS[0]) & (res["method_id"] == "mv_ivw")].set_index("exposure")
    np.testing.assert_allclose(ivw.loc[[TRAITS[0], ADJUST], "b"], coef, rtol=1e-9)


def gwas_sizes(folder, adjust_gwas):
    """The smallest GWAS sample size of each trait (what the MV table carries as nx)."""
    scan = pd.read_parquet(folder / "exposures.parquet")
    sizes = scan.groupby("exposure")["samplesize"].min().astype(float).to_dict()
    return {**{t: sizes[t] for t in TRAITS}, ADJUST: float(adjust_gwas["samplesize"].min())}


def test_missing_adjust_file_is_a_user_error(tmp_path):
    config = ScanConfig(exposures=("x",), outcome=__file__, out=str(tmp_path), already_clumped=True, adjust_for=("nope.tsv",))
    with pytest.raises(ScanError, match="nope.tsv"):
        config.validate()
