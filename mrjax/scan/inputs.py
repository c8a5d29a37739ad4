"""Finding and reading a scan's inputs: exposure files and patterns, long multi-trait tables,
the outcome, checksums, and how each file is read (:class:`ReadOptions`).

Host-side only (pandas/pyarrow); reader errors become :class:`~mrjax.scan.errors.ScanError`.
"""

from __future__ import annotations

import csv
import glob
import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mrjax.audit import carry
from mrjax.gwas import is_case_control, read_gwas
from mrjax.gwas.formats import is_gzip, is_parquet, read_head, split_header
from mrjax.outputs import sha256_file
from mrjax.scan.errors import ScanError
from mrjax.scan.frames import NO_ROWS, plain, rows_by

#: Header names that mark a long table holding many traits.
TRAIT_COLUMN_NAMES = {"trait", "exposure", "phenotype"}


@dataclass(frozen=True)
class ReadOptions:
    """How a GWAS file is read: ``format`` (force a reader; None = detect), ``columns``
    (explicit mapping ``(field, column)`` pairs for the readers), ``trait_column`` (the
    column naming each row's trait in a long table)."""

    format: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    trait_column: str | None = None

    def __post_init__(self):
        if isinstance(self.columns, dict):
            object.__setattr__(self, "columns", tuple(sorted(self.columns.items())))

    @property
    def reader_columns(self) -> dict | None:
        """The column mapping handed to :func:`mrjax.gwas.read_gwas` (None = detect)."""
        mapping = dict(self.columns)
        if self.trait_column:
            mapping.setdefault("trait", self.trait_column)
        return mapping or None


@dataclass(frozen=True)
class ExposureSource:
    """Where one exposure trait's GWAS comes from: a file (``path``) holding only it, or a
    long table shared with other traits (``long_table``; read once into the scan's cache)."""

    trait: str
    path: str
    long_table: bool


def exposure_files(patterns) -> list[str]:
    """Expand files and glob patterns (sorted, duplicates removed, order of first mention).

    Raises :class:`ScanError` naming a pattern that matches no file.
    """
    files: list[str] = []
    for pattern in patterns:
        pattern = str(pattern)
        if any(ch in pattern for ch in "*?["):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise ScanError(f"exposure pattern {pattern!r} matches no file", "quote the glob and check the folder")
        else:
            if not Path(pattern).is_file():
                raise ScanError(f"exposure file {pattern!r} not found", "check the path given to --exposure")
            matches = [pattern]
        files += [str(Path(m)) for m in matches if str(Path(m)) not in files]
    return files


def input_paths(config) -> list[str]:
    """Every input file of a scan: exposures, outcome and the panel's .bed/.bim/.fam."""
    paths = exposure_files(config.exposures) + [str(Path(config.outcome))]
    if config.ld_ref:
        paths += [config.ld_ref + s for s in (".bed", ".bim", ".fam")]
    return list(dict.fromkeys(paths))


def input_checksums(config) -> dict[str, str]:
    """SHA-256 of every input file, keyed by path (the checkpoint fingerprint uses them)."""
    return {p: sha256_file(p) for p in input_paths(config)}


def read_table(path: str, options: ReadOptions, *, trait: str | None = None, p_max: float | None = None) -> pd.DataFrame:
    """Read one GWAS file into mrjax's normalised table (:func:`mrjax.gwas.read_gwas`).

    ``trait`` names a single-trait file (default: the file name without its suffixes); a
    long table keeps its own trait column. Reader errors become :class:`ScanError`.
    """
    try:
        return read_gwas(path, format=options.format, columns=options.reader_columns, p_max=p_max, trait=trait)
    except FileNotFoundError as error:
        raise ScanError(f"GWAS file {path!r} not found", "check the path") from error
    except (EOFError, zlib.error) as error:
        raise ScanError(f"GWAS file {path!r} is a truncated or corrupt compressed file ({error})",
                        "check that it downloaded completely (gzip -t FILE)") from error
    except (ValueError, KeyError) as error:
        raise ScanError(_one_line(error), "pass --format, or --column NAME=COLUMN to map the file's columns") from error


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
    options = config.read_options
    sources: list[ExposureSource] = []
    for path in exposure_files(config.exposures):
        if options.trait_column or looks_long(path):
            table = read_table(path, options)
            cache[path] = table
            names = pd.unique(table["trait"].astype(str))
            if len(names) > 1 or options.trait_column:
                sources += [ExposureSource(str(n), path, True) for n in names]
                continue
            cache.pop(path)
        sources.append(ExposureSource(trait_name_of(path), path, False))
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


def read_chunk(chunk: list[ExposureSource], config, cache: dict, *, full: bool) -> pd.DataFrame:
    """The GWAS rows of a chunk's exposures, in chunk order, with their read-time audit.

    ``full``: every row (the reverse direction looks up the outcome's instruments in them);
    otherwise only rows with p below the threshold, unless proxies need the rest. The
    traits of a long table (consecutive in the chunk) are taken in one go, and the table's
    audit records are carried once (not once per trait)."""
    frames = []
    options = config.read_options
    for (path, long_table), group in itertools.groupby(chunk, key=lambda s: (s.path, s.long_table)):
        group = list(group)
        if not long_table:
            p_max = None if full or config.use_proxies else config.p
            frames += [read_table(s.path, options, trait=s.trait, p_max=p_max) for s in group]
            continue
        table = cache[path]
        rows_of = _trait_rows(cache, path)
        rows = np.concatenate([rows_of.get(s.trait, NO_ROWS) for s in group])
        whole = len(rows) == len(table) and bool(np.all(rows == np.arange(len(table))))
        part = table.reset_index(drop=True) if whole else table.iloc[rows].reset_index(drop=True)
        part.attrs = dict(table.attrs)
        frames.append(part)
    if len(frames) == 1:
        return frames[0]
    return carry(pd.concat([plain(f) for f in frames], ignore_index=True), *frames)


def _trait_rows(cache: dict, path: str) -> dict[str, np.ndarray]:
    """Row positions of each trait of the long table ``cache[path]`` (computed once, kept
    in ``cache`` under ``(path, "rows")``)."""
    key = (path, "rows")
    if key not in cache:
        cache[key] = rows_by(cache[path]["trait"])
    return cache[key]


def effect_scale(path: str, declared: str, options: ReadOptions) -> str:
    """How estimates with the trait of ``path`` as outcome are reported: ``"OR"`` for a binary
    trait (``declared``, or for ``"auto"`` :func:`mrjax.gwas.is_case_control` of the file),
    ``"beta"`` for a continuous one."""
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
