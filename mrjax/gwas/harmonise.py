"""Allele harmonisation of exposure and outcome effects (TwoSampleMR ``harmonise_data``).

Paraphrase of TwoSampleMR 0.7.9 ``R/harmonise.R`` (``harmonise_data`` ->
``harmonise_function_refactored`` -> ``harmonise_22/21/12/11``, ``recode_indels_22/21``).
A is the exposure, B the outcome; ``A1/B1`` effect alleles, ``A2/B2`` other alleles.

Both alleles known on both sides (``harmonise_22``):

1. D/I-coded indels on one side take the sequences of the other side, by allele length;
   pairs that cannot be matched (equal-length sequences against D/I, ``A1 == A2``) are removed.
2. ``B`` alleles swapped relative to ``A`` → swap them, negate ``beta.outcome``, ``eaf → 1−eaf``.
3. ``A`` not palindromic and the alleles still differ → complement ``B`` (strand flip), then
   swap again if needed. Alleles that still do not match are removed (``remove``).
4. Palindromic (A/T, C/G — judged on the exposure alleles): ``ambiguous`` when either EAF lies
   strictly inside the band (0.42, 0.58) — a missing EAF counts as 0.5. With ``action=2`` a
   palindromic SNP whose two EAFs lie on opposite sides of 0.5 has ``beta.outcome`` negated
   (and ``eaf.outcome → 1−eaf``), unless removed.

One allele missing on one side (``harmonise_21``/``12``) or both (``11``): matching on the
effect allele with frequencies as the check (``ambiguous`` when they disagree); see the code.

``mr_keep`` (rows are flagged, never removed, as in TwoSampleMR): action 1 → ``!remove``;
action 2 → ``!remove & !ambiguous``; action 3 → ``!remove & !ambiguous & !palindromic``; then
FALSE wherever a beta or se is missing. SNPs of the exposure that the outcome lacks have no
row (TwoSampleMR's inner merge); mrjax lists them in the audit as "missing in outcome".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax import audit
from mrjax.columns import normalise_columns
from mrjax.errors import NoInstrumentError

STEP = "harmonise"
# SNP ids that name no variant: such rows never pair with the other side's (two '#NA' rows are
# two variants), and are listed as "bad value"
MISSING_IDS = {"", "#NA", "NA", ".", "nan", "NaN", "None", "<NA>", "N/A", "#N/A", "NULL", "null"}
ONE_ALLELE = "one allele only"
COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")
PALINDROMES = {("A", "T"), ("T", "A"), ("G", "C"), ("C", "G")}
CORE = ["SNP", "effect_allele.exposure", "other_allele.exposure", "effect_allele.outcome", "other_allele.outcome",
        "beta.exposure", "beta.outcome", "eaf.exposure", "eaf.outcome", "remove", "palindromic", "ambiguous"]
FRONT = ["se.exposure", "se.outcome", "pval.exposure", "pval.outcome", "samplesize.exposure", "samplesize.outcome",
         "exposure", "outcome", "id.exposure", "id.outcome"]
# read_gwas column -> TwoSampleMR stem (the side is appended: "beta" -> "beta.exposure")
NORMALISED_TO_STEM = {"beta": "beta", "se": "se", "eaf": "eaf", "pval": "pval", "n": "samplesize",
                      "effect_allele": "effect_allele", "other_allele": "other_allele", "chr": "chr", "pos": "pos",
                      "mlog10p": "mlog10p"}


def harmonise(
    exposure: pd.DataFrame,
    outcome: pd.DataFrame,
    action=2,
    *,
    palindrome_band: tuple[float, float] = (0.42, 0.58),
    eaf_tolerance: float | None = None,
    pairs: dict | None = None,
    audited: bool = False,
):
    """Align outcome effects to the exposure effect allele — TwoSampleMR ``harmonise_data``.

    ``exposure``/``outcome``: TwoSampleMR tables (``SNP, beta.exposure, se.exposure,
    effect_allele.exposure, other_allele.exposure, eaf.exposure, exposure, id.exposure`` …;
    snake_case twins accepted) or normalised tables from ``read_gwas``/``select_instruments``
    (``SNP, beta, se, effect_allele, other_allele, eaf, pval, n, trait``; ``trait`` names the
    exposure or outcome). Either side may be binary or continuous, and a table written for one
    side (``.exposure`` columns) may be passed as the other, so the reverse direction of a
    bi-directional analysis is ``harmonise(outcome_instruments, exposure_gwas)``. Every
    exposure is paired with every outcome; each pair is harmonised on its shared SNPs.

    ``action``: 1, 2 or 3 (see the module docstring), or ``{id.outcome: action}``.
    ``palindrome_band``: EAF interval (open) in which a palindromic SNP is ambiguous;
    TwoSampleMR's is 0.5 ± 0.08. ``eaf_tolerance``: optional extra check (not in TwoSampleMR):
    after alignment, ``|eaf.exposure − eaf.outcome| > eaf_tolerance`` sets ``mr_keep`` FALSE
    ("allele mismatch").

    ``pairs``: ``{id.exposure: id.outcome}``, to harmonise each exposure with its own outcome
    only; table and records equal those of one call per pair stacked in ``id.exposure`` order
    (a scan's reverse direction harmonises its instruments against each exposure GWAS, all
    in one call). Default: every exposure with every outcome.

    Returns TwoSampleMR's harmonised columns (``CORE``, ``FRONT``, the other input columns,
    ``action``, ``mr_keep``) sorted by ``id.exposure, id.outcome, SNP`` as R's merges leave
    them. Audit (step ``harmonise``, trait = ``exposure``, outcome named in ``detail``):
    "missing in outcome", "allele mismatch", "palindromic ambiguous", "bad value"; rows with
    ``mr_keep`` FALSE stay in the table and count as dropped. ``audited=True`` returns
    ``Audited(table, audit)``: the records of ``Audited`` inputs (exposure's, then outcome's),
    then this step's; the default returns the table, records in ``attrs`` (deprecated; see
    ``mrjax.audit``).
    """
    exposure, exposure_records = audit.unwrap(exposure, audited)
    outcome, outcome_records = audit.unwrap(outcome, audited)
    lo, hi = (float(x) for x in palindrome_band)
    if not (0.0 <= lo < 0.5 < hi <= 1.0):
        raise ValueError(f"palindrome_band must be (lo, hi) with lo < 0.5 < hi, not {palindrome_band!r}")
    exp, _, unnamed = _as_side(exposure, "exposure")
    out, outcome_names, _ = _as_side(outcome, "outcome", only=exp["SNP"])
    outcomes = list(outcome_names)
    actions = _actions(action, outcomes)

    if pairs is None:
        missing = _missing_rows(exp, unnamed, out, outcomes, outcome_names)
        table = exp.merge(out, on="SNP", how="inner", sort=False)
    else:
        partner = _partners(pairs, exp, unnamed, outcome_names)
        missing = _missing_in_partner(exp, unnamed, out, partner, outcome_names)
        table = (exp.assign(_partner=partner(exp)).merge(out.assign(_partner=out["id.outcome"].to_numpy(dtype=object)), on=["SNP", "_partner"],
                                                        how="inner", sort=False).drop(columns="_partner"))
    table["action"] = table["id.outcome"].map(actions).astype("int64")
    one_allele = _one_allele_side(table)

    aligned = _align(table, lo, hi)
    for column, values in aligned.items():
        table[column] = values
    table, reasons = _keep(table, eaf_tolerance, palindrome_band)
    for i in np.flatnonzero(one_allele.notna().to_numpy() & reasons.notna().to_numpy()):
        reasons.iat[i] = (reasons.iat[i][0], f"{reasons.iat[i][1]}; {one_allele.iat[i]}")
    table = table.sort_values(["id.exposure", "id.outcome", "SNP"], kind="stable").reset_index(drop=True)
    reasons = reasons.loc[table["_id"]].reset_index(drop=True)
    one_allele = one_allele.loc[table["_id"]].reset_index(drop=True)
    table = table.drop(columns="_id")
    table = table[_column_order(table)]

    flagged = reasons.notna()
    listed = list(missing)
    if flagged.any():
        rows = table.loc[flagged]
        details = [f"{d} (outcome {o!r})" for d, o in zip(reasons[flagged].str[1], rows["outcome"])]
        why = reasons[flagged].str[0]
        frames = []
        for reason in why.unique():
            pick = (why == reason).to_numpy()
            frames.append(audit.drops(STEP, rows["exposure"][pick].tolist(), rows["SNP"][pick].tolist(), reason,
                                      list(np.asarray(details, dtype=object)[pick])))
        if pairs is not None and len(frames) > 1:
            # as one call per pair lists them: each pair's drops by reason in its own order of appearance
            rank = pd.DataFrame({"pair": rows["id.exposure"].to_numpy(), "why": why.to_numpy()}).groupby(
                ["pair", "why"], sort=False).ngroup().to_numpy()
            by_reason = np.concatenate([np.flatnonzero((why == reason).to_numpy()) for reason in why.unique()])
            frames = [pd.concat(frames, ignore_index=True).iloc[np.argsort(rank[by_reason], kind="stable")]]
        listed += frames
    met = len(outcomes) if pairs is None else 1  # outcomes each exposure SNP meets
    n_in = exp["exposure"].value_counts(sort=False) * met
    if len(unnamed):
        n_in = n_in.add(unnamed["exposure"].value_counts(sort=False) * met, fill_value=0).astype("int64")
    kept = audit.kept_per_trait(table.loc[table["mr_keep"]], n_in.index, "exposure")
    mine = audit.step_audit(STEP, n_in, kept, pd.concat(listed, ignore_index=True) if listed else None)
    trusted = (one_allele.notna() & table["mr_keep"]).to_numpy()
    if trusted.any():  # kept on the effect allele and frequencies alone: said so, as proxies say "proxy used"
        rows = table.loc[trusted]
        details = [f"{note}; kept: matched on the effect allele and allele frequencies (outcome {o!r})"
                   for note, o in zip(one_allele[trusted], rows["outcome"])]
        noted = audit.drops(STEP, rows["exposure"].tolist(), rows["SNP"].tolist(), ONE_ALLELE, details)
        mine = mine + audit.Audit(drops=noted)
    records = audit.Audit.combine(exposure_records, outcome_records, mine)
    result = audit.deliver(audit.Audited(table, records), audited)
    if not table["mr_keep"].any():
        raise NoUsableSNPError(
            f"harmonise: no SNP usable for MR (of {int(n_in.sum())} exposure SNP x outcome pairs, "
            f"{sum(len(m) for m in missing)} missing in the outcome, {int(flagged.sum())} with mr_keep FALSE)",
            table, records,
        )
    return result


class NoUsableSNPError(NoInstrumentError):
    """Raised by :func:`harmonise` when no exposure–outcome pair keeps a SNP. ``table`` is the
    harmonised table it would have returned (every row ``mr_keep`` FALSE) and ``audit`` the
    records of why each SNP was lost, so a caller that goes on can still report them."""


def _missing_rows(exp, unnamed, out, outcomes, outcome_names) -> list[pd.DataFrame]:
    """Drop rows of every exposure SNP that cannot pair with an outcome: missing ids ("bad
    value") and SNPs the outcome lacks ("missing in outcome"), outcome by outcome."""
    missing = [audit.drops(STEP, unnamed["exposure"].tolist(), unnamed["SNP"].tolist(), "bad value",
                           f"missing SNP id: it names no variant, so it is not paired with outcome {outcome_names[oid]!r}")
               for oid in outcomes if len(unnamed)]
    snps_of = out.groupby("id.outcome", sort=False)["SNP"].agg(set)
    for oid in outcomes:
        absent = ~exp["SNP"].isin(snps_of.get(oid, set()))
        if absent.any():
            rows = exp.loc[absent]
            missing.append(audit.drops(STEP, rows["exposure"].tolist(), rows["SNP"].tolist(), "missing in outcome",
                                       f"not in outcome {outcome_names[oid]!r}"))
    return missing


def _partners(pairs: dict, exp, unnamed, outcome_names: dict):
    """``harmonise(pairs=...)``: a function giving each row's outcome id, after checking that
    every exposure has one and that it is an outcome of the table."""
    ids = pd.unique(pd.concat([exp["id.exposure"], unnamed["id.exposure"]]).to_numpy(dtype=object))
    unpaired = [i for i in ids if i not in pairs]
    if unpaired:
        raise ValueError(f"pairs: no outcome given for exposure id(s) {unpaired[:5]}")
    unknown = sorted({str(pairs[i]) for i in ids if pairs[i] not in outcome_names})
    if unknown:
        raise ValueError(f"pairs: outcome id(s) {unknown[:5]} are not in the outcome table")
    return lambda rows: rows["id.exposure"].map(pairs).to_numpy(dtype=object)


def _missing_in_partner(exp, unnamed, out, partner, outcome_names) -> list[pd.DataFrame]:
    """:func:`_missing_rows` with each exposure checked against its own outcome only."""
    missing = []
    if len(unnamed):
        missing.append(audit.drops(STEP, unnamed["exposure"].tolist(), unnamed["SNP"].tolist(), "bad value",
                                   [f"missing SNP id: it names no variant, so it is not paired with outcome "
                                    f"{outcome_names[o]!r}" for o in partner(unnamed)]))
    present = pd.MultiIndex.from_arrays([out["id.outcome"].to_numpy(dtype=object), out["SNP"].to_numpy(dtype=object)])
    wanted = pd.MultiIndex.from_arrays([partner(exp), exp["SNP"].to_numpy(dtype=object)])
    absent = ~wanted.isin(present)
    if absent.any():
        rows = exp.loc[absent]
        missing.append(audit.drops(STEP, rows["exposure"].tolist(), rows["SNP"].tolist(), "missing in outcome",
                                   [f"not in outcome {outcome_names[o]!r}" for o in partner(rows)]))
    return missing


# ---------------------------------------------------------------------------- inputs


def _as_side(table: pd.DataFrame, side: str, only: pd.Series | None = None) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """A TwoSampleMR-style frame for ``side`` ("exposure"/"outcome") from either input form,
    its traits ``{id: name}`` in order of appearance, and its rows whose SNP id is missing
    (``MISSING_IDS``: they name no variant, so they are never paired).

    ``only``: keep just these SNPs first (a whole outcome GWAS is looked up for a few
    instruments; the others need no cleaning or duplicate check).
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{side}: expected a pandas DataFrame, got {type(table).__name__}")
    other = "outcome" if side == "exposure" else "exposure"
    if table.empty:
        raise ValueError(f"{side} table has no rows")
    df = normalise_columns(table).copy(deep=False)  # copy-on-write: the caller's table is never changed
    df.attrs = {}  # records in the input's attrs (deprecated path) are carried by harmonise() itself, once
    if f"beta.{side}" not in df.columns and f"beta.{other}" in df.columns:
        # a table written for the other side (bi-directional MR): rename its suffixes
        df = df.rename(columns=lambda c: c[: -len(other)] + side if c.endswith("." + other) else c)
        df = df.rename(columns={other: side})
    elif f"beta.{side}" not in df.columns and "beta" in df.columns:
        renames = {col: f"{stem}.{side}" for col, stem in NORMALISED_TO_STEM.items() if col in df.columns}
        if "trait" in df.columns and side not in df.columns:
            renames["trait"] = side
        df = df.rename(columns=renames)
        keep_plain = {"SNP", side, f"id.{side}"} | set(renames.values())
        df = df.rename(columns={c: f"{c}.{side}" for c in df.columns if c not in keep_plain and "." not in c})
    required = ["SNP", f"beta.{side}", f"se.{side}", f"effect_allele.{side}"]
    absent = [c for c in required if c not in df.columns]
    if absent:
        raise ValueError(f"{side} table: missing required column(s) {absent}; it has {list(df.columns)}")
    if side not in df.columns:
        df[side] = df[f"id.{side}"] if f"id.{side}" in df.columns else table.attrs.get("trait", side)
    if f"id.{side}" not in df.columns:
        df[f"id.{side}"] = df[side]
    firsts = df[[f"id.{side}", side]].drop_duplicates(f"id.{side}")
    traits = dict(zip(firsts[f"id.{side}"], firsts[side]))  # every trait, including those sharing no SNP
    if only is not None:
        df = df.loc[df["SNP"].astype("str").isin(set(only))].copy()
    for col in (f"other_allele.{side}", f"eaf.{side}"):
        if col not in df.columns:
            df[col] = np.nan
    if f"samplesize.{side}" not in df.columns:
        df[f"samplesize.{side}"] = np.nan
    for col in (f"beta.{side}", f"se.{side}", f"eaf.{side}"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")  # "NR" and the like -> NaN
    for col in (f"effect_allele.{side}", f"other_allele.{side}"):
        text = df[col].astype("object")
        text = text.where(text.notna(), None)
        df[col] = [None if (v is None or str(v).strip() == "") else str(v).strip().upper() for v in text]
    named = ~(df["SNP"].isna() | df["SNP"].astype("str").str.strip().isin(MISSING_IDS))
    unnamed = df.loc[~named]
    df = df.loc[named].copy()
    df["SNP"] = df["SNP"].astype("str")
    dup = df.duplicated([f"id.{side}", "SNP"], keep=False)
    if dup.any():
        rows = df.loc[dup, [f"id.{side}", "SNP"]].drop_duplicates().head(5)
        pairs = ", ".join(f"{s} ({t})" for t, s in rows.itertuples(index=False))
        raise ValueError(f"{side} table: duplicated SNP rows within a trait: {pairs}; keep one row per SNP and trait")
    return df, traits, unnamed.assign(SNP=unnamed["SNP"].astype("object").where(unnamed["SNP"].notna(), "(missing)"))


def _one_allele_side(table: pd.DataFrame) -> pd.Series:
    """Per merged row, which side lacks its other allele (None when both have both)."""
    exposure_lacks = table["other_allele.exposure"].isna().to_numpy()
    outcome_lacks = table["other_allele.outcome"].isna().to_numpy()
    note = np.full(len(table), None, dtype=object)
    note[outcome_lacks] = "outcome other allele missing"
    note[exposure_lacks] = "exposure other allele missing"
    note[exposure_lacks & outcome_lacks] = "other allele missing on both sides"
    return pd.Series(note, index=table.index, dtype=object)


def _actions(action, outcomes) -> dict:
    if isinstance(action, dict):
        missing = [o for o in outcomes if o not in action]
        if missing:
            raise ValueError(f"action: no action given for outcome id(s) {missing}")
        chosen = dict(action)
    else:
        chosen = {o: action for o in outcomes}
    bad = {o: a for o, a in chosen.items() if a not in (1, 2, 3)}
    if bad:
        raise ValueError(f"action must be 1, 2 or 3; got {bad}")
    return {o: int(chosen[o]) for o in outcomes}


# ---------------------------------------------------------------------------- the rules


def _flip(alleles: np.ndarray) -> np.ndarray:
    """Complement each base (strand flip): 'AC' -> 'TG'; other symbols (D, I) unchanged."""
    return np.array([a.translate(COMPLEMENT) if isinstance(a, str) else a for a in alleles], dtype=object)


def _eq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise equality where a missing allele equals nothing (R's NA == x is NA -> FALSE)."""
    return np.array([a is not None and b is not None and a == b for a, b in zip(x, y)], dtype=bool)


def _nchar(x: np.ndarray) -> np.ndarray:
    return np.array([len(a) if isinstance(a, str) else 0 for a in x], dtype=np.int64)


def _is(x: np.ndarray, *values) -> np.ndarray:
    return np.array([a in values for a in x], dtype=bool)


def _palindromic(a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
    return np.array([(x, y) in PALINDROMES for x, y in zip(a1, a2)], dtype=bool)


def _align(table: pd.DataFrame, lo: float, hi: float) -> dict:
    """Vectorised ``harmonise_function_refactored``: new allele/beta/eaf columns and flags."""
    A1 = table["effect_allele.exposure"].to_numpy(dtype=object).copy()
    A2 = table["other_allele.exposure"].to_numpy(dtype=object).copy()
    B1 = table["effect_allele.outcome"].to_numpy(dtype=object).copy()
    B2 = table["other_allele.outcome"].to_numpy(dtype=object).copy()
    bA = table["beta.exposure"].to_numpy(dtype=float).copy()
    bB = table["beta.outcome"].to_numpy(dtype=float).copy()
    fA = table["eaf.exposure"].to_numpy(dtype=float).copy()
    fB = table["eaf.outcome"].to_numpy(dtype=float).copy()
    action = table["action"].to_numpy()
    n = len(table)
    hasA1 = np.array([a is not None for a in A1], dtype=bool)
    hasA2 = np.array([a is not None for a in A2], dtype=bool)
    hasB1 = np.array([a is not None for a in B1], dtype=bool)
    hasB2 = np.array([a is not None for a in B2], dtype=bool)
    remove = np.zeros(n, dtype=bool)
    palindromic = np.zeros(n, dtype=bool)
    ambiguous = np.zeros(n, dtype=bool)
    tA = np.where(np.isnan(fA), 0.5, fA)  # TwoSampleMR: a missing EAF counts as 0.5
    tB = np.where(np.isnan(fB), 0.5, fB)
    same_side = ((tA < lo) & (tB < lo)) | ((tA > hi) & (tB > hi))
    opposite_side = ((tA < lo) & (tB > hi)) | ((tA > hi) & (tB < lo))

    def swap_B(mask):
        B1[mask], B2[mask] = B2[mask].copy(), B1[mask].copy()
        bB[mask] = -bB[mask]
        fB[mask] = 1.0 - fB[mask]

    # --- both alleles on both sides (harmonise_22) ---
    i22 = hasA1 & hasA2 & hasB1 & hasB2
    if i22.any():
        ind = i22 & ((_nchar(A1) > 1) | (_nchar(A2) > 1) | _is(A1, "D", "I"))
        keep_indel = _recode_indels_22(A1, A2, B1, B2, ind)
        swap_B(i22 & _eq(A1, B2) & _eq(A2, B1))
        pal = i22 & _palindromic(A1, A2)
        matched = _eq(A1, B1) & _eq(A2, B2)
        flip = i22 & ~pal & ~matched
        B1[flip], B2[flip] = _flip(B1[flip]), _flip(B2[flip])
        swap_B(i22 & ~pal & _eq(A1, B2) & _eq(A2, B1))
        rem = i22 & ~(_eq(A1, B1) & _eq(A2, B2))
        rem |= ind & ~keep_indel
        # TwoSampleMR reads the outcome frequency after the allele swaps above.
        tB_now = np.where(np.isnan(fB), 0.5, fB)
        amb_A = (tA > lo) & (tA < hi)
        amb_B = (tB_now > lo) & (tB_now < hi)
        freq_flip = i22 & (action == 2) & pal & ~rem & (((tA < 0.5) & (tB_now > 0.5)) | ((tA > 0.5) & (tB_now < 0.5)))
        bB[freq_flip] = -bB[freq_flip]
        fB[freq_flip] = 1.0 - fB[freq_flip]
        remove |= rem
        palindromic |= pal
        ambiguous |= i22 & (amb_A | amb_B) & pal

    # --- outcome other allele missing (harmonise_21) ---
    i21 = hasA1 & hasA2 & hasB1 & ~hasB2
    if i21.any():
        pal = i21 & _palindromic(A1, A2)
        rem = pal.copy()
        ind = i21 & ((_nchar(A1) > 1) | (_nchar(A2) > 1) | _is(A1, "D", "I"))
        rem |= ind & ~_recode_indels_21(A1, A2, B1, B2, ind)
        amb = np.zeros(n, dtype=bool)
        status = i21 & _eq(A1, B1)
        amb |= status & ~same_side
        B2[status] = A2[status]
        swap = i21 & _eq(A2, B1)
        amb |= swap & ~opposite_side
        B2[swap], B1[swap] = B1[swap], A1[swap]
        bB[swap], fB[swap] = -bB[swap], 1.0 - fB[swap]
        flip = i21 & ~_eq(A1, B1) & ~_eq(A2, B1)
        amb |= flip
        B1[flip] = _flip(B1[flip])
        status = i21 & _eq(A1, B1) & flip
        B2[status] = A2[status]
        swap = i21 & _eq(A2, B1) & flip
        B2[swap], B1[swap] = B1[swap], A1[swap]
        bB[swap], fB[swap] = -bB[swap], 1.0 - fB[swap]
        remove |= rem
        palindromic |= pal
        ambiguous |= amb | pal

    # --- exposure other allele missing (harmonise_12; TwoSampleMR's version fails in R, this is
    # its evident intent: the mirror of harmonise_21, without indel recoding) ---
    i12 = hasA1 & ~hasA2 & hasB1 & hasB2
    if i12.any():
        pal = i12 & _palindromic(B1, B2)
        amb = np.zeros(n, dtype=bool)
        status = i12 & _eq(A1, B1)
        amb |= status & ~same_side
        A2[status] = B2[status]
        swap = i12 & _eq(A1, B2)
        amb |= swap & ~opposite_side
        A2[swap], A1[swap] = A1[swap], B1[swap]
        bA[swap], fA[swap] = -bA[swap], 1.0 - fA[swap]
        flip = i12 & ~_eq(A1, B1) & ~_eq(A1, B2)
        amb |= flip
        A1[flip] = _flip(A1[flip])
        status = flip & _eq(A1, B1)
        A2[status] = B2[status]
        swap = flip & _eq(B2, A1)
        B2[swap], B1[swap] = B1[swap], A1[swap]
        bB[swap], fB[swap] = -bB[swap], 1.0 - fB[swap]
        remove |= pal
        palindromic |= pal
        ambiguous |= amb | pal

    # --- only effect alleles (harmonise_11) ---
    i11 = hasA1 & ~hasA2 & hasB1 & ~hasB2
    if i11.any():
        status = i11 & _eq(A1, B1)
        remove |= i11 & ~status
        ambiguous |= status & ~same_side

    # no effect allele on a side: nothing can be matched
    remove |= ~(hasA1 & hasB1)
    return {
        "effect_allele.exposure": A1, "other_allele.exposure": A2,
        "effect_allele.outcome": B1, "other_allele.outcome": B2,
        "beta.exposure": bA, "beta.outcome": bB, "eaf.exposure": fA, "eaf.outcome": fB,
        "remove": remove, "palindromic": palindromic, "ambiguous": ambiguous,
    }


def _recode_indels_22(A1, A2, B1, B2, ind) -> np.ndarray:
    """``recode_indels_22`` on rows ``ind`` (in place); returns the keep mask over all rows."""
    a1, a2, b1, b2 = _nchar(A1), _nchar(A2), _nchar(B1), _nchar(B2)
    bI_D = ind & _is(B1, "I") & _is(B2, "D")
    bD_I = ind & _is(B1, "D") & _is(B2, "I")
    for mask, first, second in (
        (bI_D & (a1 > a2), A1, A2), (bI_D & (a1 < a2), A2, A1),
        (bD_I & (a1 > a2), A2, A1), (bD_I & (a1 < a2), A1, A2),
    ):
        B1[mask], B2[mask] = first[mask], second[mask]
    aI_D = ind & _is(A1, "I") & _is(A2, "D")
    aD_I = ind & _is(A1, "D") & _is(A2, "I")
    for mask, first, second in (
        (aI_D & (b1 > b2), B1, B2), (aI_D & (b1 < b2), B2, B1),
        (aD_I & (b1 > b2), B2, B1), (aD_I & (b1 < b2), B1, B2),
    ):
        A1[mask], A2[mask] = first[mask].copy(), second[mask].copy()
    drop = (a1 > 1) & (a1 == a2) & _is(B1, "D", "I")
    drop |= (b1 > 1) & (b1 == b2) & _is(A1, "D", "I")
    drop |= _eq(A1, A2) | _eq(B1, B2)
    return ~(ind & drop)


def _recode_indels_21(A1, A2, B1, B2, ind) -> np.ndarray:
    """``recode_indels_21`` on rows ``ind`` (in place); returns the keep mask over all rows."""
    a1, a2 = _nchar(A1), _nchar(A2)
    bI, bD = ind & _is(B1, "I"), ind & _is(B1, "D")
    for mask, first, second in (
        (bI & (a1 > a2), A1, A2), (bI & (a1 < a2), A2, A1),
        (bD & (a1 > a2), A2, A1), (bD & (a1 < a2), A1, A2),
    ):
        B1[mask], B2[mask] = first[mask], second[mask]
    drop = (_is(A1, "I") & _is(A2, "D")) | (_is(A1, "D") & _is(A2, "I"))
    drop |= (a1 > 1) & (a1 == a2) & _is(B1, "D", "I")
    drop |= _eq(A1, A2)
    return ~(ind & drop)


def _keep(table: pd.DataFrame, eaf_tolerance, band) -> tuple[pd.DataFrame, pd.Series]:
    """``mr_keep`` by action, plus the audit reason of each FALSE as (reason, detail)."""
    action = table["action"].to_numpy()
    remove = table["remove"].to_numpy()
    pal = table["palindromic"].to_numpy()
    amb = table["ambiguous"].to_numpy()
    drop_amb = amb & (action >= 2)
    drop_pal = pal & (action == 3)
    missing = table[["beta.exposure", "beta.outcome", "se.exposure", "se.outcome"]].isna().any(axis=1).to_numpy()
    eaf_off = np.zeros(len(table), dtype=bool)
    diff = (table["eaf.exposure"] - table["eaf.outcome"]).abs().to_numpy()
    if eaf_tolerance is not None:
        eaf_off = np.nan_to_num(diff, nan=0.0) > eaf_tolerance
    keep = ~(remove | drop_amb | drop_pal | missing | eaf_off)
    lo, hi = band
    reasons = pd.Series([None] * len(table), dtype=object)
    ordered = [
        (eaf_off, "allele mismatch", lambda i: f"EAF {table['eaf.exposure'].iat[i]:.4g} vs {table['eaf.outcome'].iat[i]:.4g} differ by more than {eaf_tolerance}"),
        (missing, "bad value", lambda i: "missing beta or se"),
        (drop_amb & ~pal, "allele mismatch", lambda i: "one allele known and the frequencies disagree"),
        (drop_pal, "palindromic ambiguous", lambda i: "palindromic (action 3 drops all)"),
        (drop_amb & pal, "palindromic ambiguous", lambda i: f"palindromic with EAF in ({lo}, {hi})"),
        (remove, "allele mismatch", lambda i: "alleles {}/{} vs {}/{} do not match".format(
            table["effect_allele.exposure"].iat[i], table["other_allele.exposure"].iat[i],
            table["effect_allele.outcome"].iat[i], table["other_allele.outcome"].iat[i])),
    ]
    for mask, reason, detail in ordered:  # later entries take precedence
        for i in np.flatnonzero(mask):
            reasons.iat[i] = (reason, detail(i))
    table = table.assign(mr_keep=keep, _id=np.arange(len(table)))
    return table, reasons


def _column_order(table: pd.DataFrame) -> list[str]:
    first = [c for c in CORE + FRONT if c in table.columns]
    last = ["action", "mr_keep"]
    middle = [c for c in table.columns if c not in first and c not in last]
    return first + middle + last

