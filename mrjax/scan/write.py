"""Writing a scan's folder — tables, figures, ``report.html`` and, last, ``manifest.json`` —
and single tables for the step commands, every file atomically (``mrjax.outputs``)."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from mrjax import outputs
from mrjax.audit import Audited
from mrjax.outputs import StageTimer
from mrjax.report import html, plots
from mrjax.report.heatmap import outcome_heatmap
from mrjax.report import tables as report_tables
from mrjax.scan.assemble import assemble_tables
from mrjax.scan.blocks import Block, block_of_pairs
from mrjax.scan.config import ScanConfig, ScanResult
from mrjax.scan.frames import nonempty
from mrjax.scan.inputs import exposure_keys, manifest_inputs

#: Tables written as TSV (``results`` also as parquet), in this order.
OUTPUT_TABLES = ("results", "findings", "findings_paper", "heterogeneity", "pleiotropy", "presso", "presso_instruments",
                 "leave_one_out", "single_snp", "instruments", "audit", "audit_counts", "permutations",
                 "mvmr_results", "mvmr_strength", "mvmr_excluded")


def write_outputs(tables: dict[str, pd.DataFrame], config: ScanConfig, timings: StageTimer, resumed: int = 0,
                  progress=None, blocks: list[Block] | None = None, streamed: list[Path] | None = None,
                  about: dict | None = None) -> ScanResult:
    """Write the scan's folder: the tables (TSV; ``results`` also parquet and, with the
    scan's ``blocks``, the partitioned dataset ``results/``, :func:`write_partitioned`), the figures
    (``mrjax.report.plots.scan_figures``, PNG + SVG), ``report.html``
    (``mrjax.report.html``) and, last, ``manifest.json`` — every file atomically, so a folder
    whose manifest exists is complete. ``streamed``: the dataset files of a scan written by
    :mod:`mrjax.scan.streamed`, whose ``tables`` hold the significant pairs only (corrected
    already); of the tables only ``findings`` and ``findings_paper`` are then written.
    ``about``: more entries for the manifest (e.g. the number of blocks)."""
    out = Path(config.out)
    by = config.significance_column
    progress = progress or (lambda stage, done, total: None)
    progress("tables", 0, 1)
    with timings("tables"):
        tables = assemble_tables(tables, config, corrected=streamed is not None)
    significant = report_tables.significant(tables["results"], alpha=config.alpha, by=by)
    files: list[Path] = list(streamed or [])
    with timings("write"):
        for name in OUTPUT_TABLES if streamed is None else ("findings", "findings_paper"):
            if name in tables:
                formats = ("tsv", "parquet") if name == "results" else ("tsv",)
                files += outputs.write_table(out, name, writable(tables[name]), formats=formats)
        if blocks is not None:
            files += write_partitioned(out / "results", writable(tables["results"]), block_labels(tables["results"], blocks))
    progress("tables", 1, 1)
    figures: dict = {}
    if config.figures:
        progress("figures", 0, 1)
        with timings("figures"):
            figures = plots.scan_figures(
                out / "figures", tables["results"], harmonised=nonempty(tables, "instruments"),
                pleiotropy=nonempty(tables, "pleiotropy"), leave_one_out=nonempty(tables, "leave_one_out"),
                single_snp=nonempty(tables, "single_snp"), alpha=config.alpha, by=by,
            )
            forward = tables["results"][tables["results"]["direction"] == "forward"]
            if forward["outcome"].nunique() > 1:  # a many-outcome scan: one summary figure more
                figures["scan"]["heatmap"] = plots.save_figure(
                    outcome_heatmap(tables["results"], alpha=config.alpha, by=by), out / "figures", "outcome_heatmap")
        files += figure_paths(figures)
        progress("figures", 1, 1)
    inputs = manifest_inputs(config)
    if config.report:
        with timings("report"):
            files.append(html.write_report(
                tables, significant, figures, out / "report.html", settings=settings_of(config), inputs=inputs,
                timings=dict(timings.seconds), alpha=config.alpha, by=by,
            ))
    manifest = outputs.build_manifest(parameters=settings_of(config), seed=config.seed, inputs=[], timings=timings,
                                      outputs=[Path(p).relative_to(out) for p in files])
    manifest["inputs"] = inputs
    manifest["outputs"] = sorted(str(Path(p).relative_to(out)) for p in files)
    manifest["resumed_exposures"] = resumed
    manifest.update(about or {})
    files.append(outputs.write_json(out / outputs.MANIFEST_NAME, manifest))
    progress("report", 1, 1)
    return ScanResult(tables=tables, significant=significant, files=files, timings=dict(timings.seconds),
                      manifest=manifest, resumed_traits=resumed)


def settings_of(config: ScanConfig) -> dict:
    """The scan's settings as plain JSON-able values (for the manifest and the report)."""
    settings = asdict(config)
    settings["columns"] = dict(config.columns)
    settings["proxies"] = config.use_proxies
    settings["exposure_files"] = exposure_keys(config)
    return settings


def figure_paths(figures: dict) -> list[Path]:
    """Every file in ``plots.scan_figures``'s answer (scan level, then per trait)."""
    paths = [p for group in figures.get("scan", {}).values() for p in group]
    for entry in figures.get("traits", []):
        paths += [p for key, group in entry.items() if key not in ("direction", "exposure", "outcome") for p in group]
    return [Path(p) for p in paths]


def writable(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding lists (e.g. PRESSO outlier sets) become ``;``-joined text."""
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object and table[column].map(lambda v: isinstance(v, (list, tuple))).any():
            table[column] = table[column].map(lambda v: ";".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    return table


def write_tables(tables: dict[str, pd.DataFrame], out: str | Path, parquet: tuple[str, ...] = ("results",)) -> list[Path]:
    """Write each table as ``out/<name>.tsv`` (and parquet for the names in ``parquet``),
    atomically; returns the paths."""
    files: list[Path] = []
    for name, table in tables.items():
        formats = ("tsv", "parquet") if name in parquet else ("tsv",)
        files += outputs.write_table(Path(out), name, writable(table), formats=formats)
    return files


def write_single_table(table: pd.DataFrame | Audited, path: str | Path) -> Path:
    """Write one table atomically; the format follows the suffix (``.parquet``, ``.csv``,
    otherwise tab-separated). The drop records of an :class:`~mrjax.audit.Audited` go to
    ``<stem>.audit.tsv`` beside it when there are any."""
    path = Path(path)
    table, records = table if isinstance(table, Audited) else (table, None)
    plain = writable(table)
    if path.name.endswith(".parquet"):
        outputs.write_parquet(path, plain)
    elif path.name.endswith(".csv"):
        outputs.write_with(path, lambda tmp: plain.to_csv(tmp, index=False, na_rep="NA"))
    else:
        outputs.write_tsv(path, plain)
    if records is not None and len(records.drops):
        stem = path.name.split(".")[0]
        outputs.write_tsv(path.with_name(f"{stem}.audit.tsv"), records.drops)
    return path


def block_labels(results: pd.DataFrame, blocks: list[Block]) -> np.ndarray:
    """The block (:attr:`mrjax.scan.blocks.Block.name`) of each row of a scan's ``results``."""
    labels = block_of_pairs(blocks)
    keys = zip(results["direction"].astype(str), results["exposure"].astype(str), results["outcome"].astype(str))
    return np.array([labels[key] for key in keys], dtype=object)


def write_partitioned(folder: Path, table: pd.DataFrame, blocks: np.ndarray, *, replace: bool = True) -> list[Path]:
    """``table`` as a parquet dataset partitioned by direction and block (hive layout,
    ``folder/direction=forward/block=00000-0000/part-0.parquet``; read it with
    ``pyarrow.dataset.dataset(folder, partitioning="hive")``): one file per block, written
    atomically, rows in table order. ``replace`` first removes what an earlier run wrote there."""
    if replace:
        shutil.rmtree(folder, ignore_errors=True)
    files = []
    directions = table["direction"].astype(str).to_numpy()
    rest = table.drop(columns="direction")
    for (direction, block), rows in pd.DataFrame({"d": directions, "b": blocks}).groupby(["d", "b"], sort=False).indices.items():
        target = folder / f"direction={direction}" / f"block={block}" / "part-0.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        files.append(outputs.write_parquet(target, rest.iloc[rows].reset_index(drop=True)))
    return files
