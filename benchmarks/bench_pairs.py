"""Benchmark: phenome-scale MR, N exposures × M outcomes (issue 16).

A generator writes small GWAS files whose SNPs are the real LD panel ``../shared/data/ldref/eur_sim``
(503 founders, 38,169 variants): every trait has causal variants drawn from the panel and its
marginal effects are ``R[:, C] β_C`` (LD ``R`` from the panel's own genotypes, within 100 kb
where r² ≥ 0.01) plus sampling noise, so instruments must be clumped for real. 5% of exposure–outcome pairs have a causal
effect θ (the outcome's causal effects include θ × the exposure's). Exposure files hold the
panel variants within 100 kb of a causal variant; outcome files every panel variant; all on
the panel's A1 allele. Files go to ``benchmarks/_work/pairs/`` (git-ignored).

Measured (each in the same run, CPU-seconds of the process beside wall, ``uptime`` printed):

a. estimation on prebuilt harmonised pairs: the exposures' instruments (clumped once with
   ``mrjax.clump``) looked up in every outcome give a long table of N × M pairs;
   ``mrjax.analyse`` (TwoSampleMR's default panel with 1,000 bootstraps, heterogeneity,
   pleiotropy, leave-one-out, single-SNP) then ``mrjax.presso`` (10³ draws), cold and warm;
b. ``mrjax scan`` end to end on a smaller scan (several outcome files), time per stage;
c. peak RSS of a fresh process estimating 10⁴ and 10⁵ pairs (blocks of ``--block`` pairs,
   each block's tables written to parquet and dropped, as a block-wise scan does), after a
   warm-up block whose peak (compilation) is reported apart; children share a persistent
   compilation cache under ``_work/pairs/jax_cache``;
d. the same pairs on 4 forced CPU devices vs 1 (a subprocess with
   ``XLA_FLAGS=--xla_force_host_platform_device_count=4``, ``engine.set_devices``), results
   compared bit for bit.

Usage (from the project root)::

    .venv/bin/python benchmarks/bench_pairs.py [--exposures 200] [--outcomes 50] [--quick]
        [--scan-exposures 20] [--scan-outcomes 5] [--skip a,b,c,d]

``--quick`` scales everything down (for a smoke test: 40 × 10 pairs, 10³/10⁴ for RSS). A full run
took 33 min under a load average of 7–21 on the 2-core dev machine (most of it compilation and the
10⁵-pair child); ``--skip c`` or ``--rss-pairs 10000`` shortens it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PANEL = ROOT.parent / "shared" / "data" / "ldref" / "eur_sim"
WORK = ROOT / "benchmarks" / "_work" / "pairs"

# Selection used by the generator's instruments and by the scan (stated in RESULTS.md):
# genome-wide p, TwoSampleMR's r² with a 250 kb window (a 10 Mb window over this 503-person
# panel, where noise r² ~ 1/503 > 0.001, would leave ~2 instruments per chromosome).
P1, CLUMP_R2, CLUMP_KB = 5e-8, 0.001, 250
WINDOW_BP = 100_000
N_BOOT, PRESSO_DRAWS = 1000, 1000


# --------------------------------------------------------------------------------------------
# Generator


class Panel:
    """The panel's standardised genotypes ``G`` [people, variants] (missing calls at the mean)."""

    def __init__(self):
        from mrjax.ld import LDPanel

        panel = LDPanel.load(PANEL)
        calls = panel.genotypes.astype(np.float64)  # [variants, people], −127 = missing
        calls[calls < 0] = np.nan
        freq = np.nanmean(calls, axis=1) / 2
        calls = np.where(np.isnan(calls), 2 * freq[:, None], calls)
        sd = calls.std(axis=1)
        keep = (sd > 0) & (freq > 0.005) & (freq < 0.995)
        self.snp, self.chrom, self.pos = panel.snp[keep], panel.chrom[keep], panel.pos[keep]
        self.a1, self.a2, self.eaf = panel.a1[keep], panel.a2[keep], freq[keep]
        self.g = ((calls[keep] - calls[keep].mean(axis=1, keepdims=True)) / sd[keep, None]).T.copy()
        self.n_people, self.n_variants = self.g.shape

    def ld_columns(self, causal: np.ndarray):
        """Population LD of every variant with the variants ``causal``, as a sparse
        ``[variants, len(causal)]`` matrix: the panel's r within ``WINDOW_BP`` on the same
        chromosome where r² ≥ 0.01, 0 elsewhere. (Untruncated, the panel's sampling noise in r,
        ~1/√503, times a GWAS N of 10⁵ would make thousands of unlinked variants significant.)"""
        from scipy import sparse

        rows, cols, values = [], [], []
        for j, c in enumerate(causal):
            near = np.flatnonzero((self.chrom == self.chrom[c]) & (np.abs(self.pos - self.pos[c]) <= WINDOW_BP))
            r = self.g[:, near].T @ self.g[:, c] / self.n_people
            keep = r**2 >= 0.01
            rows.append(near[keep]), cols.append(np.full(keep.sum(), j)), values.append(r[keep])
        return sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(self.n_variants, len(causal)))


def trait_models(panel: Panel, n_exposures: int, n_outcomes: int, seed: int):
    """Causal standardised effects of every exposure and outcome over one list of causal
    variants (``beta_exp [causal, exposures]``, ``beta_out [causal, outcomes]``: each outcome's
    own variants plus θ × the exposures'), the LD with them (:meth:`Panel.ld_columns`), sample
    sizes and θ [exposures, outcomes] (non-zero in 5% of pairs)."""
    rng = np.random.default_rng(seed)

    def draw(n_causal, h2):
        beta = rng.normal(0, 1, n_causal)
        return rng.choice(panel.n_variants, n_causal, replace=False), beta * np.sqrt(h2 / np.sum(beta**2))

    exposures = [draw(5 + rng.poisson(15), rng.uniform(0.002, 0.02)) for _ in range(n_exposures)]
    theta = np.where(rng.random((n_exposures, n_outcomes)) < 0.05,
                     rng.choice([-1, 1], (n_exposures, n_outcomes)) * rng.uniform(0.05, 0.2, (n_exposures, n_outcomes)), 0.0)
    n_exp = rng.integers(20_000, 400_000, n_exposures)
    n_out = rng.integers(50_000, 500_000, n_outcomes)
    outcomes = [draw(5 + rng.poisson(10), 0.01) for _ in range(n_outcomes)]
    causal = np.concatenate([c for c, _ in exposures + outcomes])
    beta_exp = np.zeros((len(causal), n_exposures))
    beta_out = np.zeros((len(causal), n_outcomes))
    at = 0
    for e, (c, b) in enumerate(exposures):
        beta_exp[at : at + len(c), e] = b
        at += len(c)
    for o, (c, b) in enumerate(outcomes):
        beta_out[at : at + len(c), o] = b
        at += len(c)
    beta_out += beta_exp @ theta
    return dict(ld=panel.ld_columns(causal), beta_exp=beta_exp, beta_out=beta_out, theta=theta,
                causal=[c for c, _ in exposures], n_exp=n_exp, n_out=n_out)


def gwas_frame(panel: Panel, rows: np.ndarray, beta_std: np.ndarray, n: int, rng) -> pd.DataFrame:
    """A GWAS table (per A1 allele) at panel variants ``rows`` from noise-free standardised
    marginal effects: ``b_std + ε/√N``, scaled by ``1/√(2p(1−p))``."""
    scale = 1 / np.sqrt(2 * panel.eaf[rows] * (1 - panel.eaf[rows]))
    z = beta_std * np.sqrt(n) + rng.standard_normal(len(rows))
    se = scale / np.sqrt(n)
    return pd.DataFrame({
        "SNP": panel.snp[rows], "chr": panel.chrom[rows], "pos": panel.pos[rows],
        "effect_allele": panel.a1[rows], "other_allele": panel.a2[rows], "eaf": panel.eaf[rows],
        "beta": z * se, "se": se, "pval": 2 * stats.norm.sf(np.abs(z)), "samplesize": n,
    })


def exposure_rows(panel: Panel, causal: np.ndarray) -> np.ndarray:
    """Panel variants within ``WINDOW_BP`` of a causal variant (same chromosome)."""
    near = np.zeros(panel.n_variants, dtype=bool)
    for c in causal:
        near |= (panel.chrom == panel.chrom[c]) & (np.abs(panel.pos - panel.pos[c]) <= WINDOW_BP)
    return np.flatnonzero(near)


def generate(n_exposures: int, n_outcomes: int, seed: int = 16) -> Path:
    """Write ``exposures/exp_XXXX.parquet`` and ``outcomes/out_XXXX.parquet`` (cached by
    size and seed) and return their folder."""
    folder = WORK / f"{n_exposures}x{n_outcomes}_s{seed}"
    if (folder / "done").exists():
        return folder
    panel = Panel()
    model = trait_models(panel, n_exposures, n_outcomes, seed)
    (folder / "exposures").mkdir(parents=True, exist_ok=True)
    (folder / "outcomes").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    for e in range(n_exposures):
        rows = exposure_rows(panel, model["causal"][e])
        frame = gwas_frame(panel, rows, model["ld"][rows] @ model["beta_exp"][:, e], int(model["n_exp"][e]), rng)
        frame.to_parquet(folder / "exposures" / f"exp_{e:04d}.parquet", index=False)
    marginal = model["ld"] @ model["beta_out"]
    for o in range(n_outcomes):
        frame = gwas_frame(panel, np.arange(panel.n_variants), marginal[:, o], int(model["n_out"][o]), rng)
        frame.to_parquet(folder / "outcomes" / f"out_{o:04d}.parquet", index=False)
    np.save(folder / "theta.npy", model["theta"])
    (folder / "done").write_text("")
    return folder


def instruments(folder: Path) -> pd.DataFrame:
    """Every exposure's instruments: p ≤ P1, clumped once against the panel (``mrjax.clump``)."""
    cache = folder / "instruments.parquet"
    if cache.exists():
        return pd.read_parquet(cache)
    import warnings

    from mrjax.ld import clump

    frames = []
    for path in sorted((folder / "exposures").glob("exp_*.parquet")):
        frame = pd.read_parquet(path)
        frame = frame[frame["pval"] <= P1].assign(exposure=path.stem)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an exposure without a genome-wide hit: no instruments
        kept = clump(table, PANEL, r2=CLUMP_R2, kb=CLUMP_KB, p1=P1, trait_column="exposure")
    kept = kept.reset_index(drop=True)
    kept.to_parquet(cache, index=False)
    return kept


def harmonised_pairs(inst: pd.DataFrame, n_outcomes: int, seed: int, n_exposures: int) -> pd.DataFrame:
    """The harmonised long table of every exposure (its instruments) × ``n_outcomes`` outcomes,
    outcome effects drawn from the generator's model at the instrument variants (the first
    outcomes are those of the outcome files when the model sizes match)."""
    panel = Panel()
    model = trait_models(panel, n_exposures, n_outcomes, seed)
    rows = pd.Index(panel.snp).get_indexer(inst["SNP"].unique())
    marginal = model["ld"][rows] @ model["beta_out"]  # [instrument variants, outcomes]
    row_of = pd.Series(np.arange(len(rows)), index=inst["SNP"].unique())
    rng = np.random.default_rng(seed + 2)
    n = model["n_out"]
    per_snp = []
    for o in range(n_outcomes):
        frame = gwas_frame(panel, rows, marginal[:, o], int(n[o]), rng)
        per_snp.append(frame[["beta", "se", "pval"]].to_numpy())
    per_snp = np.stack(per_snp)  # [outcomes, variants, 3]
    at = row_of.reindex(inst["SNP"]).to_numpy()
    n_inst = len(inst)
    out = pd.DataFrame({
        "SNP": np.tile(inst["SNP"].to_numpy(), n_outcomes),
        "exposure": np.tile(inst["exposure"].to_numpy(), n_outcomes),
        "outcome": np.repeat([f"out_{o:04d}" for o in range(n_outcomes)], n_inst),
        "beta.exposure": np.tile(inst["beta"].to_numpy(), n_outcomes),
        "se.exposure": np.tile(inst["se"].to_numpy(), n_outcomes),
        "pval.exposure": np.tile(inst["pval"].to_numpy(), n_outcomes),
        "samplesize.exposure": np.tile(inst["samplesize"].to_numpy(), n_outcomes),
        "beta.outcome": per_snp[:, at, 0].ravel(),
        "se.outcome": per_snp[:, at, 1].ravel(),
        "pval.outcome": per_snp[:, at, 2].ravel(),
        "samplesize.outcome": np.repeat(n[:n_outcomes], n_inst),
    })
    return out


# --------------------------------------------------------------------------------------------
# Measurements


def clock():
    return time.perf_counter(), time.process_time()


def since(start):
    return time.perf_counter() - start[0], time.process_time() - start[1]


def estimate(table, presso: bool):
    """(a)'s work on one table: the panel + diagnostics (``mrjax.analyse``), then MR-PRESSO."""
    import mrjax
    from mrjax.batch import from_frame

    out = {}
    start = clock()
    batch = from_frame(table)
    out["batch"] = since(start)
    start = clock()
    analysis = mrjax.analyse(batch, n_boot=N_BOOT, seed=1, include=())
    out["panel"] = since(start)
    if presso:
        start = clock()
        result = mrjax.presso(batch, n_draws=PRESSO_DRAWS, seed=2)
        out["presso"] = since(start)
        analysis = (analysis, result)
    return out, batch, analysis


def part_a(table: pd.DataFrame, rows: list):
    pairs = table[["exposure", "outcome"]].drop_duplicates().shape[0]
    for run in ("cold", "warm"):
        t, batch, _ = estimate(table, presso=True)
        nsnp = batch.traits["nsnp"].to_numpy()
        panel_wall = t["batch"][0] + t["panel"][0]
        panel_cpu = t["batch"][1] + t["panel"][1]
        rows.append(dict(part="a", what=f"panel+diagnostics, {run}", pairs=pairs, wall_s=panel_wall,
                         cpu_s=panel_cpu, pairs_per_s=pairs / panel_wall, note=f"from_frame {t['batch'][0]:.1f} s"))
        rows.append(dict(part="a", what=f"MR-PRESSO {PRESSO_DRAWS} draws, {run}", pairs=pairs, wall_s=t["presso"][0],
                         cpu_s=t["presso"][1], pairs_per_s=pairs / t["presso"][0]))
        total = panel_wall + t["presso"][0]
        rows.append(dict(part="a", what=f"panel+diagnostics+PRESSO, {run}", pairs=pairs, wall_s=total,
                         cpu_s=panel_cpu + t["presso"][1], pairs_per_s=pairs / total))
    q = np.percentile(nsnp, [0, 25, 50, 75, 100]).astype(int).tolist()
    return dict(nsnp_quantiles=q, pairs_ge3=int(np.sum(nsnp >= 3)), pairs=pairs, instruments=int(nsnp.sum()))


def part_b(folder: Path, n_exp: int, n_out: int, rows: list, presso: bool = True):
    """``mrjax scan`` on the first ``n_exp`` exposure files × ``n_out`` outcome files."""
    from mrjax.scan import ScanConfig, run_scan

    tmp = Path(tempfile.mkdtemp(prefix="pairs_scan_", dir=WORK))
    exp_dir, out_dir = tmp / "exp", tmp / "out"
    exp_dir.mkdir(), out_dir.mkdir()
    for path in sorted((folder / "exposures").glob("*.parquet"))[:n_exp]:
        (exp_dir / path.name).symlink_to(path)
    for path in sorted((folder / "outcomes").glob("*.parquet"))[:n_out]:
        (out_dir / path.name).symlink_to(path)
    results = {}
    for run in ("cold", "warm"):
        config = ScanConfig(exposures=(str(exp_dir / "*.parquet"),), outcome=(str(out_dir / "*.parquet"),),
                            out=str(tmp / run), ld_ref=str(PANEL), p=P1, clump_r2=CLUMP_R2, clump_kb=CLUMP_KB,
                            n_boot=N_BOOT, presso_draws=PRESSO_DRAWS if presso else 0, outcome_type="continuous",
                            exposure_type="continuous")
        start = clock()
        result = run_scan(config)
        wall, cpu = since(start)
        res = result.tables["results"]
        pairs = res[["exposure", "outcome"]].drop_duplicates().shape[0]
        rows.append(dict(part="b", what=f"mrjax scan {n_exp}x{n_out}, {run}", pairs=pairs, wall_s=wall, cpu_s=cpu,
                         pairs_per_s=pairs / wall))
        results[run] = {k: v for k, v in result.timings.items() if k != "total"}
    return results


def peak_rss_mb() -> float:
    """The process's peak resident memory (``VmHWM``, MB): unlike ``ru_maxrss`` it starts
    afresh at ``exec``, so a child does not report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Start ``VmHWM`` afresh (Linux ≥ 4.0: ``5`` into ``/proc/self/clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


def child_rss(table_path: Path, block: int, devices: int | None, out_json: Path, passes: int = 1):
    """Fresh-process body of (c) and (d): estimate the table in blocks of ``block`` pairs,
    write each block's tables to parquet, record peak RSS and times of the last of
    ``passes`` passes. Before them a warm-up estimates the first block alone (compilation,
    or loading it from the persistent cache): the peak RSS up to there is reported apart
    (``peak_compile_mb``), then the peak is reset, so ``peak_rss_mb`` is that of estimation."""
    import mrjax
    from mrjax import engine

    if devices:
        engine.set_devices(devices)
    rss0 = peak_rss_mb()
    table = pd.read_parquet(table_path)
    pair = table["exposure"].astype(str) + "\x1f" + table["outcome"].astype(str)
    codes, _ = pd.factorize(pair)
    del pair
    rss_table = peak_rss_mb()
    n_pairs = int(codes.max()) + 1
    parts = Path(tempfile.mkdtemp(prefix="rss_", dir=WORK))
    start = clock()
    one_pass(mrjax, table, codes, min(block, n_pairs), block, parts)
    warm_up = since(start)
    peak_compile = peak_rss_mb()
    reset_peak_rss()
    for _ in range(passes):
        start = clock()
        digests = one_pass(mrjax, table, codes, n_pairs, block, parts)
    wall, cpu = since(start)
    shutil.rmtree(parts)
    digest = np.concatenate(digests)
    out_json.write_text(json.dumps(dict(
        pairs=n_pairs, block=block, devices=len(engine.devices()), wall_s=wall, cpu_s=cpu, warm_up_s=warm_up[0],
        rss_start_mb=rss0, rss_after_table_mb=rss_table, peak_compile_mb=peak_compile, peak_rss_mb=peak_rss_mb(),
        digest=digest.tobytes().hex() if digest.size < 50_000 else None,
        b_sum=float(np.nansum(digest[:, 0])))))


def one_pass(mrjax, table, codes, n_pairs, block, parts):
    digests = []
    for b0 in range(0, n_pairs, block):
        block_table = table[(codes >= b0) & (codes < b0 + block)]
        analysis = mrjax.analyse(block_table, n_boot=N_BOOT, seed=1, include=())
        for name in ("mr", "heterogeneity", "pleiotropy", "leave_one_out"):
            getattr(analysis, name).to_parquet(parts / f"{name}_{b0:08d}.parquet", index=False)
        digests.append(analysis.mr[["b", "se"]].to_numpy())
        del analysis, block_table
    return digests


def run_child(table_path: Path, block: int, devices: int | None = None, env=None, passes: int = 1) -> dict:
    out_json = Path(tempfile.mkstemp(suffix=".json", dir=WORK)[1])
    cmd = [sys.executable, __file__, "--child", str(table_path), "--block", str(block), "--child-out", str(out_json),
           "--passes", str(passes)]
    if devices:
        cmd += ["--devices", str(devices)]
    # A persistent compilation cache shared by the children (as ``mrjax`` CLI users have it
    # after one run): each fresh process would otherwise spend a minute compiling.
    cache = {"JAX_COMPILATION_CACHE_DIR": str(WORK / "jax_cache"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    subprocess.run(cmd, check=True, env={**os.environ, **cache, **(env or {})})
    return json.loads(out_json.read_text())


def big_table(inst: pd.DataFrame, n_pairs: int, seed: int, n_exposures: int) -> Path:
    """A harmonised table of about ``n_pairs`` pairs (all exposures × enough outcomes), cached."""
    with_inst = inst["exposure"].nunique()
    n_outcomes = max(1, -(-n_pairs // with_inst))
    path = WORK / f"pairs_{with_inst}x{n_outcomes}_s{seed}.parquet"
    if not path.exists():
        harmonised_pairs(inst, n_outcomes, seed, n_exposures).to_parquet(path, index=False)
    return path


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exposures", type=int, default=200)
    parser.add_argument("--outcomes", type=int, default=50)
    parser.add_argument("--scan-exposures", type=int, default=20)
    parser.add_argument("--scan-outcomes", type=int, default=5)
    parser.add_argument("--rss-pairs", default="10000,100000", help="pair counts for (c), comma-separated")
    parser.add_argument("--block", type=int, default=5_000, help="pairs per block in (c) and (d)")
    parser.add_argument("--device-pairs", type=int, default=2_000, help="pairs for (d)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--skip", default="", help="parts to skip, e.g. b,d")
    parser.add_argument("--quick", action="store_true", help="40 x 10 pairs, scan 6 x 2, RSS at 10^3 and 10^4")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_rss(args.child, args.block, args.devices, args.child_out, args.passes)
        return
    if args.quick:
        args.exposures, args.outcomes, args.scan_exposures, args.scan_outcomes = 40, 10, 6, 2
        args.rss_pairs, args.block, args.device_pairs = "1000,10000", 1000, 400
    skip = set(args.skip.split(",")) - {""}
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows, info = [], {}

    start = clock()
    folder = generate(args.exposures, args.outcomes, args.seed)
    inst = instruments(folder)
    table = harmonised_pairs(inst, args.outcomes, args.seed, args.exposures)
    info["generate"] = since(start)
    if "a" not in skip:
        info["a"] = part_a(table, rows)
    if "b" not in skip:
        info["b"] = part_b(folder, args.scan_exposures, args.scan_outcomes, rows)
    if "c" not in skip:
        for n in (int(x) for x in args.rss_pairs.split(",")):
            r = run_child(big_table(inst, n, args.seed, args.exposures), args.block)
            rows.append(dict(part="c", what=f"fresh process, blocks of {r['block']}, warm", pairs=r["pairs"],
                             wall_s=r["wall_s"], cpu_s=r["cpu_s"], pairs_per_s=r["pairs"] / r["wall_s"],
                             peak_rss_mb=r["peak_rss_mb"],
                             note=f"RSS {r['rss_start_mb']:.0f} MB after imports, {r['rss_after_table_mb']:.0f} MB with "
                                  f"table; warm-up block {r['warm_up_s']:.0f} s, peak {r['peak_compile_mb']:.0f} MB"))
    if "d" not in skip:
        path = big_table(inst, args.device_pairs, args.seed, args.exposures)
        force = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
        block = args.device_pairs  # one call: its buckets (one per width) are numbered and spread over the devices
        got = {n: run_child(path, block, n, force) for n in (1, 4)}
        same = got[1]["digest"] is not None and got[1]["digest"] == got[4]["digest"]
        for n in (1, 4):
            rows.append(dict(part="d", what=f"{n} of 4 forced CPU devices, warm", pairs=got[n]["pairs"],
                             wall_s=got[n]["wall_s"], cpu_s=got[n]["cpu_s"], pairs_per_s=got[n]["pairs"] / got[n]["wall_s"],
                             note=f"one call; warm-up (compile) {got[n]['warm_up_s']:.0f} s"
                                  + ("; identical to 1 device" if same and n == 4 else "")))
        info["d_identical"] = same

    print(f"\nmrjax phenome-scale pairs: {args.exposures} exposures x {args.outcomes} outcomes, panel {PANEL.name}, "
          f"p <= {P1:g}, clump r2 {CLUMP_R2} / {CLUMP_KB} kb, n_boot {N_BOOT}, MR-PRESSO {PRESSO_DRAWS} draws")
    print(f"machine: {os.cpu_count()} CPUs, JAX CPU float64; {uptime()}")
    print(f"generate + clump + harmonised table: {info['generate'][0]:.1f} s wall, {info['generate'][1]:.1f} CPU-s")
    if "a" in info:
        print(f"(a) pairs {info['a']['pairs']}, with >= 3 instruments {info['a']['pairs_ge3']}, "
              f"instruments per pair min/q1/median/q3/max {info['a']['nsnp_quantiles']}")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 70):
        print(pd.DataFrame(rows).to_string(index=False, na_rep="", float_format=lambda x: f"{x:.3g}"))
    if "b" in info:
        print("\n(b) scan stages, seconds:")
        stages = list(dict.fromkeys(list(info["b"]["cold"]) + list(info["b"]["warm"])))
        for s in stages:
            print(f"  {s:<14}{info['b']['cold'].get(s, 0):>9.2f}{info['b']['warm'].get(s, 0):>9.2f}")
    if "d_identical" in info:
        print(f"\n(d) 4 devices gave results identical (b, se of every method, bit for bit) to 1: {info['d_identical']}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; {uptime()}")


if __name__ == "__main__":
    main()
