"""Finding and reading a scan's inputs: exposure files and patterns, long multi-trait tables,
the outcome, checksums, and how each file is read (:class:`ReadOptions`).

Host-side only (pandas/pyarrow); reader errors become :class:`~mrjax.scan.errors.ScanError`.
"""

from __future__ import annotations

import csv
import glob
import itertools
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mrjax.audit import Audit, Audited
from mrjax.gwas import is_case_control, read_gwas
from mrjax.gwas.formats import is_gzip, is_parquet, read_head, split_header
from mrjax.gwas.select import significance
from mrjax.outputs import sha256_file
from mrjax.scan.errors import ScanError
from mrjax.scan.frames import NO_ROWS, at_snps, rows_by

#: Header names that mark a long table holding many traits.
TRAIT_COLUMN_NAMES = {"trait", "exposure", "phenotype"}


@dataclass(frozen=True)
class ReadOptions:
    """How a GWAS file is read: ``format`` (force a reader; None = detect), ``columns``
    (explicit mapping ``(field, column)`` pairs for the readers), ``trait_column`` (the
    column naming each row's trait in a long table), ``sep`` (delimiter; None = detect),
    ``skip_bad_lines`` (drop malformed lines with an audit row each instead of failing),
    ``store`` (a GWAS store folder: inputs are its traits, see :mod:`mrjax.scan.store_source`)."""

    format: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    trait_column: str | None = None
    sep: str | None = None
    skip_bad_lines: bool = False
    store: str | None = None

    def __post_init__(self):
        if isinstance(self.columns, dict):
            object.__setattr__(self, "columns", tuple(sorted(self.columns.items())))

    def overridden(self, format: str | None = None, columns=()) -> "ReadOptions":
        """These options with a more specific ``format`` and column mapping on top (a field
        the specific mapping names takes its column; the others keep theirs)."""
        merged = dict(self.columns)
        merged.update(dict(columns))
        return replace(self, format=format or self.format, columns=tuple(sorted(merged.items())))

    @property
    def reader_columns(self) -> dict | None:
        """The column mapping handed to :func:`mrjax.gwas.read_gwas` (None = detect)."""
        mapping = dict(self.columns)
        if self.trait_column:
            mapping.setdefault("trait", self.trait_column)
        return mapping or None


#: Columns of an inputs manifest (TSV): ``path`` is required; ``columns`` holds a mapping
#: ``field=column;field=column``, and a column named after a field (``beta``, ``se``, ``SNP``…)
#: maps that field for its row; ``role`` is ``exposure`` (default) or ``outcome``.
MANIFEST_COLUMNS = ("path", "trait", "format", "columns", "role")


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    trait: str | None
    role: str
    options: ReadOptions


def read_manifest(path: str | Path) -> tuple[ManifestEntry, ...]:
    """The rows of an inputs manifest (paths relative to the manifest's folder).

    Raises :class:`ScanError` naming the row for a missing path column, an unknown role or a
    bad mapping."""
    from mrjax.gwas.formats import SOURCE_FIELDS

    path = Path(path)
    if not path.is_file():
        raise ScanError(f"inputs manifest {str(path)!r} not found", "check the path given to --inputs")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise ScanError(f"cannot read inputs manifest {str(path)!r}: {_one_line(error)}",
                        "give a tab-separated file with a header: path, trait, format, columns") from error
    table.columns = [c.strip() for c in table.columns]
    if "path" not in table.columns:
        raise ScanError(f"inputs manifest {str(path)!r} has no 'path' column (header: {list(table.columns)})",
                        "the header must name path (and optionally trait, format, columns, role)")
    fields = [c for c in table.columns if c in SOURCE_FIELDS and c not in MANIFEST_COLUMNS]
    unknown = [c for c in table.columns if c not in MANIFEST_COLUMNS and c not in fields]
    if unknown:
        raise ScanError(f"inputs manifest {str(path)!r}: unknown column(s) {unknown}",
                        f"use {', '.join(MANIFEST_COLUMNS)} or field names {', '.join(SOURCE_FIELDS)}")
    entries = []
    for number, row in enumerate(table.to_dict("records"), start=2):
        file = row["path"].strip()
        if not file:
            raise ScanError(f"inputs manifest {str(path)!r} line {number}: empty path", "give a file in every row")
        file = file if Path(file).is_absolute() else str(path.parent / file)
        mapping = {}
        for pair in filter(None, (p.strip() for p in re.split(r"[;,]", row.get("columns", "") or ""))):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ScanError(f"inputs manifest {str(path)!r} line {number}: bad mapping {pair!r}",
                                "write columns as field=column;field=column, e.g. beta=Effect;se=StdErr")
            mapping[key.strip()] = value.strip()
        mapping.update({f: row[f].strip() for f in fields if row[f].strip()})
        role = (row.get("role") or "exposure").strip().lower()
        if role not in ("exposure", "outcome"):
            raise ScanError(f"inputs manifest {str(path)!r} line {number}: role {role!r}", "role is exposure or outcome")
        options = ReadOptions(format=(row.get("format") or "").strip() or None, columns=tuple(sorted(mapping.items())))
        entries.append(ManifestEntry(file, (row.get("trait") or "").strip() or None, role, options))
    return tuple(entries)


def options_for(config, path: str, role: str) -> ReadOptions:
    """How one input of a scan is read: the scan-wide options (``--format``, ``--column``),
    then the role's (``--exposure-format``/``--exposure-column`` or the outcome's), then the
    file's manifest row (``--inputs``)."""
    options = config.read_options
    if role == "exposure":
        options = options.overridden(config.exposure_format, config.exposure_columns)
    else:
        options = options.overridden(config.outcome_format, config.outcome_columns)
    for entry in manifest_of(config):
        if Path(entry.path) == Path(path):
            options = options.overridden(entry.options.format, entry.options.columns)
    return options


def manifest_of(config) -> tuple[ManifestEntry, ...]:
    return read_manifest(config.inputs) if getattr(config, "inputs", None) else ()


def scan_exposure_files(config) -> list[str]:
    """The exposure files of a scan: its patterns' files, then the manifest's exposure rows."""
    files = exposure_files(config.exposures) if config.exposures else []
    for entry in manifest_of(config):
        if entry.role == "exposure":
            if not Path(entry.path).is_file():
                raise ScanError(f"exposure file {entry.path!r} (inputs manifest) not found", "check the manifest's paths")
            if str(Path(entry.path)) not in files:
                files.append(str(Path(entry.path)))
    return files

@dataclass(frozen=True)
class ExposureSource:
    """Where one exposure trait's GWAS comes from: a file (``path``) holding only it, or a
    long table shared with other traits (``long_table``; read once into the scan's cache)."""

    trait: str
    path: str
    long_table: bool


@dataclass(frozen=True)
class OutcomeSource:
    """One outcome GWAS of a scan: its file and its trait name."""

    path: str
    name: str


def exposure_files(patterns, what: str = "exposure") -> list[str]:
    """Expand files and glob patterns (sorted, duplicates removed, order of first mention).

    Raises :class:`ScanError` naming a pattern that matches no file (``what``: which input).
    """
    files: list[str] = []
    for pattern in patterns:
        pattern = str(pattern)
        if any(ch in pattern for ch in "*?["):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise ScanError(f"{what} pattern {pattern!r} matches no file", "quote the glob and check the folder")
        else:
            if not Path(pattern).is_file():
                raise ScanError(f"{what} file {pattern!r} not found", f"check the path given to --{what}")
            matches = [pattern]
        files += [str(Path(m)) for m in matches if str(Path(m)) not in files]
    return files


def outcome_sources(config) -> list[OutcomeSource]:
    """The outcomes of a scan in the order given: each file's trait name is its file name
    (``config.outcome_name`` for a single outcome). Two outcomes with one name are an error."""
    if getattr(config, "store", None):  # a store's outcomes are trait names (globs allowed)
        from mrjax.scan import store_source

        return [OutcomeSource(name, name) for name in store_source.exposure_traits(config.store, config.outcome_patterns)]
    files = exposure_files(config.outcome_patterns, what="outcome")
    if len(files) == 1 and config.outcome_name:
        return [OutcomeSource(files[0], config.outcome_name)]
    sources = [OutcomeSource(path, trait_name_of(path)) for path in files]
    names = [s.name for s in sources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ScanError(f"outcome name(s) {twice} stand for more than one file", "give each outcome file a distinct name")
    return sources


def input_paths(config) -> list[str]:
    """Every input file of a scan: exposures, outcomes, the inputs manifest and the panel's
    .bed/.bim/.fam."""
    paths = scan_exposure_files(config) + [s.path for s in outcome_sources(config)]
    if getattr(config, "inputs", None):
        paths.append(str(Path(config.inputs)))
    if config.ld_ref:
        paths += [config.ld_ref + s for s in (".bed", ".bim", ".fam")]
    return list(dict.fromkeys(paths))


def input_checksums(config) -> dict[str, str]:
    """SHA-256 of every input file, keyed by path (the checkpoint fingerprint uses them);
    from a store, each trait's source checksum and ingest key, keyed by trait."""
    if config.store:
        from mrjax.scan import store_source

        sums = store_source.checksums(config.store, exposure_keys(config) + [o.name for o in outcome_sources(config)])
        panel = [config.ld_ref + s for s in (".bed", ".bim", ".fam")] if config.ld_ref else []
        return {**sums, **{p: sha256_file(p) for p in panel}}
    return {p: sha256_file(p) for p in input_paths(config)}


def manifest_inputs(config) -> list[dict]:
    """The manifest's record of every input: path, bytes and SHA-256 of each file (from a
    store: each trait's source file as ingested, with its trait and the store)."""
    from mrjax.outputs import input_checksums as file_records

    if not config.store:
        return file_records(input_paths(config))
    from mrjax.scan import store_source

    records = store_source.source_records(config.store, exposure_keys(config) + [o.name for o in outcome_sources(config)])
    return records + (file_records([config.ld_ref]) if config.ld_ref else [])


def exposure_keys(config) -> list[str]:
    """The exposures' keys in :func:`input_checksums`: files, or a store's trait names."""
    if config.store:
        from mrjax.scan import store_source

        return store_source.exposure_traits(config.store, config.exposures)
    return scan_exposure_files(config)


def read_outcome(config, outcome: OutcomeSource) -> tuple[Audited, dict[str, int]]:
    """One outcome GWAS as the scan uses it, with its read records: the whole file, or from a
    store its top hits with the whole file's read records (the forward look-ups read the
    rest by SNP). Also returns the rows of the full table left out (``{trait: n}``, from a
    store; see :func:`mrjax.scan.store_source.count_rows_not_read`)."""
    if config.store:
        from mrjax.scan import store_source

        return store_source.selection_table(config.store, outcome.name, config.p, whole=True)
    return read_table(outcome.path, options_for(config, outcome.path, "outcome"), trait=outcome.name, audited=True), {}


def read_table(path: str, options: ReadOptions, *, trait: str | None = None, p_max: float | None = None,
               audited: bool = False):
    """Read one GWAS file into mrjax's normalised table (:func:`mrjax.gwas.read_gwas`).

    ``trait`` names a single-trait file (default: the file name without its suffixes); a
    long table keeps its own trait column. ``audited=True`` returns ``Audited(table, audit)``
    (see :mod:`mrjax.audit`). Reader errors become :class:`ScanError`.
    """
    try:
        return read_gwas(path, format=options.format, columns=options.reader_columns, p_max=p_max, trait=trait,
                         sep=options.sep, skip_bad_lines=options.skip_bad_lines, audited=audited)
    except FileNotFoundError as error:
        raise ScanError(f"GWAS file {path!r} not found", "check the path") from error
    except (EOFError, zlib.error) as error:
        raise ScanError(f"GWAS file {path!r} is a truncated or corrupt compressed file ({error})",
                        "check that it downloaded completely (gzip -t FILE)") from error
    except (ValueError, KeyError) as error:
        raise ScanError(_one_line(error), "pass --format, or --column NAME=COLUMN to map the file's columns "
                        "(--exposure-column/--outcome-column, or an --inputs manifest, for one input)") from error


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def trait_name_of(path: str | Path) -> str:
    """A trait's name from its file name: ``gwas/ldl.tsv.gz`` → ``ldl``."""
    name = Path(path).name
    for suffix in (".gz", ".bgz", ".bz2", ".zst", ".tsv", ".txt", ".csv", ".vcf", ".parquet", ".h"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def list_exposures(config, cache: dict) -> list[ExposureSource]:
    """The exposure traits of a scan in a stable order.

    A file whose table has more than one value in its trait column is a long table: it is
    read once (kept in ``cache``) and yields one source per trait.
    """
    if config.store:
        return [ExposureSource(name, name, False) for name in exposure_keys(config)]
    sources: list[ExposureSource] = []
    names_given = {str(Path(e.path)): e.trait for e in manifest_of(config) if e.role == "exposure" and e.trait}
    for path in scan_exposure_files(config):
        options = options_for(config, path, "exposure")
        if options.trait_column or looks_long(path):
            read = read_table(path, options, audited=True)
            cache[path] = read
            names = pd.unique(read.table["trait"].astype(str))
            if len(names) > 1 or options.trait_column:
                sources += [ExposureSource(str(n), path, True) for n in names]
                continue
            cache.pop(path)
        sources.append(ExposureSource(names_given.get(path) or trait_name_of(path), path, False))
    seen: dict[str, str] = {}
    for source in sources:
        if source.trait in seen:
            raise ScanError(
                f"exposure {source.trait!r} appears twice ({seen[source.trait]} and {source.path})",
                "give each exposure file a distinct name",
            )
        seen[source.trait] = source.path
    return sources


def looks_long(path: str) -> bool:
    """A file with a trait/exposure/phenotype column is read as a long multi-trait table."""
    file = Path(path)
    try:
        if is_parquet(file):
            names = pq.read_schema(file).names
        else:
            names = split_header(read_head(file, is_gzip(file))[1])[1]
    except (OSError, ValueError) as error:
        raise ScanError(_one_line(error), "check that the exposure file is a readable GWAS table") from error
    return bool({n.strip().lower() for n in names} & TRAIT_COLUMN_NAMES)


def read_chunk(chunk: list[ExposureSource], config, cache: dict, *, full: bool, lookup_snps=frozenset(),
               threads: int = 1) -> tuple[Audited, dict[str, int]]:
    """The GWAS rows of a chunk's exposures, in chunk order, with their read-time audit, and
    the rows of the full tables left out (``{trait: n}``, see
    :func:`mrjax.scan.store_source.count_rows_not_read`).

    ``full`` (the reverse direction looks up the outcome's instruments in the exposures), or
    proxies on: each file is read whole (its read records are the whole file's) and cut at
    once to the rows the scan can use (:func:`usable_rows`: those instrument selection keeps
    and those at ``lookup_snps``, the SNPs the reverse look-ups can use), so a chunk holds one
    whole GWAS at a time, not ``chunk_size`` of them; otherwise only rows with p below the
    threshold are read. Files are read ``threads`` at a time (in chunk order). From a store,
    the same rows and records without a whole read. The traits of a long table (consecutive
    in the chunk) are taken in one go, and the table's audit records are carried once (not
    once per trait)."""
    if config.store:
        from mrjax.scan import store_source

        whole = full or config.use_proxies  # as the files would be read
        return store_source.selection_tables(config.store, [s.trait for s in chunk], config.p, whole=whole)
    whole = full or config.use_proxies

    def read_file(source: ExposureSource) -> tuple[Audited, int]:
        options = options_for(config, source.path, "exposure")
        read = read_table(source.path, options, trait=source.trait, p_max=None if whole else config.p, audited=True)
        return usable_rows(read, config.p, lookup_snps if full else ()) if whole else (read, 0)

    files = [s for s in chunk if not s.long_table]
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(files)))) as pool:
        read = iter(list(pool.map(read_file, files)))  # in chunk order
    frames, not_read = [], {}
    for (path, long_table), group in itertools.groupby(chunk, key=lambda s: (s.path, s.long_table)):
        group = list(group)
        if not long_table:
            for source in group:
                table, cut = next(read)
                frames.append(table)
                if whole:
                    not_read[source.trait] = cut
            continue
        table, records = cache[path]
        rows_of = _trait_rows(cache, path)
        rows = np.concatenate([rows_of.get(s.trait, NO_ROWS) for s in group])
        whole_table = len(rows) == len(table) and bool(np.all(rows == np.arange(len(table))))
        part = table.reset_index(drop=True) if whole_table else table.iloc[rows].reset_index(drop=True)
        frames.append(Audited(part, records))
    if len(frames) == 1:
        return frames[0], not_read
    return (Audited(pd.concat([f.table for f in frames], ignore_index=True), Audit.combine(*(f.audit for f in frames))),
            not_read)


def default_read_threads() -> int:
    """GWAS files a scan reads at once: the cores, at most 4 (a whole read of a 22 M-row file is
    ~2.8 GB while it is cut; reading is ~1.7x faster with 2 threads on 2 cores)."""
    return max(1, min(4, os.cpu_count() or 1))


def usable_rows(read: Audited, p: float, lookup_snps) -> tuple[Audited, int]:
    """A whole-read single-trait GWAS cut to the rows a scan can use, and how many rows were
    cut (:func:`mrjax.scan.store_source.count_rows_not_read` counts them "not significant" in
    the select step, as selecting from the whole table does): the rows
    :func:`mrjax.gwas.select_instruments` at ``p`` keeps or lists (no p-value), the rows at
    ``lookup_snps`` (the outcome's instruments and their possible proxies, which the reverse
    look-up reads; :func:`mrjax.scan.stages.reachable_snps`), and the first row, which stands
    in for the rest when no other is left (as in a store scan): the look-up then records
    every instrument as missing, as it does against the whole table. The read records are
    the whole file's."""
    table = read.table
    if not len(table):
        return read, 0
    significant, missing = significance(table, p)
    keep = significant | missing | at_snps(table, lookup_snps)
    keep[0] = True
    return Audited(table[keep].reset_index(drop=True), read.audit), int(len(table) - keep.sum())


def _trait_rows(cache: dict, path: str) -> dict[str, np.ndarray]:
    """Row positions of each trait of the long table ``cache[path]`` (computed once, kept
    in ``cache`` under ``(path, "rows")``)."""
    key = (path, "rows")
    if key not in cache:
        cache[key] = rows_by(cache[path].table["trait"])
    return cache[key]


def effect_scale(path: str, declared: str, options: ReadOptions) -> str:
    """How estimates with the trait of ``path`` as outcome are reported: ``"OR"`` for a binary
    trait (``declared``, or for ``"auto"`` :func:`mrjax.gwas.is_case_control` of the file),
    ``"beta"`` for a continuous one."""
    if declared == "auto" and options.store:
        from mrjax.scan import store_source

        return store_source.effect_scale(options.store, path)
    if declared == "auto":
        try:
            return "OR" if is_case_control(path, options.format, options.reader_columns) else "beta"
        except ValueError:  # the readers report unreadable files; the scale is then beta
            return "beta"
    return "OR" if declared == "binary" else "beta"


def read_harmonised(path: str | Path) -> pd.DataFrame:
    """Read a harmonised table (CSV, TSV, gzip'd text or parquet), e.g. TwoSampleMR's ``dat``
    written with ``write.csv``: R's unnamed row-name column is dropped, ``NA`` is missing.

    Raises :class:`ScanError` for a missing, empty or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise ScanError(f"harmonised table {str(path)!r} not found", "check the path")
    try:
        if path.name.endswith(".parquet"):
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, sep=None, engine="python", na_values=["NA"], keep_default_na=True)
    except (EOFError, zlib.error) as error:
        raise ScanError(f"{str(path)!r} is a truncated or corrupt compressed file ({error})",
                        "check that it downloaded completely (gzip -t FILE)") from error
    except (ValueError, OSError, UnicodeDecodeError, csv.Error) as error:
        raise ScanError(f"cannot read {str(path)!r} as a table: {_one_line(error)}", "give a CSV, TSV or parquet file") from error
    first = table.columns[0] if len(table.columns) else None
    if first is not None and (str(first) == "" or str(first).startswith("Unnamed: 0")):
        table = table.drop(columns=first)
    if len(table) == 0:
        raise ScanError(f"harmonised table {str(path)!r} has no rows", "check that the file is the harmonised data")
    return table
