"""Putting a scan's tables together (its per-trait tables are joined by
:mod:`mrjax.scan.stacked`): the effect scale of each row, and the scan-level tables (odds
ratios, multiple-testing corrections, findings)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax.report import tables as report_tables
from mrjax.scan.config import REVERSE, ScanConfig
from mrjax.scan.frames import nonempty
from mrjax.scan.inputs import ExposureSource, OutcomeSource, effect_scale, options_for


def effect_scales(config: ScanConfig, sources: list[ExposureSource], outcomes: list[OutcomeSource]) -> tuple[dict, dict]:
    """The effect scale (:func:`mrjax.scan.inputs.effect_scale`) of each outcome by name and of
    each exposure trait by name (the outcome of a reverse row), each file looked at once."""
    by_outcome = {o.name: effect_scale(o.path, config.outcome_type, options_for(config, o.path, "outcome"))
                  for o in outcomes}
    by_file = {path: effect_scale(path, config.exposure_type, options_for(config, path, "exposure"))
               for path in dict.fromkeys(s.path for s in sources)}
    return by_outcome, {s.trait: by_file[s.path] for s in sources}


def with_effect_scale(results: pd.DataFrame, config: ScanConfig, sources: list[ExposureSource],
                      outcomes: list[OutcomeSource], *, scales: tuple[dict, dict] | None = None) -> pd.DataFrame:
    """``results`` with ``effect_scale`` per row: forward rows take their outcome file's
    scale, reverse rows (whose outcome is an exposure) their exposure file's. ``scales``:
    :func:`effect_scales`, when already known."""
    if not len(results):
        return results
    by_outcome, by_trait = scales or effect_scales(config, sources, outcomes)
    if len(set(by_outcome.values())) == 1:
        forward = next(iter(by_outcome.values()))
    else:
        forward = results["outcome"].astype(str).map(by_outcome)
    if len(set(by_trait.values())) == 1:  # the usual case: all exposures binary or all continuous
        reverse = next(iter(by_trait.values()))
    else:
        reverse = results["outcome"].astype(str).map(by_trait)
    return results.assign(effect_scale=np.where(results["direction"] == REVERSE, reverse, forward))


def assemble_tables(tables: dict[str, pd.DataFrame], config: ScanConfig, *, corrected: bool = False) -> dict[str, pd.DataFrame]:
    """The scan-level tables (``mrjax.report.tables``): ``results`` with odds ratios and, per
    direction and method, BH-FDR q-values and Bonferroni p-values across traits (unless
    ``corrected``: they are there already); ``findings`` (significant traits beside their
    sensitivity analyses) and ``findings_paper`` (the same, formatted for a manuscript)."""
    out = dict(tables)
    results = tables["results"]
    if not corrected:
        if config.correct_per_outcome and len(results):  # the scanned outcome of each row
            scanned = results["outcome"].where(results["direction"] != REVERSE, results["exposure"])
            results = results.assign(scan_outcome=scanned)
        out["results"] = report_tables.scan_results(results, correction_by=config.correction_by)
    if "scan_outcome" in out["results"].columns:
        out["results"] = out["results"].drop(columns="scan_outcome")
    out["findings"] = report_tables.findings_table(
        out["results"], heterogeneity=nonempty(tables, "heterogeneity"), pleiotropy=nonempty(tables, "pleiotropy"),
        presso=nonempty(tables, "presso"), leave_one_out=nonempty(tables, "leave_one_out"),
        alpha=config.alpha, by=config.significance_column,
    )
    out["findings_paper"] = report_tables.paper_table(out["findings"], out["results"])
    return out
