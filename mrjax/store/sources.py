"""What to ingest: files, globs and manifests turned into a list of :class:`Source`.

A manifest is a tab-separated table with a header and one row per file::

    path                       trait        format        columns                 n       n_cases  n_controls  build
    gwas/GCST90001391.h.tsv.gz CD4_Treg     gwas_catalog                          3757
    other/lbp.txt.gz           low_back_pain              SNP=MarkerName,beta=B

Only ``path`` is required (relative paths are relative to the manifest's folder; a glob is
allowed when ``trait`` is empty). ``columns`` is a comma-separated ``NAME=COLUMN`` list for
the reader (``mrjax.read_gwas(columns=...)``); a column of the manifest named after a
normalised field (``SNP``, ``beta``, ``pval`` ...) does the same for that field. ``n`` fills
rows without a sample size; ``n_cases``, ``n_controls`` and ``build`` are recorded in the
trait's metadata, overriding what the file says.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from mrjax.gwas.formats import SOURCE_FIELDS, apply_override, by_synonyms, layout_for
from mrjax.gwas.readers import default_trait_name

MANIFEST_FIELDS = ("path", "trait", "format", "columns", "n", "n_cases", "n_controls", "build")
#: Index files that sit beside bgzipped GWAS files; a glob never ingests them.
SIDECARS = (".tbi", ".csi")


@dataclass(frozen=True)
class Source:
    """One file to ingest and the options to read it with."""

    path: str
    trait: str | None = None
    format: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    n: float | None = None
    n_cases: float | None = None
    n_controls: float | None = None
    build: str | None = None
    index: int = 0  # position in the input list: the earlier of two sources naming one trait wins
    problem: str | None = None  # set when the source is known to fail before it is read

    @property
    def label(self) -> str:
        """The trait name to report before the file has been read."""
        return self.trait or default_trait_name(Path(self.path))

    def options(self) -> dict:
        """The reader options; part of the ingest key (changing one re-ingests the file)."""
        return {"trait": self.trait, "format": self.format, "columns": dict(self.columns), "n": self.n,
                "n_cases": self.n_cases, "n_controls": self.n_controls, "build": self.build}


def plan_sources(items, manifest=None, *, format: str | None = None, columns: dict | None = None) -> list[Source]:
    """Expand paths, globs and a manifest into sources, in input order.

    ``items``: paths or glob patterns (a pattern matching nothing becomes a failing source so
    that the summary names it). ``manifest``: a TSV path (see the module docstring).
    ``format``/``columns`` apply to every item that is not from the manifest.
    """
    if isinstance(items, (str, Path)):
        items = [items]
    specs: list[dict] = []
    for item in items or []:
        for path in _expand(str(item)):
            specs.append({"path": path, "format": format, "columns": dict(columns or {})})
    if manifest is not None:
        specs.extend(read_manifest(manifest))
    sources = []
    for index, spec in enumerate(specs):
        spec = dict(spec)
        spec["columns"] = tuple(sorted((spec.get("columns") or {}).items()))
        sources.append(Source(index=index, **spec))
    return _flag_name_clashes(sources)


def _expand(item: str) -> list[str]:
    if not glob.has_magic(item):
        return [item]
    found = [p for p in sorted(glob.glob(item)) if not p.endswith(SIDECARS) and not Path(p).is_dir()]
    return found or [f"{item}"]  # a pattern matching nothing fails as "no such file"


def read_manifest(path) -> list[dict]:
    """The rows of a manifest TSV as source specifications (``ValueError`` naming the row)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path}: cannot read the manifest ({err})") from err
    table.columns = [c.strip() for c in table.columns]
    if "path" not in table.columns:
        raise ValueError(f"{path}: the manifest needs a 'path' column; its header is {list(table.columns)}")
    unknown = sorted(set(table.columns) - set(MANIFEST_FIELDS) - set(SOURCE_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown manifest column(s) {unknown}; use {list(MANIFEST_FIELDS)} or reader fields "
                         f"{list(SOURCE_FIELDS)}")
    specs = []
    for row_number, row in enumerate(table.to_dict("records"), start=2):
        row = {k: v.strip() for k, v in row.items() if v.strip()}
        if "path" not in row:
            raise ValueError(f"{path}: line {row_number} has no path")
        file = Path(row["path"]) if Path(row["path"]).is_absolute() else path.parent / row["path"]
        columns = _parse_columns(row.get("columns", ""), path, row_number)
        columns.update({k: v for k, v in row.items() if k in SOURCE_FIELDS and k not in MANIFEST_FIELDS})
        spec = {"format": row.get("format"), "columns": columns, "trait": row.get("trait"), "build": row.get("build")}
        for name in ("n", "n_cases", "n_controls"):
            if name in row:
                try:
                    spec[name] = float(row[name])
                except ValueError:
                    raise ValueError(f"{path}: line {row_number}: {name} must be a number, not {row[name]!r}") from None
        paths = [str(file)] if spec["trait"] else _expand(str(file))
        specs.extend({**spec, "path": p} for p in paths)
    return specs


def _parse_columns(text: str, path: Path, row_number: int) -> dict:
    mapping = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{path}: line {row_number}: columns expects NAME=COLUMN pairs, got {pair!r}")
        mapping[key.strip()] = value.strip()
    return mapping


def expected_traits(source: Source) -> list[str] | None:
    """The trait names a source will produce, from its header; ``None`` for a long table
    (one trait per value of its trait column, known only once read)."""
    if source.trait:
        return [source.trait]
    path = Path(source.path)
    columns = dict(source.columns) or None
    try:
        layout = layout_for(path, source.format, columns)
        if layout.format == "parquet":
            header = tuple(pq.read_schema(path).names)
            mapping = apply_override(path, header, by_synonyms(header), columns)
        else:
            mapping = layout.columns
    except (ValueError, OSError):
        return [source.label]  # the read will fail and say why
    if "trait" in mapping:
        return None
    if layout.format == "vcf" and len(layout.samples) > 1:
        return list(layout.samples)
    return [source.label]


def _flag_name_clashes(sources: list[Source]) -> list[Source]:
    """A trait name claimed by two sources is kept by the first; the later one fails up front."""
    owner: dict[str, Source] = {}
    flagged = []
    for source in sources:
        names = expected_traits(source) or []
        clash = next((name for name in names if name in owner), None)
        if clash is not None:
            earlier = owner[clash].path
            source = Source(**{**source.__dict__, "problem": (
                f"trait name {clash!r} is also given by {earlier} (earlier in the list); name the traits in a manifest")})
        else:
            owner.update({name: source for name in names})
        flagged.append(source)
    return flagged
