"""Public MV functions: ``mvmr``, ``mvmr_strength``, ``mvmr_heterogeneity`` (host side: table in,
one engine call for all analyses, table out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from mrjax.batch import DRAW_BUCKETS, PANEL_BUCKETS, trait_keys
from mrjax.estimators.common import Reason
from mrjax.mv.data import MVBatch, from_mv_frame
from mrjax.mv.pcgmm import THRES as PC_THRES
from mrjax.mv.registry import MV_METHODS, resolve_specs, spec_name

INTERCEPT = "(intercept)"


def as_mv_batch(data, on_missing: str = "error") -> MVBatch:
    """An :class:`MVBatch` from a long MV table (validated) or an MVBatch as is."""
    return data if isinstance(data, MVBatch) else from_mv_frame(data, on_missing=on_missing)


def _label(batch: MVBatch, i: int) -> str:
    row = batch.analyses.iloc[i]
    return str(row["analysis"]) if "analysis" in batch.analyses.columns else str(row["outcome"])


def _correlations(batch: MVBatch, correlation):
    """Per-analysis SNP correlation matrices in each analysis's SNP order (or None)."""
    if correlation is None:
        return None
    if not isinstance(correlation, dict):
        if batch.n_analyses != 1:
            raise ValueError("correlation: give a dict {analysis or outcome: matrix} when there are several analyses")
        correlation = {_label(batch, 0): correlation}
    out = []
    for i in range(batch.n_analyses):
        mat = correlation.get(_label(batch, i))
        snps = batch.snps[i]
        if mat is None:
            out.append(None)
            continue
        if isinstance(mat, pd.DataFrame):
            missing = [s for s in snps if s not in mat.index or s not in mat.columns]
            if missing:
                raise ValueError(f"correlation for analysis {_label(batch, i)!r} lacks SNP {missing[0]!r}")
            mat = mat.loc[snps, snps].to_numpy(float)
        mat = np.asarray(mat, float)
        if mat.shape != (len(snps), len(snps)):
            raise ValueError(f"correlation for analysis {_label(batch, i)!r} is {mat.shape}, expected "
                             f"{len(snps)} x {len(snps)} (one row and column per SNP, in table order)")
        if not np.allclose(mat, mat.T) or np.any(np.abs(np.diag(mat) - 1) > 1e-8):
            raise ValueError(f"correlation for analysis {_label(batch, i)!r} must be symmetric with a unit diagonal")
        out.append(mat)
    return out


def _analysis_columns(batch: MVBatch, index: np.ndarray) -> dict:
    """The identity columns (``[analysis,] outcome``) of the analyses ``index``, one entry per
    output row."""
    names = ["analysis"] if "analysis" in batch.analyses.columns else []
    return {c: batch.analyses[c].to_numpy()[index] for c in names + ["outcome"]}


def _chi2_sf(q, df):
    """Upper chi-square tail, NaN where ``q`` or ``df`` is NaN."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(q) & np.isfinite(df) & (df > 0), stats.chi2.sf(q, np.where(df > 0, df, 1.0)), np.nan)


def _exposure_rows(batch: MVBatch, intercept=None):
    """``(analysis index, slot, exposure name)`` of every output row: each analysis's exposures
    in column order, then ``(intercept)`` (slot ``-1``) where ``intercept [A]`` is True."""
    nexp = batch.analyses["nexp"].to_numpy()
    extra = np.zeros(batch.n_analyses, int) if intercept is None else np.asarray(intercept, int)
    index = np.repeat(np.arange(batch.n_analyses), nexp + extra)
    slots = np.concatenate([np.r_[np.arange(k), [-1] * e] for k, e in zip(nexp, extra)]).astype(int)
    names = np.concatenate([np.array(exps + [INTERCEPT] * e, dtype=object) for exps, e in zip(batch.exposures, extra)])
    return index, slots, names


def mvmr(data, methods=None, *, seed=0, alpha: float = 0.05, on_missing: str = "error",
         correlation=None) -> pd.DataFrame:
    """Multivariable MR for every analysis of a long harmonised MV table (``mrjax.mv.data``).

    ``methods``: ids of :data:`mrjax.mv.registry.MV_METHODS` or ``(id, {option: value})`` pairs
    (default ``mv_ivw, mv_egger, mv_median``); ``correlation``: SNP correlation matrices (one
    matrix for a single analysis, or ``{analysis/outcome: matrix or SNP-indexed DataFrame}``)
    for the correlated-instrument (GLS) fits. Analyses run in one engine call per width bucket
    (:func:`_estimates`); random numbers come from ``seed`` and the analysis identity only.

    Returns one row per analysis x exposure x method — ``[analysis,] exposure, outcome,
    method_id, method, nsnp, b, se, pval, lo_ci, up_ci, reason, heter_stat, heter_df,
    heter_pval, overdispersion`` — plus an ``(intercept)`` row for methods with an intercept
    (MV-Egger). CIs are ``b -/+ q se`` with ``q`` the normal or the method's t quantile at
    ``1 - alpha/2``.
    ``heter_stat``: the analysis's heterogeneity statistic as R's ``Heter.Stat`` (residual
    ``Q`` of MV-IVW / MV-Egger / ML, ``(nsnp - K) rmse^2`` of the measurement-error and robust
    fits, the GMM objective), on ``heter_df`` degrees of freedom with its chi-square
    ``heter_pval`` (NaN where R gives none, as for the robust GMM); NaN for methods without one.
    ``overdispersion``: the method's estimated heterogeneity variance — mv_gmm's and mv_pcgmm's ``kappa`` (R's
    ``Overdispersion``; the moments' variance gains ``kappa / ny``), mv_qhet's ``tau2`` (the
    outcome variance's addition) — else NaN.
    """
    batch = as_mv_batch(data, on_missing)
    specs = resolve_specs(methods)
    estimates = _estimates(batch, specs, seed, _correlations(batch, correlation))
    frames = []
    for spec in specs:
        name = spec_name(spec)
        est = estimates[name]
        has_int = np.isfinite(est["b"][:, -1]) | (est["reason"][:, -1] != Reason.NOT_APPLICABLE)
        index, slots, exposure = _exposure_rows(batch, has_int)
        pick = {f: v[index] if v.ndim == 1 else v[index, slots] for f, v in est.items()}
        b, se, df, ci_se = pick["b"], pick["se"], pick["ci_df"], pick["ci_se"]
        with np.errstate(invalid="ignore"):
            q = np.where(np.isfinite(df), stats.t.ppf(1 - alpha / 2, np.maximum(df, 1e-300)), stats.norm.ppf(1 - alpha / 2))
        frames.append(pd.DataFrame({
            **_analysis_columns(batch, index), "exposure": exposure, "method_id": name, "method": MV_METHODS[spec[0]].label,
            "nsnp": pick["nsnp"].astype(int), "b": b, "se": se, "pval": pick["pval"], "lo_ci": b - q * ci_se, "up_ci": b + q * ci_se,
            "reason": [Reason.TEXT.get(int(code), "") for code in pick["reason"]],
            "heter_stat": pick["q"], "heter_df": pick["q_df"], "heter_pval": _chi2_sf(pick["q"], pick["q_df"]),
            "overdispersion": pick["overdispersion"]}))
    cols = (["analysis"] if "analysis" in batch.analyses.columns else []) + [
        "exposure", "outcome", "method_id", "method", "nsnp", "b", "se", "pval", "lo_ci", "up_ci", "reason",
        "heter_stat", "heter_df", "heter_pval", "overdispersion"]
    return pd.concat(frames, ignore_index=True)[cols]


def _bootstraps(specs) -> int:
    """The most bootstrap fits per analysis any MV-median of ``specs`` asks for (0: none)."""
    return max([int(dict(opts).get("n_boot", 1000)) for mid, opts in specs if mid == "mv_median"], default=0)


def _perturbations(specs) -> int:
    """The most perturbed data sets per analysis any MVMR-cML of ``specs`` fits (0: none)."""
    from mrjax.mv.cml import NUM_PERT

    return max([int(dict(opts).get("num_pert", NUM_PERT)) for mid, opts in specs
                if mid == "mv_cml" and dict(opts).get("dp", True)], default=0)


def _row_elements(specs, nexp: int):
    """Elements one analysis of padded width ``w`` adds to an MV call's largest array: the
    MV-median's bootstrap designs ``n_boot x w x nexp`` (or the ``w x w`` SNP correlations), or
    MVMR-cML's perturbed data sets ``n_pert x w x nexp`` and their fits' valid sets
    ``n_pert x (w / 2 + 1) x w`` (bytes, counted as eighths of an element)."""
    n_boot, n_pert = _bootstraps(specs), _perturbations(specs)
    k = max(nexp, 1)

    def elements(width):
        return max(width * max(n_boot, width) * k, n_pert * width * k, n_pert * ((width + 1) // 2 + 1) * width // 8)

    return elements


def _policy(specs):
    """How analyses are bucketed: :data:`mrjax.batch.DRAW_BUCKETS` (widths 8, 16, 24, 32, 48, …)
    when an MV-median bootstrap runs — its cost grows with the padded width times the draws, as
    MR-PRESSO's does (731 analyses of 3–29 SNPs: 1.96–2.0 s warm on the 16/32 ladder, 1.60–1.65 s
    on this one, benchmarks/RESULTS.md) — else :data:`mrjax.batch.PANEL_BUCKETS` (16, 32, 64, …:
    compilation dominates the closed-form fits)."""
    return DRAW_BUCKETS if _bootstraps(specs) else PANEL_BUCKETS


def _estimates(batch: MVBatch, specs, seed, rho) -> dict[str, dict[str, np.ndarray]]:
    """``{method_id: {field: [analyses, nexp + 1]}}`` from one engine call per bucket.

    Analyses are padded into width buckets (:func:`_policy`) of at most
    :data:`mrjax.batch.MEMORY_BUDGET_ELEMENTS` per call, so a few wide analyses neither pad every
    other one to their width (the MV-median's cost grows with it) nor hold the whole batch in
    memory. Padding and grouping never change a result (each analysis's draws
    come from its own key, slot by slot); the calls run one at a time.
    """
    from mrjax import engine

    nexp = int(batch.analyses["nexp"].max())
    plan = _policy(specs).plan(batch.analyses["nsnp"].to_numpy(), row_elements=_row_elements(specs, nexp))
    fields = ("b", "se", "pval", "ci_df", "ci_se", "nsnp", "reason", "q", "q_df", "overdispersion")
    out: dict[str, dict[str, np.ndarray]] = {}
    for members, width in plan:
        inst, uids = batch.padded(width=width, nexp=nexp, rows=len(members), rho=rho, members=members)
        result = engine.run_mv(inst, trait_keys(seed, uids), specs)
        real = members >= 0
        for name, estimate in result.items():
            for f in fields:
                values = np.asarray(getattr(estimate, f))
                table = out.setdefault(name, {}).get(f)
                if table is None:
                    table = out[name][f] = np.zeros((batch.n_analyses,) + values.shape[1:], values.dtype)
                table[members[real]] = values[real]
    return out


def _sigma(batch: MVBatch, gencov, width: int, nexp: int, rows: int) -> np.ndarray:
    """Per-SNP covariance ``[rows, width, nexp, nexp]`` of the exposure effects: MVMR
    ``gencov = 0`` gives ``diag(sx^2)``; ``"identity"`` or a ``K x K`` phenotypic correlation ``pcor`` gives
    ``pcor o (sx sx')`` (MVMR ``phenocov_mvmr``); a list of ``[S, K, K]`` arrays is used as is."""
    sigma = np.broadcast_to(np.eye(nexp), (rows, width, nexp, nexp)).copy()
    for i, arr in enumerate(batch.arrays):
        n, k = arr["sx"].shape
        if isinstance(gencov, (list, tuple)):
            given = np.asarray(gencov[i], float)
            if given.shape != (n, k, k):
                raise ValueError(f"gencov for analysis {_label(batch, i)!r} is {given.shape}, expected {(n, k, k)}")
            sigma[i, :n, :k, :k] = given
            continue
        if isinstance(gencov, str) and gencov == "identity":
            gencov = np.eye(k)
        pcor = np.eye(k) if np.isscalar(gencov) and gencov == 0 else np.asarray(gencov, float)
        if pcor.shape != (k, k):
            raise ValueError(f"gencov must be 0, a {k} x {k} phenotypic correlation matrix or a list of [S, K, K] arrays")
        sigma[i, :n, :k, :k] = pcor[None] * arr["sx"][:, :, None] * arr["sx"][:, None, :]
    return sigma


def _condf_inputs(batch: MVBatch, nx, cor_x, nexp: int, rows: int):
    """``nx [rows, nexp]`` and ``cor_x [rows, nexp, nexp]`` for ``CondFstat``: ``nx`` a number
    (every exposure), ``{exposure: n}``, or None (the table's ``samplesize.exposure``; NaN when
    absent); ``cor_x`` None (identity), a ``K x K`` matrix for analyses of K exposures, or a
    DataFrame indexed and columned by exposure name."""
    sizes = np.full((rows, nexp), np.nan)
    corr = np.broadcast_to(np.eye(nexp), (rows, nexp, nexp)).copy()
    for i, exps in enumerate(batch.exposures):
        k = len(exps)
        if nx is None:
            sizes[i, :k] = batch.arrays[i].get("nx", np.full(k, np.nan))
        elif isinstance(nx, dict):
            lacking = [e for e in exps if e not in nx]
            if lacking:
                raise ValueError(f"nx gives no sample size for exposure {lacking[0]!r} (analysis {_label(batch, i)!r})")
            sizes[i, :k] = [float(nx[e]) for e in exps]
        else:
            sizes[i, :k] = float(nx)
        if cor_x is None:
            continue
        if isinstance(cor_x, pd.DataFrame):
            lacking = [e for e in exps if e not in cor_x.index or e not in cor_x.columns]
            if lacking:
                raise ValueError(f"cor_x has no row/column for exposure {lacking[0]!r} (analysis {_label(batch, i)!r})")
            corr[i, :k, :k] = cor_x.loc[exps, exps].to_numpy(float)
        else:
            mat = np.asarray(cor_x, float)
            if mat.shape != (k, k):
                raise ValueError(f"cor_x is {mat.shape} but analysis {_label(batch, i)!r} has {k} exposures; "
                                 "give a DataFrame indexed by exposure name for analyses of different sizes")
            corr[i, :k, :k] = mat
    bad = np.isfinite(sizes) & (sizes <= 0)
    if bad.any():
        i = int(np.nonzero(bad.any(axis=1))[0][0])
        raise ValueError(f"nx must be > 0; analysis {_label(batch, i)!r} has {sizes[i][bad[i]][0]!r}")
    return sizes, corr


def _strength_run(data, gencov, on_missing, nx=None, cor_x=None, correlation=None, components=None):
    from mrjax import engine

    batch = as_mv_batch(data, on_missing)
    rho = _correlations(batch, correlation)
    inst, _ = batch.padded(rho=rho)
    rows, width, nexp = inst.bx.shape
    sigma = _sigma(batch, gencov, width, nexp, rows)
    sizes, corr = _condf_inputs(batch, nx, cor_x, nexp, rows)
    inv_nx = np.where(np.isfinite(sizes), 1.0 / np.where(np.isfinite(sizes), sizes, 1.0), 0.0)
    return batch, sizes, engine.run_mv_strength(inst, sigma, inv_nx, corr, components=components if rho else None)


def mvmr_strength(data, *, gencov=0, nx=None, cor_x=None, on_missing: str = "error", correlation=None,
                  thres: float = PC_THRES, r: int | None = None) -> pd.DataFrame:
    """Instrument strength of every exposure of every analysis, one row per analysis x exposure:

    - ``F``: MVMR ``strength_mvmr`` conditional F (``gencov`` as in :func:`_sigma`);
    - ``cond_f``: MendelianRandomization's ``CondFstat`` (``mr_mvivw(..., nx, correl.x)``) at the
      TRUE minimum of its objective, where R's ``nlminb`` stops early; every exposure of an
      analysis shares that minimum (the objective depends on the direction of ``(1, -theta)`` only)
      (:func:`mrjax.mv.strength.cond_f_min`). ``nx``: exposure sample sizes (a number,
      ``{exposure: n}``, or None for the table's ``samplesize.exposure``); ``cor_x``: the
      exposures' phenotypic correlation (None = identity, R's default). R returns NA without
      ``nx``; mrjax then reports the ``nx -> inf`` limit of the same objective (``nx`` NaN in
      the output), whose minimum is the conditional F with ``sigma = cor_x o (sx sx')``.

    ``correlation`` (as for :func:`mvmr`): for an analysis with correlated instruments
    ``cond_f`` is ``mr_mvpcgmm``'s ``CondFstat`` instead — the same objective on the analysis's
    principal components (``thres``/``r`` as for ``mv_pcgmm``; NaN without ``nx``), at its true
    minimum (:func:`mrjax.mv.pcgmm.pc_cond_f`) — and the table gains ``pcs``, the number of
    components (0 for analyses without a correlation). ``F`` (MVMR's) stays the
    independent-variant statistic.
    """
    if r is not None and (isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1):
        raise ValueError(f"r (the number of principal components) must be a positive integer, got {r!r}")
    components = (float(thres), None if r is None else int(r))
    batch, sizes, (st, _) = _strength_run(data, gencov, on_missing, nx, cor_x, correlation, components)
    index, slots, exposure = _exposure_rows(batch)
    table = pd.DataFrame({**_analysis_columns(batch, index), "exposure": exposure,
                          "nsnp": batch.analyses["nsnp"].to_numpy()[index].astype(int),
                          "F": np.asarray(st.f)[index, slots], "cond_f": np.asarray(st.cond_f)[index, slots],
                          "nx": sizes[index, slots]})
    if correlation is not None:
        table["pcs"] = np.asarray(st.pcs)[index].astype(int)
    return table


def mvmr_heterogeneity(data, *, gencov=0, on_missing: str = "error") -> pd.DataFrame:
    """MVMR ``pleiotropy_mvmr`` for every analysis: ``Q, Q_df, Q_pval`` with ``Q_df = nsnp - K - 1``
    (the package's df as coded); one row per analysis."""
    batch, _, (_, pl) = _strength_run(data, gencov, on_missing)
    index = np.arange(batch.n_analyses)
    return pd.DataFrame({**_analysis_columns(batch, index), "nsnp": batch.analyses["nsnp"].to_numpy().astype(int),
                         "nexp": batch.analyses["nexp"].to_numpy().astype(int), "Q": np.asarray(pl.q),
                         "Q_df": np.asarray(pl.df).astype(int), "Q_pval": np.asarray(pl.pval)})
