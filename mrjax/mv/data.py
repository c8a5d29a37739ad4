"""Multivariable (MV) instrument batches: a long harmonised MV table becomes padded tensors.

The long table has one row per SNP x exposure with TwoSampleMR column names
(``SNP, exposure, beta.exposure, se.exposure, [pval.exposure], outcome, beta.outcome,
se.outcome``), the outcome columns repeated on every exposure row of a SNP. Rows are grouped
into *analyses* by ``outcome`` (and by an optional ``analysis`` column when one outcome is
analysed with several exposure sets). Inside an analysis exposures keep their order of first
appearance, SNPs theirs.

An analysis becomes ``[max_instruments, max_exposures]`` tensors (:class:`MVInstruments`):
``mask`` marks real SNP rows, ``xmask`` real exposure columns. Padded rows hold ``bx = 0,
by = 0, sx = sy = 1`` and never carry weight; padded exposure columns are zero columns that
the estimators replace by identity rows in every normal-equation system, so their
coefficients are 0 and a real exposure's result does not depend on the padding. Every
analysis gets a stable ``analysis_uid`` (CRC-32 of its identity) from which its PRNG stream is
derived, as in :mod:`mrjax.batch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from mrjax.batch import _device_arrays, bucket_rows, bucket_width, normalise_columns, trait_uid

REQUIRED = ["SNP", "exposure", "beta.exposure", "se.exposure", "beta.outcome", "se.outcome"]
NUMERIC = ["beta.exposure", "se.exposure", "beta.outcome", "se.outcome"]


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class MVInstruments:
    """One MV analysis (fields ``[S, K]`` / ``[S]``) or a batch (a leading analysis axis).

    ``bx, sx, px``: SNP-exposure effects, SEs and p-values ``[S, K]``; ``by, sy``: SNP-outcome
    effect and SE ``[S]``; ``mask [S]`` real SNPs, ``xmask [K]`` real exposures; ``rho``:
    the SNP correlation matrix ``[S, S]`` (identity when the instruments are independent).
    """

    bx: jax.Array
    sx: jax.Array
    px: jax.Array
    by: jax.Array
    sy: jax.Array
    mask: jax.Array
    xmask: jax.Array
    rho: jax.Array

    @property
    def nsnp(self) -> jax.Array:
        return jnp.sum(self.mask, axis=-1)

    @property
    def nexp(self) -> jax.Array:
        return jnp.sum(self.xmask, axis=-1)


def make_mv_instruments(bx, sx, by, sy, *, px=None, mask=None, xmask=None, rho=None) -> MVInstruments:
    """An :class:`MVInstruments` for one analysis from array-likes (``bx, sx`` ``[S, K]``),
    making padded slots inert whatever they held."""
    bx = np.atleast_2d(np.asarray(bx, dtype=float).T).T
    sx = np.atleast_2d(np.asarray(sx, dtype=float).T).T
    n, k = bx.shape
    mask = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
    xmask = np.ones(k, bool) if xmask is None else np.asarray(xmask, bool)
    px = 2 * stats.norm.sf(np.abs(bx / sx)) if px is None else np.atleast_2d(np.asarray(px, float).T).T
    cell = mask[:, None] & xmask[None, :]
    rho = np.eye(n) if rho is None else np.asarray(rho, dtype=float)
    both = mask[:, None] & mask[None, :]
    rho = np.where(both, rho, np.eye(n))
    return MVInstruments(**_device_arrays(dict(  # float64 on before the first device array
        bx=np.where(cell, bx, 0.0),
        sx=np.where(cell, sx, 1.0),
        px=np.where(cell, px, 1.0),
        by=np.where(mask, by, 0.0),
        sy=np.where(mask, sy, 1.0),
        mask=mask,
        xmask=xmask,
        rho=rho,
    )))


@dataclass(frozen=True)
class MVBatch:
    """A long MV table split into analyses.

    ``analyses``: one row per analysis (``analysis`` when given, ``outcome``, ``nsnp``,
    ``nexp``, ``analysis_uid``); ``exposures``: per analysis the exposure names in column
    order; ``snps``: per analysis the SNP ids in row order; ``arrays``: per analysis a dict of
    ``bx, sx, px [S, K]`` and ``by, sy [S]`` numpy arrays (and ``nx [K]``, the smallest
    ``samplesize.exposure`` of each exposure, when the table has that column); ``excluded``: rows dropped, with a
    ``reason``.
    """

    analyses: pd.DataFrame
    exposures: list[list[str]]
    snps: list[list[str]]
    arrays: list[dict]
    excluded: pd.DataFrame

    @property
    def n_analyses(self) -> int:
        return len(self.analyses)

    def padded(self, width: int | None = None, nexp: int | None = None, rows: int | None = None,
               rho: list | None = None, members=None) -> tuple[MVInstruments, np.ndarray]:
        """The analyses ``members`` (default all; -1 for an empty row) in one ``[rows, width,
        nexp]`` batch, row ``r`` holding analysis ``members[r]`` (defaults: the smallest
        power-of-two width, the largest exposure count, :func:`mrjax.batch.bucket_rows` rows;
        extra rows are empty analyses). ``rho``: optional per-analysis SNP correlation matrices
        (indexed by analysis). Returns the batch and the ``[rows]`` uids (0 for the empty rows)."""
        members = np.arange(self.n_analyses) if members is None else np.asarray(members, dtype=np.int64)
        real = members[members >= 0]
        chosen = self.analyses.iloc[real]
        a = len(members)
        width = width or bucket_width(int(chosen["nsnp"].max()))
        nexp = nexp or int(chosen["nexp"].max())
        rows = rows or bucket_rows(a)
        if width < chosen["nsnp"].max() or nexp < chosen["nexp"].max() or rows < a:
            raise ValueError(f"padding ({rows} x {width} x {nexp}) smaller than the data")
        out = {k: np.zeros((rows, width, nexp)) for k in ("bx",)}
        out.update(sx=np.ones((rows, width, nexp)), px=np.ones((rows, width, nexp)))
        out.update(by=np.zeros((rows, width)), sy=np.ones((rows, width)))
        mask = np.zeros((rows, width), bool)
        xmask = np.zeros((rows, nexp), bool)
        corr = np.broadcast_to(np.eye(width), (rows, width, width)).copy()
        for i, member in enumerate(members):
            if member < 0:
                continue
            arr = self.arrays[member]
            n, k = arr["bx"].shape
            for name in ("bx", "sx", "px"):
                out[name][i, :n, :k] = arr[name]
            out["by"][i, :n] = arr["by"]
            out["sy"][i, :n] = arr["sy"]
            mask[i, :n] = True
            xmask[i, :k] = True
            if rho is not None and rho[member] is not None:
                corr[i, :n, :n] = rho[member]
        uids = np.zeros(rows, dtype=np.uint32)
        uids[:a] = np.where(members >= 0, self.analyses["analysis_uid"].to_numpy()[np.maximum(members, 0)], 0)
        # _device_arrays turns float64 on before the first device array
        inst = MVInstruments(**_device_arrays({**out, "mask": mask, "xmask": xmask, "rho": corr}))
        return inst, uids


def _numeric(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        row = df.index[bad][0]
        raise ValueError(f"{source}: column {col!r} is missing or not a finite number in row {row} "
                         f"(SNP {df.loc[row, 'SNP']!r}, exposure {df.loc[row, 'exposure']!r})")
    if col.startswith("se.") and (values <= 0).any():
        row = df.index[(values <= 0).to_numpy()][0]
        raise ValueError(f"{source}: column {col!r} must be > 0; row {row} (SNP {df.loc[row, 'SNP']!r}) holds {values[row]!r}")
    return values.to_numpy(dtype=float)


def from_mv_frame(data: pd.DataFrame, *, on_missing: str = "error", source: str = "MV table") -> MVBatch:
    """Split a long harmonised MV table into analyses (see the module docstring).

    ``on_missing``: what to do with a SNP that lacks a row for one exposure of its analysis —
    ``"error"`` (default: a ``ValueError`` naming the SNP, exposure and analysis) or ``"drop"``
    (the SNP's rows go to ``excluded`` with the reason). A SNP whose outcome effect differs
    between its exposure rows, a SNP listed twice for one exposure, a missing column and
    non-finite values are errors naming the row.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{source}: expected a pandas DataFrame, got {type(data).__name__}")
    if on_missing not in ("error", "drop"):
        raise ValueError(f"on_missing must be 'error' or 'drop', got {on_missing!r}")
    df = normalise_columns(data).copy()
    if "outcome" not in df.columns:
        df["outcome"] = df["id.outcome"] if "id.outcome" in df.columns else "outcome"
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing required column(s) {missing}")
    if len(df) == 0:
        raise ValueError(f"{source}: the table has no rows")
    df = df.reset_index(drop=True)
    df.index = df.index + 1
    for col in ("SNP", "exposure", "outcome"):
        df[col] = df[col].astype(str)
    keys = (["analysis"] if "analysis" in df.columns else []) + ["outcome"]
    for col in keys:
        df[col] = df[col].astype(str)
    for col in NUMERIC:
        df[col] = _numeric(df, col, source)
    if "pval.exposure" in df.columns:
        p = pd.to_numeric(df["pval.exposure"], errors="coerce").to_numpy(float)
        fallback = 2 * stats.norm.sf(np.abs(df["beta.exposure"] / df["se.exposure"]))
        df["pval.exposure"] = np.where(np.isfinite(p), p, fallback)
    else:
        df["pval.exposure"] = 2 * stats.norm.sf(np.abs(df["beta.exposure"] / df["se.exposure"]))

    dup = df.duplicated(subset=keys + ["SNP", "exposure"], keep=False)
    if dup.any():
        row = df.index[dup.to_numpy()][0]
        raise ValueError(f"{source}: SNP {df.loc[row, 'SNP']!r} appears more than once for exposure "
                         f"{df.loc[row, 'exposure']!r} (rows {list(df.index[dup.to_numpy()][:5])})")

    return _split(df, keys, on_missing, source)


class _Pairs:
    """The distinct (analysis, item) pairs of the rows — an item being a SNP or an exposure
    code — in order of first appearance: ``code`` of each row's pair, ``first`` the row where
    each pair first appears, ``rank`` each pair's position among its analysis's items,
    ``count`` its rows."""

    def __init__(self, group: np.ndarray, item: np.ndarray):
        key = group.astype(np.int64) * (int(item.max()) + 1) + item
        _, first, code, count = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        order = np.argsort(first, kind="stable")  # pairs in table order
        remap = np.empty_like(order)
        remap[order] = np.arange(len(order))
        self.code, self.first, self.count = remap[code], first[order], count[order]
        owner = group[self.first]
        by_group = np.argsort(owner, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(owner))])
        self.rank = np.empty(len(order), dtype=np.int64)
        self.rank[by_group] = np.arange(len(order)) - starts[owner[by_group]]
        self.group = owner


def _split(df: pd.DataFrame, keys: list[str], on_missing: str, source: str) -> MVBatch:
    """The analyses of a validated long table, split with whole-table array operations (one
    grouping of all rows instead of a pandas pivot per analysis)."""
    group = df.groupby(keys, sort=False).ngroup().to_numpy()
    n_groups = int(group.max()) + 1
    names = df[keys].iloc[np.unique(group, return_index=True)[1]]
    labels = [" / ".join(f"{k} {v!r}" for k, v in zip(keys, row)) for row in names.itertuples(index=False)]
    exposure, snp = df["exposure"].to_numpy(), df["SNP"].to_numpy()
    exps = _Pairs(group, pd.factorize(exposure)[0])
    nexp = np.bincount(exps.group, minlength=n_groups)
    col = exps.rank[exps.code]

    snp_codes = pd.factorize(snp)[0]
    snps = _Pairs(group, snp_codes)
    incomplete = snps.count[snps.code] < nexp[group]
    dropped = df.iloc[:0].assign(reason=pd.Series(dtype=str))
    if incomplete.any():
        bad = int(np.flatnonzero(incomplete)[0])
        g = group[bad]
        if on_missing == "error":
            has = set(exposure[(group == g) & (snp == snp[bad])])
            lacking = [e for e in exposure[exps.first[exps.group == g]] if e not in has]
            n_bad = len(np.unique(snp_codes[(group == g) & incomplete]))
            raise ValueError(f"{source}: SNP {snp[bad]!r} has no row for exposure {lacking[0]!r} in analysis {labels[g]} "
                             f"({n_bad} SNP(s) incomplete); give every SNP for every exposure or pass on_missing='drop'")
        order = np.argsort(group[incomplete], kind="stable")
        dropped = df.loc[incomplete].iloc[order].assign(reason="SNP missing for another exposure of the analysis")
        empty = np.setdiff1d(np.arange(n_groups), group[~incomplete])
        if len(empty):
            raise ValueError(f"{source}: analysis {labels[empty[0]]} has no SNP present for every exposure")
        keep = ~incomplete
        df, group, col, exposure, snp, snp_codes = df.loc[keep], group[keep], col[keep], exposure[keep], snp[keep], snp_codes[keep]
        snps = _Pairs(group, snp_codes)
    nsnp = np.bincount(snps.group, minlength=n_groups)
    row = snps.rank[snps.code]

    by, sy = df["beta.outcome"].to_numpy(float), df["se.outcome"].to_numpy(float)
    outcome = pd.DataFrame({"by": by, "sy": sy}).groupby(snps.code, sort=True)
    high, low = outcome.max().to_numpy(), outcome.min().to_numpy()
    differs = np.abs(high - low).max(axis=1) > 1e-12 * np.clip(np.abs(high).max(axis=1), 1.0, None)
    if differs.any():
        pair = int(np.flatnonzero(differs)[0])
        raise ValueError(f"{source}: SNP {snp[snps.first[pair]]!r} has different outcome effects on its exposure rows "
                         f"in analysis {labels[snps.group[pair]]}")

    # Each analysis's cells one after another in one buffer per field: [nsnp, nexp] blocks for
    # the exposure fields, nsnp for the outcome's and the SNP names, nexp for the exposure names.
    cells = np.concatenate([[0], np.cumsum(nsnp * nexp)])
    at_snp = np.concatenate([[0], np.cumsum(nsnp)])
    at_exp = np.concatenate([[0], np.cumsum(nexp)])
    cell = cells[group] + row * nexp[group] + col
    fields = {"bx": "beta.exposure", "sx": "se.exposure", "px": "pval.exposure"}
    flat = {short: np.empty(cells[-1]) for short in fields}
    for short, column in fields.items():
        flat[short][cell] = df[column].to_numpy(float)
    slot = at_snp[snps.group] + snps.rank
    flat["by"], flat["sy"], snp_names = np.empty(at_snp[-1]), np.empty(at_snp[-1]), np.empty(at_snp[-1], dtype=object)
    flat["by"][slot], flat["sy"][slot], snp_names[slot] = by[snps.first], sy[snps.first], snp[snps.first]
    exp_names = np.empty(at_exp[-1], dtype=object)
    exp_names[at_exp[group] + col] = exposure
    if "samplesize.exposure" in df.columns:
        # One sample size per exposure (MendelianRandomization's nx): the smallest given.
        n = pd.to_numeric(df["samplesize.exposure"], errors="coerce").to_numpy(float)
        flat["nx"] = pd.Series(n).groupby(at_exp[group] + col).min().reindex(np.arange(at_exp[-1])).to_numpy(float)

    rows, exposures, snp_lists, arrays = [], [], [], []
    for g, ident in enumerate(names.itertuples(index=False)):
        k, n = int(nexp[g]), int(nsnp[g])
        exp_order = exp_names[at_exp[g]:at_exp[g + 1]].tolist()
        arr = {short: flat[short][cells[g]:cells[g + 1]].reshape(n, k) for short in fields}
        arr.update({short: flat[short][at_snp[g]:at_snp[g + 1]] for short in ("by", "sy")})
        if "nx" in flat:
            arr["nx"] = flat["nx"][at_exp[g]:at_exp[g + 1]]
        rows.append({**dict(zip(keys, ident)), "nsnp": n, "nexp": k, "analysis_uid": trait_uid("mv", *ident, *exp_order)})
        exposures.append(exp_order)
        snp_lists.append(snp_names[at_snp[g]:at_snp[g + 1]].tolist())
        arrays.append(arr)
    return MVBatch(analyses=pd.DataFrame(rows), exposures=exposures, snps=snp_lists, arrays=arrays, excluded=dropped)
