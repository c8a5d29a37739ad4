"""Padded instrument batches: a harmonised long table becomes ``[traits, width]`` tensors.

A *trait* is one exposure–outcome pair (TwoSampleMR groups ``mr()`` the same way). Its
instruments occupy the first ``nsnp`` slots of a row; the remaining slots are padding with
inert values (``bx = sx = sy = 1, by = 0``) so that no elementwise operation on them yields
inf or NaN. The boolean ``mask`` is the only truth about which slots are real.

Traits are grouped into *buckets* by one policy (:class:`BucketPolicy`): a width from a
short ladder (powers of two, at least ``MIN_WIDTH``; groups of fewer than
``MIN_BUCKET_TRAITS`` traits are padded into the next wider bucket), a trait count rounded up
(:func:`bucket_rows`) with all-padding dummy traits, and at most as many traits per bucket as
keep one call's largest array under ``MEMORY_BUDGET_ELEMENTS``, so a 731-trait scan with
3–60 instruments compiles a handful of kernels and memory is bounded whatever the scan's size.

Each trait also gets a stable 32-bit ``trait_uid`` (CRC-32 of its identity), from which its
PRNG stream is derived with ``jax.random.fold_in``: a trait's random draws depend only on
the seed and the trait, never on batch composition, bucket width or device.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mrjax.audit import Audited
from mrjax.columns import COLUMN_TWINS, normalise_columns  # noqa: F401  (re-exported)

MIN_WIDTH = 4
# Width groups smaller than this are padded into the next wider bucket (see TraitBatch.buckets).
MIN_BUCKET_TRAITS = 64
# Width groups above this are never merged with narrower ones (see BucketPolicy).
MAX_MERGE_WIDTH = 1024
# Elements (float64 slots, ~64 MiB) that the largest array of one device call may hold: it caps
# the traits of a bucket, the replicates of a simulation chunk and the permutations of a
# permutation chunk. Override it for a smaller or larger device (``mrjax.batch.MEMORY_BUDGET_ELEMENTS = ...``);
# it is read at call time.
MEMORY_BUDGET_ELEMENTS = 1 << 23

PAD_VALUES = {"bx": 1.0, "sx": 1.0, "by": 0.0, "sy": 1.0}

# The four summary statistics every estimator needs, with their short names in the tensors.
REQUIRED_NUMERIC = {
    "beta.exposure": "bx",
    "se.exposure": "sx",
    "beta.outcome": "by",
    "se.outcome": "sy",
}

OPTIONAL_NUMERIC = [
    "eaf.exposure",
    "eaf.outcome",
    "samplesize.exposure",
    "samplesize.outcome",
    "pval.exposure",
    "pval.outcome",
]

TRAIT_KEYS = ["exposure", "outcome"]
ID_KEYS = ["id.exposure", "id.outcome"]


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Instruments:
    """Summary statistics of the instruments of one trait (fields ``[width]``) or of a batch
    of traits (fields ``[traits, width]``).

    ``bx, sx``: SNP–exposure effect and SE; ``by, sy``: SNP–outcome effect and SE, all on the
    same effect allele; ``mask``: True for real instruments (a prefix of each row).
    ``samplesize``: optional per-trait GWAS sample size (``[]`` or ``[traits]``; NaN where
    unknown), used by estimators that need one (MendelianRandomization ``mr_cML``'s ``n``).
    """

    bx: jax.Array
    sx: jax.Array
    by: jax.Array
    sy: jax.Array
    mask: jax.Array
    samplesize: jax.Array | None = None

    @property
    def nsnp(self) -> jax.Array:
        """Number of real instruments (per trait)."""
        return jnp.sum(self.mask, axis=-1)

    def astype(self, dtype) -> "Instruments":
        """The same instruments with the four statistics cast to ``dtype`` (e.g. float32)."""
        return Instruments(
            bx=self.bx.astype(dtype),
            sx=self.sx.astype(dtype),
            by=self.by.astype(dtype),
            sy=self.sy.astype(dtype),
            mask=self.mask,
            samplesize=None if self.samplesize is None else self.samplesize.astype(dtype),
        )


def _float64_on() -> None:
    """``mrjax.engine.ensure_x64`` before any device array is made here (without it JAX would
    silently store float64 data as float32 and truncate 64-bit seeds)."""
    from mrjax.engine import ensure_x64  # the engine imports this module: a late import breaks the cycle

    ensure_x64()


def _device_arrays(arrays: dict) -> dict:
    """``jnp.asarray`` of each value, float64 on."""
    _float64_on()
    return {name: jnp.asarray(value) for name, value in arrays.items()}


def make_instruments(bx, sx, by, sy, mask=None, dtype=None, samplesize=None) -> Instruments:
    """Build an :class:`Instruments` from array-likes, making padded slots inert.

    ``mask`` defaults to all True. Values in masked-out slots are replaced by
    ``PAD_VALUES`` whatever they were, so callers may pass garbage there. ``samplesize``:
    optional per-trait sample size (a scalar, or one per row of a 2-D ``bx``).
    """
    bx = np.asarray(bx, dtype=dtype or float)
    mask = np.ones(bx.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    arrays = {"mask": mask}
    for name, value in (("bx", bx), ("sx", sx), ("by", by), ("sy", sy)):
        value = np.asarray(value, dtype=bx.dtype)
        arrays[name] = np.where(mask, value, PAD_VALUES[name])
    if samplesize is not None:
        arrays["samplesize"] = np.broadcast_to(np.asarray(samplesize, dtype=bx.dtype), bx.shape[:-1])
    return Instruments(**_device_arrays(arrays))


@dataclass(frozen=True)
class BucketPolicy:
    """The one rule that pads traits into buckets (compiled shapes), used by every kernel.

    * width: the smallest rung of the ladder ``min_width, 2 min_width, 4 min_width, …`` that
      holds a trait's instruments; with ``half_steps`` the ladder also has 1.5× rungs from
      ``2 min_width`` on (8, 16, 24, 32, 48, 64, 96, … for ``min_width`` 8);
    * groups: a width group of fewer than ``min_traits`` traits joins the next wider group
      (every shape costs a compilation), but never one wider than ``max_merge_width``: there
      the run time grows with the padded width (a few 5-instrument traits padded into one
      20,000-instrument trait's bucket would cost thousands of times their own), so wide
      groups are buckets of their own;
    * rows: a bucket of n traits has the next power of two rows up to ``row_step``, then the
      next multiple of ``row_step`` (dummy rows are all padding);
    * size: at most ``budget / row_elements(width)`` traits per bucket (rounded down to a
      multiple of ``row_step``, at least ``row_step``), so the largest array of one call stays
      near the budget whatever the number of traits.

    :data:`PANEL_BUCKETS` (estimators and diagnostics: compilation dominates, so a coarse ladder
    and merged groups) and :data:`DRAW_BUCKETS` (MR-PRESSO: run time grows with the padded
    size times the draws, so a finer ladder and no merging) are its two settings.
    """

    min_width: int = MIN_WIDTH
    half_steps: bool = False
    min_traits: int = MIN_BUCKET_TRAITS
    row_step: int = 64
    max_merge_width: int = MAX_MERGE_WIDTH

    def width(self, n: int) -> int:
        """Padded width for ``n`` instruments."""
        n = max(int(n), 1)
        width = self.min_width
        while width < n:
            if self.half_steps and width >= 2 * self.min_width and width * 3 // 2 >= n:
                return width * 3 // 2
            width *= 2
        return width

    def rows(self, n: int) -> int:
        """Rows of a bucket holding ``n`` traits."""
        n = max(int(n), 1)
        step = self.row_step
        return 1 << (n - 1).bit_length() if n <= step else -(-n // step) * step

    def traits_per_call(self, width: int, row_elements, budget: int | None = None) -> int:
        """The most traits of padded ``width`` one call holds: ``budget`` (default
        :data:`MEMORY_BUDGET_ELEMENTS`, read now) over ``row_elements(width)``, the elements one
        trait adds to the call's largest array, rounded down to a multiple of ``row_step`` (at
        least ``row_step``)."""
        budget = MEMORY_BUDGET_ELEMENTS if budget is None else budget
        return max(self.row_step, budget // row_elements(width) // self.row_step * self.row_step)

    def plan(self, nsnp: np.ndarray, members: np.ndarray | None = None, *, max_traits: int | None = None,
             row_elements=None, budget: int | None = None) -> list[tuple[np.ndarray, int]]:
        """``(trait_index, width)`` of each bucket for the traits ``members`` (default all) with
        ``nsnp`` instruments each; ``trait_index`` holds −1 for dummy rows. ``row_elements(width)``:
        the elements one trait adds to the call's largest array (caps the traits per bucket at
        ``budget``, default :data:`MEMORY_BUDGET_ELEMENTS`); ``max_traits`` caps them directly."""
        nsnp = np.asarray(nsnp)
        members = np.arange(len(nsnp)) if members is None else np.asarray(members, dtype=np.int64)
        widths = np.array([self.width(n) for n in nsnp[members]], dtype=int)
        groups = [members[widths == width] for width in sorted(set(widths.tolist()))]
        merged: list[np.ndarray] = []
        carry = np.zeros(0, dtype=np.int64)
        for i, group in enumerate(groups):
            if self.width(nsnp[group].max()) > self.max_merge_width:
                merged.extend([carry, group] if len(carry) else [group])  # wide: run time is padding-bound
                carry = np.zeros(0, dtype=np.int64)
                continue
            carry = np.concatenate([carry, group])
            if len(carry) >= self.min_traits or i == len(groups) - 1:
                merged.append(carry)
                carry = np.zeros(0, dtype=np.int64)
        plan = []
        for group in merged:
            width = self.width(nsnp[group].max())
            size = len(group) if max_traits is None else max_traits
            if row_elements is not None:
                size = min(size, self.traits_per_call(width, row_elements, budget))
            split = size < len(group)
            if split and row_elements is not None:
                # A group split by the budget runs in chunks of a power of two traits and a last
                # chunk padded to the next power of two: a handful of shapes per width, which a
                # run of many blocks (each a different number of traits) compiles once.
                size = 1 << (size.bit_length() - 1)
            for start in range(0, len(group), size):
                part = group[start : start + size]
                rows = 1 << (len(part) - 1).bit_length() if split and row_elements is not None else self.rows(len(part))
                plan.append((np.concatenate([part, np.full(rows - len(part), -1)]), width))
        return plan


# The panel's widths depend on each trait's own instrument count only (no merging of width
# groups), so a trait is padded the same whatever traits share its call: XLA's reductions over
# the width axis round differently at different padded widths, and merging made a trait's
# estimates depend on the chunk it was scanned in (``--chunk-size``). The floor of 16 keeps the
# common 3–16-instrument traits in one shape.
PANEL_MIN_WIDTH = 16
PANEL_BUCKETS = BucketPolicy(min_width=PANEL_MIN_WIDTH, min_traits=1)
DRAW_BUCKETS = BucketPolicy(min_width=8, half_steps=True, min_traits=1, row_step=8)


def panel_row_elements(n_boot: int):
    """Elements one trait of padded width ``w`` adds to the method panel's largest array:
    ``w × max(n_boot, w)`` (the bootstrap draws of the median/mode/Egger-bootstrap methods,
    or the ``w × w`` leave-one-out matrix of the diagnostics, ``n_boot`` 0)."""
    return lambda width: width * max(int(n_boot), width)


def bucket_width(n: int, floor: int = MIN_WIDTH) -> int:
    """Smallest power of two that is >= ``n`` and >= ``floor`` (:class:`BucketPolicy` widths)."""
    return BucketPolicy(min_width=floor).width(n)


def bucket_rows(n: int) -> int:
    """Rows of a bucket holding ``n`` traits: the next power of two up to 64, then the next
    multiple of 64 (few distinct shapes, at most ~10% dummy rows in large buckets)."""
    return PANEL_BUCKETS.rows(n)


def trait_uid(*identity: object) -> int:
    """Stable 32-bit id of a trait from its identity (e.g. exposure and outcome names).

    CRC-32 of the parts joined by the unit separator: the same names give the same id in
    every process, on every machine.
    """
    text = "\x1f".join("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in identity)
    return zlib.crc32(text.encode("utf-8"))


def as_key(seed_or_key) -> jax.Array:
    """A PRNG key from an int seed (0 <= seed < 2^63) or an existing key (the API edge's one
    conversion; a 64-bit seed, so float64 is turned on first); anything else is a
    ``TypeError``/``ValueError`` saying what a seed is."""
    if isinstance(seed_or_key, (bool, np.bool_)):
        raise TypeError("seed must be an integer or a JAX PRNG key, not a bool")
    if isinstance(seed_or_key, (int, np.integer)):
        if not 0 <= int(seed_or_key) < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2^63), not {int(seed_or_key)}")
        _float64_on()
        return jax.random.key(int(seed_or_key))
    if isinstance(seed_or_key, jax.Array) and (jnp.issubdtype(seed_or_key.dtype, jax.dtypes.prng_key)
                                               or (seed_or_key.dtype == jnp.uint32 and seed_or_key.shape[-1:] == (2,))):
        return seed_or_key
    raise TypeError(f"seed must be an integer or a JAX PRNG key, not {type(seed_or_key).__name__} {seed_or_key!r}")


def trait_keys(seed_or_key, uids) -> jax.Array:
    """One PRNG key per trait: ``fold_in(key(seed), uid)``, independent of batch layout."""
    key = as_key(seed_or_key)
    uids = _device_arrays({"uids": np.asarray(uids, dtype=np.uint32)})["uids"]
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, uids)


def _describe_rows(index: pd.Index, limit: int = 5) -> str:
    rows = [str(i) for i in index[:limit]]
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    return ", ".join(rows) + more


def _coerce_mr_keep(values: pd.Series) -> np.ndarray:
    if values.dtype == bool:
        return values.to_numpy()
    missing = values.isna().to_numpy()
    text = values.astype(object).where(~missing, "FALSE").astype(str).str.strip().str.upper()
    truthy = text.isin(["TRUE", "T", "1", "YES"])
    falsy = text.isin(["FALSE", "F", "0", "NO", "NAN", "NA", "<NA>", "NONE", ""])
    bad = ~(truthy | falsy)
    if bad.any():
        raise ValueError(
            f"column 'mr_keep' must be TRUE/FALSE; rows {_describe_rows(values.index[bad.to_numpy()])} "
            f"hold {values[bad].iloc[0]!r}"
        )
    return truthy.to_numpy()


@dataclass(frozen=True)
class Bucket:
    """One compiled shape: ``traits`` rows of ``trait_index`` (−1 for dummy rows) and the
    padded instruments ``[n_traits_padded, width]``."""

    trait_index: np.ndarray
    instruments: Instruments
    uids: np.ndarray

    @property
    def real(self) -> np.ndarray:
        """Boolean ``[n_traits_padded]``: rows that are real traits."""
        return self.trait_index >= 0


@dataclass(frozen=True)
class TraitBatch:
    """A harmonised table split into traits, ready to be padded into buckets.

    ``traits``: one row per trait (``exposure, outcome`` and ``id.*`` when given, ``nsnp``,
    ``trait_uid``), in order of first appearance. ``instruments``: the long table of
    instruments used (``mr_keep`` rows), sorted by trait with the input order kept inside a
    trait, with integer columns ``trait`` (row of ``traits``) and ``slot`` (position).
    ``excluded``: rows not used (``mr_keep`` FALSE) with a ``reason`` column.
    """

    traits: pd.DataFrame
    instruments: pd.DataFrame
    excluded: pd.DataFrame

    @property
    def n_traits(self) -> int:
        return len(self.traits)

    def padded(self, column: str, trait_index: np.ndarray, width: int, fill=np.nan) -> np.ndarray:
        """Any per-instrument column as a ``[len(trait_index), width]`` array.

        Rows whose ``trait_index`` is −1 (dummy traits) and slots past a trait's last
        instrument hold ``fill``.
        """
        values = self.instruments[column].to_numpy()
        out = np.full((len(trait_index), width), fill, dtype=np.result_type(values.dtype, type(fill)))
        row_of_trait = np.full(self.n_traits, -1)
        row_of_trait[trait_index[trait_index >= 0]] = np.nonzero(trait_index >= 0)[0]
        rows = row_of_trait[self.instruments["trait"].to_numpy()]
        keep = rows >= 0
        out[rows[keep], self.instruments["slot"].to_numpy()[keep]] = values[keep]
        return out

    def trait_samplesize(self, trait_index: np.ndarray) -> np.ndarray:
        """``[len(trait_index)]`` sample size per trait: the smallest ``samplesize.exposure`` or
        ``samplesize.outcome`` of its instruments (MendelianRandomization's advice for
        ``mr_cML``: the lower of the two); NaN without those columns and for dummy rows."""
        cols = [c for c in ("samplesize.exposure", "samplesize.outcome") if c in self.instruments.columns]
        out = np.full(len(trait_index), np.nan)
        if not cols:
            return out
        per_row = self.instruments[cols].min(axis=1, skipna=True)
        per_trait = per_row.groupby(self.instruments["trait"]).min().reindex(range(self.n_traits)).to_numpy(dtype=float)
        real = trait_index >= 0
        out[real] = per_trait[trait_index[real]]
        return out

    def bucket(self, trait_index: np.ndarray, width: int | None = None, dtype=np.float64) -> Bucket:
        """Pad the given traits into one bucket of the given width (default: the smallest
        power of two that holds them). ``trait_index`` may contain −1 for dummy traits."""
        trait_index = np.asarray(trait_index, dtype=np.int64)
        real = trait_index >= 0
        nsnp = self.traits["nsnp"].to_numpy()[trait_index[real]]
        width = width or bucket_width(nsnp.max() if len(nsnp) else 1)
        mask = self.padded("slot", trait_index, width, fill=-1) >= 0
        arrays = {
            short: np.where(mask, self.padded(col, trait_index, width, fill=PAD_VALUES[short]), PAD_VALUES[short]).astype(dtype)
            for col, short in REQUIRED_NUMERIC.items()
        }
        uids = np.zeros(len(trait_index), dtype=np.uint32)
        uids[real] = self.traits["trait_uid"].to_numpy()[trait_index[real]]
        arrays["samplesize"] = self.trait_samplesize(trait_index).astype(dtype)
        instruments = Instruments(**_device_arrays({"mask": mask, **arrays}))
        return Bucket(trait_index=trait_index, instruments=instruments, uids=uids)

    def buckets(self, min_width: int | None = None, max_traits: int | None = None, dtype=np.float64,
                min_traits: int | None = None, *, policy: BucketPolicy | None = None,
                members: np.ndarray | None = None, row_elements=None) -> Iterator[Bucket]:
        """Padded buckets of the traits ``members`` (default all) by ``policy`` (default
        :data:`PANEL_BUCKETS`; given ``min_width`` or ``min_traits``, a :class:`BucketPolicy`
        with those settings).

        With ``min_traits``, a width group with fewer traits joins the next wider group (fewer
        shapes to compile, but a trait's width, and so its last bits, then depend on the other
        traits). The trait count of each bucket is rounded up by
        :func:`bucket_rows` (dummy rows have ``trait_index`` −1 and no instruments); with
        ``max_traits`` (or ``row_elements``, the elements one trait adds to the call's largest
        array, against :data:`MEMORY_BUDGET_ELEMENTS`) large buckets are split into chunks.
        """
        if policy is None and min_width is None and min_traits is None:
            policy = PANEL_BUCKETS
        elif policy is None:
            policy = BucketPolicy(min_width=min_width or MIN_WIDTH, min_traits=min_traits or MIN_BUCKET_TRAITS)
        plan = policy.plan(self.traits["nsnp"].to_numpy(), members, max_traits=max_traits, row_elements=row_elements)
        for index, width in plan:
            yield self.bucket(index, width=width, dtype=dtype)


def from_frame(data: pd.DataFrame, *, source: str = "input table") -> TraitBatch:
    """Split a harmonised long table (TwoSampleMR ``dat`` or its snake_case twin) into traits.

    Requires ``beta.exposure, se.exposure, beta.outcome, se.outcome``; ``SNP``, ``exposure``,
    ``outcome``, ``id.exposure``, ``id.outcome`` and ``mr_keep`` are used when present
    (absent names default to ``"exposure"``/``"outcome"``, absent SNP ids to ``snp<row>``).
    Traits are grouped by (exposure, outcome) — and by the id columns when given.

    ``data`` may also be what ``harmonise(..., audited=True)`` returns (an ``Audited`` pair):
    its table is used (the audit belongs to the data steps, not to the estimates).

    Raises ``ValueError`` naming the column, trait and rows for a missing column,
    non-numeric or non-finite values, SE <= 0, or a SNP listed twice within one trait.
    """
    if isinstance(data, Audited):
        data = data.table
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{source}: expected a pandas DataFrame, got {type(data).__name__}")
    df = normalise_columns(data).copy()
    missing = [c for c in REQUIRED_NUMERIC if c not in df.columns]
    if missing:
        twins = ", ".join(f"{c!r} (or {COLUMN_TWINS[c]!r})" for c in missing)
        raise ValueError(f"{source}: missing required column(s) {twins}")
    if len(df) == 0:
        raise ValueError(f"{source}: the table has no rows")
    df = df.reset_index(drop=True)
    df.index = df.index + 1  # report 1-based data rows
    for col in TRAIT_KEYS:
        if col not in df.columns:
            fallback = f"id.{col}"
            df[col] = df[fallback].astype(str) if fallback in df.columns else col
        df[col] = df[col].astype(str)
    if "SNP" not in df.columns:
        df["SNP"] = [f"snp{i}" for i in df.index]
    df["SNP"] = df["SNP"].astype(str)
    keys = TRAIT_KEYS + [c for c in ID_KEYS if c in df.columns]
    for col in ID_KEYS:
        if col in df.columns:
            df[col] = df[col].astype(str)

    keep = _coerce_mr_keep(df["mr_keep"]) if "mr_keep" in df.columns else np.ones(len(df), dtype=bool)
    excluded = df.loc[~keep].assign(reason="mr_keep is FALSE")
    df = df.loc[keep]

    for col in list(REQUIRED_NUMERIC) + [c for c in OPTIONAL_NUMERIC if c in df.columns]:
        numeric = pd.to_numeric(df[col], errors="coerce")
        bad = numeric.isna() & df[col].notna()
        if bad.any():
            raise ValueError(
                f"{source}: column {col!r} is not numeric in rows {_describe_rows(df.index[bad.to_numpy()])} "
                f"(e.g. {df.loc[bad, col].iloc[0]!r}, trait {df.loc[bad, 'exposure'].iloc[0]!r})"
            )
        df[col] = numeric.astype(float)
    for col in REQUIRED_NUMERIC:
        values = df[col].to_numpy()
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"{source}: column {col!r} has missing or infinite values in rows {_describe_rows(df.index[bad])} "
                f"(trait {df['exposure'].to_numpy()[bad][0]!r} -> {df['outcome'].to_numpy()[bad][0]!r}); "
                "drop them or set mr_keep to FALSE"
            )
        if col.startswith("se.") and (values <= 0).any():
            bad = values <= 0
            raise ValueError(
                f"{source}: column {col!r} must be > 0; rows {_describe_rows(df.index[bad])} hold "
                f"{float(values[bad][0]):g} (trait {df['exposure'].to_numpy()[bad][0]!r} -> {df['outcome'].to_numpy()[bad][0]!r})"
            )
    if len(df) == 0:
        raise ValueError(f"{source}: no rows with mr_keep TRUE")

    trait_code, trait_rows = pd.factorize(pd.MultiIndex.from_frame(df[keys]), sort=False)
    df["trait"] = trait_code
    dup = df.duplicated(subset=["trait", "SNP"], keep=False)
    if dup.any():
        first = df.loc[dup].iloc[0]
        raise ValueError(
            f"{source}: SNP {first['SNP']!r} appears more than once for trait "
            f"{first['exposure']!r} -> {first['outcome']!r} (rows {_describe_rows(df.index[dup.to_numpy()])}); "
            "keep one row per SNP and trait"
        )
    df = df.sort_values("trait", kind="stable")
    df["slot"] = df.groupby("trait").cumcount()
    traits = pd.DataFrame(list(trait_rows), columns=keys)
    traits["nsnp"] = df.groupby("trait").size().reindex(range(len(traits))).to_numpy()
    traits["trait_uid"] = [trait_uid(*row) for row in traits[keys].itertuples(index=False)]
    return TraitBatch(traits=traits, instruments=df, excluded=excluded)
