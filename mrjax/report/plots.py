"""Figures of a scan (matplotlib, Agg backend): forest, volcano, scatter, leave-one-out, funnel.

Scan level: :func:`forest_plot` (odds ratios, or b for continuous outcomes, with 95% CIs and instrument counts per method for
the traits significant by IVW, in the style of Figure 2 of a typical immune-cell MR paper) and
:func:`volcano_plot` (every trait: estimate vs −log10 p, significant ones labelled).
Per trait, following TwoSampleMR's conventions: :func:`scatter_plot` (``mr_scatter_plot``),
:func:`leave_one_out_plot` (``mr_leaveoneout_plot``) and :func:`funnel_plot`
(``mr_funnel_plot``). SNPs are placed by position, never by a categorical axis, so duplicated
SNP ids and instrument sets of hundreds of variants draw without error.

Every function returns a ``matplotlib.figure.Figure``; :func:`save_figure` writes it as PNG and
SVG atomically. :func:`scan_figures` draws and writes the whole set.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter  # noqa: E402

from mrjax.effects import Z_95, ci95  # noqa: E402
from mrjax.outputs import write_figure  # noqa: E402
from mrjax.report.fonts import drawable, tidy, with_figure_fonts  # noqa: E402
from mrjax.report.tables import (  # noqa: E402
    PRIMARY_METHOD,
    format_effect,
    format_p,
    significant,
    stack_directions,
)

METHOD_COLOURS = [
    "#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#7b4b94", "#00798c", "#6c757d", "#c36f09", "#3d5a80", "#8d0801",
]
SIG_COLOUR = "#d1495b"
OR_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0]
NULL_COLOUR = "#8a99a6"
# Caps for scans with many hits (e.g. --correction none on 731 traits): the forest plot and
# the per-trait figures show the traits with the smallest p.
MAX_FOREST_TRAITS = 40
MAX_TRAIT_FIGURES = 60
ARROW = "\u2192"


# The same method has the same colour in every figure.
KNOWN_METHOD_COLOURS = {
    "Inverse variance weighted": "#1b6ca8",
    "MR Egger": "#d1495b",
    "Weighted median": "#2e933c",
    "Simple mode": "#edae49",
    "Weighted mode": "#7b4b94",
    "Wald ratio": "#00798c",
    "MR-PRESSO (outlier-corrected)": "#6c757d",
}


# Line style and marker per method, so overlapping estimates (simple vs weighted mode) stay
# distinguishable where their colours are hidden under each other.
KNOWN_METHOD_STYLES = {
    "Inverse variance weighted": ("-", "s"),
    "MR Egger": ((0, (6, 2)), "D"),
    "Weighted median": ((0, (6, 2, 1, 2)), "o"),
    "Simple mode": ((0, (1, 1.5)), "^"),
    "Weighted mode": ((0, (3, 1.5)), "v"),
    "Wald ratio": ("-", "P"),
    "MR-PRESSO (outlier-corrected)": ((0, (4, 1, 1, 1, 1, 1)), "X"),
}
SPARE_STYLES = [((0, (2, 2)), "h"), ((0, (5, 1, 1, 1)), "p"), ((0, (1, 3)), "*"), ((0, (8, 2)), "<"), ((0, (3, 3)), ">")]
#: Unit of b per effect scale (``effect_scale`` of the results), for axis labels.
B_UNIT = {"OR": "log OR", "beta": "b"}


def _styles(methods) -> dict[str, tuple]:
    """``{method: (linestyle, marker)}``: fixed for the known methods, spare ones for others."""
    styles, unknown = {}, 0
    for method in dict.fromkeys(str(m) for m in methods):
        if method in KNOWN_METHOD_STYLES:
            styles[method] = KNOWN_METHOD_STYLES[method]
        else:
            styles[method] = SPARE_STYLES[unknown % len(SPARE_STYLES)]
            unknown += 1
    return styles


def _scale(rows: pd.DataFrame) -> str | None:
    """The one effect scale of ``rows`` (``"OR"`` or ``"beta"``), None when mixed or unknown."""
    if "effect_scale" not in rows.columns or not len(rows):
        return None
    scales = set(rows["effect_scale"].dropna().astype(str))
    return scales.pop() if len(scales) == 1 else None


def _b_unit(scale: str | None) -> str:
    """The unit of a b on ``scale``: "log OR", "b" (continuous outcome), or both when unknown."""
    return B_UNIT.get(scale, "log OR for a binary outcome, else b")


def _colours(methods) -> dict[str, str]:
    spare = [c for c in METHOD_COLOURS if c not in KNOWN_METHOD_COLOURS.values()]
    colours, unknown = {}, 0
    for method in dict.fromkeys(str(m) for m in methods):
        if method in KNOWN_METHOD_COLOURS:
            colours[method] = KNOWN_METHOD_COLOURS[method]
        else:
            colours[method] = spare[unknown % len(spare)]
            unknown += 1
    return colours


def _primary_first(frame: pd.DataFrame, method: str = PRIMARY_METHOD) -> pd.DataFrame:
    """Rows of the primary method (IVW) first, the others in their given order."""
    if not len(frame):
        return frame
    primary = (frame["method_id"].astype(str).isin([method, method.removeprefix("mr_")])
               | (frame["method"].astype(str) == "Inverse variance weighted"))
    return pd.concat([frame[primary], frame[~primary]])


def _is_egger(method: str) -> bool:
    return "egger" in method.lower()


def _trait_title(direction: str, exposure: str, outcome: str) -> str:
    return f"{exposure} {ARROW} {outcome}" + (" (reverse)" if direction == "reverse" else "")


def slug(text: str) -> str:
    """A file-name-safe version of a trait name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return cleaned[:80] or "trait"


@with_figure_fonts
def _message_figure(message: str, title: str) -> Figure:
    fig = Figure(figsize=(6, 1.6))
    ax = fig.subplots()
    ax.axis("off")
    ax.set_title(title, fontsize=10, loc="left")
    ax.text(0.5, 0.4, message, ha="center", va="center", fontsize=9, transform=ax.transAxes)
    return fig


# ----------------------------------------------------------------------------- scan level
def strongest(hits: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` rows of ``hits`` with the smallest p, in their original order."""
    return hits.loc[hits["pval"].sort_values(kind="stable").index[:n]].sort_index() if len(hits) > n else hits


@with_figure_fonts
def forest_plot(
    results: pd.DataFrame,
    *,
    method: str = PRIMARY_METHOD,
    alpha: float = 0.05,
    by: str = "qval_fdr",
    methods: list[str] | None = None,
    max_traits: int = MAX_FOREST_TRAITS,
) -> Figure:
    """Forest plot of the traits significant by ``method`` (IVW): estimate and 95% CI per method.

    ``results`` is :func:`mrjax.report.tables.scan_results`. One block per significant trait
    (both directions), one line per method with columns method, nsnp, estimate (95% CI) and
    p. Rows with a binary outcome (``effect_scale`` ``"OR"``) show odds ratios on a log axis
    with a reference line at 1; rows with a continuous outcome (``"beta"``, e.g. an immune
    trait in the reverse direction) show b on a linear axis with a reference line at 0, in a
    panel of their own. ``methods`` restricts and orders the ``method_id`` values shown. At
    most ``max_traits`` traits are drawn, those with the smallest p (the title says so).
    """
    hits = significant(results, method=method, alpha=alpha, by=by)
    title = f"Traits significant by IVW ({'FDR q' if by == 'qval_fdr' else by} < {alpha:g})"
    if not len(hits):
        return _message_figure("No trait passed the threshold.", title)
    if len(hits) > max_traits:
        title += f": the {max_traits} with the smallest p of {len(hits)}"
        hits = strongest(hits, max_traits)
    keys = ["direction", "exposure", "outcome"]
    rows = results.merge(hits[keys], on=keys, how="inner")
    if methods is not None:
        rows = rows[rows["method_id"].isin(methods)]
        order = {m: i for i, m in enumerate(methods)}
    else:
        order = {m: i for i, m in enumerate(dict.fromkeys(_primary_first(results, method)["method_id"]))}
    colours = _colours(results["method"])
    styles = _styles(results["method"])
    panels: dict[str, list] = {}  # scale -> lines (kind, payload)
    for _, hit in hits.iterrows():
        lines = panels.setdefault("beta" if hit.get("effect_scale", "OR") == "beta" else "OR", [])
        lines.append(("header", _trait_title(hit["direction"], hit["exposure"], hit["outcome"])))
        block = rows[(rows["direction"] == hit["direction"]) & (rows["exposure"] == hit["exposure"]) & (rows["outcome"] == hit["outcome"])]
        block = block.assign(_order=block["method_id"].map(order)).sort_values("_order", kind="stable")
        for _, row in block.iterrows():
            lines.append(("method", row))
    panels = {scale: panels[scale] for scale in ("OR", "beta") if scale in panels}
    sizes = [len(lines) + 3 for lines in panels.values()]
    height = 0.26 * sum(sizes) + 0.5
    fig = Figure(figsize=(11, height))
    grid = fig.add_gridspec(len(panels), 2, width_ratios=[1.55, 1], height_ratios=sizes, wspace=0.02, hspace=0.25)
    for i, (scale, lines) in enumerate(panels.items()):
        text_ax = fig.add_subplot(grid[i, 0])
        _forest_panel(text_ax, fig.add_subplot(grid[i, 1], sharey=text_ax), lines, scale, colours, styles)
    fig.subplots_adjust(left=0.02, right=0.97, top=1 - 0.45 / height, bottom=0.55 / height)
    fig.suptitle(title, fontsize=10, x=0.02, ha="left")
    return fig


def _forest_panel(text_ax, ax, lines: list, scale: str, colours: dict, styles: dict) -> None:
    """One forest panel: the text columns on ``text_ax``, the estimates on ``ax`` (odds
    ratios on a log axis for ``scale == "OR"``, else b on a linear axis)."""
    odds = scale == "OR"
    n = len(lines)
    text_ax.set_ylim(n - 0.5, -1.5)
    text_ax.axis("off")
    columns = [(0.0, "Exposure / method", "left"), (0.52, "nSNP", "right"),
               (0.82, "OR (95% CI)" if odds else "b (95% CI)", "right"), (1.0, "P", "right")]
    for x, label, ha in columns:
        text_ax.text(x, -1, label, ha=ha, va="center", fontsize=8.5, fontweight="bold")
    finite = []
    for y, (kind, payload) in enumerate(lines):
        if kind == "header":
            text_ax.text(0.0, y, payload, ha="left", va="center", fontsize=8.5, fontweight="bold")
            continue
        row = payload
        estimate = format_effect(scale, row["b"], row["se"], row["or"], row["or_lci95"], row["or_uci95"])
        text_ax.text(0.03, y, str(row["method"]), ha="left", va="center", fontsize=8)
        text_ax.text(0.52, y, f"{int(row['nsnp'])}" if pd.notna(row["nsnp"]) else "", ha="right", va="center", fontsize=8)
        text_ax.text(0.82, y, estimate or "NA", ha="right", va="center", fontsize=8)
        text_ax.text(1.0, y, format_p(row["pval"]) or "NA", ha="right", va="center", fontsize=8)
        if odds:
            point, low, high = row["or"], row["or_lci95"], row["or_uci95"]
        else:
            point, (low, high) = row["b"], ci95(row["b"], row["se"])
        if np.isfinite(point) and np.isfinite(low) and np.isfinite(high) and (low > 0 or not odds):
            colour = colours.get(row["method"], METHOD_COLOURS[0])
            ax.plot([low, high], [y, y], color=colour, lw=1.3)
            ax.plot(point, y, marker=styles.get(row["method"], ("-", "s"))[1], color=colour, ms=4.5)
            finite += [low, high]
    reference = 1.0 if odds else 0.0
    ax.axvline(reference, color="#444444", lw=0.8, ls="--")
    if odds:
        ax.set_xscale("log")
        if finite:
            lo, hi = min(finite + [1.0]), max(finite + [1.0])
            pad = (np.log(hi) - np.log(lo)) * 0.08 + 1e-3
            ax.set_xlim(np.exp(np.log(lo) - pad), np.exp(np.log(hi) + pad))
        low, high = ax.get_xlim()
        ticks = [t for t in OR_TICKS if low <= t <= high]
        while len(ticks) > 7:
            ticks = ticks[::2] if 1.0 in ticks[::2] else ticks[1::2]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("OR per unit of exposure, 95% CI (binary outcome; log axis)", fontsize=9)
    else:
        if finite:
            lo, hi = min(finite + [0.0]), max(finite + [0.0])
            pad = (hi - lo) * 0.08 + 1e-9
            ax.set_xlim(lo - pad, hi + pad)
        ax.set_xlabel("b per unit of exposure, 95% CI (continuous outcome, its units)", fontsize=9)
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


@with_figure_fonts
def volcano_plot(
    results: pd.DataFrame,
    *,
    method: str = PRIMARY_METHOD,
    alpha: float = 0.05,
    by: str = "qval_fdr",
    max_labels: int = 25,
) -> Figure:
    """Scan overview: ``b`` (a log OR for binary outcomes) against −log10 p of ``method`` for
    every trait, per direction.

    Traits with ``by < alpha`` are red and labelled (at most ``max_labels`` per panel, the
    strongest first); dashed lines mark p = 0.05 and the Bonferroni threshold 0.05/m.
    """
    frame = significant(results, method=method, alpha=np.inf, by="pval") if len(results) else results
    directions = [d for d in ("forward", "reverse") if d in set(frame.get("direction", []))]
    if not directions:
        return _message_figure("No estimates to show.", "Scan overview")
    fig = Figure(figsize=(5.2 * len(directions), 4.8))
    axes = np.atleast_1d(fig.subplots(1, len(directions), squeeze=False)[0])
    for ax, direction in zip(axes, directions):
        part = frame[(frame["direction"] == direction) & np.isfinite(frame["pval"]) & np.isfinite(frame["b"])]
        logp = -np.log10(np.clip(part["pval"].to_numpy(float), 1e-300, 1))
        hit = (part[by] < alpha).to_numpy()
        ax.scatter(part["b"][~hit], logp[~hit], s=16, color=NULL_COLOUR, alpha=0.8, lw=0, label="not significant")
        ax.scatter(part["b"][hit], logp[hit], s=22, color=SIG_COLOUR, lw=0, label=f"{'FDR q' if by == 'qval_fdr' else by} < {alpha:g}")
        m = max(len(part), 1)
        ax.axhline(-np.log10(0.05), color="#777777", lw=0.8, ls=":", label="p = 0.05")
        ax.axhline(-np.log10(0.05 / m), color="#777777", lw=0.8, ls="--", label=f"Bonferroni p = 0.05/{m}")
        ax.axvline(0, color="#cccccc", lw=0.7)
        label_column = "exposure" if direction == "forward" else "outcome"
        strongest = np.argsort(-logp[hit])[:max_labels]
        for i in strongest:
            row = part[hit].iloc[i]
            ax.annotate(str(row[label_column]), (row["b"], logp[hit][i]), xytext=(3, 3), textcoords="offset points", fontsize=7)
        name = "exposure → outcome" if direction == "forward" else "outcome → exposure"
        ax.set_title(f"{direction}: {name} ({len(part)} traits)", fontsize=9)
        scale = _scale(part) if "effect_scale" in part.columns else "OR"
        unit = {"OR": "log OR per unit of exposure", "beta": "outcome units per unit of exposure"}.get(
            scale, "log OR for binary outcomes, else outcome units")
        ax.set_xlabel(f"IVW estimate b ({unit})", fontsize=9)
        ax.set_ylabel("−log10 p", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.margins(x=0.15)  # room for the labels of the outermost traits
        ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return tidy(fig)


# ----------------------------------------------------------------------------- per trait
def _instrument_columns(harmonised: pd.DataFrame):
    needed = ["beta.exposure", "se.exposure", "beta.outcome", "se.outcome"]
    missing = [c for c in needed if c not in harmonised.columns]
    if missing:
        raise ValueError(f"harmonised table lacks column(s) {missing}")
    keep = harmonised
    if "mr_keep" in keep.columns:
        keep = keep[keep["mr_keep"].astype(bool)]
    return [keep[c].to_numpy(float) for c in needed]


@with_figure_fonts
def scatter_plot(harmonised: pd.DataFrame, mr_rows: pd.DataFrame, *, egger_intercept: float | None = None, title: str | None = None) -> Figure:
    """TwoSampleMR ``mr_scatter_plot`` for one trait: SNP–outcome vs SNP–exposure effects.

    SNPs are oriented so that ``bx >= 0`` (by multiplied by sign(bx)); bars are ±1 SE in both
    directions; each method in ``mr_rows`` is a line through the origin with slope ``b``,
    except MR Egger, whose line starts at ``egger_intercept`` (from ``mrjax.pleiotropy``).
    """
    bx, sx, by, sy = _instrument_columns(harmonised)
    flip = np.where(bx < 0, -1.0, 1.0)
    bx, by = bx * flip, by * flip
    fig = Figure(figsize=(6, 4.8))
    ax = fig.subplots()
    many = len(bx) > 100
    ax.errorbar(bx, by, xerr=sx, yerr=sy, fmt="o", ms=2.5 if many else 4, color="#333333", ecolor="#9a9a9a",
                elinewidth=0.5 if many else 0.8, capsize=0, zorder=2)
    xmax = np.nanmax(bx + sx) if len(bx) else 1.0
    grid = np.array([0.0, xmax * 1.05 if np.isfinite(xmax) and xmax > 0 else 1.0])
    mr_rows = _primary_first(mr_rows)
    colours = _colours(mr_rows["method"]) if len(mr_rows) else {}
    styles = _styles(mr_rows["method"]) if len(mr_rows) else {}
    for _, row in mr_rows.iterrows():
        if not np.isfinite(row["b"]):
            continue
        intercept = egger_intercept if (_is_egger(str(row["method"])) and egger_intercept is not None and np.isfinite(egger_intercept)) else 0.0
        linestyle, marker = styles[row["method"]]
        ax.plot(grid, intercept + row["b"] * grid, color=colours[row["method"]], lw=1.5, ls=linestyle, marker=marker,
                markevery=[1], ms=5, label=str(row["method"]), zorder=3)
    ax.axhline(0, color="#cccccc", lw=0.7, zorder=1)
    exposure = str(mr_rows["exposure"].iloc[0]) if len(mr_rows) else "exposure"
    outcome = str(mr_rows["outcome"].iloc[0]) if len(mr_rows) else "outcome"
    ax.set_xlabel(f"SNP effect on {exposure} (b)", fontsize=9)
    ax.set_ylabel(f"SNP effect on {outcome} ({_b_unit(_scale(mr_rows))})", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.set_title(title or f"{exposure} {ARROW} {outcome}: {len(bx)} SNPs", fontsize=10)
    if len(mr_rows):
        ax.legend(fontsize=7, frameon=False, loc="best", title="MR method", title_fontsize=7)
    return tidy(fig)


@with_figure_fonts
def leave_one_out_plot(loo_rows: pd.DataFrame, *, title: str | None = None, scale: str | None = None) -> Figure:
    """TwoSampleMR ``mr_leaveoneout_plot`` for one trait: the estimate without each SNP.

    ``loo_rows``: ``SNP, b, se`` (as ``mrjax.leave_one_out``), including the ``All`` row.
    SNP rows are sorted by ``b``; ``All`` is drawn last, in red, below a gap. Bars are
    ``b ± 1.96 se``; the dashed line marks 0. ``scale`` (``"OR"``/``"beta"``, the trait's
    ``effect_scale``) names the unit of b on the axis.
    """
    rows = loo_rows.copy()
    is_all = rows["SNP"].astype(str).str.startswith("All")
    snps = rows[~is_all].sort_values("b", kind="stable")
    total = rows[is_all]
    n = len(snps)
    height = min(1.8 + 0.17 * (n + 2), 40.0)
    fig = Figure(figsize=(6, height))
    ax = fig.subplots()
    positions = np.arange(n, dtype=float)
    ax.errorbar(snps["b"], positions, xerr=Z_95 * snps["se"].to_numpy(float), fmt="o", ms=3, color="#333333",
                ecolor="#777777", elinewidth=0.8, capsize=0)
    labels = [drawable(label) for label in snps["SNP"].astype(str)]
    if len(total):
        y_all = n + 1.0
        ax.errorbar(total["b"].iloc[:1], [y_all], xerr=Z_95 * total["se"].to_numpy(float)[:1], fmt="s", ms=4,
                    color=SIG_COLOUR, ecolor=SIG_COLOUR, elinewidth=1.2, capsize=0)
        positions = np.append(positions, y_all)
        labels.append("All")
    ax.set_yticks(positions)
    fontsize = float(np.clip(700 / max(n, 1), 3, 8))
    ax.set_yticklabels(labels, fontsize=fontsize)
    ax.set_ylim(positions.max() + 0.8 if len(positions) else 1, -0.8)
    ax.axvline(0, color="#444444", lw=0.8, ls="--")
    ax.set_xlabel(f"IVW estimate without the SNP, b ({_b_unit(scale)}), 95% CI", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    if title is None and {"exposure", "outcome"} <= set(rows.columns) and len(rows):
        title = f"{rows['exposure'].iloc[0]} {ARROW} {rows['outcome'].iloc[0]}"
    ax.set_title(title or "Leave-one-out", fontsize=10)
    return tidy(fig)


@with_figure_fonts
def funnel_plot(harmonised: pd.DataFrame, mr_rows: pd.DataFrame, *, single_snp: pd.DataFrame | None = None, title: str | None = None) -> Figure:
    """TwoSampleMR ``mr_funnel_plot`` for one trait: precision 1/se_IV against each SNP's Wald ratio.

    Wald ratios ``by/bx`` with ``se = sy/|bx|`` (``mr_wald_ratio``) come from ``single_snp``
    (its non-``All`` rows) when given, else from ``harmonised``. Vertical lines: the IVW and
    MR Egger estimates of ``mr_rows`` (all methods when neither is present).
    """
    if single_snp is not None and len(single_snp):
        snp_rows = single_snp[~single_snp["SNP"].astype(str).str.startswith("All")]
        ratio, se = snp_rows["b"].to_numpy(float), snp_rows["se"].to_numpy(float)
    else:
        bx, _sx, by, sy = _instrument_columns(harmonised)
        ratio, se = by / bx, sy / np.abs(bx)
    fig = Figure(figsize=(6, 4.6))
    ax = fig.subplots()
    ok = np.isfinite(ratio) & np.isfinite(se) & (se > 0)
    ax.scatter(ratio[ok], 1 / se[ok], s=14 if ok.sum() < 200 else 6, color="#333333", zorder=3)
    chosen = mr_rows[mr_rows["method"].astype(str).str.contains("Inverse variance|Egger", case=False)] if len(mr_rows) else mr_rows
    if not len(chosen):
        chosen = mr_rows
    chosen = _primary_first(chosen)
    colours = _colours(chosen["method"]) if len(chosen) else {}
    styles = _styles(chosen["method"]) if len(chosen) else {}
    lines = []
    for _, row in chosen.iterrows():
        if np.isfinite(row["b"]):
            ax.axvline(row["b"], color=colours[row["method"]], lw=1.5, ls=styles[row["method"]][0], label=str(row["method"]))
            lines.append(row["b"])
    xs = np.concatenate([ratio[ok], lines]) if (ok.any() or lines) else np.array([])
    if len(xs):
        pad = 0.06 * (xs.max() - xs.min()) or 0.1 * abs(xs.max()) or 0.1
        ax.set_xlim(xs.min() - pad, xs.max() + pad)
    ax.set_xlabel(f"Wald ratio of each SNP, b ({_b_unit(_scale(mr_rows))})", fontsize=9)
    ax.set_ylabel("Precision 1/SE of the Wald ratio", fontsize=9)
    ax.tick_params(labelsize=8)
    if title is None and len(mr_rows):
        title = f"{mr_rows['exposure'].iloc[0]} {ARROW} {mr_rows['outcome'].iloc[0]}"
    ax.set_title(title or "Funnel plot", fontsize=10)
    if len(chosen):
        ax.legend(fontsize=7, frameon=False, title="MR method", title_fontsize=7)
    return tidy(fig)


# ----------------------------------------------------------------------------- writing
def save_figure(fig: Figure, folder: str | Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``folder/stem.png`` and ``folder/stem.svg`` (atomically). The figures
    are ``matplotlib.figure.Figure`` objects, never registered with pyplot: nothing to close."""
    return write_figure(folder, stem, fig)


def _subset(frame: pd.DataFrame | None, direction: str, exposure: str, outcome: str) -> pd.DataFrame:
    if frame is None or not len(frame):
        return pd.DataFrame()
    mask = (frame["exposure"].astype(str) == exposure) & (frame["outcome"].astype(str) == outcome)
    if "direction" in frame.columns:
        mask &= frame["direction"].astype(str) == direction
    return frame[mask]


def scan_figures(
    folder: str | Path,
    results: pd.DataFrame,
    *,
    harmonised=None,
    pleiotropy=None,
    leave_one_out=None,
    single_snp=None,
    method: str = PRIMARY_METHOD,
    alpha: float = 0.05,
    by: str = "qval_fdr",
    max_traits: int = MAX_TRAIT_FIGURES,
) -> dict:
    """Draw and write every figure of a scan into ``folder`` (PNG + SVG each).

    Scan level: ``forest`` and ``volcano``. For each trait significant by ``method`` (at most
    ``max_traits``, those with the smallest p): a scatter plot (needs ``harmonised``), a
    leave-one-out plot (needs ``leave_one_out``) and a funnel plot (needs ``harmonised`` or
    ``single_snp``), under ``folder/traits/``.
    ``harmonised``, ``pleiotropy``, ``leave_one_out``, ``single_snp`` are frames with a
    ``direction`` column or ``{direction: frame}`` dicts. Returns
    ``{"scan": {name: [paths]}, "traits": [{"direction", "exposure", "outcome", name: [paths]…}]}``.
    """
    folder = Path(folder)
    harmonised = stack_directions(harmonised) if harmonised is not None else None
    pleiotropy = stack_directions(pleiotropy) if pleiotropy is not None else None
    leave_one_out = stack_directions(leave_one_out) if leave_one_out is not None else None
    single_snp = stack_directions(single_snp) if single_snp is not None else None
    written = {"scan": {}, "traits": []}
    written["scan"]["forest"] = save_figure(forest_plot(results, method=method, alpha=alpha, by=by), folder, "forest_plot")
    written["scan"]["volcano"] = save_figure(volcano_plot(results, method=method, alpha=alpha, by=by), folder, "scan_overview")
    used_stems: set[str] = set()
    for _, hit in strongest(significant(results, method=method, alpha=alpha, by=by), max_traits).iterrows():
        direction, exposure, outcome = str(hit["direction"]), str(hit["exposure"]), str(hit["outcome"])
        stem = f"{direction}_{slug(exposure)}__{slug(outcome)}"
        base, i = stem, 2
        while stem in used_stems:
            stem, i = f"{base}_{i}", i + 1
        used_stems.add(stem)
        entry = {"direction": direction, "exposure": exposure, "outcome": outcome}
        mr_rows = _subset(results, direction, exposure, outcome)
        instruments = _subset(harmonised, direction, exposure, outcome)
        title = _trait_title(direction, exposure, outcome)
        if len(instruments):
            pleio = _subset(pleiotropy, direction, exposure, outcome)
            intercept = float(pleio["egger_intercept"].iloc[0]) if len(pleio) and "egger_intercept" in pleio else None
            entry["scatter"] = save_figure(scatter_plot(instruments, mr_rows, egger_intercept=intercept, title=title),
                                           folder / "traits", f"{stem}_scatter")
        loo = _subset(leave_one_out, direction, exposure, outcome)
        if len(loo):
            entry["leave_one_out"] = save_figure(leave_one_out_plot(loo, title=title, scale=_scale(mr_rows)),
                                                 folder / "traits", f"{stem}_leave_one_out")
        single = _subset(single_snp, direction, exposure, outcome)
        if len(instruments) or len(single):
            entry["funnel"] = save_figure(funnel_plot(instruments, mr_rows, single_snp=single if len(single) else None, title=title),
                                          folder / "traits", f"{stem}_funnel")
        written["traits"].append(entry)
    return written
