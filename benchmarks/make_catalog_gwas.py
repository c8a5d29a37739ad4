"""Generate a real-size GWAS file in the GWAS Catalog harmonised layout (``.h.tsv.gz``).

The layout is the 24 columns of ``../shared/data/gwas/exposure_a.h.tsv.gz`` (pre-2023
harmonised files, as for the 731 immune-cell GWAS GCST90001391–GCST90002121). Defaults: 22 M
variants over the 22 autosomes (GRCh38 lengths, sorted by position), N = 3,757 (the
immune-cell study), MAF from a U-shaped Beta(0.3, 0.6) floored at 0.001, se = 1/sqrt(2 f(1-f) N).
p-values are realistic: z ~ N(0, 1) for every variant, plus ``--loci`` association peaks
(default 300 per 22 M rows, scaled with ``--rows``) whose centre z is 4.5–15 in absolute value
and decays exponentially over 5–100 variants (LD), so most rows are null and, at full size, a
few hundred loci (~0.1% of rows) reach p < 5e-8. 0.2% of rows have ``hm_code`` 15
(every ``hm_*`` NA); 30% were flipped by the harmoniser (``hm_code`` 11). p has 4 significant
digits, beta/se/EAF 6 decimals. Deterministic for a seed.

Usage: ``python benchmarks/make_catalog_gwas.py [--rows 22000000] [--seed 1] [--out PATH]``
(default output ``benchmarks/_work/catalog_<rows>.h.tsv.gz``; written in 1 M-row chunks,
compressed with python-isal at level 2 when available, else zlib level 1).
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from scipy.special import log_ndtr

WORK = Path(__file__).resolve().parent / "_work"
CHUNK = 1_000_000
N = 3757
#: GRCh38 autosome lengths (Mb), for rows per chromosome and positions.
LENGTHS_MB = [248.96, 242.19, 198.30, 190.21, 181.54, 170.81, 159.35, 145.14, 138.39, 133.80, 135.09,
              133.28, 114.36, 107.04, 101.99, 90.34, 83.26, 80.37, 58.62, 64.44, 46.71, 50.82]
COLUMNS = ["hm_variant_id", "hm_rsid", "hm_chrom", "hm_pos", "hm_other_allele", "hm_effect_allele", "hm_beta",
           "hm_odds_ratio", "hm_ci_lower", "hm_ci_upper", "hm_effect_allele_frequency", "hm_code", "variant_id",
           "chromosome", "base_pair_location", "other_allele", "effect_allele", "p_value", "beta",
           "standard_error", "effect_allele_frequency", "odds_ratio", "ci_lower", "ci_upper"]
ALLELES = np.array(list("ACGT"))


def layout(rows: int, seed: int, loci: int):
    """Rows per chromosome, rsID numbers (a permutation) and the association peaks."""
    rng = np.random.default_rng(seed)
    share = np.array(LENGTHS_MB) / sum(LENGTHS_MB)
    per_chr = np.floor(share * rows).astype(np.int64)
    per_chr[0] += rows - per_chr.sum()
    rs = rng.permutation(rows).astype(np.int64) * 3 + 1 + rng.integers(0, 3, rows)
    centres = np.sort(rng.choice(rows, loci, replace=False))
    peaks = rng.uniform(4.5, 15.0, loci) * rng.choice([-1, 1], loci)
    widths = rng.uniform(5, 100, loci)
    return per_chr, rs, centres, peaks, widths


def chunk_table(start: int, stop: int, per_chr, rs, centres, peaks, widths, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, start])
    index = np.arange(start, stop)
    bounds = np.concatenate([[0], np.cumsum(per_chr)])
    chrom = np.searchsorted(bounds, index, side="right")  # 1-based chromosome number
    within = index - bounds[chrom - 1]
    spacing = np.array(LENGTHS_MB)[chrom - 1] * 1e6 / per_chr[chrom - 1]
    pos = (10_000 + within * spacing + rng.uniform(0, spacing * 0.9)).astype(np.int64)
    maf = np.maximum(rng.beta(0.3, 0.6, len(index)) * 0.5, 0.001)
    ref_i = rng.integers(0, 4, len(index))
    alt_i = (ref_i + rng.integers(1, 4, len(index))) % 4
    ref, alt = ALLELES[ref_i], ALLELES[alt_i]
    se = 1.0 / np.sqrt(2 * maf * (1 - maf) * N)
    z = rng.standard_normal(len(index))
    for c, peak, width in zip(centres, peaks, widths):
        lo, hi = int(c - 6 * width), int(c + 6 * width)
        if hi < start or lo >= stop:
            continue
        rows = np.arange(max(lo, start), min(hi, stop))
        z[rows - start] += peak * np.exp(-np.abs(rows - c) / width)
    beta = z * se
    log10_p = (np.log(2.0) + log_ndtr(-np.abs(z))) / np.log(10.0)  # exact far into the tail
    exponent = np.floor(log10_p)
    mantissa = np.round(10 ** (log10_p - exponent), 3)
    carry = mantissa >= 10
    mantissa[carry], exponent[carry] = 1.0, exponent[carry] + 1
    p_text = pc.binary_join_element_wise(pc.cast(pa.array(mantissa), pa.string()), "e",
                                         pc.cast(pa.array(exponent.astype(np.int64)), pa.string()), "")
    eaf_study = np.where(rng.random(len(index)) < 0.5, maf, 1 - maf)
    flipped = rng.random(len(index)) < 0.3
    code = np.where(flipped, 11, 10)
    missing = rng.random(len(index)) < 0.002
    code[missing] = 15
    study_effect, study_other = np.where(flipped, ref, alt), np.where(flipped, alt, ref)
    hm_beta = np.where(flipped, -beta, beta)
    hm_eaf = np.where(flipped, 1 - eaf_study, eaf_study)
    rsid = pc.binary_join_element_wise("rs", pc.cast(pa.array(rs[index]), pa.string()), "")
    chrom_text = pc.cast(pa.array(chrom), pa.string())
    pos_text = pc.cast(pa.array(pos), pa.string())
    hm_id = pc.binary_join_element_wise(chrom_text, pos_text, pa.array(ref), pa.array(alt), "_")
    null_text = pa.nulls(len(index), pa.string())

    def hm(values, kind=None):
        array = pa.array(values) if kind is None else pa.array(values, kind)
        return pc.if_else(pa.array(missing), pa.scalar(None, array.type), array)

    columns = {
        "hm_variant_id": hm(hm_id), "hm_rsid": hm(rsid), "hm_chrom": hm(chrom_text), "hm_pos": hm(pos),
        "hm_other_allele": hm(ref), "hm_effect_allele": hm(alt), "hm_beta": hm(np.round(hm_beta, 6)),
        "hm_odds_ratio": null_text, "hm_ci_lower": null_text, "hm_ci_upper": null_text,
        "hm_effect_allele_frequency": hm(np.round(hm_eaf, 6)), "hm_code": pa.array(code), "variant_id": rsid,
        "chromosome": chrom_text, "base_pair_location": pos, "other_allele": study_other, "effect_allele": study_effect,
        "p_value": p_text, "beta": np.round(beta, 6), "standard_error": np.round(se, 6),
        "effect_allele_frequency": np.round(eaf_study, 6), "odds_ratio": null_text, "ci_lower": null_text,
        "ci_upper": null_text,
    }
    return pa.table({name: columns[name] for name in COLUMNS})


def _open(path: Path):
    try:
        from isal import igzip

        return igzip.open(path, "wb", compresslevel=2)
    except ImportError:
        return gzip.open(path, "wb", compresslevel=1)


def generate(rows: int, out: Path, seed: int = 1, loci: int | None = None) -> Path:
    """Write the file (kept when it already exists: same rows and seed give the same file)."""
    loci = max(5, round(300 * rows / 22_000_000)) if loci is None else loci
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = layout(rows, seed, loci)
    temporary = out.with_name(out.name + ".part")
    with _open(temporary) as handle:
        handle.write(("\t".join(COLUMNS) + "\n").encode())
        for start in range(0, rows, CHUNK):
            table = chunk_table(start, min(start + CHUNK, rows), *parts, seed)
            table = pa.table({name: pc.fill_null(pc.cast(table[name], pa.string()), "NA") for name in COLUMNS})
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, pacsv.WriteOptions(delimiter="\t", quoting_style="none", include_header=False))
            handle.write(sink.getvalue().to_pybytes())
    temporary.rename(out)
    return out


def make(rows: int, out: Path, loci: int = 300, seed: int = 1) -> Path:
    """``generate`` with the argument order ``bench_read.py`` uses."""
    return generate(rows, out, seed=seed, loci=loci)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=22_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loci", type=int, default=None, help="association peaks (default 300 per 22 M rows)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or WORK / f"catalog_{args.rows}_s{args.seed}.h.tsv.gz"
    started = time.perf_counter()
    generate(args.rows, out, args.seed, args.loci)
    print(f"{out}: {args.rows:,} rows, {out.stat().st_size / 1e6:.0f} MB ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
