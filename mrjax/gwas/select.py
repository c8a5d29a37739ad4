"""Instrument selection by p-value and the weak-instrument filter, with their audit records."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mrjax import audit
from mrjax.errors import NoInstrumentError
from mrjax.gwas.strength import strength_columns

TRAIT_COLUMNS = ("trait", "exposure", "id.exposure", "id_exposure")


def _first(table: pd.DataFrame, names, what: str, required: bool = True):
    for name in names:
        if name in table.columns:
            return name
    if required:
        raise ValueError(f"{what}: none of the columns {list(names)} is in the table ({list(table.columns)})")
    return None


def _traits(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The table with a trait column (added when the table holds one unnamed trait) and its name."""
    column = _first(table, TRAIT_COLUMNS, "traits", required=False)
    if column is not None:
        if table[column].isna().any():
            rows = list(table.index[table[column].isna()][:5])
            raise ValueError(f"column {column!r} is empty at rows {rows}; every row needs its trait")
        return table, column
    return table.assign(trait=table.attrs.get("trait", "trait")), "trait"


def select_instruments(gwas: pd.DataFrame | audit.Audited, p: float = 1e-5, *, audited: bool = False):
    """Keep the variants with p < ``p`` (strict), per trait; rows keep their order and columns.

    Accepts the normalised table of ``read_gwas`` (``pval``, ``mlog10p``, ``trait``) or a
    TwoSampleMR exposure table (``pval.exposure``, ``exposure``); several traits are selected
    at once when a ``trait``/``exposure`` column is present. Where p underflowed to 0 and a
    ``mlog10p`` column is present, the test is ``mlog10p > −log10(p)``, so p = 0 is never
    confused with a missing value (TwoSampleMR issue 173).

    Audit (step ``select``): "not significant" is by far the largest drop — millions of
    variants for a genome-wide file — so it is *counted* (``Audit.counts``, and
    ``Audit.unlisted`` per trait) but not listed variant by variant. Rows without a
    usable p-value are listed in ``Audit.drops`` as "bad value". ``audited=True`` returns
    ``Audited(table, audit)`` (after the records of an ``Audited`` input); the default returns
    the table, records in ``attrs`` (deprecated; see ``mrjax.audit``). Raises ``ValueError`` when
    no trait keeps an instrument (never a silent empty result); warns naming the traits left
    with none when only some are empty.
    """
    if not (0.0 < float(p) <= 1.0):
        raise ValueError(f"p must lie in (0, 1], not {p!r}")
    gwas, upstream = audit.unwrap(gwas, audited)
    table, trait_col = _traits(gwas)
    pcol = _p_column(table)
    significant, missing = significance(table, p)
    traits = table[trait_col]
    n_in = traits.value_counts(sort=False)
    not_significant = traits[~significant & ~missing].value_counts(sort=False)
    listed = None
    if missing.any():
        rows = table.loc[missing]
        listed = audit.drops("select", rows[trait_col].tolist(), rows["SNP"].tolist(), "bad value",
                             f"no p-value in column {pcol!r}")
    out = table.loc[significant].copy()
    mine = audit.step_audit("select", n_in, audit.kept_per_trait(out, n_in.index, trait_col), listed, not_significant)
    _check_not_empty(out, n_in.index, trait_col, f"select_instruments(p={p})")
    return audit.deliver(audit.Audited(out, upstream + mine), audited)


def _p_column(table: pd.DataFrame) -> str:
    return _first(table, ("pval", "pval.exposure", "pval_exposure", "p"), "select_instruments")


def significance(table: pd.DataFrame, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a GWAS table: whether :func:`select_instruments` at ``p`` keeps it (p < ``p``;
    ``mlog10p > −log10 p`` where p underflowed to 0 or is missing), and whether it has no usable
    p-value at all (listed as "bad value"). The other rows are the "not significant" ones."""
    mcol = _first(table, ("mlog10p", "mlog10p.exposure"), "select_instruments", required=False)
    pval = pd.to_numeric(table[_p_column(table)], errors="coerce").to_numpy(dtype=float)
    mlog = (
        pd.to_numeric(table[mcol], errors="coerce").to_numpy(dtype=float) if mcol else np.full(len(table), np.nan)
    )
    use_log = ~np.isnan(mlog) & (np.isnan(pval) | (pval == 0.0))
    with np.errstate(invalid="ignore"):
        significant = np.where(use_log, mlog > -np.log10(p), pval < p)
    return significant, np.isnan(pval) & np.isnan(mlog)


def filter_weak(instruments: pd.DataFrame | audit.Audited, f_min: float = 10.0, form: str = "auto", *,
                audited: bool = False):
    """Drop weak instruments (F < ``f_min``), per trait, adding ``r2``, ``f_stat``, ``f_stat_z2``.

    F comes from ``strength_columns``: ``form="r2"`` uses ``F = R²(N−2)/(1−R²)`` with
    ``R² = 2·EAF·(1−EAF)·β²`` (exposure in SD units); ``"z2"`` uses ``β²/se²``; ``"auto"``
    (default) uses the R² form where EAF and N are known and ``β²/se²`` elsewhere. The added
    ``f_stat`` is always the R² form and ``f_stat_z2`` the z² form; the audit detail says which
    one decided. Rows whose F cannot be computed in the chosen form are dropped as "bad value".
    Audit step ``strength``, reason "weak instrument"; ``audited=`` as in ``select_instruments``.
    Accepts normalised (``beta, se, eaf, n``) or TwoSampleMR exposure columns.
    """
    if form not in ("auto", "r2", "z2"):
        raise ValueError(f"form must be 'auto', 'r2' or 'z2', not {form!r}")
    instruments, upstream = audit.unwrap(instruments, audited)
    table, trait_col = _traits(instruments)
    names = {}
    for field, twins in {
        "beta": ("beta", "beta.exposure", "beta_exposure"),
        "se": ("se", "se.exposure", "se_exposure"),
        "eaf": ("eaf", "eaf.exposure", "eaf_exposure"),
        "n": ("n", "samplesize.exposure", "samplesize_exposure", "samplesize"),
    }.items():
        names[field] = _first(table, twins, "filter_weak", required=field in ("beta", "se"))
    values = {
        k: (pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float) if c else np.full(len(table), np.nan))
        for k, c in names.items()
    }
    strength = strength_columns(values["beta"], values["se"], values["eaf"], values["n"])
    r2_known = np.isfinite(strength.f_stat)
    if form == "z2":
        used, label = strength.f_stat_z2, np.full(len(table), "beta^2/se^2")
    elif form == "r2":
        used, label = strength.f_stat, np.full(len(table), "R2 form")
    else:
        used = np.where(r2_known, strength.f_stat, strength.f_stat_z2)
        label = np.where(r2_known, "R2 form", "beta^2/se^2")
    unknown = ~np.isfinite(used)
    weak = ~unknown & (used < f_min)
    table = table.assign(r2=strength.r2, f_stat=strength.f_stat, f_stat_z2=strength.f_stat_z2)
    frames = []
    if weak.any():
        rows = table.loc[weak]
        detail = [f"F = {f:.4g} ({lab}) < {f_min:g}" for f, lab in zip(used[weak], label[weak])]
        frames.append(audit.drops("strength", rows[trait_col].tolist(), rows["SNP"].tolist(), "weak instrument", detail))
    if unknown.any():
        rows = table.loc[unknown]
        frames.append(audit.drops("strength", rows[trait_col].tolist(), rows["SNP"].tolist(), "bad value",
                                  f"F not computable ({form} form: beta, se, EAF or N missing)"))
    out = table.loc[~weak & ~unknown].copy()
    n_in = table[trait_col].value_counts(sort=False)
    listed = pd.concat(frames, ignore_index=True) if frames else None
    mine = audit.step_audit("strength", n_in, audit.kept_per_trait(out, n_in.index, trait_col), listed)
    _check_not_empty(out, n_in.index, trait_col, f"filter_weak(f_min={f_min})")
    return audit.deliver(audit.Audited(out, upstream + mine), audited)


class NoInstrumentWarning(UserWarning):
    """Some traits have no instrument left after a selection step (each drop has a reason in
    the audit); the others go on."""


def _check_not_empty(out: pd.DataFrame, traits, trait_col: str, step: str) -> None:
    if len(traits) == 0:
        raise ValueError(f"{step}: the input table has no rows")
    if len(out) == 0:
        raise NoInstrumentError(f"{step}: no instrument left for any of the {len(traits)} trait(s) {list(traits)[:5]}")
    empty = sorted(set(traits) - set(out[trait_col]))
    if empty:
        warnings.warn(f"{step}: no instrument left for trait(s) {empty}", NoInstrumentWarning, stacklevel=3)
