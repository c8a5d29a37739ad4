"""LD clumping against a local PLINK panel, reproducing plink 1.9 ``--clump`` index SNPs exactly.

The procedure (plink-ng 1.9 ``plink_ld.c: clump_reports``; documented with its traps in
``shared/data/ldref/README.md``):

1. Variants whose ID is not in the panel are skipped (plink warns for those with p ≤ p1); a SNP
   listed twice uses its smallest p.
2. Index candidates are the variants with p ≤ p1 (inclusive), visited by ascending p, ties by
   panel (.bim) order.
3. Greedy: a candidate not yet in a clump becomes an index SNP; every other variant not yet
   in a clump, on the same chromosome and strictly closer than ``kb`` kilobases, whose EM
   haplotype r² with the index is **strictly** greater than ``r2`` joins its clump and can no
   longer become an index. r² is the founders-only maximum-likelihood haplotype r²
   (:mod:`mrjax.ld.haplotype`); pairs with a monomorphic variant never clump.

Variants with p > p1 can join clumps in plink but never change which variants are index SNPs,
so only the candidates take part in the r² work. The r² of an index against its window is one
batch: popcounts of the bit-packed genotype classes give all 3×3 tables at once, then the
vectorised EM solves every pair together.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mrjax import audit
from mrjax.ld.haplotype import ld_from_counts
from mrjax.ld.panel import LDPanel, clump_radius_bp, tables_from_planes

STEP = "clump"
_P_COLUMNS = ("pval", "pval.exposure", "P", "p")
_TRAIT_COLUMNS = ("trait", "id.exposure", "exposure")
_SINGLE_TRAIT = "all"


class NoIndexSNPWarning(UserWarning):
    """A trait has no variant left after clumping (every variant was dropped, with a reason)."""


def clump(
    gwas: pd.DataFrame,
    ld_ref,
    r2: float = 0.001,
    kb: float = 10_000,
    p1: float = 1e-5,
    p2: float = 1.0,
    keep_missing: bool = False,
    *,
    trait_column: str | None = None,
    audited: bool = False,
):
    """Index SNPs of plink 1.9 ``--clump`` for one or many traits, with the audit of every drop.

    Reproduces ``plink1.9 --bfile REF --clump F --clump-p1 p1 --clump-p2 p2 --clump-r2 r2
    --clump-kb kb`` (as TwoSampleMR ``clump_data()`` / ieugwasr ``ld_clump_local()`` run it),
    see the module docstring for the rules.

    Args:
        gwas: table with ``SNP`` and a p-value column (``pval``, ``pval.exposure``, ``P`` or
            ``p``); chromosome and position come from the panel. With a ``trait`` column (or
            ``id.exposure`` / ``exposure``; or name one in ``trait_column``) each trait is
            clumped separately against the same panel.
        ld_ref: an :class:`LDPanel` or the path prefix of a .bed/.bim/.fam panel.
        r2: r² threshold (a variant joins a clump when r² > r2).
        kb: window radius in kilobases.
        p1: p-value threshold for index SNPs (p ≤ p1).
        p2: accepted for plink compatibility; it only affects plink's report columns, never
            the index SNPs.
        keep_missing: keep variants absent from the panel (with p ≤ p1) instead of dropping
            them; they cannot be clumped and appear in p order among the index SNPs.

    Returns:
        The rows of ``gwas`` that are index SNPs (original index labels kept), per trait in
        plink's order (ascending p, ties by panel order), traits in order of first
        appearance. :func:`mrjax.audit.audit_of` lists every other input row with its
        reason: "bad value" (p missing or outside [0, 1]), "not in panel", "duplicate"
        (SNP listed again with a larger p) or "clumped" (detail "clumped by rsX"); the
        "not significant" rows (p > p1; millions for a whole GWAS) are counted
        (:func:`mrjax.gwas.unlisted_of`), not listed. :func:`mrjax.audit.counts_of`
        balances per trait (trait "all" when the table has no trait column). A trait left
        with no index SNP raises a :class:`NoIndexSNPWarning` naming the reasons; the result
        is then empty for it. With ``audited=True`` (``gwas`` may then be an ``Audited``):
        ``Audited(table, audit)``, the records in the value instead (see ``mrjax.audit``;
        the default form, records in ``attrs``, is deprecated).
    """
    gwas, upstream = audit.unwrap(gwas, audited)
    _check_parameters(r2, kb, p1, p2)
    if not isinstance(gwas, pd.DataFrame):
        raise ValueError(f"clump: gwas must be a pandas DataFrame, got {type(gwas).__name__}")
    if len(gwas) == 0:
        raise ValueError("clump: the input table has no rows")
    if "SNP" not in gwas.columns:
        raise ValueError(f"clump: required column 'SNP' missing (columns: {list(gwas.columns)})")
    p_column = next((c for c in _P_COLUMNS if c in gwas.columns), None)
    if p_column is None:
        raise ValueError(f"clump: no p-value column (one of {list(_P_COLUMNS)}) in {list(gwas.columns)}")
    if trait_column is None:
        trait_column = next((c for c in _TRAIT_COLUMNS if c in gwas.columns), None)
    elif trait_column not in gwas.columns:
        raise ValueError(f"clump: trait column {trait_column!r} not in {list(gwas.columns)}")
    panel = ld_ref if isinstance(ld_ref, LDPanel) else LDPanel.load(ld_ref)

    pval = _numeric_p(gwas[p_column], p_column)
    codes, labels = _trait_codes(gwas, trait_column)

    # Rows that cannot be index SNPs are settled for all traits at once, without touching
    # their IDs (a full GWAS has millions of them); only p <= p1 rows are looked up.
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(pval) | (pval < 0) | (pval > 1)
    significant = ~bad & (pval <= p1)
    chunks = [(np.flatnonzero(bad), "bad value", None)]
    not_significant = np.bincount(codes[~bad & ~significant], minlength=len(labels))
    sig_pos = np.flatnonzero(significant)
    sig_snps = gwas["SNP"].iloc[sig_pos].to_numpy(dtype=object)
    if pd.isna(sig_snps).any():
        raise ValueError(f"clump: column 'SNP' has missing IDs at rows {sig_pos[pd.isna(sig_snps)][:10].tolist()}")
    sig_rows = panel.locate(sig_snps)

    radius = clump_radius_bp(kb)
    sig_codes = codes[sig_pos]
    order = np.argsort(sig_codes, kind="stable")
    bounds = np.searchsorted(sig_codes[order], np.arange(len(labels) + 1))
    kept_positions = []
    for k, label in enumerate(labels):
        local = order[bounds[k] : bounds[k + 1]]
        members = sig_pos[local]
        kept, drops = _clump_trait(panel, members, pval[members], sig_rows[local], r2, radius, keep_missing)
        kept_positions.append(kept)
        chunks.extend(drops)
        if len(kept) == 0:
            in_trait = codes == k
            reasons = {
                "bad value": int(np.sum(bad & in_trait)),
                "not significant": int(np.sum(~bad & ~significant & in_trait)),
                **{reason: len(pos) for pos, reason, _ in drops if len(pos)},
            }
            warnings.warn(
                f"clump: trait {label!r}: no index SNP left out of {int(in_trait.sum())} variant(s) "
                f"(dropped: {', '.join(f'{n} {r}' for r, n in reasons.items() if n)}); "
                "the result has no instruments for this trait",
                NoIndexSNPWarning,
                stacklevel=2,
            )

    out = gwas.iloc[np.concatenate(kept_positions)].copy()
    dropped_frame = _audit_frame(gwas["SNP"], codes, labels, chunks)
    traits = pd.Index(labels, dtype=object)
    n_in = pd.Series(np.bincount(codes, minlength=len(labels)), index=traits)
    # "not significant" rows (millions in a whole GWAS) are counted, not listed one by one
    mine = audit.step_audit(STEP, n_in, audit.kept_per_trait(out, traits, trait_column or "trait"), dropped_frame,
                            pd.Series(not_significant, index=traits))
    return audit.deliver(audit.Audited(out, upstream + mine), audited)


def _trait_codes(gwas, trait_column):
    """Integer trait codes per row and the trait labels (order of first appearance)."""
    if trait_column is None:
        return np.zeros(len(gwas), dtype=np.int64), np.array([_SINGLE_TRAIT], dtype=object)
    column = gwas[trait_column]
    if isinstance(column.dtype, pd.CategoricalDtype):
        raw = column.cat.codes.to_numpy()
        if (raw < 0).any():
            raise ValueError(f"clump: column {trait_column!r} is missing at rows {np.flatnonzero(raw < 0)[:10].tolist()}")
        used, first = np.unique(raw, return_index=True)
        used = used[np.argsort(first)]  # order of first appearance
        remap = np.full(len(column.cat.categories), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        return remap[raw], np.asarray(column.cat.categories[used], dtype=object)
    codes, labels = pd.factorize(column, sort=False, use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"clump: column {trait_column!r} is missing at rows {np.flatnonzero(codes < 0)[:10].tolist()}")
    return codes.astype(np.int64), np.asarray(labels, dtype=object)


def _check_parameters(r2, kb, p1, p2):
    if not (0.0 <= r2 < 1.0):
        raise ValueError(f"clump: r2 must be in [0, 1), got {r2}")
    if not (kb > 0):
        raise ValueError(f"clump: kb must be positive, got {kb}")
    if not (0.0 < p1 <= 1.0):
        raise ValueError(f"clump: p1 must be in (0, 1], got {p1}")
    if not (0.0 < p2 <= 1.0):
        raise ValueError(f"clump: p2 must be in (0, 1], got {p2}")


def _numeric_p(column: pd.Series, name: str) -> np.ndarray:
    """The p-values as float64; non-numeric text is an error naming the rows (NaN stays NaN)."""
    values = pd.to_numeric(column, errors="coerce")
    text = values.isna() & column.notna()
    if text.any():
        bad = np.flatnonzero(text.to_numpy())
        raise ValueError(
            f"clump: column {name!r} has non-numeric values at rows {bad[:10].tolist()} "
            f"(e.g. {column.iloc[bad[0]]!r})"
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _clump_trait(panel, members, p, rows, r2, radius, keep_missing):
    """Clump one trait's rows with p <= p1 (``members``: their positions in the input table,
    ``rows``: their panel rows, −1 if absent). Returns (kept positions in output order, drops)
    with drops a list of (positions, reason, details or None) chunks."""
    drops = []
    if keep_missing:
        candidates = np.arange(len(members))
    else:
        drops.append((members[rows < 0], "not in panel", None))
        candidates = np.flatnonzero(rows >= 0)

    # A SNP listed twice competes with its smallest p (first row among equal p).
    if len(candidates):
        snp_key = np.where(rows[candidates] >= 0, rows[candidates], -1 - candidates)  # absent: unique key
        by_snp = np.lexsort((candidates, p[candidates], snp_key))
        sorted_key = snp_key[by_snp]
        repeat = np.r_[False, sorted_key[1:] == sorted_key[:-1]]
        if repeat.any():
            again = candidates[by_snp[repeat]]
            drops.append((members[again], "duplicate", [f"listed again with a smaller p (p = {v!r} here)" for v in p[again]]))
        candidates = np.sort(candidates[by_snp[~repeat]])

    in_panel = candidates[rows[candidates] >= 0]
    index_local, clumped_by = _greedy(panel, rows[in_panel], p[in_panel], r2, radius)
    absorbed = np.flatnonzero(clumped_by >= 0)
    if len(absorbed):
        leaders = panel.snp[rows[in_panel[clumped_by[absorbed]]]]
        drops.append((members[in_panel[absorbed]], "clumped", [f"clumped by {s}" for s in leaders]))

    kept = in_panel[index_local]
    if keep_missing:
        kept = np.concatenate([kept, candidates[rows[candidates] < 0]])
        tie = np.where(rows[kept] >= 0, rows[kept], len(panel) + kept)
        kept = kept[np.lexsort((tie, p[kept]))]
    return members[kept], drops


def _greedy(panel: LDPanel, rows, p, r2_threshold, radius):
    """plink's greedy pass over candidates (panel ``rows``, p-values ``p``).

    Returns (index SNPs as positions into ``rows`` in plink order, clumped_by) where
    clumped_by[j] is the position of the index that absorbed candidate j (−1 if none).
    Chromosomes are independent (clumps never cross them), so each is processed alone and
    the index lists are merged by (p, panel row).
    """
    clumped_by = np.full(len(rows), -1, dtype=np.int64)
    index_all = []
    chroms = panel.chrom[rows]
    for chrom in pd.unique(chroms):
        on_chrom = np.flatnonzero(chroms == chrom)
        # Sort by position (ties by panel row) so a window is a contiguous slice.
        on_chrom = on_chrom[np.lexsort((rows[on_chrom], panel.pos[rows[on_chrom]]))]
        crow = rows[on_chrom]
        pos = panel.pos[crow]
        planes = panel.planes_of(crow)
        taken = np.zeros(len(crow), dtype=bool)
        for s in np.lexsort((crow, p[on_chrom])):
            if taken[s]:
                continue
            taken[s] = True
            index_all.append(on_chrom[s])
            lo = np.searchsorted(pos, pos[s] - radius, side="left")
            hi = np.searchsorted(pos, pos[s] + radius, side="right")
            free = lo + np.flatnonzero(~taken[lo:hi])
            if len(free) == 0:
                continue
            r2 = ld_from_counts(tables_from_planes(planes[s], planes[free])).r2
            joins = free[r2 > r2_threshold]  # NaN (monomorphic) never joins
            taken[joins] = True
            clumped_by[on_chrom[joins]] = on_chrom[s]
    index_all = np.asarray(index_all, dtype=np.int64)
    index_all = index_all[np.lexsort((rows[index_all], p[index_all]))] if len(index_all) else index_all
    return index_all, clumped_by


def _audit_frame(snp_column: pd.Series, codes, labels, chunks) -> pd.DataFrame:
    """The audit rows from (positions, reason, details-or-None) chunks.

    Built column-wise so that many rows stay cheap: SNP IDs are taken from the input column
    without conversion, trait and reason are categoricals.
    """
    chunks = [c for c in chunks if len(c[0])]
    if not chunks:
        return pd.DataFrame(columns=audit.AUDIT_COLUMNS)
    positions = np.concatenate([c[0] for c in chunks])
    sizes = [len(c[0]) for c in chunks]
    details = np.full(len(positions), None, dtype=object)
    start = 0
    for size, (_, _, chunk) in zip(sizes, chunks):
        if chunk is not None:
            details[start : start + size] = chunk
        start += size
    reasons = list(dict.fromkeys(c[1] for c in chunks))
    reason_codes = np.repeat([reasons.index(c[1]) for c in chunks], sizes)
    return pd.DataFrame(
        {
            "step": pd.Categorical.from_codes(np.zeros(len(positions), dtype=np.int8), [STEP]),
            "trait": pd.Categorical.from_codes(codes[positions], pd.Index(labels, dtype=object)),
            "SNP": snp_column.iloc[positions].reset_index(drop=True),
            "reason": pd.Categorical.from_codes(reason_codes, reasons),
            "detail": pd.Series(details, dtype=object),
        }
    )
