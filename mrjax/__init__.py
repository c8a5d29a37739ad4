"""mrjax: Mendelian randomization at the speed of the hardware.

Batched, jit-compiled JAX implementations of the two-sample MR estimators of TwoSampleMR,
MendelianRandomization and MRPRESSO, plus the data layer (GWAS readers, LD clumping against a
PLINK panel, harmonisation) and a scan pipeline that runs hundreds of traits in one device call.

Importing mrjax is cheap: the names below are loaded on first use (PEP 562), so
``import mrjax.gwas`` or ``mrjax --help`` never loads JAX. Results are computed in float64
(``jax_enable_x64`` is switched on before the first estimator runs) unless a function is asked
for float32 (GPU option), because the numbers must agree with the R packages.

The public API, by stage:

* data: ``read_gwas``, ``select_instruments``, ``clump`` (against an ``LDPanel``),
  ``filter_weak``, ``substitute_proxies``, ``harmonise``, ``audit_of``;
* estimation: ``analyse`` (every table at once), ``mr``, ``heterogeneity``, ``pleiotropy``,
  ``leave_one_out``, ``single_snp``, ``directionality``, ``instrument_strength``,
  ``odds_ratios``, ``presso``;
* studies: ``simulate``, ``simulate_grid``, ``Scenario``, ``permutation_test``;
* tensors: ``from_frame`` -> ``TraitBatch`` -> padded ``Instruments``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it; modules marked with JAX enable float64 first.
_HOST = {
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
    "ld_matrix": "mrjax.mv.instruments",
    "mv_instruments": "mrjax.mv.instruments",
}
_DEVICE = {
    "analyse": "mrjax.api",
    "directionality": "mrjax.api",
    "heterogeneity": "mrjax.api",
    "instrument_strength": "mrjax.api",
    "leave_one_out": "mrjax.api",
    "mr": "mrjax.api",
    "odds_ratios": "mrjax.api",
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


def enable_float64() -> None:
    """Switch JAX to 64-bit numbers (``jax_enable_x64``); idempotent. Called before any
    JAX-using part of mrjax is loaded, so arrays built by mrjax are float64 by default."""
    import jax

    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


def __getattr__(name: str):
    module = _HOST.get(name) or _DEVICE.get(name)
    if module is None:
        raise AttributeError(f"module 'mrjax' has no attribute {name!r}")
    if name in _DEVICE:
        enable_float64()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
