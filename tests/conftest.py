"""Test configuration: JAX on the CPU in float64; paths to the shared ground truth."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# CLI commands run in-process: keep JAX's persistent compilation cache (on by default for users)
# out of the tests, so compile counts and timings stay per process.
os.environ.setdefault("MRJAX_NO_CACHE", "1")

from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project root (fails loudly when absent)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"ground-truth folder {SHARED_DATA} not found; tests need ../shared beside the project")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mv_benchmark_table(shared_data):
    """The MV benchmark's 731 analyses as a long table (``benchmarks/bench_mvmr.py``): each
    scan-fixture trait (``make_scan_fixture.make(731, 1)``) with a simulated second exposure
    ``Z = 0.3 bx + N(0, sx)`` at its SNPs; the ``analysis`` is the trait."""
    import sys

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(shared_data.parent / "tools"))
    from make_scan_fixture import make

    fx = make(731, 1).rename(columns=lambda c: c.replace("_exposure", ".exposure").replace("_outcome", ".outcome"))
    fx = fx.assign(analysis=fx["exposure"], outcome="outcome")
    rng = np.random.default_rng(2)
    z = fx.assign(exposure="Z", **{"beta.exposure": 0.3 * fx["beta.exposure"] + rng.normal(0.0, fx["se.exposure"]),
                                   "pval.exposure": np.nan})
    return pd.concat([fx, z], ignore_index=True)


@pytest.fixture(scope="module")
def demo_mv_table():
    """The shipped example data as an MV analysis: exposures exp_01 and exp_02 on the outcome
    ``case``, instruments selected and clumped jointly against the demo panel
    (``mrjax.mv_instruments``)."""
    import pandas as pd

    import mrjax

    data = Path(mrjax.__file__).parent / "example_data"
    exposures = pd.read_parquet(data / "exposures.parquet")
    exposures = exposures[exposures["exposure"].isin(["exp_01", "exp_02"])]
    outcome = pd.read_csv(data / "outcome.tsv.gz", sep="\t")
    return exposures, outcome, mrjax.mv_instruments(exposures, outcome, data / "demo_panel", outcome_name="case")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_kernels():
    """Drop JAX's compiled executables after each test module. Each one holds memory mappings,
    and one pytest process accumulates them across the suite. Near Linux's default
    ``vm.max_map_count`` of 65,530, the next ``mmap``/``mprotect`` fails: a Dask worker started
    by a later test then dies on import with "Cannot allocate memory", though RAM is free.
    Two MV test modules alone leave ~16,000 mappings; with this fixture ~1,500."""
    yield
    jax.clear_caches()
