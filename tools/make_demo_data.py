#!/usr/bin/env python3
"""Generate the demo data bundled in ``mrjax/example_data/`` (deterministic; seed 2024).

What it writes (all simulated; see ``mrjax/example_data/README.md`` for the truth):

* ``demo_panel.{bed,bim,fam}`` — a PLINK subset of the shared simulated panel
  ``../shared/data/ldref/eur_sim`` (all 503 people). The panel's three regions are cut into
  22 windows of 400 kb separated by gaps of at least 300 kb; each window becomes its own
  chromosome (labels 1–22, original base-pair positions kept), variants with panel MAF < 0.05
  are dropped and the rest thinned at random to about 330 per window. The genotype bytes are
  copied unchanged from ``eur_sim.bed``. Windows are far enough apart that LD between them is
  negligible, so clumping at r² 0.001 / 10,000 kb keeps one instrument per causal window:
  the demo has enough independent instruments for every figure to be populated.
* ``exposures.parquet`` — 10 exposure GWAS (quantitative, SD units) in one long table:
  ``exposure, SNP, effect_allele, other_allele, eaf, beta, se, pval, samplesize`` (the layout of
  ``../shared/data/scan/exposures.parquet``).
* ``outcome.tsv.gz`` — one case/control outcome GWAS (log OR), tab-separated:
  ``SNP, effect_allele, other_allele, eaf, beta, se, pval, ncase, ncontrol``; its effect allele
  is the panel's A1, which differs from the exposures' effect allele for about half the rows.
* ``harmonised_example.tsv`` — a small harmonised table (TwoSampleMR ``dat`` columns, three
  exposure–outcome pairs) for ``mrjax mr``.
* ``truth.json`` — causal effects, causal variants, pleiotropic outliers, outcome loci.

Summary-statistic model (as ``shared/tools/simlib.py``, with the panel itself as the LD
sample): for per-allele effects beta_j and standardized effects b_j = beta_j sqrt(2 p_j q_j),
marginal z-scores are z = sqrt(N_eff) R b + e, e ~ N(0, R), computed per window from the
standardized panel genotypes X (n x m): R b = X'(X b)/n and e = X' g / sqrt(n), g ~ N(0, I_n).
se = 1/sqrt(2pq (N + z²)) (quantitative) or 1/sqrt(2pq N φ(1-φ)) (case/control),
beta = z se, p = 2 Φ(-|z|). Windows are simulated independently (block-diagonal R).

Causal model: outcome liability gamma_j = sum_k theta_k beta_kj + alpha_j (alpha: pleiotropic
outliers, 6 outcome-specific loci and a weak polygenic background), and exposure 10 is partly
caused by the outcome: beta_10j = own_j + delta * gamma_j (reverse causation).

Run from the project root:  ``python tools/make_demo_data.py`` (about 10 s); add
``--check`` to print a quick independent clump + IVW of both directions (genotype r², not
plink's EM r², so instrument lists may differ slightly from ``mrjax.clump``).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT.parent / "shared" / "data" / "ldref" / "eur_sim"
OUT = ROOT / "mrjax" / "example_data"
SEED = 2024

WINDOW_BP = 400_000
GAP_BP = 300_000
N_WINDOWS = 22
PER_WINDOW = 330
MIN_MAF = 0.05
MIN_CAUSAL_SPACING_BP = 150_000  # between outcome-affecting variants of different traits

NCASE, NCONTROL = 100_000, 300_000
PHI = NCASE / (NCASE + NCONTROL)
N_OFF_PANEL = 60  # low-frequency variants in the GWAS files but not in the panel

# name, GWAS N, causal effect theta (log OR per SD), number of causal variants,
# pleiotropic outliers (count, target |outcome z| of each), mean causal z^2
EXPOSURES = [
    ("exp_01", 180_000, 0.30, 7, (0, 0.0), 90.0),
    ("exp_02", 150_000, -0.25, 7, (0, 0.0), 80.0),
    ("exp_03", 150_000, 0.30, 9, (2, 4.0), 150.0),
    ("exp_04", 90_000, 0.00, 6, (0, 0.0), 60.0),
    ("exp_05", 60_000, 0.00, 6, (0, 0.0), 80.0),
    ("exp_06", 110_000, 0.00, 7, (2, 4.0), 70.0),
    ("exp_07", 80_000, 0.00, 5, (0, 0.0), 60.0),
    ("exp_08", 140_000, 0.00, 6, (0, 0.0), 60.0),
    ("exp_09", 70_000, 0.00, 5, (0, 0.0), 60.0),
    ("exp_10", 200_000, 0.00, 5, (0, 0.0), 60.0),
]
REVERSE_EXPOSURE = "exp_10"
REVERSE_DELTA = 0.15  # SD of exp_10 per unit of outcome log-odds liability
N_OUTCOME_LOCI = 6
OUTCOME_LOCUS_Z = (9.0, 14.0)  # range of the outcome z-scores at its own loci
N_BACKGROUND = 150


# ----------------------------------------------------------------------------- panel
def read_panel(prefix: Path):
    """bim, fam and the raw SNP-major .bed bytes (one row of ceil(n/4) bytes per variant)."""
    bim = pd.read_csv(f"{prefix}.bim", sep="\t", header=None, names=["chr", "snp", "cm", "pos", "a1", "a2"],
                      dtype={"chr": str, "snp": str, "a1": str, "a2": str})
    fam_text = Path(f"{prefix}.fam").read_text()
    n = len(fam_text.splitlines())
    raw = np.fromfile(f"{prefix}.bed", dtype=np.uint8)
    if raw[:3].tolist() != [0x6C, 0x1B, 0x01]:
        raise ValueError(f"{prefix}.bed is not a SNP-major PLINK 1 file")
    per = (n + 3) // 4
    return bim, fam_text, raw[3:].reshape(len(bim), per), n


def decode(rows: np.ndarray, n: int) -> np.ndarray:
    """A1 allele counts (variants x people, float, NaN = missing) from packed .bed rows."""
    codes = np.stack([(rows >> shift) & 3 for shift in (0, 2, 4, 6)], axis=-1).reshape(len(rows), -1)[:, :n]
    table = np.array([2.0, np.nan, 1.0, 0.0])  # 00 hom A1, 01 missing, 10 het, 11 hom A2
    return table[codes]


def choose_windows(bim: pd.DataFrame) -> list[tuple[str, int, int]]:
    windows = []
    for chrom in dict.fromkeys(bim["chr"]):
        pos = bim.loc[bim["chr"] == chrom, "pos"]
        start = int(pos.min())
        while start + WINDOW_BP <= pos.max():
            windows.append((chrom, start, start + WINDOW_BP))
            start += WINDOW_BP + GAP_BP
    if len(windows) < N_WINDOWS:
        raise SystemExit(f"panel has room for only {len(windows)} windows")
    return windows[:N_WINDOWS]


def build_panel(rng, bim, bed_rows, n):
    windows = choose_windows(bim)
    keep, labels = [], []
    for label, (chrom, lo, hi) in enumerate(windows, start=1):
        idx = np.where((bim["chr"] == chrom).to_numpy() & (bim["pos"] >= lo).to_numpy() & (bim["pos"] < hi).to_numpy())[0]
        counts = decode(bed_rows[idx], n)
        freq = np.nanmean(counts, axis=1) / 2
        idx = idx[np.minimum(freq, 1 - freq) >= MIN_MAF]
        idx = np.sort(rng.choice(idx, min(PER_WINDOW, len(idx)), replace=False))
        keep.append(idx)
        labels.append(np.full(len(idx), label))
    keep = np.concatenate(keep)
    sub = bim.iloc[keep].reset_index(drop=True).copy()
    sub["chr"] = np.concatenate(labels).astype(str)
    return sub, bed_rows[keep], windows


# ----------------------------------------------------------------------------- GWAS model
def standardize(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standardized genotypes (variants x people; missing -> 0) and A1 frequencies."""
    p = np.nanmean(counts, axis=1) / 2
    x = (counts - 2 * p[:, None]) / np.sqrt(2 * p * (1 - p))[:, None]
    return np.nan_to_num(x), p


def zscores(x_by_window, b_std, n_eff, rng) -> np.ndarray:
    """z = sqrt(N_eff) R b + e per window (block-diagonal R); b_std is variants x traits."""
    out, start = [], 0
    for x in x_by_window:
        m, n = x.shape
        b = b_std[start:start + m]
        signal = x @ (x.T @ b) / n * np.sqrt(n_eff)[None, :]
        noise = x @ rng.standard_normal((n, b.shape[1])) / np.sqrt(n)
        out.append(signal + noise)
        start += m
    return np.concatenate(out)


def summary_stats(z, pq2, n, phi=None):
    se = 1 / np.sqrt(pq2 * (n + z ** 2)) if phi is None else 1 / np.sqrt(pq2 * n * phi * (1 - phi)) * np.ones_like(z)
    return z * se, se, 2 * ndtr(-np.abs(z))


def pick_causal(rng, chrom, pos, n_pick, taken_windows, blocked):
    """n_pick variants in distinct windows not in ``taken_windows``, away from ``blocked`` positions."""
    windows = [w for w in rng.permutation(np.unique(chrom)) if w not in taken_windows]
    chosen = []
    for w in windows:
        cand = np.where(chrom == w)[0]
        ok = [j for j in cand if all(abs(pos[j] - q) >= MIN_CAUSAL_SPACING_BP for q in blocked.get(w, []))]
        if ok:
            chosen.append(int(rng.choice(ok)))
        if len(chosen) == n_pick:
            return chosen
    raise SystemExit("not enough windows for the causal variants; lower the counts")


def simulate(rng, panel, counts):
    chrom = panel["chr"].to_numpy()
    pos = panel["pos"].to_numpy()
    x, p_a1 = standardize(counts)
    m = len(panel)
    # exposures report the allele "ALT" of a simulated reference: A1 or A2 at random per variant
    alt_is_a1 = rng.random(m) < 0.5
    alt = np.where(alt_is_a1, panel["a1"], panel["a2"])
    ref = np.where(alt_is_a1, panel["a2"], panel["a1"])
    p_alt = np.where(alt_is_a1, p_a1, 1 - p_a1)
    pq2 = 2 * p_alt * (1 - p_alt)
    sign_a1 = np.where(alt_is_a1, 1.0, -1.0)  # per-ALT effect -> per-A1 effect

    K = len(EXPOSURES)
    beta = np.zeros((m, K))  # per-ALT exposure effects (own genetics)
    gamma = np.zeros(m)  # per-ALT outcome log-OR liability effects
    n_eff_y = (NCASE + NCONTROL) * PHI * (1 - PHI)
    blocked: dict[str, list[int]] = {}
    truth = {"exposures": {}, "outcome": {}}

    # outcome-specific loci get their own windows first
    own = pick_causal(rng, chrom, pos, N_OUTCOME_LOCI, set(), blocked)
    own_windows = {chrom[j] for j in own}
    z_own = rng.uniform(*OUTCOME_LOCUS_Z, N_OUTCOME_LOCI) * rng.choice([-1, 1], N_OUTCOME_LOCI)
    gamma[own] += z_own / np.sqrt(n_eff_y) / np.sqrt(pq2[own])
    for j in own:
        blocked.setdefault(chrom[j], []).append(pos[j])
    truth["outcome"]["own_loci"] = [
        {"SNP": panel["snp"][j], "effect_allele": alt[j], "alpha_logOR": round(float(gamma[j]), 6)} for j in own
    ]
    for k, (name, n, theta, n_causal, (n_out, z_out), mean_z2) in enumerate(EXPOSURES):
        affects_outcome = theta != 0 or n_out > 0
        idx = pick_causal(rng, chrom, pos, n_causal, own_windows, blocked if affects_outcome else {})
        z2 = rng.exponential(mean_z2 * 0.7, n_causal) + 0.3 * mean_z2
        beta[idx, k] = rng.choice([-1, 1], n_causal) * np.sqrt(z2 / n) / np.sqrt(pq2[idx])
        gamma += theta * beta[:, k]
        outliers = []
        if n_out:
            for j in rng.choice(idx, n_out, replace=False):
                alpha = rng.choice([-1, 1]) * z_out / np.sqrt(n_eff_y) / np.sqrt(pq2[j])
                gamma[j] += alpha
                outliers.append({"SNP": panel["snp"][j], "effect_allele": alt[j], "alpha_logOR": round(float(alpha), 6)})
        if affects_outcome:
            for j in idx:
                blocked.setdefault(chrom[j], []).append(pos[j])
        truth["exposures"][name] = {
            "N": n, "theta_logOR_per_SD": theta, "n_causal_variants": n_causal,
            "causal_variants": [{"SNP": panel["snp"][j], "effect_allele": alt[j], "other_allele": ref[j],
                                 "beta": round(float(beta[j, k]), 6)} for j in idx],
            "pleiotropic_outliers": outliers,
        }
    background = rng.choice(m, N_BACKGROUND, replace=False)
    gamma[background] += rng.normal(0, 1, N_BACKGROUND) * np.sqrt(2e-6 / pq2[background])
    k10 = [e[0] for e in EXPOSURES].index(REVERSE_EXPOSURE)
    beta_total = beta.copy()
    beta_total[:, k10] += REVERSE_DELTA * gamma  # reverse causation: outcome liability -> exp_10
    truth["exposures"][REVERSE_EXPOSURE]["reverse_effect_of_outcome_SD_per_logOR"] = REVERSE_DELTA

    n_x = np.array([e[1] for e in EXPOSURES], float)
    b_std = np.column_stack([beta_total * np.sqrt(pq2)[:, None], gamma * np.sqrt(pq2)])
    windows = [np.where(chrom == w)[0] for w in dict.fromkeys(chrom)]
    order = np.concatenate(windows)
    if not np.array_equal(order, np.arange(m)):
        raise SystemExit("panel rows must be grouped by window")
    z = zscores([x[w] for w in windows], b_std, np.append(n_x, n_eff_y), rng)

    parts = []
    for k, (name, n, *_rest) in enumerate(EXPOSURES):
        rows = np.where(rng.random(m) > 0.01)[0]  # each GWAS misses ~1% of the panel
        b, se, pval = summary_stats(z[rows, k], pq2[rows], n)
        parts.append(pd.DataFrame({
            "exposure": name, "SNP": panel["snp"].to_numpy()[rows], "effect_allele": alt[rows], "other_allele": ref[rows],
            "eaf": p_alt[rows], "beta": b, "se": se, "pval": pval, "samplesize": n}))
        parts.append(off_panel_rows(rng, name, n))
    exposures = pd.concat(parts, ignore_index=True)
    b, se, pval = summary_stats(z[:, K], pq2, NCASE + NCONTROL, PHI)
    outcome = pd.DataFrame({
        "SNP": panel["snp"], "effect_allele": panel["a1"], "other_allele": panel["a2"], "eaf": p_a1,
        "beta": b * sign_a1, "se": se, "pval": pval, "ncase": NCASE, "ncontrol": NCONTROL})
    outcome = pd.concat([outcome, off_panel_rows(rng, None, None)], ignore_index=True)
    truth["outcome"].update({"ncase": NCASE, "ncontrol": NCONTROL,
                             "polygenic_background": f"{N_BACKGROUND} random variants, per-variant h2 ~2e-6"})
    return exposures, outcome, truth


OFF_PANEL_RNG_SEED = 7


def off_panel_rows(rng, name, n):
    """Null low-frequency variants absent from the panel (the same IDs in every file)."""
    fixed = np.random.default_rng(OFF_PANEL_RNG_SEED)
    snps = np.array([f"rs9{900000 + i}" for i in range(N_OFF_PANEL)])
    a1 = fixed.choice(list("AC"), N_OFF_PANEL)
    a2 = np.where(a1 == "A", "G", "T")
    freq = fixed.uniform(0.005, 0.01, N_OFF_PANEL)
    pq2 = 2 * freq * (1 - freq)
    z = rng.standard_normal(N_OFF_PANEL)
    if name is None:
        b, se, pval = summary_stats(z, pq2, NCASE + NCONTROL, PHI)
        return pd.DataFrame({"SNP": snps, "effect_allele": a1, "other_allele": a2, "eaf": freq, "beta": b, "se": se,
                             "pval": pval, "ncase": NCASE, "ncontrol": NCONTROL})
    b, se, pval = summary_stats(z, pq2, n)
    return pd.DataFrame({"exposure": name, "SNP": snps, "effect_allele": a1, "other_allele": a2, "eaf": freq,
                         "beta": b, "se": se, "pval": pval, "samplesize": n})


# ----------------------------------------------------------------------------- harmonised example
def harmonised_example(rng, panel) -> pd.DataFrame:
    """Three exposure–outcome pairs of independent instruments, TwoSampleMR ``dat`` columns."""
    specs = [("ldl_demo", 0.35, 14, 0), ("crp_demo", 0.0, 10, 0), ("bmi_demo", 0.25, 18, 3)]
    snps = rng.choice(panel["snp"].to_numpy(), sum(s[2] for s in specs), replace=False)
    alleles = dict(zip(panel["snp"], zip(panel["a1"], panel["a2"])))
    frames, used = [], 0
    for name, theta, k, n_outliers in specs:
        ids = snps[used:used + k]
        used += k
        eaf = rng.uniform(0.05, 0.95, k)
        pq2 = 2 * eaf * (1 - eaf)
        n_x, n_y = 200_000, 300_000
        bx_true = rng.choice([-1, 1], k) * np.sqrt(rng.uniform(40, 150, k) / n_x / pq2)
        alpha = np.zeros(k)
        alpha[:n_outliers] = rng.choice([-1, 1], n_outliers) * 6 / np.sqrt(n_y * PHI * (1 - PHI) * pq2[:n_outliers])
        sx = 1 / np.sqrt(pq2 * n_x)
        sy = 1 / np.sqrt(pq2 * n_y * PHI * (1 - PHI))
        bx = bx_true + sx * rng.standard_normal(k)
        by = theta * bx_true + alpha + sy * rng.standard_normal(k)
        a1 = np.array([alleles[s][0] for s in ids])
        a2 = np.array([alleles[s][1] for s in ids])
        frames.append(pd.DataFrame({
            "SNP": ids, "effect_allele.exposure": a1, "other_allele.exposure": a2,
            "effect_allele.outcome": a1, "other_allele.outcome": a2,
            "beta.exposure": bx.round(6), "beta.outcome": by.round(6),
            "eaf.exposure": eaf.round(4), "eaf.outcome": eaf.round(4),
            "remove": False, "palindromic": False, "ambiguous": False,
            "id.outcome": "demo_outcome", "se.outcome": sy.round(6), "pval.outcome": 2 * ndtr(-np.abs(by / sy)),
            "samplesize.outcome": n_y, "outcome": "demo_outcome",
            "se.exposure": sx.round(6), "pval.exposure": 2 * ndtr(-np.abs(bx / sx)), "samplesize.exposure": n_x,
            "exposure": name, "id.exposure": name, "action": 2, "mr_keep": True}))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- writing
def write_outputs(out: Path, panel, bed_rows, fam_text, exposures, outcome, harmonised, truth):
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "demo_panel.bed", "wb") as f:
        f.write(bytes([0x6C, 0x1B, 0x01]))
        f.write(np.ascontiguousarray(bed_rows).tobytes())
    panel.to_csv(out / "demo_panel.bim", sep="\t", header=False, index=False)
    (out / "demo_panel.fam").write_text(fam_text)
    for column in ("eaf", "beta", "se"):
        exposures[column] = exposures[column].astype(np.float32)
    exposures["samplesize"] = exposures["samplesize"].astype(np.int32)
    for column in ("exposure", "effect_allele", "other_allele"):
        exposures[column] = exposures[column].astype("category")
    exposures.to_parquet(out / "exposures.parquet", index=False, compression="zstd", compression_level=19)
    text = io.StringIO()
    outcome.to_csv(text, sep="\t", index=False, float_format="%.6g")
    # mtime=0 keeps the gzip bytes identical between runs
    with gzip.GzipFile(out / "outcome.tsv.gz", "wb", mtime=0) as f:
        f.write(text.getvalue().encode())
    harmonised.to_csv(out / "harmonised_example.tsv", sep="\t", index=False, float_format="%.6g")
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")


# ----------------------------------------------------------------------------- quick check
def quick_check(panel, counts, exposures, outcome, p_threshold=1e-5, r2=0.001):
    """Greedy clump on genotype r² per window-chromosome, harmonise by alleles, IVW (both directions)."""
    x, _ = standardize(counts)
    n = x.shape[1]
    row_of = {s: i for i, s in enumerate(panel["snp"])}
    chrom = panel["chr"].to_numpy()
    out = outcome.set_index("SNP")

    def clump(table):
        hits = table[(table["pval"] < p_threshold) & table["SNP"].isin(row_of)].sort_values("pval", kind="stable")
        index = []
        for s in hits["SNP"]:
            j = row_of[s]
            if all(chrom[i] != chrom[j] or (x[i] @ x[j] / n) ** 2 <= r2 for i in (row_of[t] for t in index)):
                index.append(s)
        return index

    def ivw(bx, by, sy):
        w = 1 / sy ** 2
        b = np.sum(w * bx * by) / np.sum(w * bx ** 2)
        se = 1 / np.sqrt(np.sum(w * bx ** 2))
        sigma = np.sqrt(np.sum(w * (by - b * bx) ** 2) / max(len(bx) - 1, 1))
        se *= max(1.0, sigma) if len(bx) > 1 else 1.0
        return b, se, 2 * ndtr(-abs(b / se))

    print("forward (exposure -> outcome)")
    for name, table in exposures.groupby("exposure", observed=True):
        snps = [s for s in clump(table) if s in out.index]
        t = table.set_index("SNP").loc[snps]
        o = out.loc[snps]
        sign = np.where(o["effect_allele"].to_numpy() == t["effect_allele"].astype(str).to_numpy(), 1, -1)
        b, se, p = ivw(t["beta"].to_numpy(float), sign * o["beta"].to_numpy(float), o["se"].to_numpy(float))
        print(f"  {name}: nsnp {len(snps):2d}  b {b:+.3f}  se {se:.3f}  p {p:.2e}")
    print("reverse (outcome -> exposure)")
    snps = clump(outcome.reset_index(drop=True))
    for name, table in exposures.groupby("exposure", observed=True):
        t = table.set_index("SNP")
        ok = [s for s in snps if s in t.index]
        o, tt = out.loc[ok], t.loc[ok]
        sign = np.where(o["effect_allele"].to_numpy() == tt["effect_allele"].astype(str).to_numpy(), 1, -1)
        b, se, p = ivw(o["beta"].to_numpy(float), sign * tt["beta"].to_numpy(float), tt["se"].to_numpy(float))
        print(f"  outcome -> {name}: nsnp {len(ok):2d}  b {b:+.3f}  se {se:.3f}  p {p:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panel", type=Path, default=PANEL, help="PLINK prefix of the source panel")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true", help="print a quick clump + IVW of both directions")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    bim, fam_text, bed_rows, n = read_panel(args.panel)
    panel, rows, windows = build_panel(rng, bim, bed_rows, n)
    counts = decode(rows, n)
    exposures, outcome, truth = simulate(rng, panel, counts)
    truth = {
        "seed": args.seed,
        "panel": {"source": "shared/data/ldref/eur_sim", "variants": len(panel), "people": n,
                  "windows": [{"chromosome": str(i + 1), "source_chr": c, "start_bp": lo, "end_bp": hi}
                              for i, (c, lo, hi) in enumerate(windows)]},
        **truth,
    }
    harmonised = harmonised_example(rng, panel)
    write_outputs(args.out, panel, rows, fam_text, exposures, outcome, harmonised, truth)
    print(f"wrote {args.out}: {len(panel)} panel variants, {len(exposures)} exposure rows, {len(outcome)} outcome rows")
    if args.check:
        quick_check(panel, counts, exposures, outcome)


if __name__ == "__main__":
    main()
