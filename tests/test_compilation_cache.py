"""``mrjax.use_compilation_cache``: a Python session that turns it on stores its compiled kernels
in a private folder, a later session loads them; ``MRJAX_NO_CACHE`` turns it off. Each session is
a fresh process (JAX's configuration is global)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

SESSION = """
import sys, mrjax, pandas as pd
folder = mrjax.use_compilation_cache(sys.argv[1])
print(folder)
mrjax.mr(pd.read_csv(sys.argv[2]), methods=["ivw"])
"""


def _session(folder, data, **env):
    environment = {k: v for k, v in os.environ.items() if k != "MRJAX_NO_CACHE"}
    environment.update(JAX_PLATFORMS="cpu", **env)
    done = subprocess.run([sys.executable, "-c", SESSION, str(folder), str(data)], env=environment,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_kernels_are_kept_in_a_private_folder(shared_data, tmp_path):
    data = shared_data / "TwoSampleMR" / "bmi_chd_harmonised.csv"
    folder = tmp_path / "new" / "cache"
    assert _session(folder, data) == str(folder)
    stored = sorted(p.name for p in folder.iterdir())
    assert stored, "no compiled kernel was stored"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    _session(folder, data)  # a second session finds them (and adds nothing for the same kernels)
    assert sorted(p.name for p in folder.iterdir()) == stored


def test_mrjax_no_cache_turns_it_off(shared_data, tmp_path):
    data = shared_data / "TwoSampleMR" / "bmi_chd_harmonised.csv"
    assert _session(tmp_path / "off", data, MRJAX_NO_CACHE="1") == "None"
    assert not (tmp_path / "off").exists()


def test_a_cache_folder_that_cannot_be_made_is_a_clear_cli_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    environment = {k: v for k, v in os.environ.items() if k != "MRJAX_NO_CACHE"}
    done = subprocess.run([sys.executable, "-m", "mrjax", "demo", "--out", str(tmp_path / "out"),
                           "--cache-dir", str(blocker / "cache")], env={**environment, "JAX_PLATFORMS": "cpu"},
                          capture_output=True, text=True)
    assert done.returncode == 2, (done.returncode, done.stderr)  # USER_ERROR
    assert "cannot create the compilation cache folder" in done.stderr and "Traceback" not in done.stderr
