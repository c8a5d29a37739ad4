"""What the store records about each trait: the source file, the read audit and study facts.

Study facts come from the normalised table where it has them (sample size from ``n``), from
the file's header or first rows where it does not (case and control counts, GWAS-VCF
``##SAMPLE``/``##contig`` lines), and from the manifest, which always wins. The effect scale
follows ``mrjax.gwas.is_case_control``: ``"OR"`` (betas are log odds ratios) for a case-control
trait, ``"beta"`` for a continuous one — the vocabulary of the scan's results tables.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mrjax import audit
from mrjax.gwas import is_case_control
from mrjax.gwas.formats import WHITESPACE, apply_override, by_synonyms, layout_for

CHUNK = 1 << 22
#: How much of a text file is read for per-study constants (case/control counts).
HEAD_BYTES = 1 << 20
#: GWAS Catalog harmonised files place every variant on GRCh38 (the harmoniser's reference).
CATALOG_BUILD = "GRCh38"
_BUILD_WORD = re.compile(r"(GRCh3[78]|hg19|hg38|b37|b38|build3[78])", re.IGNORECASE)
_BUILD_NAMES = {"hg19": "GRCh37", "b37": "GRCh37", "build37": "GRCh37", "hg38": "GRCh38", "b38": "GRCh38",
                "build38": "GRCh38", "grch37": "GRCh37", "grch38": "GRCh38"}


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_record(path: Path, checksum: str, detected_format: str | None) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": int(stat.st_size), "sha256": checksum, "format": detected_format}


def read_audits(records: audit.Audit) -> dict[str, tuple[dict, pd.DataFrame]]:
    """Per trait the read counted: its read step's counts (read, kept, dropped by reason) and
    listed drops, from the read's records (``read_gwas(..., audited=True)``); the records are
    split once (a long table's hundreds of traits each filtering them all cost seconds)."""
    def by_trait(frame):
        frame = frame[frame["step"] == "read"]
        return {str(t): part for t, part in frame.groupby(frame["trait"].astype(str), sort=False)}

    counts, drops, unlisted = by_trait(records.counts), by_trait(records.drops), by_trait(records.unlisted)
    return {trait: _trait_audit(counts[trait], drops.get(trait, records.drops.iloc[:0]),
                                unlisted.get(trait, records.unlisted.iloc[:0]))
            for trait in sorted(counts)}


def _trait_audit(mine: pd.DataFrame, listed: pd.DataFrame, unlisted: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    listed = listed.reset_index(drop=True)
    reasons = {str(k): int(v) for k, v in listed["reason"].value_counts().sort_index().items()}
    for reason, n in zip(unlisted["reason"], unlisted["n"]):
        reasons[str(reason)] = reasons.get(str(reason), 0) + int(n)
    rows = {
        "read": int(mine["n_in"].sum()),
        "kept": int(mine["n_kept"].sum()),
        "dropped": int(mine["n_dropped"].sum()),
        "dropped_by_reason": reasons,
    }
    return rows, listed


def sample_size(n: pd.Series) -> dict:
    """Median and range of the per-variant sample size (``None`` when the file gives none)."""
    values = pd.to_numeric(n, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    values = values[np.isfinite(values)]
    if not len(values):
        return {"n": None, "n_min": None, "n_max": None}
    return {"n": float(np.median(values)), "n_min": float(values.min()), "n_max": float(values.max())}


def study_facts(path: Path, format: str | None, columns: dict | None) -> dict:
    """Per-file facts from the header: case-control or not, case/control counts, genome build.

    Returns ``{"case_control", "n_cases", "n_controls", "genome_build", "genome_build_from"}``;
    ``n_cases``/``n_controls`` map trait -> count (``"*"`` when the file gives one for all).
    Never raises for a readable file: facts it cannot find are ``None``.
    """
    layout = layout_for(path, format, columns)
    facts = {"case_control": bool(is_case_control(path, format, columns)), "n_cases": {}, "n_controls": {},
             "genome_build": None, "genome_build_from": None, "long_table": _has_trait_column(path, layout, columns)}
    if layout.format == "vcf":
        facts.update(_vcf_facts(path, layout))
    else:
        cases = _count_columns(path, layout, columns)
        if cases is not None:
            facts["n_cases"], facts["n_controls"] = cases
    if facts["genome_build"] is None and layout.format == "gwas_catalog" and (columns or {}).get("chr") is None:
        facts["genome_build"], facts["genome_build_from"] = CATALOG_BUILD, "GWAS Catalog harmonised layout (hm_* columns)"
    if facts["genome_build"] is None:
        match = _BUILD_WORD.search(path.name)
        if match:
            facts["genome_build"] = _BUILD_NAMES.get(match.group(1).lower(), match.group(1))
            facts["genome_build_from"] = "file name"
    return facts


def _has_trait_column(path: Path, layout, columns: dict | None) -> bool:
    """Whether the file is a long multi-trait table (a column names each row's trait), which
    a scan from the files reads whole (``mrjax.scan.inputs.looks_long``)."""
    if layout.format == "parquet":
        header = tuple(pq.read_schema(path).names)
        return "trait" in apply_override(path, header, by_synonyms(header), columns)
    return "trait" in layout.columns


def _vcf_facts(path: Path, layout) -> dict:
    """``##SAMPLE`` TotalCases/TotalControls/StudyType and the ``##contig`` assembly of a GWAS-VCF."""
    found = {"n_cases": {}, "n_controls": {}}
    assemblies = set()
    opener = gzip.open if layout.compressed else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for _ in range(layout.skip_rows):
            line = handle.readline()
            if line.startswith("##SAMPLE="):
                fields = dict(item.split("=", 1) for item in line.strip()[10:-1].split(",") if "=" in item)
                sample = fields.get("ID", "*")
                for key, target in (("TotalCases", "n_cases"), ("TotalControls", "n_controls")):
                    if key in fields and fields.get("StudyType") != "Continuous":
                        found[target][sample] = _number(fields[key])
            elif line.startswith("##contig=") and "assembly=" in line:
                assemblies.add(line.split("assembly=", 1)[1].split(",")[0].rstrip(">\n"))
            elif line.startswith("##reference="):
                assemblies.add(line.strip().split("=", 1)[1])
    if len(assemblies) == 1:
        found["genome_build"] = assemblies.pop()
        found["genome_build_from"] = "VCF header (##contig assembly / ##reference)"
    return found


def _count_columns(path: Path, layout, columns) -> tuple[dict, dict] | None:
    """Median case and control counts per trait from ``n_cases``/``n_controls`` columns.

    Parquet files are read in those columns only; text files in their first ``HEAD_BYTES``
    (the counts are per-study constants). ``None`` when the file has no such columns.
    """
    if layout.format == "parquet":
        header = tuple(pq.read_schema(path).names)
        mapping = apply_override(path, header, by_synonyms(header), columns)
    else:
        mapping = layout.columns
    if not {"n_cases", "n_controls"} <= set(mapping):
        return None
    wanted = {key: mapping[key] for key in ("n_cases", "n_controls", "trait") if key in mapping}
    if layout.format == "parquet":
        table = pq.read_table(path, columns=sorted(set(wanted.values())))
    elif layout.delimiter == WHITESPACE:
        return None
    else:
        read = pacsv.ReadOptions(skip_rows=layout.skip_rows, block_size=HEAD_BYTES)
        parse = pacsv.ParseOptions(delimiter=layout.delimiter)
        convert = pacsv.ConvertOptions(include_columns=sorted(set(wanted.values())), strings_can_be_null=True)
        stream = pa.input_stream(str(path), compression="gzip" if layout.compressed else None)
        with pacsv.open_csv(stream, read, parse, convert) as reader:
            table = pa.Table.from_batches([reader.read_next_batch()])
    frame = table.to_pandas()
    groups = frame.groupby(frame[wanted["trait"]].astype(str)) if "trait" in wanted else [("*", frame)]
    cases, controls = {}, {}
    for trait, part in groups:
        cases[str(trait)] = _median(part[wanted["n_cases"]])
        controls[str(trait)] = _median(part[wanted["n_controls"]])
    return cases, controls


def _median(values: pd.Series):
    values = pd.to_numeric(values, errors="coerce").dropna()
    return None if values.empty else _number(values.median())


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(value):
        return None
    return int(value) if value == int(value) else value


def for_trait(per_trait: dict, trait: str):
    """A per-trait fact (``{trait: value}`` or ``{"*": value}``); ``None`` when absent."""
    if trait in per_trait:
        return per_trait[trait]
    if len(per_trait) == 1:
        return next(iter(per_trait.values()))
    return None
