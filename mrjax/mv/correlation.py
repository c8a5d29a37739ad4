"""The SNP correlation (LD) matrices of the analyses of a long harmonised MV table, for the
correlated-instrument fits (``mrjax.mvmr(..., correlation=)``), aligned to the table's alleles.

Host side (pandas/numpy). Two sources:

* :func:`panel_correlations` — computed from a local PLINK panel (:func:`mrjax.ld_matrix`)
  for each analysis's SNPs, each counted in the table's ``effect_allele.exposure`` (the allele
  its effects refer to after harmonisation), as TwoSampleMR ``ld_matrix(with_alleles = TRUE)``
  followed by ``harmonise_ld_dat``, without the web service.
* :func:`read_correlation` + :func:`aligned_correlations` — a square matrix file the user
  brings. Its SNPs are named by the header (and optionally by a first column of row names):
  plain SNP ids (the matrix is then taken as given, already in the table's effect alleles), or
  TwoSampleMR's ``SNP_A1_A2`` names (the correlation of the ``A1`` dosages), where a SNP whose
  ``A1`` is the table's other allele has its row and column sign-flipped, as
  ``harmonise_ld_dat`` does. A header that names none of the table's SNPs (e.g. R's
  ``V1 .. Vn``, as MendelianRandomization's ``calcium_rho``) is taken in table order, only for a
  table of one analysis with exactly as many SNPs.

Every mismatch is a ``ValueError`` naming the file, the analysis and the SNP.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mrjax.columns import normalise_columns
from mrjax.mv.instruments import ld_matrix

EFFECT, OTHER = "effect_allele.exposure", "other_allele.exposure"


def _analysis_snps(data: pd.DataFrame, source: str) -> dict[str, pd.DataFrame]:
    """Per analysis label, its SNPs in table order with their alleles (one row per SNP; the
    alleles of a SNP's exposure rows must agree, as harmonised to the first exposure)."""
    df = normalise_columns(data)
    if EFFECT not in df.columns:
        raise ValueError(f"{source}: the LD matrix needs the column {EFFECT!r} (the allele the effects refer to)")
    df = df.reset_index(drop=True)
    df.index = df.index + 1
    if "outcome" not in df.columns:
        df = df.assign(outcome=df["id.outcome"] if "id.outcome" in df.columns else "outcome")
    key = "analysis" if "analysis" in df.columns else "outcome"
    cols = ["SNP", EFFECT] + ([OTHER] if OTHER in df.columns else [])
    out = {}
    for label, rows in df.groupby(df[key].astype(str), sort=False):
        alleles = rows[cols].astype(str).apply(lambda s: s.str.upper())
        alleles["SNP"] = rows["SNP"].astype(str)
        firsts = alleles.drop_duplicates("SNP")
        merged = alleles.merge(firsts, on="SNP", suffixes=("", ".first"))
        differs = (merged[cols[1:]].to_numpy() != merged[[c + ".first" for c in cols[1:]]].to_numpy()).any(axis=1)
        if differs.any():
            snp = merged["SNP"].iloc[int(np.flatnonzero(differs)[0])]
            raise ValueError(f"{source}: SNP {snp!r} of analysis {label!r} has different alleles on its exposure rows "
                             "(harmonise every exposure to one effect allele first)")
        out[label] = firsts.reset_index(drop=True)
    return out


def panel_correlations(data: pd.DataFrame, ld_ref, *, source: str = "MV table") -> dict[str, pd.DataFrame]:
    """``{analysis label: SNP x SNP correlation}`` of every analysis of the long MV table
    ``data``, from the panel ``ld_ref`` (an ``LDPanel`` or a .bed/.bim/.fam prefix) in the
    table's effect alleles (``mrjax.ld_matrix``: a SNP absent from the panel, with other
    alleles, or monomorphic there is an error naming it and its analysis)."""
    from mrjax.ld.panel import LDPanel

    panel = ld_ref if isinstance(ld_ref, LDPanel) else LDPanel.load(ld_ref)
    out = {}
    for label, snps in _analysis_snps(data, source).items():
        try:
            out[label] = ld_matrix(snps["SNP"], snps[EFFECT], panel, snps[OTHER] if OTHER in snps else None)
        except ValueError as err:
            raise ValueError(f"analysis {label!r}: {err}") from None
    return out


def read_correlation(path) -> pd.DataFrame:
    """A square correlation matrix from a CSV/TSV (optionally gzip'd) or parquet file: the
    header names the columns; a first column of row names (any non-numeric first column, e.g.
    R's ``write.csv`` row names or pandas' index) must list the same names in the same order.
    Returns the matrix as a float DataFrame with those names as index and columns; raises
    ``ValueError`` naming the file for a non-square, non-numeric, asymmetric or non-unit-diagonal
    matrix."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"LD matrix file {str(path)!r} not found")
    try:
        raw = pd.read_parquet(path) if path.name.endswith(".parquet") else pd.read_csv(path, sep=None, engine="python")
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {str(path)!r} as a matrix: {err}") from None
    first = raw.columns[0] if len(raw.columns) else None
    names = None
    if first is not None and not pd.api.types.is_numeric_dtype(raw[first]):
        names = raw[first].astype(str).tolist()
        raw = raw.drop(columns=first)
    columns = [str(c) for c in raw.columns]
    if names is not None and names != columns:
        raise ValueError(f"{str(path)!r}: the row names {names[:3]}... differ from the column names {columns[:3]}...")
    values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if values.shape != (len(columns), len(columns)):
        raise ValueError(f"{str(path)!r}: the matrix is {values.shape[0]} x {values.shape[1]}, not square")
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{str(path)!r}: row {i + 1}, column {columns[j]!r} is missing or not a number")
    if not np.allclose(values, values.T, rtol=0, atol=1e-8) or np.abs(np.diag(values) - 1).max() > 1e-8:
        raise ValueError(f"{str(path)!r}: a correlation matrix must be symmetric with a unit diagonal")
    if len(set(columns)) != len(columns):
        raise ValueError(f"{str(path)!r}: a SNP is named twice in the header")
    return pd.DataFrame(values, index=columns, columns=columns)


def _allele_names(names: list[str]) -> tuple[list[str], list[str], list[str]] | None:
    """``SNP_A1_A2`` names as (SNPs, A1s, A2s) when every name has that form, else None."""
    parts = [n.rsplit("_", 2) for n in names]
    if all(len(p) == 3 and p[0] and p[1].isalpha() and p[2].isalpha() for p in parts):
        return [p[0] for p in parts], [p[1].upper() for p in parts], [p[2].upper() for p in parts]
    return None


def aligned_correlations(matrix: pd.DataFrame, data: pd.DataFrame, *, source: str = "LD matrix",
                         table_source: str = "MV table") -> dict[str, pd.DataFrame]:
    """``{analysis label: SNP x SNP correlation}`` of every analysis of ``data`` (keyed as
    ``mrjax.mvmr``'s ``correlation``: the ``analysis`` when the table has that column, else the
    ``outcome``) taken from ``matrix`` (:func:`read_correlation`) as the module docstring
    describes: by SNP id (the names as given, else as ``SNP_A1_A2`` with signs flipped to the
    table's effect alleles), or in table order for a single analysis whose SNPs the header
    does not name."""
    analyses = _analysis_snps(data, table_source)
    names = [str(c) for c in matrix.columns]
    plain = {s: i for i, s in enumerate(names)}
    annotated = _allele_names(names)
    by_snp = {s: i for i, s in enumerate(annotated[0])} if annotated else {}
    values = matrix.to_numpy(float)
    out = {}
    for label, table in analyses.items():
        wanted = table["SNP"].tolist()
        sign = np.ones(len(wanted))
        if all(s in plain for s in wanted):
            idx = np.array([plain[s] for s in wanted])
        elif annotated and all(s in by_snp for s in wanted):
            idx = np.array([by_snp[s] for s in wanted])
            a1 = np.array([annotated[1][i] for i in idx], dtype=object)
            a2 = np.array([annotated[2][i] for i in idx], dtype=object)
            ea = table[EFFECT].to_numpy(object)
            oa = table[OTHER].to_numpy(object) if OTHER in table else None
            same = (a1 == ea) & ((a2 == oa) if oa is not None else True)
            swapped = (a2 == ea) & ((a1 == oa) if oa is not None else True)
            bad = ~(same | swapped)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{source}: the alleles of SNP {wanted[i]!r} ({names[idx[i]]}) do not match analysis "
                                 f"{label!r}'s effect allele {ea[i]!r}" + (f" and other allele {oa[i]!r}" if oa is not None else ""))
            sign = np.where(same, 1.0, -1.0)
        elif not any(s in plain or s in by_snp for s in wanted) and len(analyses) == 1 and len(wanted) == len(names):
            idx = np.arange(len(names))
        else:
            unknown = [s for s in wanted if s not in plain and s not in by_snp]
            if len(unknown) == len(wanted):
                raise ValueError(f"{source}: its header names none of the SNPs of analysis {label!r} (e.g. {wanted[0]!r}); "
                                 "name the rows and columns by SNP id (an unnamed matrix is taken in table order only "
                                 "for one analysis with as many SNPs)")
            if unknown:
                raise ValueError(f"{source}: SNP {unknown[0]!r} of analysis {label!r} is not in the matrix")
            raise ValueError(f"{source}: name every SNP either plainly or as SNP_A1_A2, not both")
        sub = values[np.ix_(idx, idx)] * np.outer(sign, sign)
        out[label] = pd.DataFrame(sub, index=wanted, columns=wanted)
    return out
