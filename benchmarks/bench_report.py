"""Benchmark: the report stage of a seed-study-sized scan (731 traits × 2 directions × 6 methods).

What a scan pays after estimation: the results table (odds ratios, BH-FDR and Bonferroni
per direction and method), atomic TSV + parquet writes, the figures (scan forest and volcano,
then scatter + leave-one-out + funnel for each significant trait, PNG and SVG each) and the
self-contained ``report.html``. Each row is compared with a baseline measured in the same run:

* tables — the obvious pandas version: ``groupby().transform`` with
  ``scipy.stats.false_discovery_control`` and ``np.exp`` for the OR columns;
* atomic TSV / parquet — plain ``DataFrame.to_csv`` / ``to_parquet`` to the final path;
* figures — an empty matplotlib figure saved as PNG + SVG (the fixed cost of any figure);
* report — reading the figure PNGs and base64-encoding them (the embedding floor).

Usage (from the project root): ``.venv/bin/python benchmarks/bench_report.py [--traits 731]
[--significant 20] [--snps 40]``. The input tables are synthetic (plain numpy), shaped like
``mrjax.mr`` / ``leave_one_out`` / ``single_snp`` / the harmonised table.
"""

from __future__ import annotations

import argparse
import base64
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.stats import false_discovery_control, norm  # noqa: E402

from mrjax import outputs  # noqa: E402
from mrjax.report import html, plots, tables  # noqa: E402

METHODS = [("mr_wald_ratio", "Wald ratio"), ("mr_egger_regression", "MR Egger"), ("mr_weighted_median", "Weighted median"),
           ("mr_ivw", "Inverse variance weighted"), ("mr_simple_mode", "Simple mode"), ("mr_weighted_mode", "Weighted mode")]


def synthetic_scan(n_traits: int, n_significant: int, n_snps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mr, harm, loo, single = [], [], [], []
    for direction in ("forward", "reverse"):
        for t in range(n_traits):
            exposure, outcome = (f"cell_trait_{t:03d}", "disease") if direction == "forward" else ("disease", f"cell_trait_{t:03d}")
            causal = direction == "forward" and t < n_significant
            b_true = 0.15 if causal else 0.0
            for method_id, method in METHODS:
                se = rng.uniform(0.02, 0.05)
                b = b_true + rng.normal(0, se)
                mr.append((direction, exposure, outcome, method_id, method, n_snps, b, se, 2 * norm.sf(abs(b / se))))
            if causal:
                bx = rng.uniform(0.05, 0.1, n_snps) * rng.choice([-1, 1], n_snps)
                by = b_true * bx + rng.normal(0, 0.01, n_snps)
                snps = [f"rs{t}_{i}" for i in range(n_snps)]
                harm.append(pd.DataFrame({"direction": direction, "exposure": exposure, "outcome": outcome, "SNP": snps,
                                          "beta.exposure": bx, "se.exposure": 0.01, "beta.outcome": by, "se.outcome": 0.01}))
                loo.append(pd.DataFrame({"direction": direction, "exposure": exposure, "outcome": outcome,
                                         "SNP": snps + ["All"], "b": rng.normal(b_true, 0.01, n_snps + 1), "se": 0.03, "p": 1e-6}))
                single.append(pd.DataFrame({"direction": direction, "exposure": exposure, "outcome": outcome, "SNP": snps,
                                            "b": by / bx, "se": 0.01 / np.abs(bx), "p": 0.01}))
    columns = ["direction", "exposure", "outcome", "method_id", "method", "nsnp", "b", "se", "pval"]
    return pd.DataFrame(mr, columns=columns), pd.concat(harm), pd.concat(loo), pd.concat(single)


def timed(fn, repeats: int = 1):
    """Best of ``repeats`` CPU times (process time: the machine is shared, wall time is noisy)."""
    best = np.inf
    value = None
    for _ in range(repeats):
        start = time.process_time()
        value = fn()
        best = min(best, time.process_time() - start)
    return best, value


def baseline_tables(mr: pd.DataFrame) -> pd.DataFrame:
    out = mr.copy()
    out["or"] = np.exp(out["b"])
    out["or_lci95"] = np.exp(out["b"] - 1.96 * out["se"])
    out["or_uci95"] = np.exp(out["b"] + 1.96 * out["se"])
    grouped = out.groupby(["direction", "method_id"])["pval"]
    out["qval_fdr"] = grouped.transform(lambda p: false_discovery_control(p.to_numpy()))
    out["pval_bonferroni"] = grouped.transform(lambda p: np.minimum(1, p * len(p)))
    return out


def empty_figure(folder: Path, i: int) -> None:
    fig = Figure(figsize=(6, 4.5))
    fig.subplots()
    fig.savefig(folder / f"empty_{i}.png", dpi=outputs.PNG_DPI)
    fig.savefig(folder / f"empty_{i}.svg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traits", type=int, default=731)
    parser.add_argument("--significant", type=int, default=20)
    parser.add_argument("--snps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mr, harm, loo, single = synthetic_scan(args.traits, args.significant, args.snps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t_base, base = timed(lambda: baseline_tables(mr), args.repeats)
        t_ours, res = timed(lambda: tables.scan_results(mr), args.repeats)
        np.testing.assert_allclose(res["qval_fdr"], base["qval_fdr"], rtol=1e-12)
        rows.append((f"results table ({len(res):,} rows)", t_ours, "pandas groupby + scipy BH", t_base))

        t_base, _ = timed(lambda: res.to_csv(tmp / "plain.tsv", sep="\t", index=False), args.repeats)
        t_ours, _ = timed(lambda: outputs.write_tsv(tmp / "results.tsv", res), args.repeats)
        rows.append(("atomic results.tsv", t_ours, "plain to_csv", t_base))
        t_base, _ = timed(lambda: res.to_parquet(tmp / "plain.parquet", index=False), args.repeats)
        t_ours, _ = timed(lambda: outputs.write_parquet(tmp / "results.parquet", res), args.repeats)
        rows.append(("atomic results.parquet", t_ours, "plain to_parquet", t_base))

        t_ours, figures = timed(lambda: plots.scan_figures(tmp / "figures", res, harmonised=harm, leave_one_out=loo,
                                                             single_snp=single))
        drawn = 2 + sum(len([k for k in e if k not in ("direction", "exposure", "outcome")]) for e in figures["traits"])
        t_base, _ = timed(lambda: [empty_figure(tmp, i) for i in range(drawn)])
        rows.append((f"figures ({drawn} × PNG+SVG)", t_ours, f"{drawn} empty figures", t_base))

        pngs = [p for p in (tmp / "figures").rglob("*.png")]
        t_base, _ = timed(lambda: [base64.b64encode(p.read_bytes()) for p in pngs], args.repeats)
        t_ours, path = timed(lambda: html.write_report({"results": res, "leave_one_out": loo}, None, figures,
                                                       tmp / "report.html"), args.repeats)
        size = Path(path).stat().st_size / 1e6
        rows.append((f"report.html ({size:.1f} MB)", t_ours, "base64 of the PNGs", t_base))

    print(f"Report stage: {args.traits} traits x 2 directions x {len(METHODS)} methods, {args.significant} significant, "
          f"{args.snps} SNPs each")
    print(f"{'stage':36s} {'mrjax CPU s':>11s}  {'baseline':28s} {'base s':>8s} {'ratio':>7s}")
    for name, ours, base_name, base in rows:
        print(f"{name:36s} {ours:11.3f}  {base_name:28s} {base:8.3f} {ours / base:7.2f}")
    print(f"{'total':36s} {sum(r[1] for r in rows):11.3f}")


if __name__ == "__main__":
    main()
