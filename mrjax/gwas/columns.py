"""Arrow column helpers of the readers: typed casts that name bad values, p-value parsing that
keeps −log10 p below float64's range, the first of comma-separated ids, the row checks and the
normalised table's dtypes."""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def first_id(snp):
    """The first of comma-separated ids (FinnGen ``rsids``: ``rs1,rs2``); empty -> missing."""
    if snp is None:
        return None
    snp = as_string(snp, len(snp))
    if pc.any(pc.fill_null(pc.match_substring(snp, ","), False)).as_py():
        snp = pc.list_element(pc.split_pattern(pc.fill_null(snp, ""), ","), 0)
        snp = pc.if_else(pc.equal(pc.utf8_trim_whitespace(snp), ""), pa.scalar(None, pa.string()), snp)
    return snp


def set_column(table: pa.Table, name: str, column) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, column)


def as_string(column, rows: int):
    if column is None:
        return pa.nulls(rows, pa.string())
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    return column


def float_or_null(column, rows: int):
    return pa.nulls(rows, pa.float64()) if column is None else column


def as_float(column, path, name, offset: int = 0):
    """Cast to float64; text that is not a number raises ValueError naming rows and values."""
    if pa.types.is_floating(column.type) and column.type.bit_width == 64:
        return column
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return pc.cast(column, pa.float64())
    try:
        return pc.cast(column, pa.float64())
    except pa.ArrowInvalid:
        values = pd.Series(column.to_pylist(), dtype=object)
        parsed = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero(values.notna().to_numpy() & parsed.isna().to_numpy())
        shown = ", ".join(f"data row {offset + i}: {values.iloc[i]!r}" for i in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(f"{path}: {name} must be numeric but holds {shown}{more}") from None


def p_columns(pval, mlog10p, path, name, offset: int):
    """``pval`` and ``mlog10p``: a file's −log10 p column when it has one, else from the p text
    (exact even where p underflowed to 0), else 10^−mlog10p for p."""
    if pval is None:
        return pc.power(pa.scalar(10.0), pc.negate(mlog10p)), mlog10p
    if pa.types.is_string(pval.type) or pa.types.is_large_string(pval.type):
        pval, from_p = p_from_text(pval, path, name, offset)
    else:
        pval = as_float(pval, path, name, offset)
        from_p = pc.negate(pc.log10(pval))
    return pval, (from_p if mlog10p is None else pc.coalesce(mlog10p, from_p))


def p_from_text(text, path, name, offset: int):
    """Parse p-value text: float64 p, and −log10 p even where p is below 1e-308."""
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    p = as_float(text, path, name, offset)
    zero = pc.fill_null(pc.equal(p, 0.0), False)
    mlog = pc.negate(pc.log10(p))
    if pc.any(zero).as_py():
        mlog_np = mlog.to_numpy(zero_copy_only=False).copy()
        strings = text.to_pylist()
        for i in np.flatnonzero(zero.to_numpy(zero_copy_only=False)):
            value = decimal.Decimal(strings[i].strip())
            if value > 0:
                mlog_np[i] = float(-value.log10())
        mlog = pa.array(mlog_np)
    return p, mlog


def add_counts(counter: dict, trait_column) -> None:
    if len(trait_column) == 0:
        return
    counts = pc.value_counts(trait_column)
    for item in counts.to_pylist():
        key = item["values"]
        counter[key] = counter.get(key, 0) + item["counts"]


def bad_row_mask(table: pa.Table) -> np.ndarray:
    """The rows in which :func:`bad_rows` finds a problem (the same checks on the arrow
    columns, without a pandas conversion: the reasons are then found for these rows only)."""
    def floats(name):
        return pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False)

    def flags(mask) -> np.ndarray:
        return pc.fill_null(mask, True).to_numpy(zero_copy_only=False)

    pval, mlog10p, beta, se, eaf = (floats(c) for c in ("pval", "mlog10p", "beta", "se", "eaf"))
    with np.errstate(invalid="ignore"):
        return (
            flags(pc.is_valid(table.column("_note")))
            | flags(pc.is_null(table.column("SNP")))
            | flags(pc.equal(table.column("effect_allele"), ""))  # null -> True: missing
            | (np.isnan(pval) & np.isnan(mlog10p))
            | (pval < 0) | (pval > 1)
            | ~np.isfinite(beta) | ~np.isfinite(se) | (se <= 0)
            | (eaf < 0) | (eaf > 1)
        )


def bad_rows(frame: pd.DataFrame) -> pd.Series:
    """The first problem of each row (None when the row is usable), in order of precedence."""
    checks = [
        (frame["_note"].notna(), frame["_note"]),
        (frame["SNP"].isna(), "no SNP id"),
        (frame["effect_allele"].isna() | (frame["effect_allele"] == ""), "missing effect allele"),
        (frame["pval"].isna() & frame["mlog10p"].isna(), "missing p-value"),
        (~((frame["pval"] >= 0) & (frame["pval"] <= 1)) & frame["pval"].notna(), "p-value outside [0, 1]"),
        (~np.isfinite(frame["beta"].astype("float64")), "missing or non-finite beta"),
        (~np.isfinite(frame["se"].astype("float64")), "missing or non-finite se"),
        (frame["se"] <= 0, "se <= 0"),
        (frame["eaf"].notna() & ~((frame["eaf"] >= 0) & (frame["eaf"] <= 1)), "eaf outside [0, 1]"),
    ]
    reason = pd.Series(None, index=frame.index, dtype=object)
    for mask, text in reversed(checks):
        mask = np.asarray(mask, dtype=bool)
        reason[mask] = text[mask] if isinstance(text, pd.Series) else text
    return reason


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Column order and dtypes of the normalised table."""
    out = pd.DataFrame(
        {
            "SNP": frame["SNP"].astype("str"),
            "chr": frame["chr"].astype("str"),
            "pos": frame["pos"].astype("Int64"),
            "effect_allele": frame["effect_allele"].astype("str"),
            "other_allele": frame["other_allele"].astype("str"),
            "eaf": frame["eaf"].astype("float64"),
            "beta": frame["beta"].astype("float64"),
            "se": frame["se"].astype("float64"),
            "pval": frame["pval"].astype("float64"),
            "mlog10p": frame["mlog10p"].astype("float64"),
            "n": frame["n"].astype("float64"),
            "trait": frame["trait"].astype("str"),
        }
    )
    return out.reset_index(drop=True)


def repeats(table: pa.Table, keys: list[str]) -> np.ndarray:
    """Rows whose ``keys`` repeat an earlier row's (pandas ``duplicated(keep="first")``) from
    pyarrow's dictionary codes: pandas factorises 2 M arrow strings in over a second."""
    code = np.zeros(table.num_rows, dtype=np.int64)
    for key in keys:
        encoded = pc.dictionary_encode(table.column(key).combine_chunks(), null_encoding="encode")
        code = code * len(encoded.dictionary) + encoded.indices.to_numpy(zero_copy_only=False)
    repeats = np.ones(table.num_rows, dtype=bool)
    repeats[np.unique(code, return_index=True)[1]] = False
    return repeats
