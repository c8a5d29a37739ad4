"""A scan too large for TSV files, written one block at a time (memory flat in the pairs).

Above :data:`mrjax.scan.blocks.RESULTS_TSV_MAX_ROWS` result rows (pairs × methods), the
finished blocks are read back from their checkpoints one after the other, twice:

1. the p-values of every row (with the columns the corrections group by): BH-FDR q-values and
   Bonferroni p-values across every pair of a direction and method (and, with
   ``correct_per_outcome``, outcome) — the same numbers as one table would give;
2. each block's tables completed (effect scale, odds ratios, the corrections) and written as
   the block's partition of the parquet datasets ``DIR/<table>/`` (``results/``,
   ``heterogeneity/``, ``leave_one_out/``, ``instruments/``, ``audit/``, …; the outcomes' own
   audit rows as the block ``outcomes``), keeping only the rows of the significant pairs.

``findings``, the figures and the report are then made from the significant pairs' rows
(:func:`mrjax.scan.write.write_outputs` with ``streamed``); no per-pair TSV is written, and
``ScanResult.tables`` holds those rows only (``manifest["pairs"]``: the pairs estimated per
direction).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from mrjax.multiple_testing import adjust_by_group
from mrjax.outputs import StageTimer
from mrjax.report import tables as report_tables
from mrjax.scan.assemble import effect_scales, with_effect_scale
from mrjax.scan.stacked import join_blocks
from mrjax.scan import blocks as scan_blocks
from mrjax.scan.blocks import Block
from mrjax.scan.checkpoints import Checkpoints
from mrjax.scan.config import REVERSE, TRAIT_TABLES, ScanConfig, ScanError, ScanResult
from mrjax.scan.write import write_outputs, write_partitioned, writable

PAIR = ["direction", "exposure", "outcome"]


def write_streamed(blocks: list[Block], checkpoints: Checkpoints, sources: list, outcome_list: list, outcome_sides: list,
                   config: ScanConfig, timings: StageTimer, resumed: int, progress) -> ScanResult:
    """Write the scan's folder from its finished ``blocks`` (see the module docstring)."""
    if config.permutations or config.adjust_for:
        raise ScanError(f"--permutations and --adjust-for need every instrument in memory, which a scan of more than "
                        f"{scan_blocks.RESULTS_TSV_MAX_ROWS:,} result rows does not hold", "run them on a smaller scan (fewer exposures or outcomes)")
    out = Path(config.out)
    scales = effect_scales(config, sources, outcome_list)

    def block_tables(block: Block) -> dict[str, pd.DataFrame]:
        tables = join_blocks([checkpoints.load_block(block.name)], list(block.exposures), config)
        tables["results"] = with_effect_scale(tables["results"], config, [], [], scales=scales)
        return tables

    with timings("collect"):
        keys, any_instruments = [], False
        for block in blocks:
            tables = block_tables(block)
            any_instruments |= len(tables["instruments"]) > 0
            keys.append(_correction_keys(tables["results"], config))
        if not any_instruments:
            raise ScanError(f"no instruments left in any of the {len(sources)} exposures (p < {config.p:g}, F ≥ {config.f_min:g})",
                            f"relax --p or check the exposure files; the audit/ dataset in {out} shows where they were lost")
        corrected = adjust_by_group(pd.concat(keys, ignore_index=True), by=config.correction_by)
    kept: dict[str, list[pd.DataFrame]] = {}
    files, pairs = [], {}
    with timings("write"):
        for name in TRAIT_TABLES:  # what an earlier run of this folder wrote
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("audit", "audit_counts"):
            sides = [side[name] for side in outcome_sides if len(side[name])]
            if sides:
                frame = pd.concat(sides, ignore_index=True)
                files += write_partitioned(out / name, writable(frame), np.full(len(frame), "outcomes", dtype=object),
                                           replace=False)
        start = 0
        for number, block in enumerate(blocks):
            tables = block_tables(block)
            results = report_tables.scan_results(tables["results"], correction_by=("direction", "method_id"))
            rows = slice(start, start + len(results))
            assert len(results) == len(keys[number]), block.name  # scan_results keeps the rows and their order
            start += len(results)
            for column in ("qval_fdr", "pval_bonferroni"):
                results[column] = corrected[column].to_numpy()[rows]
            tables["results"] = results
            hits = report_tables.significant(results, alpha=config.alpha, by=config.significance_column)[PAIR]
            for direction, n in results[PAIR].drop_duplicates()["direction"].value_counts().items():
                pairs[direction] = pairs.get(direction, 0) + n
            for name in TRAIT_TABLES:
                table = tables.get(name)
                if table is None or not len(table):
                    continue
                files += write_partitioned(out / name, writable(table), np.full(len(table), block.name, dtype=object),
                                           replace=False)
                if name not in ("audit", "audit_counts") and set(PAIR) <= set(table.columns):
                    kept.setdefault(name, []).append(table.merge(hits, on=PAIR, how="inner"))
            progress("tables", number + 1, len(blocks))
    tables = {name: pd.concat(parts, ignore_index=True) for name, parts in kept.items()}
    if "results" not in tables:  # nothing significant
        tables["results"] = report_tables.scan_results(pd.DataFrame(columns=["direction"]))
    about = {"blocks": len(blocks), "streamed": True, "pairs": {d: int(n) for d, n in pairs.items()}}
    return write_outputs(tables, config, timings, resumed, progress=progress, streamed=files, about=about)


def _correction_keys(results: pd.DataFrame, config: ScanConfig) -> pd.DataFrame:
    """The columns the corrections need, compactly (categories for the group labels)."""
    if not len(results):
        return pd.DataFrame({name: pd.Series(dtype=float if name == "pval" else "category")
                             for name in (*config.correction_by, "pval")})
    keys = pd.DataFrame({"direction": results["direction"].astype("category"),
                         "method_id": results.get("method_id", results["method"]).astype("category"),
                         "pval": pd.to_numeric(results["pval"], errors="coerce").astype(float)})
    if config.correct_per_outcome:
        scanned = results["outcome"].where(results["direction"] != REVERSE, results["exposure"])
        keys["scan_outcome"] = scanned.astype("category")
    return keys

