"""The many-outcome summary figure: exposures × outcomes coloured by the IVW z statistic.

Only drawn for scans of several outcomes. Rows are the exposures with at least one
significant pair (by the scan's correction), up to :data:`MAX_ROWS` of them with the smallest
p; cells of significant pairs carry a dot. One panel per direction (reverse: the scanned
outcomes as exposures of the traits).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

MAX_ROWS = 60
MAX_COLUMNS = 60


def outcome_heatmap(results: pd.DataFrame, *, method: str = "ivw", alpha: float = 0.05, by: str = "qval_fdr") -> Figure:
    """Exposure × outcome heat map of ``z = b / se`` of ``method`` (colour, diverging, capped
    at |z| = 10), a dot where ``results[by] < alpha``; rows ordered by the smallest p."""
    rows = results[results["method_id"].astype(str) == method]
    directions = [d for d in ("forward", "reverse") if (rows["direction"] == d).any()]
    fig, axes = plt.subplots(1, max(1, len(directions)), figsize=(5 + 4 * len(directions), 7), squeeze=False)
    for ax, direction in zip(axes[0], directions):
        part = rows[rows["direction"] == direction]
        # the scanned outcomes are the columns: forward their outcome column, reverse their exposure
        column, row = ("outcome", "exposure") if direction == "forward" else ("exposure", "outcome")
        significant = part[part[by] < alpha]
        keep = significant.groupby(row)["pval"].min().sort_values().index[:MAX_ROWS]
        if not len(keep):
            ax.set_axis_off()
            ax.set_title(f"{direction}: no significant pair ({by} < {alpha:g})")
            continue
        shown = part[part[row].isin(keep)].assign(z=part["b"] / part["se"])
        grid = shown.pivot_table(index=row, columns=column, values="z", aggfunc="first").reindex(index=keep)
        grid = grid.iloc[:, :MAX_COLUMNS]
        image = ax.imshow(np.clip(grid.to_numpy(dtype=float), -10, 10), cmap="RdBu_r", vmin=-10, vmax=10, aspect="auto")
        hits = shown[shown[by] < alpha]
        for _, hit in hits.iterrows():
            if hit[column] in grid.columns:
                ax.plot(list(grid.columns).index(hit[column]), list(grid.index).index(hit[row]), "k.", markersize=4)
        ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], rotation=90, fontsize=7)
        ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index], fontsize=7)
        ax.set_xlabel("outcome" if direction == "forward" else "scanned outcome (as exposure)")
        ax.set_title(f"{direction}: IVW z = b / SE; dot: {by} < {alpha:g}", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.6, label="z (capped at ±10)")
    fig.tight_layout()
    return fig
