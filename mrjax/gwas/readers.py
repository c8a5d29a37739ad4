"""Read GWAS summary statistics into one normalised table, streaming and filtering on p.

Output columns (one row per variant and trait)::

    SNP, chr, pos, effect_allele, other_allele, eaf, beta, se, pval, mlog10p, n, trait

``beta``/``eaf`` are for ``effect_allele``; ``mlog10p`` is −log10 p, kept because p underflows
to 0 below ~1e-308 (a file's own −log10 p column is used when it has one; otherwise it is
computed from the p-value text, so ``P = 1e-400`` gives ``mlog10p = 400``). Alleles are
upper-case. ``audited=True`` returns ``Audited(table, audit)`` with the ``read`` step's records
(see ``mrjax.audit``; the default returns the table, records in its ``attrs``, deprecated).
``table.attrs`` also holds the file's ``source``, detected ``format`` and ``read_notes``.

Files are read in blocks with pyarrow (text through ``pyarrow.csv.open_csv``, parquet by
record batch); each block is normalised and filtered on ``p_max`` before the next is read, so
only the rows that pass ever reach pandas.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mrjax import audit
from mrjax.gwas import textblocks, vcf
from mrjax.gwas._audit import SCREENED, bad_value_drops, concat_tables, read_records
from mrjax.gwas.columns import (
    add_counts,
    as_float,
    as_string,
    bad_row_mask,
    first_id,
    float_or_null,
    p_columns,
    repeats,
    set_column,
    tidy,
)
from mrjax.gwas.formats import (
    NUMERIC_FIELDS,
    Layout,
    apply_override,
    by_synonyms,
    check_required,
    layout_for,
    vcf_sample_sizes,
)
from mrjax.gwas.textblocks import PREFILTER_MAX_FRACTION

OUTPUT_COLUMNS = ["SNP", "chr", "pos", "effect_allele", "other_allele", "eaf", "beta", "se", "pval", "mlog10p", "n", "trait"]
BLOCK_SIZE = 16 << 20
OTHER_TEST = "other test (TEST is not ADD)"
P_FROM_Z = ("p computed from beta/se with the normal distribution, 2*Phi(-|beta/se|) (the file has no p-value "
            "column; as TwoSampleMR format_data)")
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
    sep: str | None = None,
    skip_bad_lines: bool = False,
    audited: bool = False,
) -> pd.DataFrame | audit.Audited:
    """Read one GWAS file (any supported format) into the normalised table.

    ``path`` may also be a list of files, read with the same options into one table (one trait
    per file; ``trait`` is then ``None`` or one name per file).

    ``format``: ``None`` detects it — parquet by its magic bytes, GWAS-VCF by ``##`` meta lines
    and ``#CHROM``, the named layouts of ``layouts.LAYOUTS`` (``gwas_catalog``, ``gwas_ssf``,
    ``finngen``, ``regenie``, ``bolt_lmm``, ``saige``, ``plink2``, ``metal``, ``gcta_cojo``,
    ``ldsc``) by their header — else a plain table read through column synonyms
    (``formats.SYNONYMS``): tab-, comma- or space-separated, or columns aligned with runs of
    spaces (PLINK 1.9 output). gzip and bgzip are detected from the bytes, not the name.
    Missing values: ``NA``, ``#NA`` (GWAS-SSF), ``.``, empty and the others of ``NULL_VALUES``;
    a missing SNP id is never a name (see ``missing_id``). A file without a p-value column gets
    p = 2Φ(−|beta/se|) (noted in ``attrs["read_notes"]``), as TwoSampleMR's ``format_data``.
    ``sep``: the delimiter (``"\\t"``, ``","``, ``" "``, ``"whitespace"``) when detection fails.
    ``skip_bad_lines``: drop lines with the wrong number of fields (one audit row each, naming
    the line) instead of raising ``ValueError`` naming the first.
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

    ``audited=True`` returns ``Audited(table, audit)`` (the ``read`` step's records); the
    default returns the table with the records in ``attrs`` (deprecated; see ``mrjax.audit``).
    """
    if isinstance(path, (list, tuple)):
        names = [None] * len(path) if trait is None else list(trait)
        if len(names) != len(path):
            raise ValueError(f"read_gwas: {len(path)} paths but {len(names)} trait names; give one name per file")
        options = dict(format=format, columns=columns, p_max=p_max, use_harmonised=use_harmonised, n=n,
                       missing_id=missing_id, block_size=block_size, sep=sep, skip_bad_lines=skip_bad_lines)
        read = concat_tables(read_gwas(p, trait=name, audited=True, **options) for p, name in zip(path, names))
        return audit.deliver(read, audited)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"read_gwas reads a file (a path, or a list of paths), not a {type(path).__name__}; "
            "write an in-memory table to a file first (e.g. table.to_parquet('gwas.parquet'))"
        )
    path = Path(path)
    if missing_id not in ("chrpos", "drop"):
        raise ValueError(f"missing_id must be 'chrpos' or 'drop', not {missing_id!r}")
    layout = layout_for(path, format, columns, use_harmonised, sep)
    reader = _Reader(path, layout, columns, p_max, trait, n, missing_id, block_size, skip_bad_lines)
    return audit.deliver(reader.run(), audited)


def stream_gwas(path, sink, format: str | None = None, columns: dict | None = None, p_max: float | None = None,
                trait=None, *, use_harmonised: bool = True, n: float | None = None, missing_id: str = "chrpos",
                block_size: int = BLOCK_SIZE, sep: str | None = None, skip_bad_lines: bool = False) -> audit.Audited:
    """``read_gwas`` in bounded memory: the same blocks, normalisation and row checks, but each
    block of kept rows goes to ``sink.add(table)`` instead of into one table.

    ``table`` holds the normalised columns (arrow) plus ``_row``, each row's data row number,
    and ``_note``; blocks arrive in the order ``read_gwas`` stacks them. Duplicated SNPs
    (within a trait; the first kept) span blocks, so the sink finds them: ``sink.finish()``
    returns ``(kept, duplicates)`` — rows kept per trait after dropping duplicates, and the
    duplicated rows as a frame ``trait, SNP, _row, first_row`` in output order (or ``None``).
    Returns ``Audited(empty table, records)``: the read step's records equal ``read_gwas``'s
    for the same file and options, and the table's ``attrs`` its ``source``/``format``/notes.
    """
    path = Path(path)
    if missing_id not in ("chrpos", "drop"):
        raise ValueError(f"missing_id must be 'chrpos' or 'drop', not {missing_id!r}")
    layout = layout_for(path, format, columns, use_harmonised, sep)
    reader = _Reader(path, layout, columns, p_max, trait, n, missing_id, block_size, skip_bad_lines)
    return reader.run(sink)


def detected_format(path, format: str | None = None, columns: dict | None = None, use_harmonised: bool = True,
                    sep: str | None = None) -> str:
    """The format ``read_gwas`` reads ``path`` as with these options (detected from the bytes
    and header unless ``format`` is given; also in the table's ``attrs["format"]``)."""
    return layout_for(Path(path), format, columns, use_harmonised, sep).format


def read_gwas_catalog(path, p_max=None, trait=None, *, use_harmonised: bool = True, **options) -> pd.DataFrame:
    """GWAS Catalog summary statistics, both layouts; see ``read_gwas``.

    Harmonised files before 2023 (``hm_*`` columns): effect allele = ``hm_effect_allele`` with
    ``hm_beta``/``hm_effect_allele_frequency``; p and SE from ``p_value``/``standard_error``
    (orientation-free). Current files (GWAS-SSF 1.0, harmonised or not): ``chromosome,
    base_pair_location, effect_allele, other_allele, beta | odds_ratio | hazard_ratio,
    standard_error, effect_allele_frequency, p_value | neg_log_10_p_value, rsid, variant_id, n``,
    ``#NA`` missing, SNP = ``rsid``. ``hm_code`` 15 rows are dropped unless
    ``use_harmonised=False``, which reads the study's own columns.
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

    def __init__(self, path, layout: Layout, columns, p_max, trait, n, missing_id, block_size, skip_bad_lines=False):
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
        self.sink = None
        self.bad: list = []  # audit rows of malformed lines, and (arrow) the rows with bad values
        self.skip_bad_lines = bool(skip_bad_lines)
        self.other_test: dict[str, int] = {}
        self.notes: list[str] = []
        self.sample_sizes = vcf_sample_sizes(path, layout) if layout.format == "vcf" else {}

    # -- driving ---------------------------------------------------------------------------
    def run(self, sink=None) -> audit.Audited:
        """Read the file; ``sink`` (see :func:`stream_gwas`) takes the kept blocks instead of
        this reader collecting them."""
        self.sink = sink
        if self.layout.format == "parquet":
            self._run_parquet()
        else:
            self._run_text()
        if sink is None:
            return self._finish()
        kept, duplicates = sink.finish()
        frame = pd.DataFrame(columns=OUTPUT_COLUMNS)
        frame.attrs.update(self._attrs())
        return audit.Audited(frame, self._records(kept, duplicates))

    def _text_columns(self) -> tuple[list[str], dict]:
        """The file columns to read and their arrow types."""
        layout = self.layout
        if layout.format == "vcf":
            wanted = ["#CHROM", "POS", "ID", "REF", "ALT", "INFO", "FORMAT", *layout.samples]
            types = {name: pa.string() for name in wanted}
            types["POS"] = pa.int64()
            return wanted, types
        mapping = dict(layout.columns)
        check_required(self.path, mapping, layout.header, layout.format, layout.ambiguous)
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
        if "pval" not in mapping and "mlog10p" not in mapping:
            self.notes.append(P_FROM_Z)
        return wanted, types

    def _run_text(self) -> None:
        wanted, types = self._text_columns()
        prefilter = self._prefilter_columns()
        rows = 0
        for block in textblocks.iter_blocks(self.path, self.layout, self.block_size):
            candidates = None
            if prefilter is not None:
                candidates = self._candidates(block, *prefilter)
            if candidates is None:
                index = np.arange(block.lines)
                data = block.data
            else:
                index = candidates
                data = textblocks.take_lines(block, index) if len(index) else b""
            blank = block.blank_lines()
            if len(blank):
                index = np.setdiff1d(index, blank)
                data = textblocks.take_lines(block, index) if len(index) else b""
            if len(index):
                table, index = self._parse(block, data, index, wanted, types)
                self._consume(table, index + rows - _count_before(blank, index))
            rows += block.lines - len(blank)

    def _parse(self, block, data: bytes, index: np.ndarray, wanted, types):
        """pyarrow parse of the lines ``index`` of ``block``; malformed lines raise naming their
        line, or (``skip_bad_lines``) are dropped with an audit row each."""
        skipped = []

        def on_bad(number, text, expected, actual):
            line = block.first_line + int(index[number - 1])
            skipped.append(number - 1)
            if not self.skip_bad_lines:
                self._bad_line = (line, text, expected, actual)
                return "error"
            name = self.trait if isinstance(self.trait, str) else default_trait_name(self.path)
            detail = f"malformed line {line}: {actual} fields where the header has {expected} ({text[:80]!r})"
            self.bad.append(audit.drops(STEP, [name], [f"line {line}"], "bad value", [detail]))
            self.n_in[name] = self.n_in.get(name, 0) + 1
            return "skip"

        self._bad_line = None
        try:
            table = textblocks.parse(data, self.layout, wanted, types, on_bad)
        except pa.ArrowInvalid as err:
            if self._bad_line is not None:
                line, text, expected, actual = self._bad_line
                raise ValueError(
                    f"{self.path}: line {line} has {actual} fields where the header has {expected} "
                    f"({text[:80]!r}): the file is cut short or malformed (skip_bad_lines=True drops such lines)"
                ) from err
            self._not_utf8(err, block, index)
            self._explain(err, types)
        except pa.ArrowException as err:
            raise ValueError(f"{self.path}: cannot parse lines {block.first_line}-{block.first_line + block.lines - 1} "
                             f"({err})") from err
        if skipped:
            index = np.delete(index, skipped)
        return table, index

    def _prefilter_columns(self):
        """(float columns, string columns) polars reads to pick a block's candidate lines, or None
        when every line must be parsed (no p filter, long multi-trait tables, VCF, p from b/se)."""
        mapping = self.layout.columns
        if self.p_max is None or self.layout.format == "vcf" or "trait" in mapping or self.trait_selection:
            return None
        floats = [mapping[k] for k in ("pval", "mlog10p") if k in mapping]
        if not floats:
            return None
        return floats, [mapping["_test"]] if "_test" in mapping else []

    def _candidates(self, block, floats, strings):
        """Lines of ``block`` whose p may pass ``p_max`` (or is missing, 0 or not a number); the
        others are counted as not significant (or as another test). ``None``: parse all."""
        mapping = self.layout.columns
        columns = textblocks.prefilter(block, self.layout, floats, strings)
        if columns is None:
            return None
        keep = np.zeros(block.lines, dtype=bool)
        if "pval" in mapping:
            p = columns[mapping["pval"]]
            keep |= np.isnan(p) | (p == 0) | (p <= self.p_max * (1 + 1e-9))
        if "mlog10p" in mapping:
            mlog = columns[mapping["mlog10p"]]
            threshold = -np.log10(self.p_max) if self.p_max > 0 else np.inf
            if "pval" in mapping:
                keep |= np.isnan(p) & (np.isnan(mlog) | (mlog >= threshold - 1e-6))
            else:
                keep |= np.isnan(mlog) | (mlog >= threshold - 1e-6)
        name = self.trait if isinstance(self.trait, str) else default_trait_name(self.path)
        if strings:
            test = columns[strings[0]]
            other = np.array([t is not None and t != "ADD" for t in test], dtype=bool)
            self.other_test[name] = self.other_test.get(name, 0) + int(other.sum())
            keep &= ~other
            counted = ~keep & ~other
        else:
            counted = ~keep
        if keep.sum() > PREFILTER_MAX_FRACTION * block.lines:
            if strings:
                self.other_test[name] -= int(other.sum())
            return None
        rejected = int(counted.sum())
        if rejected:
            self.n_in[name] = self.n_in.get(name, 0) + rejected
            self.not_significant[name] = self.not_significant.get(name, 0) + rejected
        return np.flatnonzero(keep)

    @property
    def trait_selection(self) -> bool:
        return isinstance(self.trait, (list, tuple, set))

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
    def _consume(self, table: pa.Table, rows) -> None:
        """Count, filter and normalise one parsed block; ``rows``: the data row number of each
        row (an int: the first of consecutive rows)."""
        if isinstance(rows, (int, np.integer)):
            rows = np.arange(rows, rows + table.num_rows, dtype=np.int64)
        offset = int(rows[0]) if len(rows) else 0
        table = table.append_column("_row", pa.array(np.asarray(rows, dtype=np.int64)))
        if self.layout.format == "vcf":
            for sample in self.layout.samples:
                self._screen(self._prefilter(self._normalise_vcf(table, sample, offset)))
            return
        mapping = self.layout.columns
        if "_test" in mapping:
            table = self._additive_only(table)
        # filter on p before building the string columns: most rows of a GWAS stop here
        pval, mlog10p = self._p_of(table, offset)
        trait = table.column(mapping["trait"]) if "trait" in mapping else self._trait_column(None, table.num_rows)
        keep = self._keep_mask(trait, pval, mlog10p)
        if keep is not None:
            table, pval, mlog10p = table.filter(keep), pval.filter(keep), mlog10p.filter(keep)
        if table.num_rows:
            self._screen(self._normalise(table, offset, pval, mlog10p))

    def _additive_only(self, table: pa.Table) -> pa.Table:
        """Rows of another model than the additive one (REGENIE/PLINK 2 ``TEST`` other than
        ``ADD``: dominant, recessive, covariates) are counted and skipped: they are not the
        variant's per-allele effect."""
        test = table.column(self.layout.columns["_test"])
        additive = pc.fill_null(pc.equal(test, "ADD"), True)
        other = table.num_rows - pc.sum(additive.cast(pa.int64())).as_py() if table.num_rows else 0
        if other:
            name = self.trait if isinstance(self.trait, str) else default_trait_name(self.path)
            self.other_test[name] = self.other_test.get(name, 0) + other
            table = table.filter(additive)
        return table

    def _p_of(self, table: pa.Table, offset: int):
        """(p, -log10 p) of a block: from the file's columns, else from beta/se (or Z) with the
        normal distribution, p = 2 Phi(-|z|), -log10 p from log Phi so it never underflows."""
        mapping = self.layout.columns
        if "pval" in mapping or "mlog10p" in mapping:
            return p_columns(
                table.column(mapping["pval"]) if "pval" in mapping else None,
                table.column(mapping["mlog10p"]) if "mlog10p" in mapping else None,
                self.path, mapping.get("pval") or mapping.get("mlog10p"), offset,
            )
        beta, se = self._effects(table, offset)
        from scipy.special import log_ndtr

        z = np.abs(beta.to_numpy(zero_copy_only=False) / se.to_numpy(zero_copy_only=False))
        with np.errstate(invalid="ignore", divide="ignore"):
            log_p = np.log(2.0) + log_ndtr(-z)
        return pa.array(np.exp(log_p), from_pandas=True), pa.array(-log_p / np.log(10.0), from_pandas=True)

    def _effects(self, table: pa.Table, offset: int):
        """beta (ln OR for an odds or hazard ratio; from Z, allele frequency and n for Z-only
        files, see ``layouts``) and se of a block."""
        mapping = self.layout.columns
        rows = table.num_rows

        def col(name):
            return as_float(table.column(mapping[name]), self.path, mapping[name], offset) if name in mapping else None

        beta, odds, se = col("beta"), col("odds_ratio"), col("se")
        if odds is not None:
            log_or = pc.ln(pc.if_else(pc.greater(odds, 0), odds, pa.scalar(None, pa.float64())))
            beta = log_or if beta is None else pc.coalesce(beta, log_or)
        if beta is None and "_z" in mapping:
            z = col("_z").to_numpy(zero_copy_only=False)
            f = (col("eaf") if "eaf" in mapping else col("_frq")).to_numpy(zero_copy_only=False)
            n = self._sample_size(table, offset, rows).to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.sqrt(2 * f * (1 - f) * (n + z * z))
            beta, se = pa.array(z / scale, from_pandas=True), pa.array(1.0 / scale, from_pandas=True)
        return beta, se

    def _sample_size(self, table: pa.Table, offset: int, rows: int):
        mapping = self.layout.columns

        def col(name):
            return as_float(table.column(mapping[name]), self.path, mapping[name], offset) if name in mapping else None

        n = col("n")
        if {"n_cases", "n_controls"} <= set(mapping):
            total = pc.add(col("n_cases"), col("n_controls"))
            n = total if n is None else pc.coalesce(n, total)
        if self.n is not None:
            n = pa.array(np.full(rows, float(self.n))) if n is None else pc.coalesce(n, pa.scalar(float(self.n)))
        return n if n is not None else pa.nulls(rows, pa.float64())

    def _prefilter(self, table: pa.Table) -> pa.Table:
        keep = self._keep_mask(table.column("trait"), table.column("pval"), table.column("mlog10p"))
        return table if keep is None else table.filter(keep)

    def _keep_mask(self, trait, pval, mlog10p):
        """Count rows in; count and drop the not significant. ``None`` keeps every row."""
        selected = None
        if isinstance(self.trait, (list, tuple, set)) or (isinstance(self.trait, str) and "trait" in self.layout.columns):
            wanted = [self.trait] if isinstance(self.trait, str) else list(self.trait)
            selected = pc.is_in(as_string(trait, len(trait)), pa.array(wanted, pa.string()))
            trait = trait.filter(selected)
            pval, mlog10p = pval.filter(selected), mlog10p.filter(selected)
        add_counts(self.n_in, trait)
        if self.p_max is None:
            return selected
        has_p = pc.or_(pc.is_valid(pval), pc.is_valid(mlog10p))
        # p itself when it did not underflow, else its -log10 (p <= p_max <=> mlog10p >= -log10 p_max)
        by_p = pc.less_equal(pval, self.p_max)
        by_log = pc.greater_equal(mlog10p, -np.log10(self.p_max) if self.p_max > 0 else np.inf)
        use_log = pc.or_(pc.is_null(pval), pc.and_(pc.equal(pval, 0.0), pc.is_valid(mlog10p)))
        passes = pc.fill_null(pc.if_else(use_log, by_log, by_p), False)
        add_counts(self.not_significant, trait.filter(pc.and_(has_p, pc.invert(passes))))
        keep = pc.or_(passes, pc.invert(has_p))  # rows without p go on, to be listed as bad values
        if selected is None:
            return keep
        full = np.zeros(len(selected), dtype=bool)
        full[np.flatnonzero(selected.to_numpy(zero_copy_only=False))] = keep.to_numpy(zero_copy_only=False)
        return pa.array(full)

    def _normalise(self, table: pa.Table, offset: int, pval, mlog10p) -> pa.Table:
        """Map a block onto the normalised columns (plus ``_row``, ``_note``)."""
        mapping = self.layout.columns
        rows = table.num_rows

        def col(name):
            if name not in mapping:
                return None
            column = table.column(mapping[name])
            return as_float(column, self.path, mapping[name], offset) if name in NUMERIC_FIELDS else column

        out: dict[str, pa.Array] = {}
        snp = first_id(col("SNP"))
        if snp is None and "_rs_SNP" in mapping:  # GWAS-SSF variant_id, where it is an rsID
            ids = as_string(table.column(mapping["_rs_SNP"]), rows)
            snp = pc.if_else(pc.fill_null(pc.starts_with(ids, "rs"), False), ids, pa.scalar(None, pa.string()))
        if "_fallback_SNP" in mapping:
            fallback = table.column(mapping["_fallback_SNP"])
            snp = fallback if snp is None else pc.coalesce(snp, fallback)
        out["SNP"] = snp if snp is not None else pa.nulls(rows, pa.string())
        out["chr"] = as_string(col("chr"), rows)
        pos = col("pos")
        out["pos"] = pc.cast(pos, pa.int64()) if pos is not None else pa.nulls(rows, pa.int64())
        effect = pc.utf8_upper(as_string(col("effect_allele"), rows))
        out["effect_allele"] = effect
        other = col("other_allele")
        if other is None and {"_ref", "_alt"} <= set(mapping):  # PLINK 2: the one of REF/ALT that is not A1
            ref = pc.utf8_upper(as_string(table.column(mapping["_ref"]), rows))
            alt = pc.utf8_upper(as_string(table.column(mapping["_alt"]), rows))
            other = pc.if_else(pc.fill_null(pc.equal(effect, alt), False), ref,
                               pc.if_else(pc.fill_null(pc.equal(effect, ref), False), alt, pa.scalar(None, pa.string())))
        out["other_allele"] = pc.utf8_upper(as_string(other, rows))
        out["eaf"] = float_or_null(col("eaf"), rows)
        out["beta"], out["se"] = self._effects(table, offset)
        out["pval"], out["mlog10p"] = pval, mlog10p
        out["n"] = self._sample_size(table, offset, rows)
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
        """GWAS-VCF block -> normalised columns for one sample (see ``vcf.normalise``)."""
        if self.trait is not None and isinstance(self.trait, str):
            name = self.trait
        elif len(self.layout.samples) > 1:
            name = sample
        else:
            name = default_trait_name(self.path)
        fill = [self.sample_sizes.get(sample), None if self.n is None else float(self.n)]
        return self._fill_ids(vcf.normalise(table, sample, name, [f for f in fill if f is not None], self.path, offset))

    def _trait_column(self, column, rows: int) -> pa.Array:
        if column is None:
            name = self.trait if isinstance(self.trait, str) else default_trait_name(self.path)
            return pa.repeat(pa.scalar(name, pa.string()), rows)
        return as_string(column, rows)

    def _fill_ids(self, table: pa.Table) -> pa.Table:
        """Rows without an rsID: ``chr:pos:other:effect`` (or left null and dropped later)."""
        snp = table.column("SNP")
        if self.missing_id != "chrpos" or snp.null_count == 0:
            return table
        parts = [pc.cast(table.column(c), pa.string()) for c in ("chr", "pos", "other_allele", "effect_allele")]
        made = pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], ":")
        usable = pc.and_(pc.is_valid(table.column("chr")), pc.is_valid(table.column("pos")))
        made = pc.if_else(usable, made, pa.scalar(None, pa.string()))
        return set_column(table, "SNP", pc.coalesce(snp, made))

    # -- filtering and row checks -----------------------------------------------------------
    def _screen(self, table: pa.Table) -> None:
        """List the rows with bad values; keep the rest."""
        if table.num_rows == 0:
            return
        bad = bad_row_mask(table)
        if bad.any():  # their reasons are found at the end, in one pandas pass over all blocks'
            self.bad.append(table.filter(pa.array(bad)).select(SCREENED))
            table = table.filter(pa.array(~bad))
        if self.sink is None:
            self.kept.append(table)
        else:
            self.sink.add(table)

    def _finish(self) -> audit.Audited:
        """The collected blocks as one table: duplicates dropped, dtypes tidied, records built."""
        if self.kept:
            kept = pa.concat_tables(self.kept)
            one_trait = len(self.n_in) <= 1 and "trait" not in self.layout.columns
            dup = pd.Series(repeats(kept, ["SNP"] if one_trait else ["trait", "SNP"]))
            frame = kept.to_pandas()
        else:
            frame = pd.DataFrame(columns=OUTPUT_COLUMNS + ["_row"])
            dup = pd.Series(False, index=frame.index)
        duplicates = None
        if dup.any():
            first = frame.loc[~dup].drop_duplicates(["trait", "SNP"]).set_index(["trait", "SNP"])["_row"]
            duplicates = frame.loc[dup, ["trait", "SNP", "_row"]].reset_index(drop=True)
            duplicates["first_row"] = first.reindex(pd.MultiIndex.from_frame(duplicates[["trait", "SNP"]])).to_numpy()
            frame = frame.loc[~dup]
        frame = tidy(frame)
        kept_counts = frame.groupby("trait", sort=False).size()
        records = self._records(kept_counts, duplicates)
        frame.attrs.update(self._attrs())
        return audit.Audited(frame, records)

    def _records(self, kept: pd.Series, duplicates: pd.DataFrame | None) -> audit.Audit:
        """The read step's records from the rows kept per trait and the duplicated rows
        (``trait, SNP, _row, first_row``, in output order); raises when nothing is kept."""
        listed = bad_value_drops(STEP, self.bad)
        if duplicates is not None and len(duplicates):
            detail = [f"data row {r} repeats data row {f}; the first is kept"
                      for r, f in zip(duplicates["_row"], duplicates["first_row"])]
            listed.append(audit.drops(STEP, duplicates["trait"].tolist(), duplicates["SNP"].tolist(), "duplicate",
                                      detail))
        for name, count in self.other_test.items():  # counted apart from the variants' rows
            self.n_in[name] = self.n_in.get(name, 0) + count
        n_in = pd.Series(self.n_in, dtype="int64")
        if self.trait is not None and not isinstance(self.trait, str) and "trait" in self.layout.columns:
            absent = sorted(set(self.trait) - set(n_in.index))
            if absent:
                raise ValueError(f"{self.path}: trait(s) {absent} not found in column {self.layout.columns['trait']!r}")
        if n_in.sum() == 0:
            raise ValueError(f"{self.path}: the file has a header but no data rows")
        unlisted = pd.Series(self.not_significant, dtype="int64")
        dropped = pd.concat(listed, ignore_index=True) if listed else None
        kept = pd.Series(kept, dtype="int64").reindex(n_in.index, fill_value=0)
        records = read_records(STEP, kept, n_in, dropped, {"not significant": unlisted,
                                                    OTHER_TEST: pd.Series(self.other_test, dtype="int64")})
        if kept.sum() == 0:
            why = f"none has p <= {self.p_max}" if self.p_max is not None and unlisted.sum() else "every row was dropped"
            raise ValueError(
                f"{self.path}: no variant left after reading {int(n_in.sum())} rows: {why} "
                f"({int(unlisted.sum())} not significant, {0 if dropped is None else len(dropped)} bad or duplicated)"
            )
        empty = sorted(kept.index[kept == 0])
        if empty:
            warnings.warn(f"{self.path}: no variant kept for trait(s) {empty}", stacklevel=4)
        return records

    def _attrs(self) -> dict:
        attrs = {"source": str(self.path), "format": self.layout.format}
        if self.notes:
            attrs["read_notes"] = list(self.notes)
        return attrs

    def _not_utf8(self, err: Exception, block, index: np.ndarray) -> None:
        """Text that is not UTF-8 (pyarrow: ``In CSV column #c: Row #r: ... invalid UTF8``):
        a ValueError naming the line and column."""
        message = str(err)
        if "invalid UTF8" not in message:
            return
        column, row = re.search(r"In CSV column #(\d+)", message), re.search(r"Row #(\d+)", message)
        name = self.layout.header[int(column.group(1))] if column and int(column.group(1)) < len(self.layout.header) else None
        where = f"line {block.first_line + int(index[int(row.group(1)) - 1])}" if row and int(row.group(1)) <= len(index) else \
            f"lines {block.first_line}-{block.first_line + block.lines - 1}"
        raise ValueError(f"{self.path}: {where}{f', column {name!r}' if name else ''} holds text that is not UTF-8; "
                         "re-save the file as UTF-8 (or ASCII)") from err

    def _explain(self, err: Exception, types: dict) -> None:
        """Turn a CSV conversion error into a ValueError naming the column, lines and values."""
        message = str(err)
        column = None
        match = re.search(r"In CSV column #(\d+)", message)
        if match:
            index = int(match.group(1))
            column = self.layout.header[index] if index < len(self.layout.header) else None
        if column is None or "conversion error" not in message:
            raise ValueError(
                f"{self.path}: cannot parse the file ({message}); it is corrupt, truncated or not a delimited table"
            ) from err
        found = textblocks.find_non_numeric(self.path, self.layout, column, self.block_size)
        raise ValueError(
            f"{self.path}: column {column!r} must be numeric but holds {found}"
        ) from err


# ---------------------------------------------------------------------------- helpers


def _count_before(sorted_values: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_values, index) if len(sorted_values) else 0
