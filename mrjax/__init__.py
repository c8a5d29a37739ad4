"""mrjax: Mendelian randomization at the speed of the hardware.

Batched, jit-compiled JAX implementations of the two-sample MR estimators of TwoSampleMR,
MendelianRandomization and MRPRESSO, plus the data layer (GWAS readers, LD clumping against a
PLINK panel, harmonisation) and a scan pipeline that runs hundreds of traits in one device call.

Importing mrjax turns on ``jax_enable_x64``: results are computed in float64 unless a function
is asked for float32 (GPU option), because the numbers must agree with the R packages.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from mrjax.batch import Instruments, TraitBatch, from_frame, make_instruments  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Instruments",
    "TraitBatch",
    "from_frame",
    "make_instruments",
    "__version__",
]
