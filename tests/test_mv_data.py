"""The split of a long MV table into analyses (``mrjax.mv.data.from_mv_frame``), against a plain
per-analysis pandas pivot written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mrjax.mv.data import from_mv_frame


def _messy_table(seed=0) -> pd.DataFrame:
    """Three analyses (one outcome analysed with two exposure sets), exposures listed in
    different orders, rows shuffled across analyses, sample sizes that vary by row."""
    rng = np.random.default_rng(seed)
    parts = []
    for analysis, outcome, exposures, n in (("a1", "chd", ["ldl", "hdl", "tg"], 9), ("a2", "chd", ["hdl", "bmi"], 6),
                                             ("a3", "t2d", ["bmi", "ldl"], 7)):
        snps = [f"rs{analysis}{i}" for i in range(n)] if analysis != "a2" else [f"rsa1{i}" for i in range(n)]
        by, sy = rng.normal(size=n), rng.uniform(0.05, 0.2, n)
        for e in exposures:
            parts.append(pd.DataFrame({"analysis": analysis, "SNP": snps, "exposure": e, "beta.exposure": rng.normal(size=n),
                                       "se.exposure": rng.uniform(0.01, 0.1, n), "pval.exposure": rng.uniform(0, 1e-5, n),
                                       "samplesize.exposure": rng.integers(1000, 2000, n).astype(float),
                                       "outcome": outcome, "beta.outcome": by, "se.outcome": sy}))
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _reference(table: pd.DataFrame):
    """Per analysis in order of first appearance: exposures and SNPs in order of first
    appearance, ``[S, K]`` pivots, the first outcome row of each SNP, the smallest sample size."""
    out = []
    for analysis in dict.fromkeys(table["analysis"]):
        rows = table[table["analysis"] == analysis]
        exps, snps = list(dict.fromkeys(rows["exposure"])), list(dict.fromkeys(rows["SNP"]))
        counts = rows.groupby("SNP")["exposure"].nunique()
        snps = [s for s in snps if counts[s] == len(exps)]
        rows = rows[rows["SNP"].isin(snps)]
        wide = rows.pivot(index="SNP", columns="exposure")
        first = rows.drop_duplicates("SNP").set_index("SNP").loc[snps]
        out.append({"analysis": analysis, "exposures": exps, "snps": snps,
                    "bx": wide["beta.exposure"].loc[snps, exps].to_numpy(), "sx": wide["se.exposure"].loc[snps, exps].to_numpy(),
                    "px": wide["pval.exposure"].loc[snps, exps].to_numpy(), "by": first["beta.outcome"].to_numpy(),
                    "sy": first["se.outcome"].to_numpy(), "nx": wide["samplesize.exposure"][exps].min().to_numpy()})
    return out


@pytest.mark.parametrize("holes", [False, True])
def test_split_equals_a_per_analysis_pivot(holes):
    table = _messy_table()
    if holes:
        table = table.drop(index=table.index[::11])
    batch = from_mv_frame(table, on_missing="drop" if holes else "error")
    ref = _reference(table)
    assert batch.analyses["analysis"].tolist() == [r["analysis"] for r in ref]
    assert batch.analyses["nsnp"].tolist() == [len(r["snps"]) for r in ref]
    assert batch.analyses["nexp"].tolist() == [len(r["exposures"]) for r in ref]
    for i, r in enumerate(ref):
        assert batch.exposures[i] == r["exposures"] and batch.snps[i] == r["snps"]
        for field in ("bx", "sx", "px", "by", "sy", "nx"):
            np.testing.assert_array_equal(batch.arrays[i][field], r[field], err_msg=f"{r['analysis']} {field}")
    kept = sum(len(r["snps"]) * len(r["exposures"]) for r in ref)
    assert len(batch.excluded) == len(table) - kept
    if holes:
        assert len(batch.excluded) > 0 and (batch.excluded["reason"] == "SNP missing for another exposure of the analysis").all()
        # each dropped row's SNP is missing at least one exposure of its analysis
        for (analysis, snp), rows in batch.excluded.groupby(["analysis", "SNP"]):
            assert snp not in batch.snps[batch.analyses["analysis"].tolist().index(analysis)]


def test_split_errors_name_the_snp_and_analysis():
    table = _messy_table()
    holed = table.drop(index=table.index[(table["analysis"] == "a3") & (table["SNP"] == "rsa32") & (table["exposure"] == "ldl")])
    with pytest.raises(ValueError, match=r"SNP 'rsa32' has no row for exposure 'ldl' in analysis analysis 'a3'"):
        from_mv_frame(holed)
    shifted = table.copy()
    row = shifted.index[(shifted["analysis"] == "a2") & (shifted["SNP"] == "rsa14") & (shifted["exposure"] == "bmi")][0]
    shifted.loc[row, "beta.outcome"] += 0.1
    with pytest.raises(ValueError, match=r"SNP 'rsa14' has different outcome effects .* analysis 'a2'"):
        from_mv_frame(shifted)
    # analysis a2's bmi rows replaced by one row for a SNP that has no hdl row
    lonely = table[~((table["analysis"] == "a2") & (table["exposure"] == "bmi"))]
    lonely = pd.concat([lonely, pd.DataFrame({**table.iloc[0].to_dict(), "analysis": "a2", "outcome": "chd", "SNP": "rsx", "exposure": "bmi"}, index=[0])])
    with pytest.raises(ValueError, match=r"analysis analysis 'a2' .* has no SNP present for every exposure"):
        from_mv_frame(lonely, on_missing="drop")
