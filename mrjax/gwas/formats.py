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

from mrjax.gwas import layouts
from mrjax.gwas.layouts import GWAS_CATALOG_HARMONISED, GWAS_CATALOG_ORIGINAL

FORMATS = tuple(layout.name for layout in layouts.LAYOUTS) + ("vcf", "plain", "parquet")
ALIASES = {"tsv": "plain", "csv": "plain", "txt": "plain", "gwas-vcf": "vcf", "catalog": "gwas_catalog",
           "ssf": "gwas_ssf", "gwas-ssf": "gwas_ssf", "bolt": "bolt_lmm", "cojo": "gcta_cojo", "ma": "gcta_cojo",
           "plink": "plink2", "sumstats": "ldsc"}

NORMALISED = ("SNP", "chr", "pos", "effect_allele", "other_allele", "eaf", "beta", "se", "pval", "n", "trait")
SOURCE_FIELDS = NORMALISED + ("odds_ratio", "mlog10p", "n_cases", "n_controls", "hm_code")
# fields that only named layouts use (see layouts.py): their columns are read but not output
LAYOUT_FIELDS = ("_ref", "_alt", "_test", "_z", "_frq", "_rs_SNP", "_fallback_SNP")
NUMERIC_FIELDS = ("eaf", "beta", "odds_ratio", "se", "mlog10p", "n", "n_cases", "n_controls", "hm_code", "_z", "_frq")
STRING_FIELDS = ("SNP", "chr", "effect_allele", "other_allele", "trait")

# Header synonyms, compared case-insensitively with a leading '#' removed; earlier wins.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "SNP": ("snp", "rsid", "rsids", "rs_id", "rsid_ukb", "snpid", "snp_id", "markername", "marker",
            "variant_id", "variant", "id", "rs", "hm_rsid", "markerid"),
    "chr": ("chr", "chrom", "chromosome", "chr_name", "chr.exposure", "chr.outcome", "hm_chrom", "hg19chrc",
            "hg18chr", "chromosome_name"),
    "pos": ("pos", "bp", "position", "base_pair_location", "pos_b37", "pos_b38", "bp_hg19",
            "pos.exposure", "pos.outcome", "hm_pos", "bp_hg18", "base_pair", "genpos"),
    "effect_allele": ("effect_allele", "a1", "ea", "alt", "allele1", "tested_allele", "eff_allele",
                      "effect_allele.exposure", "effect_allele.outcome", "alt_allele", "risk_allele",
                      "hm_effect_allele", "coded_allele", "testedallele"),
    "other_allele": ("other_allele", "a2", "nea", "ref", "allele2", "non_effect_allele", "a0", "allele0",
                     "other_allele.exposure", "other_allele.outcome", "ref_allele", "hm_other_allele",
                     "noncoded_allele", "non_coded_allele", "otherallele"),
    "beta": ("beta", "b", "effect", "log_or", "logor", "es", "effect_size", "beta.exposure",
             "beta.outcome", "hm_beta"),
    "odds_ratio": ("or", "odds_ratio", "hm_odds_ratio"),
    "se": ("se", "standard_error", "sebeta", "se_beta", "stderr", "se.exposure", "se.outcome", "log(or)_se"),
    "pval": ("p", "pval", "p_value", "pvalue", "p-value", "p.value", "pval.exposure", "pval.outcome",
             "p_bolt_lmm", "p_bolt_lmm_inf", "pval_nominal"),
    "mlog10p": ("mlogp", "mlog10p", "lp", "log10p", "neglog10p", "neg_log10_p", "-log10p",
                "neglog10_pval", "minus_log10_pval", "neg_log_10_p_value", "log10_p"),
    "eaf": ("eaf", "frq", "freq", "af", "af_alt", "a1freq", "a1_freq", "freq1", "alt_freq",
            "effect_allele_frequency", "eaf.exposure", "eaf.outcome", "hm_effect_allele_frequency",
            "af_allele2", "freq_effect", "coded_af", "a1_af"),
    "n": ("n", "samplesize", "sample_size", "n_total", "ntotal", "obs_ct", "n_samples",
          "totalsamplesize", "samplesize.exposure", "samplesize.outcome", "nobs", "n_obs"),
    "n_cases": ("ncase", "n_cases", "ncases", "n_case", "num_cases"),
    "n_controls": ("ncontrol", "n_controls", "ncontrols", "n_control", "num_controls", "n_ctrl"),
    "trait": ("trait", "exposure", "outcome", "phenotype"),
}
# fields where two matching columns are an error rather than a silent pick (a wrong pick flips or
# rescales effects): the user names the right one with columns=
UNAMBIGUOUS = ("effect_allele", "other_allele", "beta", "se", "pval", "eaf")

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
    ambiguous: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (field, the columns that could provide it)


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def is_parquet(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def read_head(path: Path, compressed: bool, max_meta: int = 100_000) -> tuple[int, str, str | None]:
    """Number of ``##`` meta lines at the top, the first other line (the header) and the first
    data line after it (``None`` when there is none)."""
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
            for skipped in range(max_meta):
                line = handle.readline()
                if not line:
                    raise ValueError(f"{path}: the file is empty (no header line)")
                if skipped == 0:
                    line = line.lstrip("\ufeff")  # a byte-order mark before the header
                if not line.startswith("##"):
                    first = handle.readline()
                    return skipped, line.rstrip("\r\n"), (first.rstrip("\r\n") if first else None)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path}: cannot read the header ({err}); the file is corrupt or truncated") from err
    raise ValueError(f"{path}: more than {max_meta} '##' lines and no header")


WHITESPACE = "whitespace"  # columns aligned with runs of spaces (PLINK 1.9 output style)
SEPARATORS = {"\t": "\t", "tab": "\t", ",": ",", "comma": ",", " ": " ", "space": " ", WHITESPACE: WHITESPACE,
              "\\s+": WHITESPACE, ";": ";"}


def split_header(line: str, sep: str | None = None) -> tuple[str, tuple[str, ...]]:
    """Delimiter (tab, comma, single space or ``WHITESPACE``) and the column names of a header."""
    if sep is not None:
        names = line.split() if sep == WHITESPACE else line.split(sep)
        return sep, tuple(name.strip().strip('"') for name in names)
    for delimiter in ("\t", ","):
        if delimiter in line:
            return delimiter, tuple(name.strip().strip('"') for name in line.split(delimiter))
    if "  " in line or line[:1] == " ":
        return WHITESPACE, tuple(name.strip('"') for name in line.split())
    if " " in line:
        return " ", tuple(name.strip('"') for name in line.split(" "))
    return "\t", (line.strip(),)


def data_delimiter(header_delimiter: str, header: tuple[str, ...], first_row: str | None) -> str:
    """The delimiter of the data rows, which may differ from the header's (a header written with
    spaces above tab-separated rows): the header's unless the first row splits into as many
    fields with another."""
    if first_row is None:
        return header_delimiter
    width = len(header)
    def fields(delimiter):
        return len(first_row.split()) if delimiter == WHITESPACE else len(first_row.split(delimiter))
    if fields(header_delimiter) == width:
        return header_delimiter
    for delimiter in ("\t", ",", WHITESPACE):
        if delimiter != header_delimiter and fields(delimiter) == width:
            return delimiter
    return header_delimiter


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
    """``vcf``, a named layout (``layouts.LAYOUTS``) or ``plain`` from the first lines of a text file."""
    if meta_lines and head_line.startswith("#CHROM"):
        return "vcf"
    _, header = split_header(head_line)
    named = layouts.detect(header, head_line)
    return named.name if named is not None else "plain"


def ambiguous_fields(header: tuple[str, ...], mapping: dict[str, str]) -> dict[str, list[str]]:
    """Fields of ``UNAMBIGUOUS`` that more than one header column could provide."""
    found = {}
    for target in UNAMBIGUOUS:
        if target not in mapping:
            continue
        candidates = [name for name in header if _key(name) in SYNONYMS[target]]
        if len(candidates) > 1:
            found[target] = candidates
    return found


def layout_for(path: Path, format: str | None, columns=None, use_harmonised: bool = True,
               sep: str | None = None) -> Layout:
    """Detect (or take) the format of ``path`` and build its layout.

    ``sep``: the column delimiter (``"\\t"``, ``","``, ``" "``, ``"whitespace"`` for runs of
    blanks); by default detected from the header, and from the first data row where that splits
    into as many fields with another delimiter (a header written with spaces above tab-separated
    rows). Raises ``ValueError`` for an unknown ``format`` or ``sep``, a file that is not a
    readable table and (for ``vcf``) a header without the fixed VCF columns.
    """
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a GWAS file")
    if format is not None:
        format = ALIASES.get(format, format)
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; use one of {FORMATS} or None to detect it")
    if sep is not None:
        if sep not in SEPARATORS:
            raise ValueError(f"unknown sep {sep!r}; use one of {sorted(SEPARATORS)}")
        sep = SEPARATORS[sep]
    if format == "parquet" or (format is None and is_parquet(path)):
        return Layout(format="parquet", columns={})
    compressed = is_gzip(path)
    meta_lines, head_line, first_row = read_head(path, compressed)
    detected = detect_format(path, head_line, meta_lines)
    format = format or detected
    header_delimiter, header = split_header(head_line, sep)
    delimiter = sep or data_delimiter(header_delimiter, header, first_row)
    if format == "vcf":
        missing = [name for name in VCF_FIXED if name not in header]
        if missing:
            raise ValueError(f"{path}: not a VCF body header; columns {missing} missing from {list(header)}")
        samples = header[len(VCF_FIXED):]
        if not samples:
            raise ValueError(f"{path}: the VCF has no sample column (GWAS-VCF keeps the statistics there)")
        return Layout("vcf", {}, header, "\t", meta_lines, compressed, tuple(samples))
    if format == "gwas_catalog" and not {"hm_effect_allele", "hm_code"} <= {_key(n) for n in header}:
        format = "gwas_ssf"  # read_gwas_catalog on a current (GWAS-SSF) Catalog file
    if format == "gwas_catalog":
        base = GWAS_CATALOG_HARMONISED if use_harmonised else GWAS_CATALOG_ORIGINAL
        mapping = {target: source for target, source in base.items() if source in header}
        if use_harmonised and "variant_id" in header:
            mapping["_fallback_SNP"] = "variant_id"
    elif format == "plain":
        mapping = by_synonyms(header)
    else:
        mapping = layouts.columns_of(layouts.BY_NAME[format], header)
    if format != "plain":
        extra = by_synonyms(header)
        for target in layouts.BY_NAME[format].extra:
            if target in extra and target not in mapping and extra[target] not in mapping.values():
                mapping[target] = extra[target]
    if format == "gwas_ssf" and not use_harmonised:
        mapping.pop("hm_code", None)
    fallback = {k: v for k, v in mapping.items() if k.startswith("_")}
    mapping = apply_override(path, header, {k: v for k, v in mapping.items() if not k.startswith("_")}, columns)
    mapping.update(fallback)
    unclear = ()
    if format == "plain":
        named = set(columns or {}) | set((columns or {}).values())
        unclear = tuple((k, tuple(v)) for k, v in ambiguous_fields(header, mapping).items() if k not in named)
    return Layout(format, mapping, header, delimiter, meta_lines, compressed, ambiguous=unclear)


def vcf_sample_sizes(path: Path, layout: Layout) -> dict[str, float]:
    """``{sample: TotalCases + TotalControls}`` from a GWAS-VCF's ``##SAMPLE=<ID=…>`` lines (the
    sample size of OpenGWAS files without an ``SS`` FORMAT field; continuous traits give it as
    ``TotalControls``)."""
    sizes: dict[str, float] = {}
    opener = gzip.open if layout.compressed else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for _ in range(layout.skip_rows):
            line = handle.readline()
            if not line.startswith("##SAMPLE=<"):
                continue
            fields = dict(item.split("=", 1) for item in line.strip()[10:].rstrip(">").split(",") if "=" in item)
            counts = []
            for name in ("TotalCases", "TotalControls"):
                try:
                    counts.append(float(fields[name]))
                except (KeyError, ValueError):
                    pass
            if "ID" in fields and counts:
                sizes[fields["ID"]] = sum(counts)
    return sizes


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


def check_required(path: Path, mapping: dict[str, str], header, format: str = "plain", ambiguous=()) -> None:
    """Raise ``ValueError`` naming the fields no column provides, with the header and the
    column names that would have provided each; then the fields several columns could provide
    (``ambiguous``)."""
    missing = []
    have = set(mapping)
    if "SNP" not in have and "_rs_SNP" not in have and not {"chr", "pos"} <= have:
        missing.append(("SNP (or chr + pos)", SYNONYMS["SNP"] + SYNONYMS["chr"] + SYNONYMS["pos"]))
    if "effect_allele" not in have:
        missing.append(("effect_allele", SYNONYMS["effect_allele"]))
    from_z = "_z" in have and "beta" not in have and "odds_ratio" not in have
    if from_z:
        if "n" not in have:
            missing.append(("n (to derive beta and se from Z)", SYNONYMS["n"]))
        if "eaf" not in have and "_frq" not in have:
            raise ValueError(
                f"{path}: the file ({format}) holds Z-scores without effects or standard errors; MR needs "
                f"beta and se, which can be derived only with an allele frequency (beta = z / sqrt(2f(1-f)(n+z^2))). "
                f"The header is {list(header)}: add a frequency column and name it with columns={{'eaf': ...}}, "
                "or use the original summary statistics."
            )
    else:
        if "beta" not in have and "odds_ratio" not in have:
            missing.append(("beta (or OR)", SYNONYMS["beta"] + SYNONYMS["odds_ratio"]))
        if "se" not in have:
            missing.append(("se", SYNONYMS["se"]))
    if missing:
        listed = "; ".join(f"{name} (a column named one of {', '.join(candidates)})" for name, candidates in missing)
        raise ValueError(
            f"{path}: missing required column(s) {', '.join(name for name, _ in missing)}; the header has "
            f"{list(header)}. Looked for: {listed}. Name them with columns={{'SNP': ..., 'beta': ...}}."
        )
    if ambiguous:
        listed = "; ".join(f"{name}: any of {list(candidates)}" for name, candidates in ambiguous)
        raise ValueError(
            f"{path}: ambiguous column(s) — {listed}; the header is {list(header)}. "
            f"Name the right one with columns={{{ambiguous[0][0]!r}: ...}}."
        )
