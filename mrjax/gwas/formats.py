"""GWAS summary-statistics layouts: format detection and the column map of each format.

A *layout* says where each normalised column comes from in a file: ``{normalised name:
source column}``. The normalised names are

``SNP, chr, pos, effect_allele, other_allele, eaf, beta, odds_ratio, se, pval, mlog10p, n,
trait`` (+ ``hm_code`` for GWAS Catalog files).

``odds_ratio`` is turned into ``beta = ln(OR)``; ``mlog10p`` (−log10 p) is kept beside ``pval``
because it does not underflow.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("gwas_catalog", "vcf", "finngen", "plain", "parquet")

NORMALISED = ("SNP", "chr", "pos", "effect_allele", "other_allele", "eaf", "beta", "se", "pval", "n", "trait")
SOURCE_FIELDS = NORMALISED + ("odds_ratio", "mlog10p", "n_cases", "n_controls", "hm_code")
NUMERIC_FIELDS = ("eaf", "beta", "odds_ratio", "se", "mlog10p", "n", "n_cases", "n_controls", "hm_code")
STRING_FIELDS = ("SNP", "chr", "effect_allele", "other_allele", "trait")

# Header synonyms, compared case-insensitively with a leading '#' removed; earlier wins.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "SNP": ("snp", "rsid", "rsids", "rs_id", "rsid_ukb", "snpid", "snp_id", "markername", "marker",
            "variant_id", "variant", "id", "rs", "hm_rsid"),
    "chr": ("chr", "chrom", "chromosome", "chr_name", "chr.exposure", "chr.outcome", "hm_chrom"),
    "pos": ("pos", "bp", "position", "base_pair_location", "pos_b37", "pos_b38", "bp_hg19",
            "pos.exposure", "pos.outcome", "hm_pos"),
    "effect_allele": ("effect_allele", "a1", "ea", "alt", "allele1", "tested_allele", "eff_allele",
                      "effect_allele.exposure", "effect_allele.outcome", "alt_allele", "risk_allele",
                      "hm_effect_allele"),
    "other_allele": ("other_allele", "a2", "nea", "ref", "allele2", "non_effect_allele", "a0",
                     "other_allele.exposure", "other_allele.outcome", "ref_allele", "hm_other_allele"),
    "beta": ("beta", "b", "effect", "log_or", "logor", "es", "effect_size", "beta.exposure",
             "beta.outcome", "hm_beta"),
    "odds_ratio": ("or", "odds_ratio", "hm_odds_ratio"),
    "se": ("se", "standard_error", "sebeta", "se_beta", "stderr", "se.exposure", "se.outcome"),
    "pval": ("p", "pval", "p_value", "pvalue", "p-value", "p.value", "pval.exposure", "pval.outcome"),
    "mlog10p": ("mlogp", "mlog10p", "lp", "log10p", "neglog10p", "neg_log10_p", "-log10p",
                "neglog10_pval", "minus_log10_pval"),
    "eaf": ("eaf", "frq", "freq", "af", "af_alt", "a1freq", "a1_freq", "freq1", "alt_freq",
            "effect_allele_frequency", "eaf.exposure", "eaf.outcome", "hm_effect_allele_frequency"),
    "n": ("n", "samplesize", "sample_size", "n_total", "ntotal", "obs_ct", "n_samples",
          "totalsamplesize", "samplesize.exposure", "samplesize.outcome"),
    "n_cases": ("ncase", "n_cases", "ncases", "n_case", "num_cases"),
    "n_controls": ("ncontrol", "n_controls", "ncontrols", "n_control", "num_controls"),
    "trait": ("trait", "exposure", "outcome", "phenotype"),
}

GWAS_CATALOG_HARMONISED = {
    "SNP": "hm_rsid", "chr": "hm_chrom", "pos": "hm_pos", "effect_allele": "hm_effect_allele",
    "other_allele": "hm_other_allele", "beta": "hm_beta", "odds_ratio": "hm_odds_ratio",
    "eaf": "hm_effect_allele_frequency", "se": "standard_error", "pval": "p_value", "hm_code": "hm_code",
}
GWAS_CATALOG_ORIGINAL = {
    "SNP": "variant_id", "chr": "chromosome", "pos": "base_pair_location", "effect_allele": "effect_allele",
    "other_allele": "other_allele", "beta": "beta", "odds_ratio": "odds_ratio",
    "eaf": "effect_allele_frequency", "se": "standard_error", "pval": "p_value",
}
FINNGEN = {
    "SNP": "rsids", "chr": "#chrom", "pos": "pos", "effect_allele": "alt", "other_allele": "ref",
    "beta": "beta", "se": "sebeta", "pval": "pval", "mlog10p": "mlogp", "eaf": "af_alt",
}
VCF_FIXED = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT")


@dataclass(frozen=True)
class Layout:
    """How to read one file: its format, delimiter, header position and column map."""

    format: str
    columns: dict[str, str]
    header: tuple[str, ...] = ()
    delimiter: str = "\t"
    skip_rows: int = 0  # meta-data lines before the header line
    compressed: bool = False
    samples: tuple[str, ...] = field(default_factory=tuple)  # VCF sample columns


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def is_parquet(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def read_head(path: Path, compressed: bool, max_meta: int = 100_000) -> tuple[int, str]:
    """Number of ``##`` meta lines at the top and the first other line (the header)."""
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            for skipped in range(max_meta):
                line = handle.readline()
                if not line:
                    raise ValueError(f"{path}: the file is empty (no header line)")
                if not line.startswith("##"):
                    return skipped, line.rstrip("\r\n")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path}: cannot read the header ({err}); the file is corrupt or truncated") from err
    raise ValueError(f"{path}: more than {max_meta} '##' lines and no header")


WHITESPACE = "whitespace"  # columns aligned with runs of spaces (PLINK 1.9 output style)


def split_header(line: str) -> tuple[str, tuple[str, ...]]:
    """Delimiter (tab, comma, single space or ``WHITESPACE``) and the column names of a header."""
    for delimiter in ("\t", ","):
        if delimiter in line:
            return delimiter, tuple(name.strip().strip('"') for name in line.split(delimiter))
    if "  " in line or line[:1] == " ":
        return WHITESPACE, tuple(name.strip('"') for name in line.split())
    if " " in line:
        return " ", tuple(name.strip('"') for name in line.split(" "))
    return "\t", (line.strip(),)


def _key(name: str) -> str:
    return name.strip().lower().lstrip("#")


def by_synonyms(header: tuple[str, ...]) -> dict[str, str]:
    """Map normalised names to the header's columns through ``SYNONYMS`` (case-insensitive)."""
    lookup: dict[str, str] = {}
    for name in header:
        lookup.setdefault(_key(name), name)
    found: dict[str, str] = {}
    used: set[str] = set()
    for target, synonyms in SYNONYMS.items():
        for synonym in synonyms:
            source = lookup.get(synonym)
            if source is not None and source not in used:
                found[target] = source
                used.add(source)
                break
    return found


def apply_override(path: Path, header: tuple[str, ...], detected: dict[str, str], columns) -> dict[str, str]:
    """Merge an explicit ``columns=`` mapping into the detected one.

    ``columns`` maps normalised names to file columns (``{"SNP": "MarkerName"}``); the other
    direction (``{"MarkerName": "SNP"}``, as in ``DataFrame.rename``) is accepted too.
    File columns are matched exactly, then case-insensitively.
    """
    if not columns:
        return detected
    columns = dict(columns)
    if not set(columns) <= set(SOURCE_FIELDS) and set(columns.values()) <= set(SOURCE_FIELDS):
        columns = {target: source for source, target in columns.items()}
    unknown = sorted(set(columns) - set(SOURCE_FIELDS))
    if unknown:
        raise ValueError(f"columns= names unknown field(s) {unknown}; the fields are {list(SOURCE_FIELDS)}")
    lookup = {_key(name): name for name in header}
    merged = {target: source for target, source in detected.items() if source not in columns.values()}
    for target, source in columns.items():
        if source is None:
            merged.pop(target, None)
            continue
        actual = source if source in header else lookup.get(_key(source))
        if actual is None:
            raise ValueError(
                f"{path}: columns= maps {target!r} to column {source!r}, which is not in the header "
                f"{list(header)}"
            )
        merged[target] = actual
    return merged


def detect_format(path: Path, head_line: str, meta_lines: int) -> str:
    """``vcf``, ``gwas_catalog``, ``finngen`` or ``plain`` from the first lines of a text file."""
    if meta_lines and head_line.startswith("#CHROM"):
        return "vcf"
    _, header = split_header(head_line)
    keys = {_key(name) for name in header}
    if {"hm_effect_allele", "hm_code"} <= keys:
        return "gwas_catalog"
    if {"chrom", "rsids", "mlogp", "sebeta", "alt", "ref"} <= keys and head_line.startswith("#"):
        return "finngen"
    return "plain"


def layout_for(path: Path, format: str | None, columns=None, use_harmonised: bool = True) -> Layout:
    """Detect (or take) the format of ``path`` and build its layout.

    Raises ``ValueError`` for an unknown ``format`` name, a file that is not a readable table
    and (for ``vcf``) a header without the fixed VCF columns.
    """
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a GWAS file")
    if format is not None:
        format = {"tsv": "plain", "csv": "plain", "txt": "plain", "gwas-vcf": "vcf", "catalog": "gwas_catalog"}.get(
            format, format
        )
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; use one of {FORMATS} or None to detect it")
    if format == "parquet" or (format is None and is_parquet(path)):
        return Layout(format="parquet", columns={})
    compressed = is_gzip(path)
    meta_lines, head_line = read_head(path, compressed)
    detected = detect_format(path, head_line, meta_lines)
    format = format or detected
    delimiter, header = split_header(head_line)
    if format == "vcf":
        missing = [name for name in VCF_FIXED if name not in header]
        if missing:
            raise ValueError(f"{path}: not a VCF body header; columns {missing} missing from {list(header)}")
        samples = header[len(VCF_FIXED):]
        if not samples:
            raise ValueError(f"{path}: the VCF has no sample column (GWAS-VCF keeps the statistics there)")
        return Layout("vcf", {}, header, "\t", meta_lines, compressed, tuple(samples))
    if format == "gwas_catalog":
        base = GWAS_CATALOG_HARMONISED if use_harmonised else GWAS_CATALOG_ORIGINAL
        mapping = {target: source for target, source in base.items() if source in header}
        extra = by_synonyms(header)
        for target in ("n", "n_cases", "n_controls", "trait", "mlog10p"):
            if target in extra:
                mapping[target] = extra[target]
        if use_harmonised and "variant_id" in header:
            mapping["_fallback_SNP"] = "variant_id"
    elif format == "finngen":
        mapping = {target: source for target, source in FINNGEN.items() if source in header}
        extra = by_synonyms(header)
        for target in ("n", "n_cases", "n_controls"):
            if target in extra:
                mapping[target] = extra[target]
    else:
        mapping = by_synonyms(header)
    fallback = {k: v for k, v in mapping.items() if k.startswith("_")}
    mapping = apply_override(path, header, {k: v for k, v in mapping.items() if not k.startswith("_")}, columns)
    mapping.update(fallback)
    return Layout(format, mapping, header, delimiter, meta_lines, compressed)


def is_case_control(path, format: str | None = None, columns=None) -> bool:
    """Whether a GWAS file holds a case-control (binary) trait, judged from its header alone:
    FinnGen files (every FinnGen endpoint is a case-control phenotype), files with both case
    and control count columns, and GWAS-VCFs whose ``##SAMPLE`` line says
    ``StudyType=CaseControl`` or gives ``TotalCases``. An odds-ratio column does not count
    (GWAS Catalog harmonised files carry one, empty, for every trait).

    An MR estimate on a binary outcome is a log odds ratio (reported as OR = exp(b)); on a
    continuous one it is a difference in outcome units (reported as b).
    """
    path = Path(path)
    layout = layout_for(path, format, columns)
    if layout.format == "finngen":
        return True
    if layout.format == "parquet":
        import pyarrow.parquet as pq

        header = tuple(pq.read_schema(path).names)
        return {"n_cases", "n_controls"} <= set(apply_override(path, header, by_synonyms(header), columns))
    if layout.format == "vcf":
        opener = gzip.open if layout.compressed else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for _ in range(layout.skip_rows):
                line = handle.readline()
                if line.startswith("##SAMPLE=") and ("StudyType=CaseControl" in line or "TotalCases=" in line):
                    return True
        return False
    return {"n_cases", "n_controls"} <= set(layout.columns)


def check_required(path: Path, mapping: dict[str, str], header, have_n: bool = True) -> None:
    """Raise ``ValueError`` naming the fields no column provides."""
    missing = []
    if "SNP" not in mapping and not {"chr", "pos"} <= set(mapping):
        missing.append("SNP (or chr + pos)")
    if "effect_allele" not in mapping:
        missing.append("effect_allele")
    if "beta" not in mapping and "odds_ratio" not in mapping:
        missing.append("beta (or OR)")
    if "se" not in mapping:
        missing.append("se")
    if "pval" not in mapping and "mlog10p" not in mapping:
        missing.append("pval (or -log10 p)")
    if missing:
        raise ValueError(
            f"{path}: missing required column(s) {', '.join(missing)}; the header has {list(header)}. "
            "Name them with columns={'SNP': ..., 'beta': ...}."
        )
