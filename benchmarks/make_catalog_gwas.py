"""A real-size GWAS file in the GWAS Catalog harmonised layout (``.h.tsv.gz``), for benchmarks.

22 columns, as the Catalog's harmonised files of the 731 immune-cell GWAS (GCST90001391–
GCST90002121) hold them::

    hm_variant_id hm_rsid hm_chrom hm_pos hm_other_allele hm_effect_allele hm_beta hm_odds_ratio
    hm_ci_lower hm_ci_upper hm_effect_allele_frequency hm_code variant_id chromosome
    base_pair_location other_allele effect_allele p_value beta standard_error
    effect_allele_frequency odds_ratio

Rows are sorted by chromosome and position. p-values: most variants null (z ~ N(0, 1)), plus
``--loci`` associated loci of ~60 variants each whose z decays with distance from a lead SNP
(|z| up to ~15), so a p ≤ 1e-5 filter keeps a few thousand rows, like a real GWAS. ~0.4% of
rows have ``hm_code`` 15 (not harmonised: every ``hm_*`` NA), ~1% ``hm_code`` 11 (flipped).
Written with zlib level 6 (gzip's default) in ~1 M-row gzip members.

Usage: ``python benchmarks/make_catalog_gwas.py [--rows 2000000] [--out benchmarks/_work/...]``.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("hm_variant_id hm_rsid hm_chrom hm_pos hm_other_allele hm_effect_allele hm_beta hm_odds_ratio "
          "hm_ci_lower hm_ci_upper hm_effect_allele_frequency hm_code variant_id chromosome base_pair_location "
          "other_allele effect_allele p_value beta standard_error effect_allele_frequency odds_ratio").split()
CHUNK = 1_000_000


def _fmt(values: np.ndarray, spec: str) -> np.ndarray:
    return np.char.mod(spec, values)


def chunk_text(rng: np.random.Generator, start: int, rows: int, total: int, loci: np.ndarray) -> bytes:
    index = np.arange(start, start + rows)
    chrom = 1 + (index * 22) // total
    pos = 10_000 + (index % (total // 22 + 1)) * 130 + rng.integers(0, 100, rows)
    bases = np.array(list("ACGT"))
    ref = bases[rng.integers(0, 4, rows)]
    alt = bases[(np.searchsorted(bases, ref) + rng.integers(1, 4, rows)) % 4]
    eaf = np.round(rng.beta(0.6, 1.2, rows).clip(0.005, 0.995), 4)
    n = 3_700
    se = 1.0 / np.sqrt(2 * eaf * (1 - eaf) * n)
    z = rng.standard_normal(rows)
    distance = np.abs(index[:, None] - loci[None, :]).min(axis=1)
    near = distance < 30
    z[near] += np.sign(z[near] + 1e-9) * 15.0 * np.exp(-distance[near] / 8.0)
    beta = z * se
    p = 2 * ndtr(-np.abs(z))
    code = np.where(rng.random(rows) < 0.01, 11, 10)
    unharmonised = rng.random(rows) < 0.004
    code[unharmonised] = 15
    hm_beta = np.where(code == 11, -beta, beta)
    hm_eaf = np.where(code == 11, 1 - eaf, eaf)
    hm_effect = np.where(code == 11, ref, alt)
    hm_other = np.where(code == 11, alt, ref)
    rsid = np.char.add("rs", (index * 7 + 1000).astype(str))
    chrom_s, pos_s = chrom.astype(str), pos.astype(str)
    hm_vid = np.char.add(np.char.add(np.char.add(np.char.add(chrom_s, "_"), pos_s), np.char.add("_", hm_other)),
                         np.char.add("_", hm_effect))
    na = np.full(rows, "NA", dtype=object)
    frame = pd.DataFrame({
        "hm_variant_id": hm_vid.astype(object), "hm_rsid": rsid.astype(object), "hm_chrom": chrom_s.astype(object),
        "hm_pos": pos_s.astype(object), "hm_other_allele": hm_other.astype(object),
        "hm_effect_allele": hm_effect.astype(object), "hm_beta": _fmt(hm_beta, "%.6g").astype(object),
        "hm_odds_ratio": na, "hm_ci_lower": na, "hm_ci_upper": na,
        "hm_effect_allele_frequency": _fmt(hm_eaf, "%.6g").astype(object), "hm_code": code.astype(str).astype(object),
        "variant_id": rsid.astype(object), "chromosome": chrom_s.astype(object), "base_pair_location": pos_s.astype(object),
        "other_allele": ref.astype(object), "effect_allele": alt.astype(object), "p_value": _fmt(p, "%.4g").astype(object),
        "beta": _fmt(beta, "%.6g").astype(object), "standard_error": _fmt(se, "%.6g").astype(object),
        "effect_allele_frequency": _fmt(eaf, "%.4g").astype(object), "odds_ratio": na,
    })
    for column in HEADER[:12]:
        if column != "hm_code":
            frame.loc[unharmonised, column] = "NA"
    return frame.to_csv(sep="\t", header=False, index=False, lineterminator="\n").encode()


def make(rows: int, out: Path, loci: int = 300, seed: int = 1) -> Path:
    if out.exists():
        return out
    rng = np.random.default_rng(seed)
    centres = np.sort(rng.choice(rows, size=loci, replace=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    with open(tmp, "wb") as handle:
        for start in range(0, rows, CHUNK):
            text = ("\t".join(HEADER) + "\n").encode() if start == 0 else b""
            text += chunk_text(rng, start, min(CHUNK, rows - start), rows, centres)
            packer = zlib.compressobj(6, zlib.DEFLATED, 31)
            handle.write(packer.compress(text) + packer.flush())
    tmp.rename(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or ROOT / "benchmarks" / "_work" / f"catalog_{args.rows // 1000}k.h.tsv.gz"
    print(make(args.rows, out))


if __name__ == "__main__":
    main()
