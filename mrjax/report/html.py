"""One self-contained ``report.html`` for a scan.

The page needs no other file: styles are inline and every figure is embedded as a base64
``data:`` PNG. Every piece of text that comes from data (trait names, settings, file paths)
is HTML-escaped. Sections: summary, inputs (with SHA-256), settings, instrument counts per
pipeline step (from the audit counts of ``mrjax.audit``) and drop reasons, the significant
findings per direction with their sensitivity analyses (heterogeneity, pleiotropy,
MR-PRESSO, leave-one-out), the figures, the primary-method results of every trait, and the
software versions.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from mrjax.outputs import software_versions, write_text
from mrjax.report.tables import (
    PRIMARY_METHOD,
    findings_table,
    format_p,
    leave_one_out_summary,
    paper_table,
    scan_results,
    significant,
    stack_directions,
)

STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #1b6ca8;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.4em}table{border-collapse:collapse;font-size:.82em;margin:.6em 0}
th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}th{background:#f3f6f9}
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#666}.fig{margin:1em 0}
.fig img{max-width:100%;border:1px solid #eee}.figrow{display:flex;flex-wrap:wrap;gap:8px}
.figrow figure{flex:1 1 360px;margin:0}.figrow img{width:100%}figcaption{font-size:.8em;color:#555}
details{margin:.6em 0}summary{cursor:pointer;color:#1b6ca8}.wide{overflow-x:auto}
"""

DIRECTION_TITLES = {"forward": "Forward: exposure → outcome", "reverse": "Reverse: outcome → exposure"}


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: Any, column: str) -> tuple[str, bool]:
    """Text of one table cell and whether it is numeric (right-aligned)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "", True
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)), False
    if isinstance(value, (int, np.integer)):
        return str(int(value)), True
    if isinstance(value, (float, np.floating)):
        name = column.lower()
        if name in {"p", "pval", "q_pval"} or name.endswith(("pval", "_p", "qval_fdr", "bonferroni")):
            return format_p(float(value)), True
        return f"{float(value):.4g}", True
    return str(value), False


def table_html(frame: pd.DataFrame | None, *, max_rows: int | None = None, empty: str = "None.") -> str:
    """An escaped HTML table of ``frame`` (p-value columns in paper format, other floats 4 s.f.)."""
    if frame is None or not len(frame):
        return f'<p class="muted">{_esc(empty)}</p>'
    shown = frame if max_rows is None else frame.head(max_rows)
    head = "".join(f"<th>{_esc(c)}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(shown.columns, row):
            text, numeric = _cell(value, str(column))
            cells.append(f'<td class="num">{_esc(text)}</td>' if numeric else f"<td>{_esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if max_rows is not None and len(frame) > max_rows:
        note = f'<p class="muted">First {max_rows} of {len(frame)} rows; all rows are in the TSV/parquet files.</p>'
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{note}'


def embed_png(path: str | Path, caption: str = "", alt: str = "") -> str:
    """A ``<figure>`` holding the PNG at ``path`` as a base64 data URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_esc(alt or caption)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _png(paths: Iterable[str | Path] | None) -> Path | None:
    for path in paths or ():
        if str(path).endswith(".png"):
            return Path(path)
    return None


def _key_value(mapping: Mapping[str, Any] | None, empty: str) -> str:
    if not mapping:
        return f'<p class="muted">{_esc(empty)}</p>'
    rows = [{"setting": k, "value": v if not isinstance(v, (list, tuple)) else ", ".join(map(str, v))} for k, v in mapping.items()]
    return table_html(pd.DataFrame(rows))


def instrument_count_tables(audit_counts: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per step totals (``n_in, n_kept, n_dropped`` summed over traits, and traits kept) and the
    per-trait table of variants kept after each step (rows trait, columns steps in pipeline order)."""
    if audit_counts is None or not len(audit_counts):
        return pd.DataFrame(), pd.DataFrame()
    frame = stack_directions(audit_counts) if "direction" not in audit_counts.columns else audit_counts
    steps = list(dict.fromkeys(frame["step"]))
    keys = ["direction", "step"] if "direction" in frame.columns else ["step"]
    totals = frame.groupby(keys, sort=False).agg(
        traits=("trait", "nunique"), n_in=("n_in", "sum"), n_kept=("n_kept", "sum"), n_dropped=("n_dropped", "sum"),
        traits_with_none_left=("n_kept", lambda s: int((s == 0).sum())),
    ).reset_index()
    index = ["direction", "trait"] if "direction" in frame.columns else ["trait"]
    per_trait = frame.pivot_table(index=index, columns="step", values="n_kept", aggfunc="sum", sort=False)
    per_trait = per_trait[[s for s in steps if s in per_trait.columns]].reset_index()
    per_trait.columns.name = None
    return totals, per_trait


def render_report(
    tables: Mapping[str, pd.DataFrame],
    significant_rows: pd.DataFrame | None = None,
    figures: Mapping | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    inputs: Iterable[Mapping[str, Any] | str | Path] | None = None,
    versions: Mapping[str, str] | None = None,
    timings: Mapping[str, float] | None = None,
    title: str = "mrjax scan report",
    method: str = PRIMARY_METHOD,
    alpha: float = 0.05,
    by: str = "qval_fdr",
    max_rows: int = 2000,
) -> str:
    """The HTML text of the report (see the module docstring for its sections).

    ``tables`` maps names to the scan's tables (frames with a ``direction`` column, or
    ``{direction: frame}`` dicts): ``results`` (``mrjax.mr`` rows or, better, the output of
    :func:`mrjax.report.tables.scan_results`) and optionally ``findings``
    (:func:`~mrjax.report.tables.findings_table`), ``heterogeneity``, ``pleiotropy``, ``presso``,
    ``leave_one_out``, ``audit`` and ``audit_counts`` (:mod:`mrjax.audit`).
    ``significant_rows`` are the primary-method rows of the significant traits (default:
    :func:`~mrjax.report.tables.significant` with ``method``, ``alpha`` and ``by``); ``figures``
    is the return value of :func:`mrjax.report.plots.scan_figures`; ``inputs`` are manifest
    records (``path``, ``bytes``, ``sha256``; see :func:`mrjax.outputs.input_checksums`) or plain
    paths (listed without checksums).
    """
    versions = dict(versions or software_versions())
    figures = figures or {}
    results = tables["results"]
    if "qval_fdr" not in results.columns:
        results = scan_results(results)
    hits = significant(results, method=method, alpha=alpha, by=by) if significant_rows is None else significant_rows
    keys = ["direction", "exposure", "outcome"]
    heterogeneity, pleiotropy = tables.get("heterogeneity"), tables.get("pleiotropy")
    presso, leave_one_out = tables.get("presso"), tables.get("leave_one_out")
    findings = tables.get("findings")
    if findings is None:
        findings = findings_table(results, heterogeneity=heterogeneity, pleiotropy=pleiotropy, presso=presso,
                                  leave_one_out=leave_one_out, alpha=alpha, by=by, method=method)
    if len(findings) and len(hits):
        findings = findings.merge(hits[keys], on=keys, how="inner")
    elif not len(hits):
        findings = findings.iloc[0:0]
    paper = paper_table(findings, results)
    correction = {"qval_fdr": "Benjamini–Hochberg FDR q", "pval_bonferroni": "Bonferroni p", "pval": "uncorrected p"}.get(by, by)
    parts = [f"<h1>{_esc(title)}</h1>",
             f'<p class="muted">Generated by mrjax {_esc(versions.get("mrjax", ""))} '
             f'(run date and checksums in manifest.json). Significance: {_esc(correction)} &lt; {_esc(f"{alpha:g}")} for the '
             f'primary method ({_esc(method)}), corrected across traits within each direction.</p>']

    # summary
    primary = significant(results, method=method, alpha=np.inf, by="pval") if len(results) else results
    summary = []
    for direction in ("forward", "reverse"):
        n_traits = int((primary["direction"] == direction).sum()) if len(primary) else 0
        if n_traits:
            n_hits = int((hits["direction"] == direction).sum())
            summary.append({"direction": direction, "traits estimated": n_traits, "significant": n_hits,
                            "methods": int(results.loc[results["direction"] == direction, "method_id"].nunique())})
    parts += ["<h2>Summary</h2>", table_html(pd.DataFrame(summary), empty="No estimates.")]

    # inputs and settings
    parts.append("<h2>Inputs</h2>")
    parts.append(table_html(_inputs_frame(inputs, settings), empty="Input files not recorded."))
    parts += ["<h2>Settings</h2>", _key_value(settings, "Settings not recorded.")]

    # instrument counts
    parts.append("<h2>Instruments per pipeline step</h2>")
    totals, per_trait = instrument_count_tables(_stacked(tables.get("audit_counts")))
    audit = _stacked(tables.get("audit"))
    parts.append(table_html(totals, empty="No audit counts recorded."))
    if len(per_trait):
        parts.append(f"<details><summary>Variants kept after each step, per trait ({len(per_trait)} rows)</summary>"
                     f"{table_html(per_trait, max_rows=max_rows)}</details>")
    if audit is not None and len(audit):
        reasons = audit.groupby(["step", "reason"], sort=False).size().rename("variants").reset_index()
        parts.append("<h3>Why variants were dropped</h3>" + table_html(reasons))

    # findings
    parts.append("<h2>Significant findings</h2>")
    het = stack_directions(heterogeneity)
    pleio = stack_directions(pleiotropy)
    pres = stack_directions(presso)
    loo = leave_one_out_summary(leave_one_out)
    for direction in ("forward", "reverse"):
        if not len(primary) or not (primary["direction"] == direction).any():
            continue
        parts.append(f"<h3>{_esc(DIRECTION_TITLES[direction])}</h3>")
        mine = paper[paper["Direction"] == direction] if len(paper) else paper
        if not len(mine):
            parts.append('<p class="muted">No trait passed the threshold in this direction.</p>')
            continue
        parts.append(table_html(mine.drop(columns="Direction")))
        chosen = hits[hits["direction"] == direction][keys]
        for label, frame in (("Heterogeneity (Cochran's Q)", het), ("Pleiotropy (MR-Egger intercept)", pleio),
                             ("MR-PRESSO", pres), ("Leave-one-out", loo)):
            if len(frame) and {"exposure", "outcome", "direction"} <= set(frame.columns):
                rows = frame.merge(chosen, on=keys, how="inner").drop(columns="direction")
                parts.append(f"<h4>{_esc(label)}</h4>" + table_html(rows, empty="Not computed for these traits."))
            else:
                parts.append(f"<h4>{_esc(label)}</h4><p class=\"muted\">Not run.</p>")

    # figures
    parts.append("<h2>Figures</h2>")
    scan = figures.get("scan", {}) if isinstance(figures, Mapping) else {}
    for name, caption in (("forest", "Forest plot of the traits significant by IVW: odds ratio (binary outcome) or b (continuous outcome), 95% CI, per method."),
                          ("volcano", "Scan overview: IVW estimate against −log10 p for every trait.")):
        png = _png(scan.get(name))
        if png is not None:
            parts.append(f'<div class="fig">{embed_png(png, caption)}</div>')
    trait_figures = figures.get("traits", []) if isinstance(figures, Mapping) else []
    if 0 < len(trait_figures) < len(hits):
        parts.append(f'<p class="muted">Per-trait figures for the {len(trait_figures)} traits with the smallest p '
                     f"of the {len(hits)} significant.</p>")
    for entry in trait_figures:
        heading = f"{entry['exposure']} → {entry['outcome']} ({entry['direction']})"
        row = []
        for name, caption in (("scatter", "Scatter plot with the MR method slopes"),
                              ("leave_one_out", "Leave-one-out analysis"), ("funnel", "Funnel plot")):
            png = _png(entry.get(name))
            if png is not None:
                row.append(embed_png(png, caption, alt=f"{caption}: {heading}"))
        if row:
            parts.append(f"<h3>{_esc(heading)}</h3><div class=\"figrow\">{''.join(row)}</div>")

    # all traits, software
    parts.append("<h2>All traits (primary method)</h2>")
    columns = [c for c in ["direction", "exposure", "outcome", "nsnp", "b", "se", "pval", "or", "or_lci95", "or_uci95", "effect_scale",
                           "qval_fdr", "pval_bonferroni", "reason"] if c in primary.columns]
    parts.append(f"<details><summary>{len(primary)} rows</summary>"
                 f"{table_html(primary[columns] if len(primary) else None, max_rows=max_rows)}</details>")
    if timings:
        parts += ["<h2>Timings (s)</h2>", _key_value({k: f"{v:.2f}" for k, v in timings.items()}, "")]
    parts += ["<h2>Software</h2>", _key_value(versions, "")]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def write_report(
    tables: Mapping[str, pd.DataFrame],
    significant_rows: pd.DataFrame | None,
    figures: Mapping | None,
    path: str | Path,
    **kwargs,
) -> Path:
    """Render the report (:func:`render_report`; same arguments) and write it atomically to ``path``."""
    return write_text(path, render_report(tables, significant_rows, figures, **kwargs))


def _stacked(frame) -> pd.DataFrame | None:
    if frame is None or isinstance(frame, pd.DataFrame):
        return frame
    return stack_directions(frame)


INPUT_SETTINGS = ("exposure_files", "outcome", "ld_ref")


def _inputs_frame(inputs, settings) -> pd.DataFrame | None:
    """Input records as a table; without them, the input paths named in ``settings``."""
    if inputs:
        records = [r if isinstance(r, Mapping) else {"path": str(r)} for r in inputs]
        return pd.DataFrame(records)
    paths = []
    for key in INPUT_SETTINGS:
        value = (settings or {}).get(key)
        if value:
            for path in value if isinstance(value, (list, tuple)) else [value]:
                paths.append({"input": key, "path": str(path)})
    if not paths:
        return None
    frame = pd.DataFrame(paths)
    frame["sha256"] = "in manifest.json"
    return frame
