"""Read GWAS summary statistics into one normalised table, streaming and filtering on p.

Output columns (one row per variant and trait)::

    SNP, chr, pos, effect_allele, other_allele, eaf, beta, se, pval, mlog10p, n, trait

``beta``/``eaf`` are for ``effect_allele``; ``mlog10p`` is −log10 p, kept because p underflows
to 0 below ~1e-308 (a file's own −log10 p column is used when it has one; otherwise it is
computed from the p-value text, so ``P = 1e-400`` gives ``mlog10p = 400``). Alleles are
upper-case. The audit trail of the ``read`` step rides in ``attrs`` (see ``mrjax.audit``).

Files are read in blocks with pyarrow (text through ``pyarrow.csv.open_csv``, parquet by
record batch); each block is normalised and filtered on ``p_max`` before the next is read, so
only the rows that pass ever reach pandas.
"""

from __future__ import annotations

import decimal
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mrjax import audit
from mrjax.gwas._audit import concat_tables, record_step
from mrjax.gwas.formats import (
    NUMERIC_FIELDS,
    WHITESPACE,
    Layout,
    apply_override,
    by_synonyms,
    check_required,
    layout_for,
)

OUTPUT_COLUMNS = ["SNP", "chr", "pos", "effect_allele", "other_allele", "eaf", "beta", "se", "pval", "mlog10p", "n", "trait"]
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", ".", "-nan", "#N/A"]
BLOCK_SIZE = 16 << 20
STEP = "read"
_SUFFIXES = re.compile(r"(\.(gz|bgz|bgzip|tsv|csv|txt|vcf|parquet|pq|h|tab|sumstats))+$", re.IGNORECASE)


# ---------------------------------------------------------------------------- public readers


def read_gwas(
    path,
    format: str | None = None,
    columns: dict | None = None,
    p_max: float | None = None,
    trait=None,
    *,
    use_harmonised: bool = True,
    n: float | None = None,
    missing_id: str = "chrpos",
    block_size: int = BLOCK_SIZE,
) -> pd.DataFrame:
    """Read one GWAS file (any supported format) into the normalised table.

    ``path`` may also be a list of files, read with the same options into one table (one trait
    per file; ``trait`` is then ``None`` or one name per file).

    ``format``: ``None`` detects it — parquet by its magic bytes, GWAS-VCF by ``##`` meta lines
    and ``#CHROM``, GWAS Catalog harmonised by ``hm_effect_allele``/``hm_code``, FinnGen by
    ``#chrom … rsids … mlogp … sebeta`` — else a plain table read through column synonyms
    (``formats.SYNONYMS``): tab-, comma- or space-separated, or columns aligned with runs of
    spaces (PLINK 1.9 output). gzip and bgzip are detected from the bytes, not the name.
    ``columns``: ``{normalised: file column}`` overriding detection (``{"SNP": "MarkerName",
    "odds_ratio": "OR"}``); a value ``None`` removes a detected column.
    ``p_max``: keep only rows with p ≤ p_max (inclusive, so ``select_instruments(p=p_max)`` or
    plink's ``--clump-p1 p_max`` can follow); others are counted as "not significant".
    ``trait``: the trait name of a single-trait file (default: the file name without its
    suffixes); for a file with a trait/exposure column (long multi-trait tables) a name or list
    of names selects those traits while reading.
    ``use_harmonised`` (GWAS Catalog): ``hm_*`` columns (effect allele = ``hm_effect_allele``);
    rows the harmoniser could not place (``hm_code`` 15, every ``hm_*`` NA) are dropped as
    "bad value". ``False`` reads the study's original columns for every row instead.
    ``n``: sample size for rows without one (FinnGen files have none); a file with case and
    control counts (``ncase``/``ncontrol``) and no N column gets ``n = cases + controls``.
    ``missing_id``: a row without an rsID
    gets ``chr:pos:other:effect`` (``"chrpos"``) or is dropped as "bad value" (``"drop"``).

    Row-level problems (missing/non-finite beta, se or p; se ≤ 0; p or EAF outside [0, 1];
    missing effect allele; duplicated SNP within a trait — the first row is kept) are dropped
    and listed in the audit. File-level problems raise ``ValueError`` naming the file and
    column: unreadable, corrupt or truncated file, unknown format, missing required column,
    non-numeric text in a numeric column (with its rows), or no row surviving.
    """
    if isinstance(path, (list, tuple)):
        names = [None] * len(path) if trait is None else list(trait)
        if len(names) != len(path):
            raise ValueError(f"read_gwas: {len(path)} paths but {len(names)} trait names; give one name per file")
        options = dict(format=format, columns=columns, p_max=p_max, use_harmonised=use_harmonised, n=n,
                       missing_id=missing_id, block_size=block_size)
        return concat_tables(read_gwas(p, trait=name, **options) for p, name in zip(path, names))
    path = Path(path)
    if missing_id not in ("chrpos", "drop"):
        raise ValueError(f"missing_id must be 'chrpos' or 'drop', not {missing_id!r}")
    layout = layout_for(path, format, columns, use_harmonised)
    reader = _Reader(path, layout, columns, p_max, trait, n, missing_id, block_size)
    return reader.run()


def read_gwas_catalog(path, p_max=None, trait=None, *, use_harmonised: bool = True, **options) -> pd.DataFrame:
    """GWAS Catalog harmonised summary statistics (``.h.tsv.gz``); see ``read_gwas``.

    Effect allele = ``hm_effect_allele`` with ``hm_beta``/``hm_effect_allele_frequency``; p and
    SE from ``p_value``/``standard_error`` (orientation-free). ``hm_code`` 15 rows are dropped
    unless ``use_harmonised=False``, which reads the study's own columns.
    """
    return read_gwas(path, "gwas_catalog", p_max=p_max, trait=trait, use_harmonised=use_harmonised, **options)


def read_vcf(path, p_max=None, trait=None, **options) -> pd.DataFrame:
    """GWAS-VCF (IEU OpenGWAS): FORMAT ``ES:SE:LP:AF:SS:ID``; effect allele = ALT, p = 10^−LP.

    Each sample column is one trait (named after the sample when there are several).
    Multi-allelic records (a comma in ALT) are dropped as "bad value".
    """
    return read_gwas(path, "vcf", p_max=p_max, trait=trait, **options)


def read_finngen(path, p_max=None, trait=None, **options) -> pd.DataFrame:
    """FinnGen release file: effect allele = ``alt``, ``beta``/``sebeta``/``pval``/``mlogp``,
    EAF = ``af_alt``; the first of comma-separated ``rsids`` is the SNP id."""
    return read_gwas(path, "finngen", p_max=p_max, trait=trait, **options)


def read_plain(path, columns=None, p_max=None, trait=None, **options) -> pd.DataFrame:
    """Plain TSV/CSV through column synonyms (SNP/rsid, A1/A2, BETA/b/log_OR/OR, SE, P, EAF/FRQ, N)."""
    return read_gwas(path, "plain", columns=columns, p_max=p_max, trait=trait, **options)


def read_parquet(path, columns=None, p_max=None, trait=None, **options) -> pd.DataFrame:
    """Parquet with synonym column names, e.g. the long multi-trait table with an ``exposure`` column."""
    return read_gwas(path, "parquet", columns=columns, p_max=p_max, trait=trait, **options)


# ---------------------------------------------------------------------------- the streaming reader


def default_trait_name(path: Path) -> str:
    """The file name without its format suffixes: ``exposure_a.h.tsv.gz`` -> ``exposure_a``."""
    return _SUFFIXES.sub("", path.name) or path.name


class _Reader:
    """One pass over a file: batches -> normalised arrow tables -> p filter -> checks."""

    def __init__(self, path, layout: Layout, columns, p_max, trait, n, missing_id, block_size):
        self.path = path
        self.layout = layout
        self.columns = columns
        self.p_max = None if p_max is None else float(p_max)
        if self.p_max is not None and not (0.0 <= self.p_max <= 1.0):
            raise ValueError(f"p_max must lie in [0, 1], not {p_max!r}")
        self.trait = trait
        self.n = n
        self.missing_id = missing_id
        self.block_size = int(block_size)
        self.n_in: dict[str, int] = {}
        self.not_significant: dict[str, int] = {}
        self.kept: list[pa.Table] = []
        self.bad: list[pd.DataFrame] = []

    # -- driving ---------------------------------------------------------------------------
    def run(self) -> pd.DataFrame:
        if self.layout.format == "parquet":
            self._run_parquet()
        else:
            self._run_text()
        return self._finish()

    def _run_text(self) -> None:
        layout = self.layout
        if layout.format == "vcf":
            wanted = ["#CHROM", "POS", "ID", "REF", "ALT", "INFO", "FORMAT", *layout.samples]
            types = {name: pa.string() for name in wanted}
            types["POS"] = pa.int64()
        else:
            mapping = dict(layout.columns)
            check_required(self.path, mapping, layout.header)
            wanted = sorted(set(mapping.values()), key=layout.header.index)
            types = {}
            for target, source in mapping.items():
                if target in NUMERIC_FIELDS:
                    types[source] = pa.float64()
                elif target == "pval":
                    types[source] = pa.string()  # parsed by _p_from_text: keeps -log10 p below 1e-308
                elif target == "pos":
                    types[source] = pa.int64()
                else:
                    types[source] = pa.string()
        duplicated = sorted({name for name in layout.header if layout.header.count(name) > 1} & set(wanted))
        if duplicated:
            raise ValueError(f"{self.path}: column name(s) {duplicated} appear more than once in the header")
        read_options = pacsv.ReadOptions(skip_rows=layout.skip_rows, block_size=self.block_size)
        parse_options = _parse_options(layout)
        convert_options = pacsv.ConvertOptions(
            include_columns=wanted, column_types=types, null_values=NULL_VALUES, strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        offset = 0
        try:
            with _open_text(self.path, layout) as source:
                reader = pacsv.open_csv(source, read_options, parse_options, convert_options)
                for batch in reader:
                    self._consume(pa.Table.from_batches([batch]), offset)
                    offset += batch.num_rows
        except pa.ArrowInvalid as err:
            self._explain(err, types, offset)
        except (OSError, EOFError, pa.ArrowException) as err:
            raise ValueError(
                f"{self.path}: cannot read after data row {offset} ({err}); the file is corrupt or truncated"
            ) from err

    def _run_parquet(self) -> None:
        try:
            handle = pq.ParquetFile(self.path)
        except (OSError, pa.ArrowException) as err:
            raise ValueError(f"{self.path}: not a readable parquet file ({err})") from err
        header = tuple(handle.schema_arrow.names)
        mapping = apply_override(self.path, header, by_synonyms(header), self.columns)
        check_required(self.path, mapping, header)
        self.layout = Layout("parquet", mapping, header)
        offset = 0
        wanted = sorted(set(mapping.values()))
        try:
            for group in range(handle.num_row_groups):
                # a row group at a time (columns decoded in parallel); huge groups in batches
                if handle.metadata.row_group(group).num_rows <= 1 << 22:
                    parts = [handle.read_row_group(group, columns=wanted)]
                else:
                    parts = (pa.Table.from_batches([b]) for b in
                             handle.iter_batches(batch_size=1 << 20, row_groups=[group], columns=wanted))
                for part in parts:
                    self._consume(part, offset)
                    offset += part.num_rows
        except (OSError, pa.ArrowException) as err:
            raise ValueError(f"{self.path}: cannot read parquet data after row {offset} ({err})") from err

    # -- one block -------------------------------------------------------------------------
    def _consume(self, table: pa.Table, offset: int) -> None:
        table = table.append_column("_row", pa.array(np.arange(offset, offset + table.num_rows, dtype=np.int64)))
        if self.layout.format == "vcf":
            for sample in self.layout.samples:
                self._screen(self._prefilter(self._normalise_vcf(table, sample, offset)))
            return
        # filter on p before building the string columns: most rows of a GWAS stop here
        mapping = self.layout.columns
        pval, mlog10p = _p_columns(
            table.column(mapping["pval"]) if "pval" in mapping else None,
            table.column(mapping["mlog10p"]) if "mlog10p" in mapping else None,
            self.path, mapping.get("pval") or mapping.get("mlog10p"), offset,
        )
        trait = table.column(mapping["trait"]) if "trait" in mapping else self._trait_column(None, table.num_rows)
        keep = self._keep_mask(trait, pval, mlog10p)
        if keep is not None:
            table = table.filter(keep)
        if table.num_rows:
            self._screen(self._normalise(table, offset))

    def _prefilter(self, table: pa.Table) -> pa.Table:
        keep = self._keep_mask(table.column("trait"), table.column("pval"), table.column("mlog10p"))
        return table if keep is None else table.filter(keep)

    def _keep_mask(self, trait, pval, mlog10p):
        """Count rows in; count and drop the not significant. ``None`` keeps every row."""
        selected = None
        if isinstance(self.trait, (list, tuple, set)) or (isinstance(self.trait, str) and "trait" in self.layout.columns):
            wanted = [self.trait] if isinstance(self.trait, str) else list(self.trait)
            selected = pc.is_in(_as_string(trait, len(trait)), pa.array(wanted, pa.string()))
            trait = trait.filter(selected)
            pval, mlog10p = pval.filter(selected), mlog10p.filter(selected)
        _add_counts(self.n_in, trait)
        if self.p_max is None:
            return selected
        has_p = pc.or_(pc.is_valid(pval), pc.is_valid(mlog10p))
        # p itself when it did not underflow, else its -log10 (p <= p_max <=> mlog10p >= -log10 p_max)
        by_p = pc.less_equal(pval, self.p_max)
        by_log = pc.greater_equal(mlog10p, -np.log10(self.p_max) if self.p_max > 0 else np.inf)
        use_log = pc.or_(pc.is_null(pval), pc.and_(pc.equal(pval, 0.0), pc.is_valid(mlog10p)))
        passes = pc.fill_null(pc.if_else(use_log, by_log, by_p), False)
        _add_counts(self.not_significant, trait.filter(pc.and_(has_p, pc.invert(passes))))
        keep = pc.or_(passes, pc.invert(has_p))  # rows without p go on, to be listed as bad values
        if selected is None:
            return keep
        full = np.zeros(len(selected), dtype=bool)
        full[np.flatnonzero(selected.to_numpy(zero_copy_only=False))] = keep.to_numpy(zero_copy_only=False)
        return pa.array(full)

    def _normalise(self, table: pa.Table, offset: int) -> pa.Table:
        """Map a block onto the normalised columns (plus ``_row``, ``_note``)."""
        mapping = self.layout.columns
        rows = table.num_rows
        def col(name):
            if name not in mapping:
                return None
            column = table.column(mapping[name])
            return _as_float(column, self.path, mapping[name], offset) if name in NUMERIC_FIELDS else column

        out: dict[str, pa.Array] = {}
        snp = col("SNP")
        if snp is not None and self.layout.format == "finngen":
            snp = pc.list_element(pc.split_pattern(pc.fill_null(snp, ""), ","), 0)
            snp = pc.if_else(pc.equal(pc.utf8_trim_whitespace(snp), ""), pa.scalar(None, pa.string()), snp)
        if "_fallback_SNP" in mapping:
            fallback = table.column(mapping["_fallback_SNP"])
            snp = fallback if snp is None else pc.coalesce(snp, fallback)
        out["SNP"] = snp if snp is not None else pa.nulls(rows, pa.string())
        out["chr"] = _as_string(col("chr"), rows)
        pos = col("pos")
        out["pos"] = pc.cast(pos, pa.int64()) if pos is not None else pa.nulls(rows, pa.int64())
        out["effect_allele"] = pc.utf8_upper(_as_string(col("effect_allele"), rows))
        out["other_allele"] = pc.utf8_upper(_as_string(col("other_allele"), rows))
        out["eaf"] = _float_or_null(col("eaf"), rows)
        beta = col("beta")
        odds = col("odds_ratio")
        if odds is not None:
            log_or = pc.ln(pc.if_else(pc.greater(odds, 0), odds, pa.scalar(None, pa.float64())))
            beta = log_or if beta is None else pc.coalesce(beta, log_or)
        out["beta"] = beta
        out["se"] = col("se")
        out["pval"], out["mlog10p"] = _p_columns(col("pval"), col("mlog10p"), self.path, mapping.get("pval"), offset)
        n = col("n")
        if {"n_cases", "n_controls"} <= set(mapping):
            total = pc.add(col("n_cases"), col("n_controls"))
            n = total if n is None else pc.coalesce(n, total)
        if self.n is not None:
            n = pa.array(np.full(rows, float(self.n))) if n is None else pc.coalesce(n, pa.scalar(float(self.n)))
        out["n"] = n if n is not None else pa.nulls(rows, pa.float64())
        out["trait"] = self._trait_column(col("trait"), rows)
        out["_row"] = table.column("_row")
        code = col("hm_code")
        if code is not None:
            note = pc.if_else(pc.equal(code, 15.0), pa.scalar("hm_code 15: not harmonised, hm_* columns NA"),
                              pa.scalar(None, pa.string()))
        else:
            note = pa.nulls(rows, pa.string())
        out["_note"] = note
        return self._fill_ids(pa.table(out))

    def _normalise_vcf(self, table: pa.Table, sample: str, offset: int) -> pa.Table:
        """GWAS-VCF block -> normalised columns for one sample (FORMAT keys looked up per block)."""
        rows = table.num_rows
        fields = {key: pa.nulls(rows, pa.string()) for key in ("ES", "SE", "LP", "AF", "SS", "ID", "NC")}
        formats = table.column("FORMAT")
        values = pc.split_pattern(pc.fill_null(table.column(sample), ""), ":")
        for fmt in pc.unique(formats).to_pylist():
            if fmt is None:
                continue
            keys = fmt.split(":")
            rows_with = pc.equal(formats, fmt)
            short = pc.and_(rows_with, pc.less(pc.list_value_length(values), len(keys)))
            padded = values
            if pc.any(short).as_py():  # trailing fields may be dropped (VCF spec): pad them with '.'
                padded = pa.array([v + ["."] * (len(keys) - len(v)) if s else v
                                   for v, s in zip(values.to_pylist(), short.to_pylist())], pa.list_(pa.string()))
            for key in fields:
                if key in keys:
                    picked = pc.list_element(pc.if_else(rows_with, padded, pa.scalar(["."] * len(keys), pa.list_(pa.string()))),
                                             keys.index(key))
                    fields[key] = pc.if_else(rows_with, picked, fields[key])
        fields = {k: pc.if_else(pc.equal(v, "."), pa.scalar(None, pa.string()), v) for k, v in fields.items()}
        alt = table.column("ALT")
        multi = pc.fill_null(pc.match_substring(alt, ","), False)
        numeric = {}
        for key in ("ES", "SE", "LP", "AF", "SS"):
            numeric[key] = _as_float(pc.if_else(multi, pa.scalar(None, pa.string()), fields[key]), self.path,
                                     f"{sample} FORMAT/{key}", offset)
        eaf = numeric["AF"]
        if "INFO" in table.column_names:
            info_af = pc.extract_regex(pc.fill_null(table.column("INFO"), ""), r"(?:^|;)AF=(?P<af>[^;,]+)")
            info_af = pc.struct_field(info_af, [0])
            eaf = pc.coalesce(eaf, _as_float(pc.if_else(multi, pa.scalar(None, pa.string()), info_af), self.path,
                                             "INFO/AF", offset))
        snp = table.column("ID")
        snp = pc.if_else(pc.equal(snp, "."), pa.scalar(None, pa.string()), snp)
        snp = pc.coalesce(snp, fields["ID"])
        lp = numeric["LP"]
        pval = pc.power(pa.scalar(10.0), pc.negate(lp))
        n = numeric["SS"]
        if self.n is not None:
            n = pc.coalesce(n, pa.scalar(float(self.n)))
        if self.trait is not None and isinstance(self.trait, str):
            name = self.trait
        elif len(self.layout.samples) > 1:
            name = sample
        else:
            name = default_trait_name(self.path)
        out = {
            "SNP": snp,
            "chr": table.column("#CHROM"),
            "pos": table.column("POS"),
            "effect_allele": pc.utf8_upper(table.column("ALT")),
            "other_allele": pc.utf8_upper(table.column("REF")),
            "eaf": eaf,
            "beta": numeric["ES"],
            "se": numeric["SE"],
            "pval": pval,
            "mlog10p": lp,
            "n": n,
            "trait": pa.array([name] * rows, pa.string()),
            "_row": table.column("_row"),
            "_note": pc.if_else(multi, pa.scalar("multi-allelic ALT: split it first (bcftools norm -m-)"),
                                pa.scalar(None, pa.string())),
        }
        return self._fill_ids(pa.table(out))

    def _trait_column(self, column, rows: int) -> pa.Array:
        if column is None:
            name = self.trait if isinstance(self.trait, str) else default_trait_name(self.path)
            return pa.array([name] * rows, pa.string())
        return _as_string(column, rows)

    def _fill_ids(self, table: pa.Table) -> pa.Table:
        """Rows without an rsID: ``chr:pos:other:effect`` (or left null and dropped later)."""
        snp = table.column("SNP")
        if self.missing_id != "chrpos" or snp.null_count == 0:
            return table
        parts = [pc.cast(table.column(c), pa.string()) for c in ("chr", "pos", "other_allele", "effect_allele")]
        made = pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], ":")
        usable = pc.and_(pc.is_valid(table.column("chr")), pc.is_valid(table.column("pos")))
        made = pc.if_else(usable, made, pa.scalar(None, pa.string()))
        return _set(table, "SNP", pc.coalesce(snp, made))

    # -- filtering and row checks -----------------------------------------------------------
    def _screen(self, table: pa.Table) -> None:
        """List the rows with bad values; keep the rest."""
        if table.num_rows == 0:
            return
        frame = table.to_pandas()
        reason = _bad_rows(frame)
        bad = reason.notna()
        if bad.any():
            rows = frame.loc[bad]
            ids = rows["SNP"].where(rows["SNP"].notna(), "data row " + rows["_row"].astype(str))
            detail = reason[bad] + " (data row " + rows["_row"].astype(str) + ")"
            self.bad.append(audit.drops(STEP, rows["trait"].tolist(), ids.tolist(), "bad value", detail.tolist()))
        self.kept.append(table.filter(pa.array(~bad.to_numpy())))

    def _finish(self) -> pd.DataFrame:
        if self.kept:
            frame = pa.concat_tables(self.kept).to_pandas()
        else:
            frame = pd.DataFrame(columns=OUTPUT_COLUMNS + ["_row"])
        dup = frame.duplicated(["trait", "SNP"], keep="first")
        listed = list(self.bad)
        if dup.any():
            first = frame.loc[~dup].drop_duplicates(["trait", "SNP"]).set_index(["trait", "SNP"])["_row"]
            rows = frame.loc[dup]
            firsts = first.reindex(pd.MultiIndex.from_frame(rows[["trait", "SNP"]])).to_numpy()
            detail = [f"data row {r} repeats data row {f}; the first is kept" for r, f in zip(rows["_row"], firsts)]
            listed.append(audit.drops(STEP, rows["trait"].tolist(), rows["SNP"].tolist(), "duplicate", detail))
            frame = frame.loc[~dup]
        frame = _tidy(frame)
        n_in = pd.Series(self.n_in, dtype="int64")
        if self.trait is not None and not isinstance(self.trait, str) and "trait" in self.layout.columns:
            absent = sorted(set(self.trait) - set(n_in.index))
            if absent:
                raise ValueError(f"{self.path}: trait(s) {absent} not found in column {self.layout.columns['trait']!r}")
        if n_in.sum() == 0:
            raise ValueError(f"{self.path}: the file has a header but no data rows")
        unlisted = pd.Series(self.not_significant, dtype="int64")
        dropped = pd.concat(listed, ignore_index=True) if listed else None
        record_step(frame, STEP, n_in, dropped, unlisted, "not significant")
        if len(frame) == 0:
            why = f"none has p <= {self.p_max}" if self.p_max is not None and unlisted.sum() else "every row was dropped"
            raise ValueError(
                f"{self.path}: no variant left after reading {int(n_in.sum())} rows: {why} "
                f"({int(unlisted.sum())} not significant, {0 if dropped is None else len(dropped)} bad or duplicated)"
            )
        empty = sorted(set(n_in.index) - set(frame["trait"].unique()))  # unique(): iterating 2 M arrow strings takes seconds
        if empty:
            warnings.warn(f"{self.path}: no variant kept for trait(s) {empty}", stacklevel=3)
        frame.attrs["source"] = str(self.path)
        frame.attrs["format"] = self.layout.format
        return frame

    def _explain(self, err: Exception, types: dict, offset: int) -> None:
        """Turn a CSV conversion error into a ValueError naming the column, rows and values."""
        message = str(err)
        column = None
        match = re.search(r"In CSV column #(\d+)", message)
        if match:
            index = int(match.group(1))
            column = self.layout.header[index] if index < len(self.layout.header) else None
        if column is None or "conversion error" not in message:
            raise ValueError(
                f"{self.path}: cannot parse the file after data row {offset} ({message}); "
                "it is corrupt, truncated or not a delimited table"
            ) from err
        found = _find_non_numeric(self.path, self.layout, column)
        raise ValueError(
            f"{self.path}: column {column!r} must be numeric but holds {found}"
        ) from err


# ---------------------------------------------------------------------------- helpers


def _parse_options(layout: Layout) -> pacsv.ParseOptions:
    delimiter = "\t" if layout.delimiter == WHITESPACE else layout.delimiter
    return pacsv.ParseOptions(delimiter=delimiter, quote_char='"')


def _open_text(path: Path, layout: Layout):
    """The (decompressed) byte stream of a text file; space-aligned columns become tabs."""
    source = pa.input_stream(str(path), compression="gzip" if layout.compressed else None)
    return _SpacesToTabs(source) if layout.delimiter == WHITESPACE else source


class _SpacesToTabs(io.RawIOBase):
    """Rewrites space-aligned columns as tab-separated, whole lines at a time.

    Leading and trailing blanks of a line are removed and every run of blanks becomes one
    tab, so pyarrow's CSV reader can parse PLINK-1.9-style output.
    """

    _LEADING = re.compile(rb"^[ \t]+", re.MULTILINE)
    _TRAILING = re.compile(rb"[ \t]+(?=\r?$)", re.MULTILINE)
    _RUNS = re.compile(rb"[ \t]+")
    chunk = 1 << 22

    def __init__(self, source):
        self.source = source
        self.pending = b""  # an incomplete last line, kept for the next chunk
        self.buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _convert(self, data: bytes) -> bytes:
        return self._RUNS.sub(b"\t", self._TRAILING.sub(b"", self._LEADING.sub(b"", data)))

    def _refill(self) -> bool:
        while not len(self.buffer):
            chunk = self.source.read(self.chunk)
            if not chunk:
                if not self.pending:
                    return False
                self.buffer, self.pending = memoryview(self._convert(self.pending)), b""
                break
            data = self.pending + chunk
            cut = data.rfind(b"\n") + 1
            self.pending = data[cut:]
            self.buffer = memoryview(self._convert(data[:cut]))
        return True

    def read(self, size: int = -1) -> bytes:
        # no preallocated buffer of ``size`` (pyarrow asks for a whole block at a time)
        if not self._refill():
            return b""
        size = len(self.buffer) if size is None or size < 0 else size
        out = self.buffer[:size].tobytes()
        self.buffer = self.buffer[size:]
        return out

    def readinto(self, target) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.source.close()
        super().close()


def _find_non_numeric(path: Path, layout: Layout, column: str, limit: int = 5) -> str:
    """Second pass over one column as text: the first rows whose value is not a number."""
    read_options = pacsv.ReadOptions(skip_rows=layout.skip_rows, block_size=BLOCK_SIZE)
    parse_options = _parse_options(layout)
    convert_options = pacsv.ConvertOptions(
        include_columns=[column], column_types={column: pa.string()}, null_values=NULL_VALUES,
        strings_can_be_null=True,
    )
    found, offset = [], 0
    with _open_text(path, layout) as source:
        for batch in pacsv.open_csv(source, read_options, parse_options, convert_options):
            values = pd.Series(batch.column(0).to_pylist(), dtype=object)
            parsed = pd.to_numeric(values, errors="coerce")
            for i in np.flatnonzero(values.notna().to_numpy() & parsed.isna().to_numpy()):
                found.append(f"data row {offset + i} (line {layout.skip_rows + offset + i + 2}): {values.iloc[i]!r}")
            offset += batch.num_rows
    shown = ", ".join(found[:limit])
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return f"non-numeric values at {shown}{more}" if found else "a value that is not a number"


def _set(table: pa.Table, name: str, column) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, column)


def _as_string(column, rows: int):
    if column is None:
        return pa.nulls(rows, pa.string())
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    return column


def _float_or_null(column, rows: int):
    return pa.nulls(rows, pa.float64()) if column is None else column


def _as_float(column, path, name, offset: int = 0):
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


_EXPONENT = re.compile(r"^\s*([0-9]*\.?[0-9]+)[eE]([-+]?[0-9]+)\s*$")


def _p_columns(pval, mlog10p, path, name, offset: int):
    """``pval`` and ``mlog10p``: a file's −log10 p column when it has one, else from the p text
    (exact even where p underflowed to 0), else 10^−mlog10p for p."""
    if pval is None:
        return pc.power(pa.scalar(10.0), pc.negate(mlog10p)), mlog10p
    if pa.types.is_string(pval.type) or pa.types.is_large_string(pval.type):
        pval, from_p = _p_from_text(pval, path, name, offset)
    else:
        pval = _as_float(pval, path, name, offset)
        from_p = pc.negate(pc.log10(pval))
    return pval, (from_p if mlog10p is None else pc.coalesce(mlog10p, from_p))


def _p_from_text(text, path, name, offset: int):
    """Parse p-value text: float64 p, and −log10 p even where p is below 1e-308."""
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    p = _as_float(text, path, name, offset)
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


def _add_counts(counter: dict, trait_column) -> None:
    if len(trait_column) == 0:
        return
    counts = pc.value_counts(trait_column)
    for item in counts.to_pylist():
        key = item["values"]
        counter[key] = counter.get(key, 0) + item["counts"]


def _bad_rows(frame: pd.DataFrame) -> pd.Series:
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


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
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
