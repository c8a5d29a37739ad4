"""Multiple-testing corrections across the traits of a scan (host side: numpy only).

Both follow R's ``stats::p.adjust`` exactly, including its treatment of missing values: a
NaN p-value stays NaN and is not counted in the number of tests m (``p.adjust(p, n =
length(p[!is.na(p)]))``, R's default). A p-value outside [0, 1] raises ``ValueError`` (one
above 1 by single-precision rounding only counts as 1). :func:`adjust_by_group` applies them
within groups of a results table (the scan corrects per direction and method, i.e. across
traits).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def bh_fdr(pvals) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values): R's ``p.adjust(p, method = "BH")``.

    With the m non-missing p-values sorted ascending, p_(1) <= ... <= p_(m),

        q_(i) = min( 1, min_{k >= i} m p_(k) / k ),

    (Benjamini & Hochberg 1995, the step-up procedure written as adjusted p-values), returned
    in the input order. A trait is significant at FDR level alpha when ``q < alpha``.
    """
    p = np.minimum(_as_pvalues(pvals), 1.0)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    values = p[ok]
    order = np.argsort(values, kind="stable")
    scaled = values[order] * m / np.arange(1, m + 1)
    running_min = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(running_min, 1.0)
    q[ok] = adjusted
    return q


def bonferroni(pvals) -> np.ndarray:
    """Bonferroni adjusted p-values: R's ``p.adjust(p, method = "bonferroni")``,
    ``min(1, m p)`` with m the number of non-missing p-values (NaN stays NaN)."""
    p = np.minimum(_as_pvalues(pvals), 1.0)
    m = int(np.isfinite(p).sum())
    return np.minimum(p * m, 1.0)


CORRECTIONS = {"qval_fdr": bh_fdr, "pval_bonferroni": bonferroni}


def adjust_by_group(frame: pd.DataFrame, by: Sequence[str], pval: str = "pval") -> pd.DataFrame:
    """A copy of ``frame`` with ``qval_fdr`` (:func:`bh_fdr`) and ``pval_bonferroni``
    (:func:`bonferroni`) of column ``pval``, each computed within the groups of the columns
    ``by`` (missing group values form a group of their own)."""
    missing = [c for c in [*by, pval] if c not in frame.columns]
    if missing:
        raise ValueError(f"adjust_by_group: the table lacks column(s) {missing}; it has {list(frame.columns)}")
    out = frame.copy()
    if not len(out):
        for column in CORRECTIONS:
            out[column] = np.nan
        return out
    group = out.groupby(list(by), sort=False, dropna=False).ngroup().to_numpy()
    p = out[pval].to_numpy(dtype=float)
    for column, correction in CORRECTIONS.items():
        adjusted = np.full(len(out), np.nan)
        for g in np.unique(group):
            rows = group == g
            adjusted[rows] = correction(p[rows])
        out[column] = adjusted
    return out


#: p-values above 1 by at most this much (single-precision rounding) are accepted as 1.
ROUNDING = 1e-6


def _as_pvalues(pvals) -> np.ndarray:
    p = np.asarray(pvals, dtype=float)
    finite = p[np.isfinite(p)]
    outside = (finite < 0) | (finite > 1 + ROUNDING)
    if outside.any():
        bad = finite[outside][0]
        raise ValueError(f"p-values must lie in [0, 1]; got {bad!r}")
    return p
