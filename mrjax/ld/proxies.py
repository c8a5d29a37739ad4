"""LD proxies for instruments missing from the outcome GWAS, with allele mapping through phase.

When an exposure instrument (the *target*) has no row in the outcome table, a variant in strong
LD with it (the *proxy*) that the outcome does have can stand in for it, once the proxy's alleles
are translated into the target's alleles. This reproduces what TwoSampleMR
``extract_outcome_data(proxies = TRUE, rsq = 0.8, align_alleles = 1, palindromes = 1,
maf_threshold = 0.3)`` gets from the OpenGWAS/MR-Base proxy service (whose proxy table comes from
plink ``--r2 in-phase`` on 1000 Genomes, or LDlink ``LDproxy``), but locally against the same
PLINK panel used for clumping:

* **Proxy choice**: variants on the target's chromosome within ``kb`` kilobases that are present
  in the outcome, with EM haplotype r² ≥ ``r2_min`` (plink 1.9's r², :mod:`mrjax.ld.haplotype`);
  the best has the highest r², ties broken by distance, then panel order. A proxy whose outcome
  alleles cannot be mapped (see below) is skipped for the next one, as MR-Base does.
* **Phase**: the sign of the haplotype D between the two panel A1 alleles says which proxy allele
  travels with which target allele: D > 0 → target A1 with proxy A1 (and A2 with A2); D < 0 →
  target A1 with proxy A2. This is plink ``--r2 in-phase``'s allele pairing ("AG/TC": A with G,
  T with C); ``proxy_a1`` below is the proxy allele in phase with ``target_a1``.
* **Allele mapping** (MR-Base API ``proxy_alleles()``): the outcome's (effect, other) alleles of
  the proxy equal (proxy_a1, proxy_a2) → effect = target_a1 ("straight"); equal (proxy_a2,
  proxy_a1) → effect = target_a2 ("switch"); the same after complementing both alleles (other
  strand) for non-palindromic proxies; otherwise unusable. A palindromic proxy (A/T, C/G) is used
  only with ``palindromes=True`` and an outcome effect-allele frequency away from ½
  (min(eaf, 1 − eaf) < ``maf_threshold``): the outcome effect allele is then taken to be the
  proxy's panel minor allele when eaf < ½ and its major allele otherwise.

The outcome row of the proxy is returned re-labelled with the target SNP and the mapped target
alleles; beta, se, p and eaf stay as they are (the effect of the proxy allele stands for the effect
of the target allele it travels with), with ``proxy_snp``, ``proxy_r2`` and the proxy's own
alleles kept as columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax import audit
from mrjax.ld.haplotype import ld_from_counts
from mrjax.ld.panel import LDPanel, complement, tables_from_planes

STEP = "proxies"
_EXPOSURE_TRAIT_COLUMNS = ("trait", "id.exposure", "exposure")
_OUTCOME_TRAIT_COLUMNS = ("trait", "id.outcome", "outcome")

PROXY_COLUMNS = [
    "target",
    "proxy",
    "r2",
    "d",
    "dprime",
    "distance",
    "rank",
    "target_a1",
    "target_a2",
    "proxy_a1",
    "proxy_a2",
]


def find_proxies(panel, targets, available, r2_min: float = 0.8, kb: float = 500) -> pd.DataFrame:
    """All LD proxies of each target among the ``available`` variants, best first.

    Args:
        panel: an :class:`LDPanel` (or a path prefix to load one).
        targets: rsIDs to find proxies for (IDs absent from the panel get none).
        available: rsIDs a proxy may be chosen from (e.g. the outcome's SNPs).
        r2_min: keep proxies with EM r² ≥ r2_min (TwoSampleMR ``rsq``, default 0.8).
        kb: search radius, |Δbp| ≤ kb·1000 on the target's chromosome (LDlink ``LDproxy``
            searches ±500 kb).

    Returns:
        One row per (target, proxy) with columns ``target, proxy, r2, d, dprime, distance,
        rank, target_a1, target_a2, proxy_a1, proxy_a2``: ``d`` is the signed haplotype D of
        the panel A1 alleles, ``distance`` |Δbp|, ``rank`` 1 for the best proxy (highest r²,
        then nearest, then panel order); ``target_a1/target_a2`` are the target's panel
        alleles and ``proxy_a1`` is the proxy allele in phase with ``target_a1``.
    """
    if not (0.0 < r2_min <= 1.0):
        raise ValueError(f"find_proxies: r2_min must be in (0, 1], got {r2_min}")
    if not kb > 0:
        raise ValueError(f"find_proxies: kb must be positive, got {kb}")
    panel = panel if isinstance(panel, LDPanel) else LDPanel.load(panel)
    targets = pd.unique(np.asarray(list(targets), dtype=object))
    target_rows = panel.locate(targets)
    if not (target_rows >= 0).any():  # nothing to search for (a scan's look-ups mostly lack nothing)
        return _no_proxies()
    pool = np.unique(panel.locate(np.asarray(list(available), dtype=object)))
    pool = pool[pool >= 0]
    radius = int(kb * 1000)
    # Available variants grouped by chromosome and sorted by position: a window is a slice.
    by_chrom = {}
    for chrom in pd.unique(panel.chrom[pool]):
        rows = pool[panel.chrom[pool] == chrom]
        rows = rows[np.lexsort((rows, panel.pos[rows]))]
        by_chrom[chrom] = (rows, panel.pos[rows])

    frames = []
    for target, row in zip(targets, target_rows):
        if row < 0 or panel.chrom[row] not in by_chrom:
            continue
        rows, pos = by_chrom[panel.chrom[row]]
        lo = np.searchsorted(pos, panel.pos[row] - radius, side="left")
        hi = np.searchsorted(pos, panel.pos[row] + radius, side="right")
        window = rows[lo:hi]
        window = window[window != row]
        if len(window) == 0:
            continue
        ld = ld_from_counts(tables_from_planes(panel.planes_of(row), panel.planes_of(window)))
        good = ld.r2 >= r2_min  # NaN (monomorphic) never qualifies
        if not good.any():
            continue
        chosen = window[good]
        distance = np.abs(panel.pos[chosen] - panel.pos[row])
        order = np.lexsort((chosen, distance, -ld.r2[good]))
        chosen, distance = chosen[order], distance[order]
        d = ld.d[good][order]
        in_phase = d > 0
        frames.append(
            pd.DataFrame(
                {
                    "target": target,
                    "proxy": panel.snp[chosen],
                    "r2": ld.r2[good][order],
                    "d": d,
                    "dprime": ld.dprime[good][order],
                    "distance": distance,
                    "rank": np.arange(1, len(chosen) + 1),
                    "target_a1": panel.a1[row],
                    "target_a2": panel.a2[row],
                    "proxy_a1": np.where(in_phase, panel.a1[chosen], panel.a2[chosen]),
                    "proxy_a2": np.where(in_phase, panel.a2[chosen], panel.a1[chosen]),
                }
            )
        )
    if not frames:
        return _no_proxies()
    return pd.concat(frames, ignore_index=True)[PROXY_COLUMNS]


def _no_proxies() -> pd.DataFrame:
    return _NO_PROXIES.copy()  # a copy of one built once: building it costs more than the search it ends


_NO_PROXIES = pd.DataFrame({c: pd.Series(dtype=object) for c in PROXY_COLUMNS})


def map_proxy_alleles(
    effect, other, eaf, proxy_a1, proxy_a2, target_a1, target_a2, proxy_minor=None, *, palindromes=True, maf_threshold=0.3
):
    """Target alleles (effect, other) for an outcome row of a proxy, or None when unusable.

    ``effect``/``other``/``eaf``: the outcome's alleles and effect-allele frequency for the
    proxy; ``proxy_a1``/``proxy_a2``: proxy alleles in phase with ``target_a1``/``target_a2``;
    ``proxy_minor``: the proxy's panel minor allele (needed for palindromic proxies). Rules in
    the module docstring (MR-Base ``proxy_alleles()``).
    """
    effect = None if pd.isna(effect) else str(effect).upper()
    other = None if pd.isna(other) else str(other).upper()
    if effect is None:
        return None
    pair = (proxy_a1, proxy_a2)
    target = {proxy_a1: target_a1, proxy_a2: target_a2}
    palindromic = complement(proxy_a1) == proxy_a2
    if palindromic:
        if not palindromes or proxy_minor not in pair or eaf is None or pd.isna(eaf) or min(eaf, 1 - eaf) >= maf_threshold:
            return None
        if {effect, other} - {None} - set(pair):
            return None
        minor = proxy_minor
        major = proxy_a2 if minor == proxy_a1 else proxy_a1
        mapped = minor if eaf < 0.5 else major
    else:
        for strand in (lambda a: a, complement):
            e, o = strand(effect), (strand(other) if other is not None else None)
            if e in pair and (o is None or (o in pair and o != e)):
                mapped = e
                break
        else:
            return None
    unmapped = proxy_a2 if mapped == proxy_a1 else proxy_a1
    return target[mapped], target[unmapped]


def substitute_proxies(
    instruments: pd.DataFrame,
    outcome: pd.DataFrame,
    panel,
    r2_min: float = 0.8,
    kb: float = 500,
    *,
    palindromes: bool = True,
    maf_threshold: float = 0.3,
    audited: bool = False,
):
    """The outcome table plus, for each instrument it lacks, the best usable proxy's row.

    For every instrument SNP absent from ``outcome`` (per outcome trait, when ``outcome`` has a
    ``trait``/``id.outcome``/``outcome`` column), the proxies from :func:`find_proxies` are tried
    best first and the first whose outcome alleles map onto the target (module docstring) is
    appended as a row re-labelled with the target: ``SNP`` = target, ``effect_allele`` /
    ``other_allele`` = the mapped target alleles (``chr``/``pos`` from the panel when present),
    other values as in the proxy's row, plus ``proxy`` (True), ``proxy_snp``, ``proxy_r2``,
    ``proxy_effect_allele``, ``proxy_other_allele`` (the proxy row's own alleles). Original
    rows get ``proxy`` False. Allele columns may be plain (``effect_allele``) or TwoSampleMR's
    (``effect_allele.outcome``).

    Audit (step "proxies", per exposure trait of ``instruments``): "proxy used" rows with
    detail "rsTARGET via rsPROXY r2=…" (informational; the instrument is kept) and "missing in
    outcome" rows for instruments with neither their own row nor a usable proxy. The counts
    balance: instruments in = with outcome data + missing. Earlier records of ``outcome`` are
    carried forward (those of ``instruments`` stay with ``instruments``). ``audited=True``
    returns ``Audited(table, audit)`` (``outcome`` may be an ``Audited``; ``instruments`` too,
    its records are not carried); the default returns the table, records in ``attrs``
    (deprecated; see ``mrjax.audit``).
    """
    instruments = instruments.table if isinstance(instruments, audit.Audited) else instruments
    outcome, upstream = audit.unwrap(outcome, audited)
    panel = panel if isinstance(panel, LDPanel) else LDPanel.load(panel)
    for name, table in (("instruments", instruments), ("outcome", outcome)):
        if "SNP" not in table.columns:
            raise ValueError(f"substitute_proxies: {name} table has no 'SNP' column (columns: {list(table.columns)})")
    effect_col = _first_present(outcome, ("effect_allele", "effect_allele.outcome"), "effect allele")
    other_col = _first_present(outcome, ("other_allele", "other_allele.outcome"), "other allele")
    eaf_col = next((c for c in ("eaf", "eaf.outcome") if c in outcome.columns), None)
    exposure_col = next((c for c in _EXPOSURE_TRAIT_COLUMNS if c in instruments.columns), None)
    outcome_col = next((c for c in _OUTCOME_TRAIT_COLUMNS if c in outcome.columns), None)

    outcome_groups = [(None, outcome)] if outcome_col is None else list(outcome.groupby(outcome_col, sort=False))
    exposures = instruments[exposure_col] if exposure_col else pd.Series("all", index=instruments.index)
    several = len(outcome_groups) > 1

    instrument_snps = instruments["SNP"].to_numpy(dtype=object)
    new_rows, used, missing = [], [], []
    n_in = {}
    by_exposure = list(pd.Series(instrument_snps, index=instruments.index).groupby(exposures, sort=False))
    for out_trait, out_rows in outcome_groups:
        out_snps = out_rows["SNP"].to_numpy(dtype=object)
        present = set(out_snps)
        absent = pd.unique(np.asarray([s for s in instrument_snps if s not in present], dtype=object))
        chosen, why_not = {}, {}  # target -> (outcome position, proxy index, (effect, other))
        if len(absent):  # (most look-ups lack no instrument)
            proxies = find_proxies(panel, absent, out_snps, r2_min=r2_min, kb=kb)
            first_row = {}
            for i, snp in enumerate(out_snps):
                first_row.setdefault(snp, i)
            effects = out_rows[effect_col].to_numpy(dtype=object)
            others = out_rows[other_col].to_numpy(dtype=object)
            eafs = out_rows[eaf_col].to_numpy(dtype=np.float64, na_value=np.nan) if eaf_col else np.full(len(out_rows), np.nan)
            proxy_rows = panel.locate(proxies["proxy"].to_numpy(dtype=object))
            minor = np.where(panel.allele1_frequency(proxy_rows) <= 0.5, panel.a1[proxy_rows], panel.a2[proxy_rows]) if len(proxies) else []
            cols = {c: proxies[c].to_numpy(dtype=object) for c in ("target", "proxy", "proxy_a1", "proxy_a2", "target_a1", "target_a2")}
            r2s = proxies["r2"].to_numpy(dtype=np.float64)
            for k in range(len(proxies)):  # grouped by target, best first
                target = cols["target"][k]
                if target in chosen:
                    continue
                at = first_row[cols["proxy"][k]]
                mapped = map_proxy_alleles(
                    effects[at], others[at], eafs[at], cols["proxy_a1"][k], cols["proxy_a2"][k],
                    cols["target_a1"][k], cols["target_a2"][k], minor[k],
                    palindromes=palindromes, maf_threshold=maf_threshold,
                )
                if mapped is not None:
                    chosen[target] = (at, k, mapped)
            for target, n_found in proxies.groupby("target", sort=False).size().items():
                if target not in chosen:
                    why_not[target] = f"{n_found} proxy(ies) with r2 >= {r2_min} but none with alleles mappable onto the panel"
        if chosen:
            targets = list(chosen)
            picks = [chosen[t] for t in targets]
            new = out_rows.iloc[[at for at, _, _ in picks]].copy()
            trows = panel.locate(np.asarray(targets, dtype=object))
            new["proxy_effect_allele"] = effects[[at for at, _, _ in picks]]
            new["proxy_other_allele"] = others[[at for at, _, _ in picks]]
            new["SNP"] = targets
            new[effect_col] = [m[0] for _, _, m in picks]
            new[other_col] = [m[1] for _, _, m in picks]
            if "chr" in new.columns:
                new["chr"] = pd.Series(panel.chrom[trows], index=new.index).astype(new["chr"].dtype)
            if "pos" in new.columns:
                new["pos"] = panel.pos[trows]
            new["proxy"] = True
            new["proxy_snp"] = cols["proxy"][[k for _, k, _ in picks]]
            new["proxy_r2"] = r2s[[k for _, k, _ in picks]]
            new_rows.append(new)

        in_panel = set(np.asarray(absent)[panel.locate(absent) >= 0]) if len(absent) else set()
        for exposure, snps in by_exposure:
            label = f"{exposure} / {out_trait}" if several else exposure
            n_in[label] = len(snps)
            for snp in snps:
                if snp in present:
                    continue
                if snp in chosen:
                    k = chosen[snp][1]
                    used.append((label, snp, f"{snp} via {cols['proxy'][k]} r2={r2s[k]:.3f}"))
                elif snp not in in_panel:
                    missing.append((label, snp, "absent from the outcome and from the LD panel (no proxy search)"))
                else:
                    missing.append(
                        (label, snp, why_not.get(snp, f"absent from the outcome; no proxy with r2 >= {r2_min} within {kb} kb"))
                    )

    result = outcome.copy()
    result["proxy"] = False
    for col in ("proxy_snp", "proxy_r2", "proxy_effect_allele", "proxy_other_allele"):
        result[col] = pd.Series(np.nan if col == "proxy_r2" else None, index=result.index, dtype=float if col == "proxy_r2" else object)
    if new_rows:
        appended = pd.concat(new_rows)[list(result.columns)]
        result = pd.concat([result, appended], ignore_index=True)
        result["proxy"] = result["proxy"].astype(bool)

    # Counts per exposure: in = instruments, kept = with outcome data (own row or proxy),
    # dropped = "missing in outcome". "proxy used" rows are added afterwards: they document a
    # substitution, not a loss, so they must not enter the balance.
    dropped = _audit_rows(missing, "missing in outcome")
    lost = pd.Series([m[0] for m in missing], dtype=object).value_counts()
    n_in = pd.Series(n_in, dtype="int64")
    kept = pd.Series({label: count - int(lost.get(label, 0)) for label, count in n_in.items()}, dtype="int64")
    mine = audit.step_audit(STEP, n_in, kept, dropped)
    records = audit.Audit.combine(upstream, mine, audit.Audit(drops=_audit_rows(used, "proxy used")))
    return audit.deliver(audit.Audited(result, records), audited)


def _first_present(table, names, what):
    for name in names:
        if name in table.columns:
            return name
    raise ValueError(f"substitute_proxies: outcome table has no {what} column (one of {list(names)}); columns: {list(table.columns)}")


def _audit_rows(entries, reason) -> pd.DataFrame:
    if not entries:
        return pd.DataFrame(columns=audit.AUDIT_COLUMNS)
    traits, snps, details = zip(*entries)
    return audit.drops(STEP, list(traits), list(snps), reason, list(details))
