"""Named layouts of the summary-statistics files that GWAS tools and repositories write.

Each entry says how to recognise a file from its header (``needs``: every one of these names;
``any_of``: at least one name of each group; names compared case-insensitively, a leading
``#`` ignored) and where each normalised field comes from (``columns``: field -> candidate
header names, the first present wins). Fields beyond the normalised ones:

* ``_ref``/``_alt`` — PLINK 2: the other allele is whichever of REF/ALT is not A1 (when the
  file has no ``OMITTED``/``AX`` column);
* ``_test`` — the model of a row (REGENIE, PLINK 2 ``TEST``): only ``ADD`` rows are variants'
  additive effects; the others are counted as "other test" and skipped;
* ``_z``/``_frq`` — Z-score-only files (LDSC ``.sumstats``, METAL's sample-size scheme):
  ``beta = z / sqrt(2 f (1 − f) (n + z²))``, ``se = 1 / sqrt(2 f (1 − f) (n + z²))``
  (Zhu et al. 2016, *Nat Genet* 48:481, SMR online methods, eq. 6: effects on the
  standardised trait), possible only with an allele frequency ``f`` and a sample size ``n``;
* ``_rs_SNP`` — a column used as the SNP id only where it holds an rsID (``rs…``): the GWAS-SSF
  ``variant_id`` is ``chr_pos_ref_alt``, which is not a name any other file uses.

Published headers (column order as each tool writes it) are in ``EXAMPLES`` and the README.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NamedLayout:
    name: str
    example: str  # a header line as the tool writes it
    needs: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    any_of: tuple[tuple[str, ...], ...] = ()
    header_starts: str | None = None  # e.g. '#' for FinnGen and PLINK 2
    notes: str = ""
    extra: tuple[str, ...] = field(default=("n", "n_cases", "n_controls"))  # fields also taken from synonyms


def key(name: str) -> str:
    return name.strip().lower().lstrip("#")


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

LAYOUTS: tuple[NamedLayout, ...] = (
    NamedLayout(
        "gwas_catalog",
        "hm_variant_id hm_rsid hm_chrom hm_pos hm_other_allele hm_effect_allele hm_beta hm_odds_ratio "
        "hm_ci_lower hm_ci_upper hm_effect_allele_frequency hm_code variant_id chromosome base_pair_location "
        "other_allele effect_allele p_value beta standard_error effect_allele_frequency odds_ratio ci_lower ci_upper",
        needs=("hm_effect_allele", "hm_code"),
        columns={},  # GWAS_CATALOG_HARMONISED / _ORIGINAL (use_harmonised)
        notes="GWAS Catalog harmonised files before 2023 (.h.tsv.gz): effect allele = hm_effect_allele",
        extra=("n", "n_cases", "n_controls", "trait", "mlog10p"),
    ),
    NamedLayout(
        "gwas_ssf",
        "chromosome base_pair_location effect_allele other_allele beta standard_error effect_allele_frequency "
        "p_value variant_id rsid ci_upper ci_lower n",
        needs=("chromosome", "base_pair_location", "effect_allele", "standard_error"),
        any_of=(("p_value", "neg_log_10_p_value"), ("beta", "odds_ratio", "hazard_ratio")),
        columns={
            "SNP": ("rsid",), "_rs_SNP": ("variant_id",), "chr": ("chromosome",), "pos": ("base_pair_location",),
            "effect_allele": ("effect_allele",), "other_allele": ("other_allele",), "beta": ("beta",),
            "odds_ratio": ("odds_ratio", "hazard_ratio"), "se": ("standard_error",),
            "eaf": ("effect_allele_frequency",), "pval": ("p_value",), "mlog10p": ("neg_log_10_p_value",),
            "n": ("n",), "hm_code": ("hm_code",),
        },
        notes="GWAS-SSF 1.0 (GWAS Catalog since 2023, also its harmonised .h.tsv.gz): '#NA' is missing; "
              "SNP = rsid (variant_id only where it is an rsID); beta = ln(odds_ratio or hazard_ratio)",
        extra=("n", "n_cases", "n_controls", "trait"),
    ),
    NamedLayout(
        "finngen",
        "#chrom pos ref alt rsids nearest_genes pval mlogp beta sebeta af_alt af_alt_cases af_alt_controls",
        needs=("chrom", "pos", "ref", "alt", "rsids", "sebeta"),
        any_of=(("pval", "mlogp"),),
        header_starts="#",
        columns={
            "SNP": ("rsids",), "chr": ("#chrom",), "pos": ("pos",), "effect_allele": ("alt",),
            "other_allele": ("ref",), "beta": ("beta",), "se": ("sebeta",), "pval": ("pval",),
            "mlog10p": ("mlogp",), "eaf": ("af_alt",),
        },
        notes="FinnGen R3-R12: effect allele = alt; first of comma-separated rsids; R3-R5 'maf' is not "
              "read as the effect allele frequency (it is not always the alt allele's)",
    ),
    NamedLayout(
        "regenie",
        "CHROM GENPOS ID ALLELE0 ALLELE1 A1FREQ INFO N TEST BETA SE CHISQ LOG10P EXTRA",
        needs=("chrom", "genpos", "id", "allele0", "allele1", "beta", "se"),
        any_of=(("log10p", "p"),),
        columns={
            "SNP": ("ID",), "chr": ("CHROM",), "pos": ("GENPOS",), "effect_allele": ("ALLELE1",),
            "other_allele": ("ALLELE0",), "eaf": ("A1FREQ",), "n": ("N",), "beta": ("BETA",), "se": ("SE",),
            "mlog10p": ("LOG10P",), "pval": ("P",), "_test": ("TEST",),
            "n_cases": ("N_CASES",), "n_controls": ("N_CONTROLS",),
        },
        notes="REGENIE step 2: effect allele = ALLELE1, GENPOS is the base-pair position, p = 10^-LOG10P, "
              "binary traits' BETA is a log odds ratio; only TEST = ADD rows",
    ),
    NamedLayout(
        "bolt_lmm",
        "SNP CHR BP GENPOS ALLELE1 ALLELE0 A1FREQ F_MISS BETA SE P_BOLT_LMM_INF P_BOLT_LMM",
        needs=("snp", "chr", "bp", "allele1", "allele0", "beta", "se"),
        any_of=(("p_bolt_lmm", "p_bolt_lmm_inf"),),
        columns={
            "SNP": ("SNP",), "chr": ("CHR",), "pos": ("BP",), "effect_allele": ("ALLELE1",),
            "other_allele": ("ALLELE0",), "eaf": ("A1FREQ",), "beta": ("BETA",), "se": ("SE",),
            "pval": ("P_BOLT_LMM", "P_BOLT_LMM_INF"),
        },
        notes="BOLT-LMM: effect allele = ALLELE1, position = BP (GENPOS is in cM), p = P_BOLT_LMM "
              "(P_BOLT_LMM_INF when run with --lmmInfOnly)",
    ),
    NamedLayout(
        "saige",
        "CHR POS MarkerID Allele1 Allele2 AC_Allele2 AF_Allele2 MissingRate BETA SE Tstat var p.value "
        "p.value.NA Is.SPA AF_case AF_ctrl N_case N_ctrl",
        needs=("chr", "pos", "allele1", "allele2", "af_allele2", "beta", "se", "p.value"),
        columns={
            "SNP": ("MarkerID", "SNPID", "rsid"), "chr": ("CHR",), "pos": ("POS",), "effect_allele": ("Allele2",),
            "other_allele": ("Allele1",), "eaf": ("AF_Allele2",), "beta": ("BETA",), "se": ("SE",),
            "pval": ("p.value",), "n": ("N",), "n_cases": ("N_case", "N.Cases", "N_cases"),
            "n_controls": ("N_ctrl", "N.Controls", "N_controls"),
        },
        notes="SAIGE step 2: BETA is for Allele2 (effect allele = Allele2, other = Allele1), "
              "n = N or N_case + N_ctrl",
        extra=(),
    ),
    NamedLayout(
        "plink2",
        "#CHROM POS ID REF ALT PROVISIONAL_REF? A1 OMITTED A1_FREQ TEST OBS_CT BETA SE T_STAT P ERRCODE",
        needs=("chrom", "pos", "id", "ref", "alt", "a1"),
        any_of=(("beta", "or"), ("p", "log10_p", "neg_log10_p")),
        header_starts="#",
        columns={
            "SNP": ("ID",), "chr": ("#CHROM",), "pos": ("POS",), "effect_allele": ("A1",),
            "other_allele": ("OMITTED", "AX"), "_ref": ("REF",), "_alt": ("ALT",), "eaf": ("A1_FREQ",),
            "beta": ("BETA",), "odds_ratio": ("OR",), "se": ("SE", "LOG(OR)_SE"), "pval": ("P",),
            "mlog10p": ("LOG10_P", "NEG_LOG10_P"), "n": ("OBS_CT",), "_test": ("TEST",),
        },
        notes="PLINK 2 --glm (.glm.linear, .glm.logistic(.hybrid)): effect allele = A1, other = the "
              "REF/ALT that is not A1; OR -> beta = ln OR with LOG(OR)_SE; only TEST = ADD rows; n = OBS_CT",
        extra=(),
    ),
    NamedLayout(
        "metal",
        "MarkerName Allele1 Allele2 Freq1 FreqSE MinFreq MaxFreq Effect StdErr P-value Direction HetISq "
        "HetChiSq HetDf HetPVal",
        needs=("markername", "allele1", "allele2", "p-value"),
        any_of=(("effect", "zscore"),),
        columns={
            "SNP": ("MarkerName",), "effect_allele": ("Allele1",), "other_allele": ("Allele2",),
            "eaf": ("Freq1",), "beta": ("Effect",), "se": ("StdErr",), "pval": ("P-value",),
            "n": ("N", "TotalSampleSize", "Weight"), "_z": ("Zscore",),
        },
        notes="METAL: effect allele = Allele1 (written lower-case); the sample-size scheme (Weight, "
              "Zscore) has no beta/se: derived from Zscore, Freq1 and Weight (see _z)",
    ),
    NamedLayout(
        "gcta_cojo",
        "SNP A1 A2 freq b se p N",
        needs=("snp", "a1", "a2", "freq", "b", "se", "p", "n"),
        columns={
            "SNP": ("SNP",), "effect_allele": ("A1",), "other_allele": ("A2",), "eaf": ("freq",),
            "beta": ("b",), "se": ("se",), "pval": ("p",), "n": ("N",),
        },
        notes="GCTA-COJO .ma: effect allele = A1, freq is A1's frequency",
        extra=(),
    ),
    NamedLayout(
        "ldsc",
        "SNP A1 A2 Z N",
        needs=("snp", "a1", "a2", "z", "n"),
        columns={
            "SNP": ("SNP",), "effect_allele": ("A1",), "other_allele": ("A2",), "_z": ("Z",), "n": ("N",),
            "_frq": ("FRQ", "MAF"),
        },
        notes="LDSC munge_sumstats .sumstats: Z and N only; beta and se derived when an allele frequency "
              "(FRQ, kept with --keep-maf) is present, else refused",
        extra=("beta", "odds_ratio", "se", "pval", "mlog10p", "eaf", "chr", "pos", "n_cases", "n_controls"),
    ),
)
BY_NAME = {layout.name: layout for layout in LAYOUTS}


def detect(header: tuple[str, ...], header_line: str) -> NamedLayout | None:
    """The first named layout whose signature the header carries (``LAYOUTS`` order)."""
    keys = {key(name) for name in header}
    for layout in LAYOUTS:
        if layout.header_starts and not header_line.startswith(layout.header_starts):
            continue
        if not set(layout.needs) <= keys:
            continue
        if all(keys & {key(name) for name in group} for group in layout.any_of):
            return layout
    return None


def columns_of(layout: NamedLayout, header: tuple[str, ...]) -> dict[str, str]:
    """``{field: header column}`` for the fields of ``layout`` the header has (case-insensitive)."""
    lookup: dict[str, str] = {}
    for name in header:
        lookup.setdefault(key(name), name)
    found = {}
    for target, candidates in layout.columns.items():
        for candidate in candidates:
            if key(candidate) in lookup:
                found[target] = lookup[key(candidate)]
                break
    if "SNP" in found and "_rs_SNP" in found:
        del found["_rs_SNP"]  # an rsid column: variant_id is not needed
    if layout.name == "plink2" and "other_allele" in found:
        found.pop("_ref", None)
        found.pop("_alt", None)
    return found
