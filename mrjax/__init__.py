"""mrjax: Mendelian randomization at the speed of the hardware.

Batched, jit-compiled JAX implementations of the two-sample MR estimators of TwoSampleMR,
MendelianRandomization and MRPRESSO, plus the data layer (GWAS readers, LD clumping against a
PLINK panel, harmonisation) and a scan pipeline that runs hundreds of traits in one device call.

Importing mrjax is cheap: the names below are loaded on first use (PEP 562), so
``import mrjax.gwas`` or ``mrjax --help`` never loads JAX. Results are computed in float64
(the engine switches ``jax_enable_x64`` on before the first device array is made) unless a
function is asked for float32 (GPU option), because the numbers must agree with the R packages.

The public API, by stage:

* data: ``read_gwas``, ``select_instruments``, ``clump`` (against an ``LDPanel``),
  ``filter_weak``, ``substitute_proxies``, ``harmonise`` (each with ``audited=True`` for
  ``Audited(table, Audit)``; see ``mrjax.audit``), ``audit_of``;
* estimation: ``analyse`` (every table at once), ``mr``, ``heterogeneity``, ``pleiotropy``,
  ``leave_one_out``, ``single_snp``, ``directionality``, ``instrument_strength``,
  ``odds_ratios``, ``presso``;
* studies: ``simulate``, ``simulate_grid``, ``Scenario``, ``permutation_test``;
* tensors: ``from_frame`` -> ``TraitBatch`` -> padded ``Instruments``;
* ``use_compilation_cache``: keep compiled kernels for later processes.
"""

from __future__ import annotations

import importlib

from mrjax import xla_flags

xla_flags.apply()

__version__ = "0.1.0"

# public name -> module that defines it (host-side modules load no JAX; the device-side ones
# do, and ``mrjax.engine.ensure_x64`` switches float64 on before their first array).
_HOST = {
    "Audit": "mrjax.audit",
    "Audited": "mrjax.audit",
    "audit_of": "mrjax.audit",
    "counts_of": "mrjax.audit",
    "filter_weak": "mrjax.gwas",
    "harmonise": "mrjax.gwas",
    "read_gwas": "mrjax.gwas",
    "select_instruments": "mrjax.gwas",
    "strength_columns": "mrjax.gwas",
    "clump": "mrjax.ld.clump",
    "LDPanel": "mrjax.ld.panel",
    "find_proxies": "mrjax.ld.proxies",
    "substitute_proxies": "mrjax.ld.proxies",
    "odds_ratios": "mrjax.effects",
    "GWASStore": "mrjax.store",
    "ingest": "mrjax.store",
    "ld_matrix": "mrjax.mv.instruments",
    "mv_instruments": "mrjax.mv.instruments",
    "panel_correlations": "mrjax.mv.correlation",
    "aligned_correlations": "mrjax.mv.correlation",
    "read_correlation": "mrjax.mv.correlation",
    "use_compilation_cache": "mrjax.compilation_cache",
}
_DEVICE = {
    "analyse": "mrjax.api",
    "directionality": "mrjax.api",
    "heterogeneity": "mrjax.api",
    "instrument_strength": "mrjax.api",
    "leave_one_out": "mrjax.api",
    "mr": "mrjax.api",
    "pleiotropy": "mrjax.api",
    "single_snp": "mrjax.api",
    "Instruments": "mrjax.batch",
    "TraitBatch": "mrjax.batch",
    "from_frame": "mrjax.batch",
    "make_instruments": "mrjax.batch",
    "permutation_test": "mrjax.permutation",
    "presso": "mrjax.mr_presso",
    "mvmr": "mrjax.mv.api",
    "mvmr_heterogeneity": "mrjax.mv.api",
    "mvmr_strength": "mrjax.mv.api",
    "Scenario": "mrjax.simulation",
    "simulate": "mrjax.simulation",
    "simulate_grid": "mrjax.simulation",
}

__all__ = sorted(["__version__", *_HOST, *_DEVICE])


def __getattr__(name: str):
    module = _HOST.get(name) or _DEVICE.get(name)
    if module is None:
        raise AttributeError(f"module 'mrjax' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
