"""Effect scales of MR estimates: odds ratios and normal 95% confidence intervals (host side).

One normal quantile for every 95% interval the library reports: ``Z_95 = 1.96``, the value
TwoSampleMR's ``generate_odds_ratios`` (R/format_mr_results2.R) writes literally (qnorm(0.975)
= 1.959964 rounded to two decimals), so mrjax's ``or_lci95``/``or_uci95`` agree with
TwoSampleMR's to the last digit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The normal quantile of 95% intervals, as in TwoSampleMR ``generate_odds_ratios``.
Z_95 = 1.96


def ci95(b, se) -> tuple[np.ndarray, np.ndarray]:
    """The normal 95% interval ``(b - 1.96 se, b + 1.96 se)`` (on the scale of b)."""
    b = np.asarray(b, dtype=float)
    se = np.asarray(se, dtype=float)
    return b - Z_95 * se, b + Z_95 * se


def odds_ratios(results: pd.DataFrame) -> pd.DataFrame:
    """TwoSampleMR ``generate_odds_ratios``: a copy of ``results`` (a table with ``b`` and
    ``se``, e.g. from :func:`mrjax.mr`) with

    ``lo_ci = b - 1.96 se``, ``up_ci = b + 1.96 se``, ``or = exp(b)``,
    ``or_lci95 = exp(lo_ci)``, ``or_uci95 = exp(up_ci)``.

    exp(b) is the odds ratio of a binary outcome per unit of the exposure when b is on the
    log-odds scale. As in R, these replace the ``lo_ci``/``up_ci`` of :func:`mrjax.mr` (the
    methods' own intervals), appended at the end.
    """
    for col in ("b", "se"):
        if col not in results.columns:
            raise ValueError(f"odds_ratios needs a column {col!r} (a table from mrjax.mr); it has {list(results.columns)}")
    res = results.drop(columns=["lo_ci", "up_ci"], errors="ignore")
    b = pd.to_numeric(res["b"], errors="coerce").to_numpy(dtype=float)
    se = pd.to_numeric(res["se"], errors="coerce").to_numpy(dtype=float)
    res["lo_ci"], res["up_ci"] = ci95(b, se)
    res["or"] = np.exp(b)
    res["or_lci95"] = np.exp(res["lo_ci"].to_numpy())
    res["or_uci95"] = np.exp(res["up_ci"].to_numpy())
    return res
