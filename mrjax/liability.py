"""Variance explained on the liability scale for case/control GWAS (TwoSampleMR
``get_r_from_lor``, ``get_population_allele_frequency``, ``contingency``), host side (numpy).

TwoSampleMR (after Lee et al. 2012, Genet Epidemiol 36:214, eq. 10): the 2x2 table of allele
by case status is recovered from the effect-allele frequency ``af`` of the sample, the share of
cases ``prop = ncase / (ncase + ncontrol)`` and the odds ratio ``OR = exp(lor)``: its case/allele
cell ``z`` solves ``a z^2 + b z + c = 0`` with ``a = OR - 1``, ``b = (af + prop)(1 - OR) - 1``,
``c = OR af prop`` (``z = -c/b`` when ``|a| < 1e-15``), the root whose cells
``(z, prop - z, af - z, 1 + z - af - prop)`` are all >= 0 after R's ``zapsmall`` (7 significant
digits relative to the largest cell). The population allele frequency is
``af_controls (1 - K) + af_cases K`` for prevalence ``K``; ``vg = lor^2 p (1 - p)``,
``r^2 = vg / (vg + ve)`` with ``ve = pi^2/3`` (logit) or 1 (probit), optionally divided by 0.58
(``correction``); ``r = sign(lor) sqrt(r^2)``.
"""

from __future__ import annotations

import numpy as np


def _zapsmall(cells: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall`` per row of ``cells`` (``[..., 4]``): round to ``digits`` significant
    digits relative to the largest absolute cell."""
    mx = np.max(np.abs(cells), axis=-1, keepdims=True)
    places = np.where(mx > 0, np.maximum(0, digits - np.ceil(np.log10(np.where(mx > 0, mx, 1.0)))), digits)
    scale = 10.0 ** places
    return np.round(cells * scale) / scale


def contingency(af, prop, odds_ratio, eps: float = 1e-15) -> np.ndarray:
    """``[n, 4]`` cells ``(case & allele, case & other, control & allele, control & other)`` in
    R's column-major order ``(co[1,1], co[2,1], co[1,2], co[2,2])``; NaN where no root is valid."""
    af, prop, odds_ratio = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (af, prop, odds_ratio)))
    a = odds_ratio - 1.0
    b = (af + prop) * (1.0 - odds_ratio) - 1.0
    c = odds_ratio * af * prop
    linear = np.abs(a) < eps
    safe_a = np.where(linear, 1.0, a)
    d = b * b - 4.0 * a * c
    single = d < eps * eps
    root = np.sqrt(np.maximum(0.0, d))
    roots = np.stack([(-b - root) / (2.0 * safe_a), (-b + root) / (2.0 * safe_a)], axis=-1)
    roots = np.where(single[..., None], (-b / (2.0 * safe_a))[..., None], roots)
    roots = np.where(linear[..., None], (-c / np.where(b != 0, b, np.nan))[..., None], roots)
    z = roots
    cells = np.stack([z, prop[..., None] - z, af[..., None] - z, 1.0 + z - af[..., None] - prop[..., None]], axis=-1)
    cells = _zapsmall(cells)
    valid = np.all(cells >= 0, axis=-1)
    first = np.where(valid[..., 0], 0, 1)
    chosen = np.take_along_axis(cells, first[..., None, None], axis=-2)[..., 0, :]
    return np.where(np.any(valid, axis=-1)[..., None], chosen, np.nan)


def population_allele_frequency(af, prop, odds_ratio, prevalence) -> np.ndarray:
    """TwoSampleMR ``get_population_allele_frequency``: ``af_controls (1 - K) + af_cases K``."""
    co = contingency(af, prop, odds_ratio)
    af_cases = co[..., 0] / (co[..., 0] + co[..., 1])
    af_controls = co[..., 2] / (co[..., 2] + co[..., 3])
    prevalence = np.asarray(prevalence, dtype=float)
    return af_controls * (1.0 - prevalence) + af_cases * prevalence


def r_from_lor(lor, af, ncase, ncontrol, prevalence, model: str = "logit", correction: bool = False) -> np.ndarray:
    """TwoSampleMR ``get_r_from_lor``: signed liability-scale correlation per SNP (module
    docstring). ``ncase``, ``ncontrol`` and ``prevalence`` are scalars or one per SNP."""
    if model not in ("logit", "probit"):
        raise ValueError(f"model must be 'logit' or 'probit', not {model!r}")
    lor = np.asarray(lor, dtype=float)
    ncase = np.asarray(ncase, dtype=float)
    ncontrol = np.asarray(ncontrol, dtype=float)
    prevalence = np.asarray(prevalence, dtype=float)
    if np.any((prevalence <= 0) | (prevalence >= 1)):
        raise ValueError(f"prevalence must be strictly between 0 and 1; got {prevalence[(prevalence <= 0) | (prevalence >= 1)].ravel()[0]!r}")
    ve = np.pi**2 / 3.0 if model == "logit" else 1.0
    p = population_allele_frequency(af, ncase / (ncase + ncontrol), np.exp(lor), prevalence)
    vg = lor * lor * p * (1.0 - p)
    r2 = vg / (vg + ve)
    if correction:
        r2 = r2 / 0.58
    return np.sqrt(r2) * np.sign(lor)
