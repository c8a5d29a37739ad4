"""A regression lock on the bytes of a scan's output tables: the code of this checkout must
write exactly the files that the code of ``BASELINE`` writes for the same scans.

This is not a correctness claim (the numeric tests against the R goldens are that); it proves
that a refactor — the scan package, the audit as a value, a faster reader — changed no output
byte. Both sides run here, on this machine, in fresh processes with the same interpreter, so
XLA's CPU code (which may differ between machines) is the same on both: nothing is hard-coded.

The baseline's ``mrjax`` package is taken from git (``git archive BASELINE mrjax``, no
worktree, the repository is left as it is). The test is skipped, saying why, where there is no
git or the revision is not in the history (a shallow clone).

**When a change alters the outputs on purpose** (a new column, a corrected estimator), this
test fails, listing the files that differ: check the differences (``tools/compare_scan_outputs.py
--base BASELINE`` runs the larger scans and prints the same list), then set ``BASELINE`` to the
commit that made the change, and say so in its message.

The scans (small settings; tables only, no figures or report, whose bytes hold fonts and
timings): the demo (``mrjax demo``: bi-directional, clumped, LD proxies) and five exposures of
the shared scan, forward only, without proxies (the outcome read with ``p_max``), in chunks of
two exposures.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The commit whose outputs are locked: the medians' total weight from their cumulative sum (the
#: last bits of weighted/simple median estimates changed, at most 3.5e-15 relative; before it,
#: 9085fd8 changed p-values' last bits by per-element incomplete beta/gamma, 4e-15 against 814affe).
BASELINE = "039f8a9bda9610bd0cf04c4d5772a64f58ea0502"

SCANS = r'''
import os, sys
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["MRJAX_NO_CACHE"] = "1"
from pathlib import Path
import pandas as pd
import mrjax
out, shared, code = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
assert Path(mrjax.__file__).resolve().parents[1] == code.resolve(), (mrjax.__file__, code)
from mrjax.scan import ScanConfig, demo_config
from mrjax.scan.run import run_scan
small = dict(n_boot=50, presso_draws=100, figures=False, report=False)
run_scan(demo_config(out / "demo", **small))
names = ["trait_007", "trait_014", "trait_025", "trait_030", "trait_041"]
exposures = pd.read_parquet(shared / "scan/exposures.parquet", filters=[("exposure", "in", names)])
exposures["exposure"] = exposures["exposure"].astype(str)
exposures.to_parquet(out / "exposures.parquet", index=False)
run_scan(ScanConfig(exposures=(str(out / "exposures.parquet"),), outcome=str(shared / "scan/outcome.parquet"),
                    out=str(out / "shared"), ld_ref=str(shared / "ldref/eur_sim"), outcome_name="outcome",
                    proxies=False, chunk_size=2, methods=("ivw", "egger_regression", "weighted_median"), **small))
'''


def _git(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, **kwargs)


def _baseline_code(dest: Path) -> Path:
    """The ``mrjax`` package of ``BASELINE`` under ``dest`` (skips when git cannot give it)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the baseline's code cannot be taken from the history")
    if _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout: the baseline's code cannot be taken from the history")
    if _git("cat-file", "-e", f"{BASELINE}^{{commit}}").returncode != 0:
        pytest.skip(f"baseline commit {BASELINE[:10]} is not in this clone's history (shallow clone?)")
    archive = _git("archive", "--format=tar", BASELINE, "mrjax", check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)
    return dest


def _run_scans(code: Path, out: Path, shared: Path) -> dict[str, str]:
    """SHA-256 of every file the scans wrote (``manifest.json``, with timings, paths and
    dates, and the checkpoints aside; and the ``results/`` dataset, new since the baseline:
    ``tests/test_scan.py`` checks that it holds ``results.parquet``'s rows), keyed by path."""
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(code), "JAX_PLATFORMS": "cpu", "MRJAX_NO_CACHE": "1"}
    done = subprocess.run([sys.executable, "-c", SCANS, str(out), str(shared), str(code)], cwd=out, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"the scans with the code of {code} failed:\n{done.stderr[-4000:]}"
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "manifest.json" and ".checkpoints" not in p.parts
            and p.name != "exposures.parquet" and "results" not in p.relative_to(out).parts[1:-1]}


@pytest.mark.slow
def test_scan_outputs_are_byte_identical_to_the_baseline(shared_data, tmp_path):
    base = _run_scans(_baseline_code(tmp_path / "baseline"), tmp_path / "base_out", shared_data)
    head = _run_scans(ROOT, tmp_path / "head_out", shared_data)
    assert {"demo/audit.tsv", "demo/audit_counts.tsv", "demo/results.tsv", "shared/audit.tsv",
            "shared/instruments.tsv"} <= set(base), sorted(base)
    differ = {name: ("missing" if name not in head else "new" if name not in base else "differs")
              for name in sorted(set(base) | set(head)) if base.get(name) != head.get(name)}
    assert not differ, f"outputs differ from those of {BASELINE[:10]}: {json.dumps(differ, indent=1)}"
