"""Write a scan's output folder: tables, figures, ``report.html`` and ``manifest.json``.

:func:`write_scan_outputs` is what ``mrjax scan`` / ``mrjax demo`` / ``mrjax mr`` call once the
estimates exist. Every file is written atomically (:mod:`mrjax.outputs`); the manifest comes
last and lists the files written, so a folder whose ``manifest.json`` exists is complete.

Layout of ``out_dir``::

    results.tsv, results.parquet      scan_results(): direction × trait × method, OR, FDR, Bonferroni
    findings.tsv, findings_paper.tsv  significant traits with sensitivity analyses (numeric / formatted)
    heterogeneity.tsv, pleiotropy.tsv, presso.tsv, presso_outliers.tsv,
    leave_one_out.tsv, single_snp.tsv instrument-level and sensitivity tables (when given)
    instruments.tsv                   the harmonised instruments used
    audit.tsv, audit_counts.tsv       dropped variants with reasons; counts per step and trait
    figures/forest_plot.{png,svg}, figures/scan_overview.{png,svg},
    figures/traits/<direction>_<exposure>__<outcome>_{scatter,leave_one_out,funnel}.{png,svg}
    report.html                       self-contained summary
    manifest.json                     parameters, seed, input checksums, versions, timings
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from mrjax.audit import AUDIT_COLUMNS, COUNT_COLUMNS
from mrjax.outputs import StageTimer, build_manifest, input_checksums, write_json, write_table
from mrjax.report.html import write_report
from mrjax.report.plots import scan_figures
from mrjax.report.tables import PRIMARY_METHOD, findings_table, paper_table, scan_results, stack_directions


def write_scan_outputs(
    out_dir: str | Path,
    mr,
    *,
    heterogeneity=None,
    pleiotropy=None,
    presso=None,
    presso_outliers=None,
    leave_one_out=None,
    single_snp=None,
    instruments=None,
    audit=None,
    audit_counts=None,
    parameters: Mapping[str, Any] | None = None,
    seed: int | None = None,
    inputs: Iterable[str | Path] = (),
    timings: StageTimer | Mapping[str, float] | None = None,
    command: str | None = None,
    method: str = PRIMARY_METHOD,
    alpha: float = 0.05,
    by: str = "qval_fdr",
    figures: bool = True,
    title: str = "mrjax scan report",
) -> dict[str, Any]:
    """Write every output of a scan into ``out_dir`` and return ``{"results": frame, "files": [paths], "figures": …}``.

    ``mr`` and the other tables are ``{"forward": frame, "reverse": frame}`` dicts or frames
    (with or without a ``direction`` column), in the shapes of ``mrjax.mr``,
    ``mrjax.heterogeneity``, ``mrjax.pleiotropy``, ``mrjax.presso(...).traits`` /
    ``.instruments``, ``mrjax.leave_one_out``, ``mrjax.single_snp`` and the harmonised table.
    ``audit`` / ``audit_counts`` are the frames of :mod:`mrjax.audit`. Significance for the
    findings and per-trait figures: ``by < alpha`` for ``method`` (default IVW, FDR q < 0.05).
    ``parameters``, ``seed``, ``inputs`` (file paths or PLINK prefixes), ``timings`` and
    ``command`` go into ``manifest.json``; the report-writing stage is timed as ``report``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timer = timings if isinstance(timings, StageTimer) else StageTimer()
    if timings is not None and not isinstance(timings, StageTimer):
        timer.seconds.update({str(k): float(v) for k, v in timings.items()})
    files: list[Path] = []
    with timer("report"):
        results = scan_results(mr)
        files += write_table(out_dir, "results", results, formats=("tsv", "parquet"))
        findings = findings_table(results, heterogeneity=heterogeneity, pleiotropy=pleiotropy, presso=presso,
                                  leave_one_out=leave_one_out, alpha=alpha, by=by, method=method)
        files += write_table(out_dir, "findings", findings)
        files += write_table(out_dir, "findings_paper", paper_table(findings, results))
        for stem, table in (("heterogeneity", heterogeneity), ("pleiotropy", pleiotropy), ("presso", presso),
                            ("presso_outliers", presso_outliers), ("leave_one_out", leave_one_out),
                            ("single_snp", single_snp), ("instruments", instruments)):
            if table is not None:
                files += write_table(out_dir, stem, stack_directions(table))
        files += write_table(out_dir, "audit", _or_empty(audit, AUDIT_COLUMNS))
        files += write_table(out_dir, "audit_counts", _or_empty(audit_counts, COUNT_COLUMNS))
        written_figures: dict = {}
        if figures:
            written_figures = scan_figures(out_dir / "figures", results, harmonised=instruments, pleiotropy=pleiotropy,
                                           leave_one_out=leave_one_out, single_snp=single_snp, method=method,
                                           alpha=alpha, by=by)
            files += [p for paths in written_figures["scan"].values() for p in paths]
            files += [p for entry in written_figures["traits"] for key, paths in entry.items()
                      if key not in ("direction", "exposure", "outcome") for p in paths]
        checked_inputs = input_checksums(inputs)
        files.append(write_report(
            out_dir / "report.html", results, figures=written_figures, heterogeneity=heterogeneity,
            pleiotropy=pleiotropy, presso=presso, leave_one_out=leave_one_out,
            audit_counts=_stacked_or_none(audit_counts), audit=_stacked_or_none(audit),
            settings={**dict(parameters or {}), "seed": seed}, inputs=checked_inputs, timings=timer.seconds,
            title=title, method=method, alpha=alpha, by=by))
    manifest = build_manifest(parameters=dict(parameters or {}), seed=seed, inputs=[], timings=timer,
                              outputs=[p.relative_to(out_dir) for p in files], command=command)
    manifest["inputs"] = checked_inputs
    manifest["outputs"] = sorted(str(p.relative_to(out_dir)) for p in files)
    files.append(write_json(out_dir / "manifest.json", manifest))
    return {"results": results, "findings": findings, "files": files, "figures": written_figures, "manifest": manifest}


def _or_empty(frame, columns) -> pd.DataFrame:
    stacked = _stacked_or_none(frame)
    return stacked if stacked is not None else pd.DataFrame(columns=columns)


def _stacked_or_none(frame):
    if frame is None:
        return None
    if isinstance(frame, pd.DataFrame):
        return frame
    return stack_directions(frame)
