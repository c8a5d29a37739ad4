"""GWAS-VCF (IEU OpenGWAS) blocks: one sample's FORMAT fields as the normalised columns.

FORMAT ``ES:SE:LP:AF:SS:ID`` (keys looked up per FORMAT string of a block; trailing fields may be
dropped, as the VCF spec allows): effect allele = ALT, beta = ES, se = SE, p = 10^−LP, EAF = AF
(else INFO/AF), n = SS (else the ``##SAMPLE`` totals). Multi-allelic records (a comma in ALT)
are flagged in ``_note`` and dropped by the reader as "bad value".
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from mrjax.gwas.columns import as_float


def normalise(table: pa.Table, sample: str, name: str, n_fill: list[float], path, offset: int) -> pa.Table:
    """The normalised columns (plus ``_row``, ``_note``) of ``sample`` in a parsed VCF block."""
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
        numeric[key] = as_float(pc.if_else(multi, pa.scalar(None, pa.string()), fields[key]), path,
                                 f"{sample} FORMAT/{key}", offset)
    eaf = numeric["AF"]
    if "INFO" in table.column_names:
        info_af = pc.extract_regex(pc.fill_null(table.column("INFO"), ""), r"(?:^|;)AF=(?P<af>[^;,]+)")
        info_af = pc.struct_field(info_af, [0])
        eaf = pc.coalesce(eaf, as_float(pc.if_else(multi, pa.scalar(None, pa.string()), info_af), path,
                                         "INFO/AF", offset))
    snp = table.column("ID")
    snp = pc.if_else(pc.equal(snp, "."), pa.scalar(None, pa.string()), snp)
    snp = pc.coalesce(snp, fields["ID"])
    lp = numeric["LP"]
    pval = pc.power(pa.scalar(10.0), pc.negate(lp))
    n = numeric["SS"]
    for value in n_fill:  # the ##SAMPLE line's TotalCases + TotalControls, then read_gwas(n=)
        n = pc.coalesce(n, pa.scalar(float(value)))
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
        "trait": pa.repeat(pa.scalar(name, pa.string()), rows),
        "_row": table.column("_row"),
        "_note": pc.if_else(multi, pa.scalar("multi-allelic ALT: split it first (bcftools norm -m-)"),
                            pa.scalar(None, pa.string())),
    }
    return pa.table(out)
