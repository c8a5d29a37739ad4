"""Figures of simulation results: power curves and bias / coverage panels (matplotlib, Agg).

Both take the table of :func:`mrjax.simulation.simulate` (or ``simulate_grid``) and draw every
method in its own colour with ±1.96 Monte-Carlo standard error bars, so a reader can tell a
real difference between methods from simulation noise (Morris, White & Crowther 2019, §5).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

Z_95 = 1.959963984540054


def _check_columns(results: pd.DataFrame, needed: list[str]) -> None:
    missing = [c for c in needed if c not in results.columns]
    if missing:
        raise ValueError(f"simulation results lack column(s) {', '.join(missing)}; pass the table of mrjax.simulate()")


def plot_power_curve(results: pd.DataFrame, x: str = "theta", alpha: float = 0.05, ax=None, title: str | None = None):
    """Rejection rate against ``x`` (a grid axis column, e.g. ``theta``) for each method,
    with ±1.96·MCSE bars and the nominal level ``alpha`` as a dashed line (at θ = 0 the curve
    is the type-I error, elsewhere the power). Returns the matplotlib Figure."""
    _check_columns(results, [x, "method_id", "rejection_rate", "rejection_rate_mcse"])
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4), layout="constrained")
    for method, rows in results.groupby("method_id", sort=False):
        rows = rows.sort_values(x)
        ax.errorbar(rows[x], rows["rejection_rate"], yerr=Z_95 * rows["rejection_rate_mcse"], marker="o",
                    markersize=4, capsize=2, label=method)
    ax.axhline(alpha, color="grey", linestyle="--", linewidth=1, label=f"α = {alpha:g}")
    ax.set_xlabel(x)
    ax.set_ylabel("rejection rate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(frameon=False, fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def plot_bias_coverage(results: pd.DataFrame, by: str = "scenario", nominal: float = 0.95):
    """Two panels per scenario row label: bias (±1.96·MCSE, zero line) and 95% CI coverage
    (±1.96·MCSE, nominal line) for each method, grouped along ``by`` (``scenario`` for a list
    of scenarios; a single-scenario table is drawn as one group). Returns the Figure."""
    _check_columns(results, ["method_id", "bias", "bias_mcse", "coverage", "coverage_mcse"])
    table = results if by in results.columns else results.assign(**{by: "scenario"})
    groups = list(dict.fromkeys(table[by].astype(str)))
    methods = list(dict.fromkeys(table["method_id"]))
    fig, (ax_bias, ax_cov) = plt.subplots(1, 2, figsize=(10, 0.5 + 0.45 * len(groups) * max(1, len(methods)) ** 0.5 + 2),
                                          layout="constrained", sharey=True)
    step = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        rows = table[table["method_id"] == method].set_index(table.loc[table["method_id"] == method, by].astype(str))
        rows = rows.reindex(groups)
        y = np.arange(len(groups)) + (i - (len(methods) - 1) / 2) * step
        ax_bias.errorbar(rows["bias"], y, xerr=Z_95 * rows["bias_mcse"], fmt="o", markersize=4, capsize=2, label=method)
        ax_cov.errorbar(rows["coverage"], y, xerr=Z_95 * rows["coverage_mcse"], fmt="o", markersize=4, capsize=2)
    ax_bias.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax_cov.axvline(nominal, color="grey", linestyle="--", linewidth=1)
    ax_bias.set_yticks(np.arange(len(groups)), groups)
    ax_bias.invert_yaxis()
    ax_bias.set_xlabel("bias (estimate − θ)")
    ax_cov.set_xlabel(f"coverage of the {nominal:.0%} CI")
    ax_bias.legend(frameon=False, fontsize="small", loc="best")
    return fig


def save_figure(fig, path_stem) -> list:
    """Write ``fig`` as PNG and SVG beside each other; returns the two paths."""
    from pathlib import Path

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
