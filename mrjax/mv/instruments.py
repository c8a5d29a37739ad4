"""Host-side MV pipeline pieces (pandas/numpy, no JAX): the instruments of a multivariable
analysis and the LD correlation matrix of an instrument set.

:func:`mv_instruments` follows TwoSampleMR ``mv_extract_exposures`` run locally: each
exposure's instruments (p < ``p1``, strict), their union clumped jointly against the panel (each
SNP with its smallest p across the exposures, one clumping run: ``mrjax.ld.clump``), then every
exposure's and the outcome's effects at the clumped SNPs looked up and harmonised to the first
exposure's effect allele (``mrjax.harmonise``). A SNP missing from any exposure or the outcome,
or not usable after harmonisation (palindromic ambiguous, allele mismatch), is dropped for the
whole analysis and recorded in the audit (``mrjax.audit_of``).

:func:`ld_matrix` is the signed, allele-aligned correlation matrix used by the
correlated-instrument methods (``mrjax.mvmr(..., correlation=)``), like TwoSampleMR
``ld_matrix(with_alleles=TRUE)`` (plink ``--r square``) on a local panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax import audit
from mrjax.gwas.harmonise import harmonise
from mrjax.gwas.select import select_instruments
from mrjax.ld.clump import clump
from mrjax.ld.panel import LDPanel

STEP = "mv_instruments"
_COLUMNS = {"beta": "beta", "se": "se", "pval": "pval", "effect_allele": "effect_allele",
            "other_allele": "other_allele", "eaf": "eaf"}


def _normalised(gwas: pd.DataFrame, trait_column: str | None, what: str) -> pd.DataFrame:
    if not isinstance(gwas, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, got {type(gwas).__name__}")
    col = trait_column or next((c for c in ("trait", "exposure", "id.exposure") if c in gwas.columns), None)
    need = ["SNP", "beta", "se", "pval", "effect_allele", "other_allele"]
    missing = [c for c in need if c not in gwas.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing} (expected a normalised GWAS table: {need} + trait)")
    out = gwas.copy()
    out["trait"] = out[col].astype(str) if col else what
    if "eaf" not in out.columns:
        out["eaf"] = np.nan
    return out


def mv_instruments(exposures: pd.DataFrame, outcome: pd.DataFrame, ld_ref, *, p1: float = 5e-8,
                   r2: float = 0.001, kb: float = 10_000, action: int = 2, outcome_name: str | None = None,
                   trait_column: str | None = None, audited: bool = False):
    """The long harmonised MV table (``mrjax.mv.data``) of ``exposures`` on ``outcome``.

    ``exposures``: normalised GWAS rows of several exposures (``SNP, beta, se, pval,
    effect_allele, other_allele[, eaf]`` and a ``trait``/``exposure`` column naming the
    exposure; full summary statistics, so every exposure's effect can be looked up at every
    instrument). ``outcome``: the outcome GWAS, same columns. ``ld_ref``: an ``LDPanel`` or a
    .bed/.bim/.fam prefix. Returns one row per SNP x exposure with TwoSampleMR columns, the
    first exposure's effect allele for every row. Its audit lists every dropped SNP (the drops
    of selection, clumping, harmonisation and this step; no counts): ``audited=True`` returns
    ``Audited(table, audit)`` (after the records of ``Audited`` inputs), the default the table
    with the drops in ``attrs`` (``mrjax.audit_of``; deprecated, see ``mrjax.audit``).
    """
    exposures, exposure_records = audit.unwrap(exposures, audited)
    outcome, outcome_records = audit.unwrap(outcome, audited)
    exp = _normalised(exposures, trait_column, "exposures")
    names = list(dict.fromkeys(exp["trait"]))
    if len(names) < 2:
        raise ValueError(f"exposures: need at least 2 exposures for an MV analysis, got {names}")
    out = _normalised(outcome, None, "outcome")
    out["trait"] = outcome_name or (out["trait"].iloc[0] if "trait" in outcome.columns else "outcome")
    hits, selected = select_instruments(exp, p=p1, audited=True)
    union = hits.sort_values("pval", kind="stable").drop_duplicates("SNP")[["SNP", "pval"]]
    index, clumped = clump(audit.Audited(union.reset_index(drop=True), selected), ld_ref, r2=r2, kb=kb, p1=1.0,
                           audited=True)
    snps = index["SNP"].tolist()
    records = [exposure_records.drops, outcome_records.drops, clumped.drops]

    first = exp[(exp["trait"] == names[0]) & exp["SNP"].isin(snps)]
    lost = [s for s in snps if s not in set(first["SNP"])]
    records.append(audit.drops(STEP, names[0], lost, "missing in outcome", f"not in the GWAS of exposure {names[0]!r}"))
    aligned = {names[0]: first.set_index("SNP")}
    usable = set(first["SNP"])
    for other, table in [(n, exp[exp["trait"] == n]) for n in names[1:]] + [("__outcome__", out)]:
        label = out["trait"].iloc[0] if other == "__outcome__" else other
        h, harmonised = harmonise(first, table[table["SNP"].isin(usable)], action=action, audited=True)
        records.append(harmonised.drops)
        keep = h.loc[h["mr_keep"], "SNP"]
        gone = sorted(usable - set(keep))
        records.append(audit.drops(STEP, label, gone, "mr_keep false", f"not usable for {label!r}: dropped from the MV analysis"))
        usable &= set(keep)
        aligned[other] = h.set_index("SNP")
    order = [s for s in snps if s in usable]
    if not order:
        raise ValueError(f"mv_instruments: no instrument is usable for every exposure ({names}) and the outcome")
    y = aligned["__outcome__"].loc[order]
    rows = []
    for name in names:
        src = aligned[name].loc[order]
        if name == names[0]:
            beta, se, pval = src["beta"], src["se"], src["pval"]
        else:
            beta, se, pval = src["beta.outcome"], src["se.outcome"], src["pval.outcome"]
        rows.append(pd.DataFrame({
            "SNP": order, "exposure": name, "id.exposure": name,
            "effect_allele.exposure": y["effect_allele.exposure"].to_numpy(),
            "other_allele.exposure": y["other_allele.exposure"].to_numpy(),
            "beta.exposure": beta.to_numpy(float), "se.exposure": se.to_numpy(float), "pval.exposure": pval.to_numpy(float),
            "outcome": y["outcome"].to_numpy(), "id.outcome": y["outcome"].to_numpy(),
            "beta.outcome": y["beta.outcome"].to_numpy(float), "se.outcome": y["se.outcome"].to_numpy(float),
            "pval.outcome": y["pval.outcome"].to_numpy(float)}))
    table = pd.concat(rows, ignore_index=True)
    frames = [f for f in records if len(f)]
    drops = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=audit.AUDIT_COLUMNS)
    return audit.deliver(audit.Audited(table, audit.Audit(drops=drops)), audited)


def ld_matrix(snps, effect_alleles, ld_ref, other_alleles=None) -> pd.DataFrame:
    """Signed correlation of the allele dosages of ``snps`` among the panel's founders, each SNP
    counted in its ``effect_alleles`` (the panel's A1 dosage flipped where the effect allele is
    the panel's A2), as a SNP x SNP DataFrame. Missing calls are replaced by the SNP's mean
    dosage (plink ``--r`` uses pairwise-complete founders; identical without missing calls).
    Raises ``ValueError`` naming a SNP absent from the panel, whose alleles do not match it, or
    that is monomorphic."""
    panel = ld_ref if isinstance(ld_ref, LDPanel) else LDPanel.load(ld_ref)
    snps = [str(s) for s in snps]
    rows = panel.locate(snps)
    if (rows < 0).any():
        raise ValueError(f"ld_matrix: SNP {snps[int(np.flatnonzero(rows < 0)[0])]!r} is not in the panel {panel.prefix}")
    ea = np.asarray([str(a).upper() for a in effect_alleles], dtype=object)
    a1, a2 = panel.a1[rows].astype(str), panel.a2[rows].astype(str)
    flip = ea == a2
    bad = ~(flip | (ea == a1))
    if other_alleles is not None:
        oa = np.asarray([str(a).upper() for a in other_alleles], dtype=object)
        bad |= np.where(flip, oa != a1, oa != a2)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"ld_matrix: alleles of SNP {snps[i]!r} ({ea[i]}) do not match the panel ({a1[i]}/{a2[i]})")
    g = panel.genotypes[rows].astype(float)
    g[g < 0] = np.nan
    g = np.where(np.isnan(g), np.nanmean(g, axis=1, keepdims=True), g)
    if (g.std(axis=1) == 0).any():
        i = int(np.flatnonzero(g.std(axis=1) == 0)[0])
        raise ValueError(f"ld_matrix: SNP {snps[i]!r} is monomorphic in the panel; its correlation is undefined")
    r = np.corrcoef(g)
    sign = np.where(flip, -1.0, 1.0)
    r = r * np.outer(sign, sign)
    np.fill_diagonal(r, 1.0)
    return pd.DataFrame(r, index=snps, columns=snps)
