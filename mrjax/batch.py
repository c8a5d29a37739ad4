"""Padded instrument batches: a harmonised long table becomes ``[traits, width]`` tensors.

A *trait* is one exposure–outcome pair (TwoSampleMR groups ``mr()`` the same way). Its
instruments occupy the first ``nsnp`` slots of a row; the remaining slots are padding with
inert values (``bx = sx = sy = 1, by = 0``) so that no elementwise operation on them yields
inf or NaN. The boolean ``mask`` is the only truth about which slots are real.

Traits are grouped into *buckets* whose width is a power of two (at least
``MIN_WIDTH``; groups of fewer than ``MIN_BUCKET_TRAITS`` traits are padded into the next
wider bucket) and whose trait count is rounded up (:func:`bucket_rows`) with all-padding
dummy traits, so a 731-trait scan with 3–60 instruments compiles a handful of kernels.

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

from mrjax import enable_float64
from mrjax.columns import COLUMN_TWINS, normalise_columns  # noqa: F401  (re-exported)

enable_float64()  # every device-side module imports this one: arrays are float64 from here on

MIN_WIDTH = 4
# Width groups smaller than this are padded into the next wider bucket (see TraitBatch.buckets).
MIN_BUCKET_TRAITS = 64

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
    """

    bx: jax.Array
    sx: jax.Array
    by: jax.Array
    sy: jax.Array
    mask: jax.Array

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
        )


def make_instruments(bx, sx, by, sy, mask=None, dtype=None) -> Instruments:
    """Build an :class:`Instruments` from array-likes, making padded slots inert.

    ``mask`` defaults to all True. Values in masked-out slots are replaced by
    ``PAD_VALUES`` whatever they were, so callers may pass garbage there.
    """
    bx = np.asarray(bx, dtype=dtype or float)
    mask = np.ones(bx.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    arrays = {}
    for name, value in (("bx", bx), ("sx", sx), ("by", by), ("sy", sy)):
        value = np.asarray(value, dtype=bx.dtype)
        arrays[name] = jnp.asarray(np.where(mask, value, PAD_VALUES[name]))
    return Instruments(mask=jnp.asarray(mask), **arrays)


def bucket_width(n: int, floor: int = MIN_WIDTH) -> int:
    """Smallest power of two that is >= ``n`` and >= ``floor``."""
    n = max(int(n), 1)
    return max(floor, 1 << (n - 1).bit_length())


def bucket_rows(n: int) -> int:
    """Rows of a bucket holding ``n`` traits: the next power of two up to 64, then the next
    multiple of 64 (few distinct shapes, at most ~10% dummy rows in large buckets)."""
    n = max(int(n), 1)
    return 1 << (n - 1).bit_length() if n <= 64 else -(-n // 64) * 64


def trait_uid(*identity: object) -> int:
    """Stable 32-bit id of a trait from its identity (e.g. exposure and outcome names).

    CRC-32 of the parts joined by the unit separator: the same names give the same id in
    every process, on every machine.
    """
    text = "\x1f".join("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in identity)
    return zlib.crc32(text.encode("utf-8"))


def as_key(seed_or_key) -> jax.Array:
    """A PRNG key from an int seed (0 <= seed < 2^63) or an existing key (the API edge's one
    conversion); anything else is a ``TypeError``/``ValueError`` saying what a seed is."""
    if isinstance(seed_or_key, (bool, np.bool_)):
        raise TypeError("seed must be an integer or a JAX PRNG key, not a bool")
    if isinstance(seed_or_key, (int, np.integer)):
        if not 0 <= int(seed_or_key) < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2^63), not {int(seed_or_key)}")
        return jax.random.key(int(seed_or_key))
    if isinstance(seed_or_key, jax.Array) and (jnp.issubdtype(seed_or_key.dtype, jax.dtypes.prng_key)
                                               or (seed_or_key.dtype == jnp.uint32 and seed_or_key.shape[-1:] == (2,))):
        return seed_or_key
    raise TypeError(f"seed must be an integer or a JAX PRNG key, not {type(seed_or_key).__name__} {seed_or_key!r}")


def trait_keys(seed_or_key, uids) -> jax.Array:
    """One PRNG key per trait: ``fold_in(key(seed), uid)``, independent of batch layout."""
    key = as_key(seed_or_key)
    uids = jnp.asarray(np.asarray(uids, dtype=np.uint32))
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
        instruments = Instruments(mask=jnp.asarray(mask), **{k: jnp.asarray(v) for k, v in arrays.items()})
        return Bucket(trait_index=trait_index, instruments=instruments, uids=uids)

    def buckets(self, min_width: int = MIN_WIDTH, max_traits: int | None = None, dtype=np.float64,
                min_traits: int = MIN_BUCKET_TRAITS) -> Iterator[Bucket]:
        """Group traits by ``bucket_width(nsnp)`` and yield padded buckets.

        A width group with fewer than ``min_traits`` traits joins the next wider group: every
        bucket shape costs a compilation (seconds per kernel on CPU), far more than padding a
        few traits wider costs at run time. The trait count of each bucket is rounded up by
        :func:`bucket_rows` (dummy rows have ``trait_index`` −1 and no instruments); with
        ``max_traits`` large buckets are split into chunks of at most that many traits (a
        power of two keeps shapes reused).
        """
        widths = np.array([bucket_width(n, min_width) for n in self.traits["nsnp"].to_numpy()])
        groups = [np.nonzero(widths == width)[0] for width in sorted(set(widths.tolist()))]
        merged: list[np.ndarray] = []
        carry = np.zeros(0, dtype=np.int64)
        for i, members in enumerate(groups):
            carry = np.concatenate([carry, members])
            if len(carry) >= min_traits or i == len(groups) - 1:
                merged.append(carry)
                carry = np.zeros(0, dtype=np.int64)
        for members in merged:
            width = int(widths[members].max())
            chunk = len(members) if max_traits is None else max_traits
            for start in range(0, len(members), chunk):
                part = members[start : start + chunk]
                rows = bucket_rows(len(part))
                index = np.concatenate([part, np.full(rows - len(part), -1)])
                yield self.bucket(index, width=width, dtype=dtype)


def from_frame(data: pd.DataFrame, *, source: str = "input table") -> TraitBatch:
    """Split a harmonised long table (TwoSampleMR ``dat`` or its snake_case twin) into traits.

    Requires ``beta.exposure, se.exposure, beta.outcome, se.outcome``; ``SNP``, ``exposure``,
    ``outcome``, ``id.exposure``, ``id.outcome`` and ``mr_keep`` are used when present
    (absent names default to ``"exposure"``/``"outcome"``, absent SNP ids to ``snp<row>``).
    Traits are grouped by (exposure, outcome) — and by the id columns when given.

    Raises ``ValueError`` naming the column, trait and rows for a missing column,
    non-numeric or non-finite values, SE <= 0, or a SNP listed twice within one trait.
    """
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
