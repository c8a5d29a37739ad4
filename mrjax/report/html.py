"""One self-contained ``report.html`` for a scan, laid out for a paper.

The page needs no other file: styles are inline and every figure is embedded as a base64
``data:`` PNG. Every piece of text that comes from data (trait names, settings, file paths)
is HTML-escaped. Sections, in reading order:

1. **Summary**: per direction, how many traits were tested and which were significant.
2. **Significant findings**: per direction and effect scale, the estimates of every method
   for the significant traits, then their sensitivity analyses (Cochran's Q, MR-Egger
   intercept, MR-PRESSO, leave-one-out) side by side.
3. **Figures**: forest plot, scan overview, per-trait scatter / leave-one-out / funnel plots.
4. **Instruments and diagnostics**: instruments per pipeline step and drop reasons, and the
   full tables (every trait's primary estimate, heterogeneity, pleiotropy, MR-PRESSO,
   leave-one-out), folded.
5. **Run details**, folded: inputs (with SHA-256), settings, timings, software versions.

Tables show display names (:mod:`mrjax.report.display`); the raw column names stay in the
TSV/parquet files. Each table holds one effect scale, named in its headers.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from mrjax.outputs import software_versions, write_text
from mrjax.report import display
from mrjax.report.tables import (
    PRIMARY_METHOD,
    findings_table,
    format_effect,
    format_p,
    leave_one_out_summary,
    scan_results,
    significant,
    stack_directions,
)

STYLE = """
body{font-family:-apple-system,"Segoe UI","Noto Sans","DejaVu Sans",Helvetica,Arial,"Noto Sans CJK SC","Noto Sans CJK JP",
"PingFang SC","Microsoft YaHei","Apple Color Emoji","Segoe UI Emoji","Noto Color Emoji",sans-serif;
margin:2em auto;max-width:1200px;color:#222;padding:0 1em;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #1b6ca8;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.6em}h4{margin:1.2em 0 .3em}
table{border-collapse:collapse;font-size:.82em;margin:.4em 0}
th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f3f6f9;font-weight:600;overflow-wrap:normal}td{max-width:28em}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.first td{border-top:2px solid #9fb3c8}
.muted{color:#666}.note{font-size:.82em;color:#555;margin:.2em 0 .8em}.fig{margin:1em 0}
.fig img{max-width:100%;border:1px solid #eee}.figrow{display:flex;flex-wrap:wrap;gap:8px}
.figrow figure{flex:1 1 360px;margin:0;display:flex;flex-direction:column}.figrow img{width:100%}
.figrow figcaption{order:-1;margin-bottom:.3em}figcaption{font-size:.8em;color:#555}
details{margin:.5em 0}summary{cursor:pointer;color:#1b6ca8;font-weight:600}
.wide{overflow-x:auto;max-width:100%}ul.findings li{margin:.25em 0}
"""

DIRECTION_TITLES = {"forward": "Forward: exposure → outcome", "reverse": "Reverse: outcome → exposure"}
CORRECTION_NAMES = {"qval_fdr": "FDR q", "pval_bonferroni": "Bonferroni p", "pval": "p"}
CORRECTION_LONG = {"qval_fdr": "Benjamini–Hochberg FDR q", "pval_bonferroni": "Bonferroni-corrected p",
                   "pval": "uncorrected p"}
#: Text cells that are formatted numbers ("< 1.00e-04", "1.30 (1.17–1.45)", "0.13 to 0.16") align right.
NUMBER_TEXT = re.compile(r"^[<>]?\s?-?\d[\d.]*(e[-+]?\d+)?(\s?\(-?[\d.]+(–| to )-?[\d.]+\)| to -?[\d.]+)?$")
#: Summary sentences list at most this many significant traits per direction.
MAX_NAMED_HITS = 12


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _is_p_column(column: str) -> bool:
    """p-value columns by raw name (``pval``, ``Q_pval``, ``qval_fdr``…) or display name
    (``P``, ``Q P``, ``FDR q``…): printed in paper format."""
    name = column.lower()
    raw = name in {"p", "pval", "q_pval"} or name.endswith(("pval", "_p", "qval_fdr", "bonferroni"))
    return raw or column == "P" or column.endswith(" P") or column in {"FDR q", "Bonferroni P"}


def _cell(value: Any, column: str) -> tuple[str, bool]:
    """Text of one table cell and whether it is numeric (right-aligned)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "", True
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, np.integer)):
        return str(int(value)), True
    if isinstance(value, (float, np.floating)):
        if _is_p_column(column):
            return format_p(float(value)), True
        return f"{float(value):.4g}", True
    text = str(value)
    return text, bool(NUMBER_TEXT.match(text))


def table_html(frame: pd.DataFrame | None, *, max_rows: int | None = None, empty: str = "None.",
               group_column: str | None = None) -> str:
    """An escaped HTML table of ``frame`` (p-value columns in paper format, other floats 4 s.f.)
    inside a horizontally scrolling container, so a wide table never widens the page.
    Rows where ``group_column`` is non-empty start a new group (a heavier top border)."""
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
        first = group_column is not None and body and str(row[list(shown.columns).index(group_column)]) != ""
        body.append(('<tr class="first">' if first else "<tr>") + "".join(cells) + "</tr>")
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


def _key_value(mapping: Mapping[str, Any] | None, empty: str, key: str = "Setting", value: str = "Value") -> str:
    if not mapping:
        return f'<p class="muted">{_esc(empty)}</p>'
    rows = [{key: k, value: v if not isinstance(v, (list, tuple)) else ", ".join(map(str, v))} for k, v in mapping.items()]
    return table_html(pd.DataFrame(rows))


def _folded(summary: str, body: str) -> str:
    return f"<details><summary>{_esc(summary)}</summary>{body}</details>"


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


def _scale_groups(frame: pd.DataFrame, scales: pd.DataFrame):
    """``(scale, rows)`` of ``frame`` per effect scale (OR first), the scale of each trait taken
    from ``scales`` (``direction, exposure, outcome, effect_scale``)."""
    keys = [c for c in ("direction", "exposure", "outcome") if c in frame.columns]
    if "effect_scale" not in frame.columns:
        frame = frame.merge(scales.drop_duplicates(keys)[keys + ["effect_scale"]], on=keys, how="left") if len(scales) else frame
    scale = display.scale_of(frame)
    for name in (display.SCALE_OR, display.SCALE_BETA):
        part = frame[scale == name]
        if len(part):
            yield name, part


def _hit_sentence(row: pd.Series) -> str:
    scale = row.get("effect_scale", display.SCALE_OR)
    estimate = format_effect(scale, row["b"], row["se"], row["or"], row["or_lci95"], row["or_uci95"])
    name = row["exposure"] if row["direction"] == "forward" else row["outcome"]
    kind = "OR" if scale == display.SCALE_OR else "b"
    return f"<b>{_esc(name)}</b> ({kind} {_esc(estimate)}, p = {_esc(format_p(row['pval']))})"


def _summary(primary: pd.DataFrame, hits: pd.DataFrame, results: pd.DataFrame, rule: str) -> list[str]:
    items = []
    for direction in ("forward", "reverse"):
        tested = primary[primary["direction"] == direction] if len(primary) else primary
        if not len(tested):
            continue
        estimated = int(np.isfinite(tested["b"].astype(float)).sum())
        mine = hits[hits["direction"] == direction].sort_values("pval", kind="stable")
        n_methods = int(results.loc[results["direction"] == direction, "method_id"].nunique())
        text = (f"<b>{_esc(DIRECTION_TITLES[direction])}</b>: {len(tested)} trait pairs, {estimated} estimated "
                f"({n_methods} methods); ")
        if len(mine):
            named = ", ".join(_hit_sentence(r) for _, r in mine.head(MAX_NAMED_HITS).iterrows())
            more = f" and {len(mine) - MAX_NAMED_HITS} more" if len(mine) > MAX_NAMED_HITS else ""
            text += f"<b>{len(mine)} significant</b> ({_esc(rule)}): {named}{more}."
        else:
            text += f"none significant ({_esc(rule)})."
        items.append(f"<li>{text}</li>")
    if not items:
        return ['<p class="muted">No estimates.</p>']
    return ['<ul class="findings">' + "".join(items) + "</ul>"]


def _findings(results, hits, findings, direction_rows, method) -> list[str]:
    """Per direction and scale: the estimates of every method, then the sensitivity analyses."""
    keys = ["direction", "exposure", "outcome"]
    parts = []
    for direction in ("forward", "reverse"):
        if not direction_rows.get(direction):
            continue
        parts.append(f"<h3>{_esc(DIRECTION_TITLES[direction])}</h3>")
        mine = hits[hits["direction"] == direction]
        if not len(mine):
            parts.append('<p class="muted">No trait passed the threshold in this direction.</p>')
            continue
        groups = list(_scale_groups(mine, results))
        for scale, group in groups:
            if len(groups) > 1:
                parts.append(f"<h4>{_esc(display.SCALE_TITLE[scale].capitalize())}</h4>")
            parts.append(table_html(display.main_results(results, group, method=method), group_column="Exposure"))
            parts.append(f'<p class="note">{_esc(display.SCALE_NOTE[scale])} Methods: TwoSampleMR conventions; '
                         f'the primary method is listed first.</p>')
            chosen = findings.merge(group[keys], on=keys, how="inner") if len(findings) else findings
            summary = display.sensitivity_summary(chosen)
            presso = [c for c in summary.columns if c.startswith("PRESSO")]
            parts.append("<h4>Sensitivity analyses</h4>")
            parts.append(table_html(summary.drop(columns=presso), empty="Not computed for these traits."))
            if presso:  # its own table, so neither is wider than the page
                parts.append(table_html(summary[["Exposure", "Outcome", *presso]]))
            parts.append('<p class="note">FDR q and Bonferroni P of the primary method across the traits of this '
                         "direction; Q P: Cochran's Q (IVW) and Rücker's Q′ (MR-Egger); PRESSO: MR-PRESSO, whose "
                         "global and distortion P are Monte-Carlo (“&lt;” marks a bound, no draw exceeded); LOO: "
                         "leave-one-out, the IVW estimate without each SNP in turn.</p>")
    return parts


def _figures(figures: Mapping, hits: pd.DataFrame, by: str, alpha: float) -> list[str]:
    parts = []
    scan = figures.get("scan", {}) if isinstance(figures, Mapping) else {}
    rule = f"{CORRECTION_NAMES.get(by, by)} < {alpha:g}"
    for name, caption in (
        ("forest", f"Forest plot of the traits significant by IVW ({rule}): every method's estimate with its 95% CI, "
                   "odds ratios (log axis) for binary outcomes, b for continuous ones."),
        ("volcano", "Scan overview: the IVW estimate b of every trait against −log10 p, per direction; "
                    "the dotted line is p = 0.05, the dashed one the Bonferroni threshold 0.05/m."),
        ("heatmap", f"Exposures × outcomes (many-outcome scan): IVW z = b/SE of every pair of the exposures with a "
                    f"significant pair ({rule}, marked with a dot)."),
    ):
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
        for name, caption in (("scatter", "SNP effects with the slopes of the MR methods"),
                              ("leave_one_out", "Leave-one-out IVW estimates (95% CI)"),
                              ("funnel", "Funnel plot: per-SNP Wald ratios against their precision")):
            png = _png(entry.get(name))
            if png is not None:
                row.append(embed_png(png, caption, alt=f"{caption}: {heading}"))
        if row:
            parts.append(f"<h3>{_esc(heading)}</h3><div class=\"figrow\">{''.join(row)}</div>")
    return parts or ['<p class="muted">No figures were drawn.</p>']


def _primary_table(rows: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Every trait's primary-method estimate on one scale, with display names."""
    estimate = [format_effect(scale, *v) for v in rows[["b", "se", "or", "or_lci95", "or_uci95"]].itertuples(index=False)]
    table = pd.DataFrame({"Exposure": rows["exposure"], "Outcome": rows["outcome"], "SNPs": rows["nsnp"],
                          display.ESTIMATE_HEADER[scale]: estimate, "P": rows["pval"]})
    for column in ("qval_fdr", "pval_bonferroni", "reason"):
        if column in rows.columns:
            table[display.label(column)] = rows[column].to_numpy()
    return display.labelled(table)


def _diagnostics(tables: Mapping, results: pd.DataFrame, primary: pd.DataFrame, max_rows: int) -> list[str]:
    parts = ["<h3>Instruments per pipeline step</h3>"]
    totals, per_trait = instrument_count_tables(_stacked(tables.get("audit_counts")))
    parts.append(table_html(display.labelled(totals) if len(totals) else None, empty="No audit counts recorded."))
    if len(per_trait):
        parts.append(_folded(f"Variants kept after each step, per trait ({len(per_trait)} rows)",
                             table_html(display.labelled(per_trait), max_rows=max_rows)))
    audit = _stacked(tables.get("audit"))
    if audit is not None and len(audit):
        reasons = audit.groupby(["step", "reason"], sort=False).size().rename("variants").reset_index()
        parts.append("<h4>Why variants were dropped</h4>" + table_html(display.labelled(reasons.rename(columns={"reason": "Reason"}))))

    parts.append("<h3>All traits</h3>")
    scales = results[["direction", "exposure", "outcome", "effect_scale"]] if "effect_scale" in results.columns else pd.DataFrame()
    blocks = []
    for direction in ("forward", "reverse"):
        mine = primary[primary["direction"] == direction] if len(primary) else primary
        for scale, rows in _scale_groups(mine, scales) if len(mine) else ():
            blocks.append(_folded(f"{DIRECTION_TITLES[direction]}, primary method, {display.SCALE_TITLE[scale]} "
                                  f"({len(rows)} traits)", table_html(_primary_table(rows, scale), max_rows=max_rows)))
    parts += blocks or ['<p class="muted">No estimates.</p>']

    het, pleio = stack_directions(tables.get("heterogeneity")), stack_directions(tables.get("pleiotropy"))
    pres, loo = stack_directions(tables.get("presso")), leave_one_out_summary(tables.get("leave_one_out"))
    for title, frame, drop in (
        ("Heterogeneity (Cochran's Q)", het, ()),
        ("Pleiotropy (MR-Egger intercept)", pleio, ()),
        ("MR-PRESSO", pres, ()),
        ("Leave-one-out", loo, ()),
    ):
        parts.append(f"<h4>{_esc(title)}</h4>")
        if not len(frame) or not {"direction", "exposure", "outcome"} <= set(frame.columns):
            parts.append('<p class="muted">Not run.</p>')
            continue
        for direction in ("forward", "reverse"):
            mine = frame[frame["direction"] == direction]
            for scale, rows in _scale_groups(mine, scales) if len(mine) else ():
                if title == "MR-PRESSO":
                    shown = display.presso_view(rows, scale)
                else:
                    shown = display.labelled(rows.drop(columns=["direction", "effect_scale"], errors="ignore"), scale, drop=drop)
                parts.append(_folded(f"{DIRECTION_TITLES[direction]}, {display.SCALE_TITLE[scale]} ({len(rows)} rows)",
                                     table_html(shown, max_rows=max_rows)))
    return parts


def multivariable_section(tables: Mapping, max_rows: int = 2000) -> list[str]:
    """``scan --adjust-for``: every exposure's MV estimates (``mvmr_results``) with the
    exposures' conditional F (``mvmr_strength``: MVMR ``F`` and ``cond_f``, the minimum of
    MendelianRandomization's CondFstat objective); empty when the scan had no adjustment."""
    res = tables.get("mvmr_results")
    if res is None or not len(res):
        return []
    keys = [c for c in ("analysis", "exposure") if c in res.columns]
    strength = tables.get("mvmr_strength")
    if strength is not None and len(strength):
        res = res.merge(strength[keys + ["F", "cond_f"]].rename(columns={"F": "conditional F", "cond_f": "CondFstat (minimum)"}),
                        on=keys, how="left")
    shown = res.drop(columns=["outcome", "method_id"], errors="ignore")
    parts = ["<h2>Multivariable MR (adjusted exposures)</h2>",
             '<p class="muted">Each exposure adjusted for the --adjust-for traits at its own instruments '
             "(MV-IVW, MV-Egger, MV-median); conditional F per exposure (MVMR strength_mvmr and the minimum "
             "of MendelianRandomization's CondFstat objective).</p>",
             _folded(f"Estimates ({len(shown)} rows)", table_html(shown, max_rows=max_rows))]
    excluded = tables.get("mvmr_excluded")
    if excluded is not None and len(excluded):
        parts.append(_folded(f"Instruments dropped from the MV analyses ({len(excluded)} rows)", table_html(excluded, max_rows=max_rows)))
    return parts


def _run_details(inputs, settings, timings, versions) -> list[str]:
    timing_rows = {k: f"{v:.2f}" for k, v in (timings or {}).items()}
    return [
        _folded("Inputs", table_html(_inputs_frame(inputs, settings), empty="Input files not recorded.")
                + '<p class="note">Checksums and the run date are also in manifest.json.</p>'),
        _folded("Settings", _key_value(settings, "Settings not recorded.")),
        _folded("Timings", _key_value(timing_rows, "Timings not recorded.", key="Stage", value="Time (s)")),
        _folded("Software", _key_value(versions, "", key="Package", value="Version")),
    ]


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
    findings = tables.get("findings")
    if findings is None:
        findings = findings_table(results, heterogeneity=tables.get("heterogeneity"), pleiotropy=tables.get("pleiotropy"),
                                  presso=tables.get("presso"), leave_one_out=tables.get("leave_one_out"),
                                  alpha=alpha, by=by, method=method)
    if len(findings) and len(hits):
        findings = findings.merge(hits[keys], on=keys, how="inner")
    elif not len(hits):
        findings = findings.iloc[0:0]
    primary = significant(results, method=method, alpha=np.inf, by="pval") if len(results) else results
    direction_rows = {d: bool(len(primary)) and bool((primary["direction"] == d).any()) for d in ("forward", "reverse")}
    rule = f"{CORRECTION_NAMES.get(by, by)} < {alpha:g}"

    parts = [f"<h1>{_esc(title)}</h1>",
             f'<p class="muted">mrjax {_esc(versions.get("mrjax", ""))}. A trait is significant when the '
             f"{_esc(CORRECTION_LONG.get(by, by))} of the primary method ({_esc(method)}) is below {_esc(f'{alpha:g}')}, "
             "corrected across the traits of each direction. Inputs, settings, timings and software versions are "
             "at the end of the page.</p>"]
    parts += ["<h2>Summary</h2>", *_summary(primary, hits, results, rule)]
    parts += ["<h2>Significant findings</h2>", *_findings(results, hits, findings, direction_rows, method)]
    parts += ["<h2>Figures</h2>", *_figures(figures, hits, by, alpha)]
    parts += ["<h2>Instruments and diagnostics</h2>", *_diagnostics(tables, results, primary, max_rows)]
    parts += multivariable_section(tables, max_rows)
    parts += ["<h2>Run details</h2>", *_run_details(inputs, settings, timings, versions)]
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
    """Input records as a display table (file name, folder, size, SHA-256); without them, the
    input paths named in ``settings``."""
    if inputs:
        records = [dict(r) if isinstance(r, Mapping) else {"path": str(r)} for r in inputs]
        rows = []
        for record in records:
            path = Path(str(record.get("path", "")))
            row = {"File": path.name, "Folder": str(path.parent)}
            if "bytes" in record:
                row["Size (bytes)"] = record["bytes"]
            if "sha256" in record:
                row["SHA-256"] = record["sha256"]
            rows.append(row)
        return pd.DataFrame(rows)
    paths = []
    for key in INPUT_SETTINGS:
        value = (settings or {}).get(key)
        if value:
            for path in value if isinstance(value, (list, tuple)) else [value]:
                paths.append({"Input": key, "File": Path(str(path)).name, "Folder": str(Path(str(path)).parent)})
    if not paths:
        return None
    frame = pd.DataFrame(paths)
    frame["SHA-256"] = "in manifest.json"
    return frame
