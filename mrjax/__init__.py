"""mrjax: Mendelian randomization at the speed of the hardware.

Batched, jit-compiled JAX implementations of the two-sample MR estimators of TwoSampleMR,
MendelianRandomization and MRPRESSO, plus the data layer (GWAS readers, LD clumping against a
PLINK panel, harmonisation) and a scan pipeline that runs hundreds of traits in one device call.

Importing mrjax turns on ``jax_enable_x64``: results are computed in float64 unless a function
is asked for float32 (GPU option), because the numbers must agree with the R packages.

The public API, by stage:

* data: ``read_gwas``, ``select_instruments``, ``clump`` (against an ``LDPanel``),
  ``filter_weak``, ``substitute_proxies``, ``harmonise``, ``audit_of``;
* estimation: ``mr``, ``heterogeneity``, ``pleiotropy``, ``leave_one_out``, ``single_snp``,
  ``directionality``, ``instrument_strength``, ``odds_ratios``, ``presso``;
* studies: ``simulate``, ``simulate_grid``, ``Scenario``, ``permutation_test``;
* tensors: ``from_frame`` -> ``TraitBatch`` -> padded ``Instruments``.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from mrjax.api import (  # noqa: E402
    directionality,
    heterogeneity,
    instrument_strength,
    leave_one_out,
    mr,
    odds_ratios,
    pleiotropy,
    single_snp,
)
from mrjax.audit import audit_of, counts_of  # noqa: E402
from mrjax.batch import Instruments, TraitBatch, from_frame, make_instruments  # noqa: E402
from mrjax.gwas import filter_weak, harmonise, read_gwas, select_instruments, strength_columns  # noqa: E402
from mrjax.ld.clump import clump  # noqa: E402
from mrjax.ld.panel import LDPanel  # noqa: E402
from mrjax.ld.proxies import find_proxies, substitute_proxies  # noqa: E402
from mrjax.permutation import permutation_test  # noqa: E402
from mrjax.mr_presso import presso  # noqa: E402
from mrjax.mv.api import mvmr, mvmr_heterogeneity, mvmr_strength  # noqa: E402
from mrjax.mv.instruments import ld_matrix, mv_instruments  # noqa: E402
from mrjax.simulation import Scenario, simulate, simulate_grid  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Instruments",
    "LDPanel",
    "Scenario",
    "TraitBatch",
    "__version__",
    "audit_of",
    "clump",
    "counts_of",
    "directionality",
    "filter_weak",
    "find_proxies",
    "from_frame",
    "harmonise",
    "heterogeneity",
    "instrument_strength",
    "leave_one_out",
    "ld_matrix",
    "make_instruments",
    "mr",
    "mv_instruments",
    "mvmr",
    "mvmr_heterogeneity",
    "mvmr_strength",
    "odds_ratios",
    "permutation_test",
    "pleiotropy",
    "presso",
    "read_gwas",
    "select_instruments",
    "simulate",
    "simulate_grid",
    "single_snp",
    "strength_columns",
    "substitute_proxies",
]
