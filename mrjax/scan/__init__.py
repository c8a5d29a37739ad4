"""The MR scan as a package of stages.

=================  ==========================================================================
module             responsibility
=================  ==========================================================================
``config``         :class:`ScanConfig` (every setting) and its validation, errors, result
``inputs``         finding and reading inputs (:class:`ReadOptions`, exposure sources)
``stages``         select/clump, outcome look-up with proxies: Audited → Audited
``reverse``        the reverse direction's pairs of a chunk, stacked (one proxy search, one harmonise)
``estimate``       methods, diagnostics, MR-PRESSO (and permutations) of harmonised pairs
``audits``         per-pair audit tables
``blocks``         blocks of pairs sized from the memory budget (the unit of work)
``checkpoints``    per-block checkpoints (resumption)
``assemble``       per-trait tables split/joined; the scan-level tables
``write``          the output folder (tables, figures, report, manifest, datasets)
``streamed``       the output folder of a scan above the TSV line, block by block
``workers``        where blocks are estimated: this process or Dask workers
``run``            :func:`run_scan`, the orchestration only
``demo``           the settings of ``mrjax demo``
=================  ==========================================================================

Importing this package loads only the settings; the stages (and JAX) load on first use.
"""

from __future__ import annotations

import importlib

from mrjax.scan.checkpoints import OUTCOME_SIDE, STOP_AFTER_ENV
from mrjax.scan.config import (
    FORWARD,
    REVERSE,
    TRAIT_TABLES,
    TRAIT_TYPES,
    EstimationSettings,
    ScanConfig,
    ScanError,
    ScanInterrupted,
    ScanResult,
    replace_config,
)
from mrjax.scan.demo import demo_config, example_data_folder
from mrjax.scan.inputs import ExposureSource, ReadOptions, exposure_files, read_harmonised, read_table, trait_name_of

_LAZY = {
    "run_scan": "mrjax.scan.run",
    "estimate_tables": "mrjax.scan.estimate",
    "analyse_harmonised": "mrjax.scan.estimate",
    "select_and_clump": "mrjax.scan.stages",
    "look_up": "mrjax.scan.stages",
    "PROXY_KB": "mrjax.scan.stages",
    "write_outputs": "mrjax.scan.write",
    "write_tables": "mrjax.scan.write",
    "write_single_table": "mrjax.scan.write",
    "settings_of": "mrjax.scan.write",
    "OUTPUT_TABLES": "mrjax.scan.write",
}

__all__ = [
    "FORWARD", "OUTCOME_SIDE", "REVERSE", "STOP_AFTER_ENV", "TRAIT_TABLES", "TRAIT_TYPES", "EstimationSettings",
    "ExposureSource", "ReadOptions", "ScanConfig", "ScanError", "ScanInterrupted", "ScanResult", "demo_config",
    "example_data_folder", "exposure_files", "read_harmonised", "read_table", "replace_config", "trait_name_of",
    *_LAZY,
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'mrjax.scan' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
