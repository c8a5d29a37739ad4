"""Import cost: the host-side layers and the CLI's help load no JAX; float64 is switched on
before any estimator runs, not by ``import mrjax``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("statement", [
    "import mrjax.gwas",
    "import mrjax.ld, mrjax.scan, mrjax.audit, mrjax.outputs",
    "import mrjax; mrjax.read_gwas, mrjax.harmonise, mrjax.clump, mrjax.LDPanel",
    "import mrjax; mrjax.mv_instruments, mrjax.ld_matrix, mrjax.panel_correlations, mrjax.aligned_correlations",
])
def test_host_side_imports_load_no_jax(statement):
    loaded = _modules_after(statement)
    assert "jax" not in loaded and "jaxlib" not in loaded, statement


def test_cli_help_and_version_load_no_jax():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom mrjax_cli.main import app\n"
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output\n"
            "r = CliRunner().invoke(app, ['version']); assert r.exit_code == 0, r.output\n"
            "assert 'jax' not in sys.modules, 'help/version imported jax'\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_estimators_run_in_float64_without_the_user_enabling_it():
    code = ("import numpy as np, pandas as pd\nimport mrjax\n"
            "dat = pd.DataFrame({'exposure': 'x', 'outcome': 'y', 'SNP': ['a', 'b', 'c'],\n"
            "    'beta.exposure': [0.1, 0.2, 0.3], 'se.exposure': [0.01] * 3,\n"
            "    'beta.outcome': [0.05, 0.11, 0.14], 'se.outcome': [0.02] * 3})\n"
            "b = mrjax.mr(dat, ['ivw'])['b'].iloc[0]\n"
            "bx, by = np.array([0.1, 0.2, 0.3]), np.array([0.05, 0.11, 0.14])\n"
            "print(abs(b - (bx @ by) / (bx @ bx)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[-1]) < 1e-15  # float32 would be off by ~1e-8


def test_library_seed_errors_say_what_a_seed_is():
    import pandas as pd

    import mrjax

    dat = pd.DataFrame({"SNP": ["a", "b", "c"], "beta.exposure": [0.1, 0.2, 0.3], "se.exposure": [0.01] * 3,
                        "beta.outcome": [0.05, 0.11, 0.14], "se.outcome": [0.02] * 3})
    with pytest.raises(TypeError, match="seed must be an integer"):
        mrjax.mr(dat, ["weighted_median"], seed="abc")
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\^63\)"):
        mrjax.mr(dat, ["weighted_median"], seed=-1)
