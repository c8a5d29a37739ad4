"""Instrument strength of single variants: variance explained (R²) and the F statistic."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Strength(NamedTuple):
    """Per-variant strength. Arrays share the shape of the inputs.

    ``r2``: variance of the exposure explained by the variant, ``2·EAF·(1−EAF)·β²``;
    ``f_stat``: ``R²·(N−2)/(1−R²)`` (NaN where EAF or N is missing);
    ``f_stat_z2``: ``β²/se²``, which needs neither EAF nor N.
    """

    r2: np.ndarray
    f_stat: np.ndarray
    f_stat_z2: np.ndarray


def strength_columns(beta, se, eaf, n) -> Strength:
    """R² and F of each variant as an instrument (one variant, so k = 1 in the F formula).

    * ``R² = 2·EAF·(1−EAF)·β²`` — the variance explained by an additively coded variant when the
      exposure is in standard-deviation units (Shim et al. 2015; TwoSampleMR ``get_r_from_bsen``
      reduces to it for a standardised trait). For a trait in other units, or a log-odds
      scale, this R² is not a variance fraction: use the ``β²/se²`` form instead.
    * ``F = R²·(N−2)/(1−R²)`` — the first-stage F of a regression on one variant
      (``F = R²(N−k−1)/(k(1−R²))`` with k = 1).
    * ``F_z2 = β²/se²`` — the Wald χ², the approximation used when EAF or N is unknown.

    ``beta, se, eaf, n`` are array-likes of equal shape; NaN in ``eaf`` or ``n`` gives NaN in
    ``r2``/``f_stat`` only.
    """
    beta = np.asarray(beta, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    eaf = np.asarray(eaf, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    r2 = 2.0 * eaf * (1.0 - eaf) * beta**2
    with np.errstate(divide="ignore", invalid="ignore"):
        f_stat = r2 * (n - 2.0) / (1.0 - r2)
        f_stat_z2 = beta**2 / se**2
    return Strength(r2=r2, f_stat=f_stat, f_stat_z2=f_stat_z2)
