"""``--devices N``: four forced CPU devices in a subprocess (XLA's device count is fixed when
JAX starts); ``mrjax mr``, ``mrjax presso`` and ``mrjax scan`` (the bundled example, small
settings) with ``--devices 2`` write the bytes they write with ``--devices 1``; more devices
than JAX sees, or none, is a user error (exit 2, one sentence)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import jax
    from typer.testing import CliRunner
    from mrjax.scan import example_data_folder
    from mrjax_cli.main import app

    assert len(jax.local_devices()) == 4, jax.local_devices()
    out, data = Path(sys.argv[1]), example_data_folder()
    runner = CliRunner()
    methods = ["-m", "ivw", "-m", "egger_regression", "-m", "weighted_median"]
    commands = {
        "mr": ["mr", str(data / "harmonised_example.tsv"), *methods, "--n-boot", "50"],
        "presso": ["presso", str(data / "harmonised_example.tsv"), "--draws", "200"],
        "scan": ["scan", "-e", str(data / "exposures.parquet"), "-o", str(data / "outcome.tsv.gz"), "--ld-ref",
                 str(data / "demo_panel"), "--outcome-name", "outcome", "--bidirectional", *methods, "--n-boot", "50",
                 "--presso-draws", "0", "--chunk-size", "4", "--no-cache"],
    }
    for name, command in commands.items():
        for n in (1, 2):
            done = runner.invoke(app, [*command, "--out", str(out / f"{name}{n}"), "--devices", str(n)])
            assert done.exit_code == 0, (name, n, done.output)
        tables = sorted(p.relative_to(out / f"{name}1") for p in (out / f"{name}1").rglob("*.tsv"))
        assert tables, name
        for table in tables:
            assert (out / f"{name}1" / table).read_bytes() == (out / f"{name}2" / table).read_bytes(), (name, table)
    for bad in ("5", "0"):
        done = runner.invoke(app, [*commands["mr"], "--out", str(out / "bad"), "--devices", bad])
        assert done.exit_code == 2, (bad, done.output)
        assert "Traceback" not in done.output and "devices" in done.output, done.output
    print("identical")
""")


@pytest.mark.slow  # six commands, each compiling for one and for two devices
def test_devices_2_writes_the_bytes_of_devices_1(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4", MRJAX_NO_CACHE="1",
               COLUMNS="200")
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0 and run.stdout.strip().endswith("identical"), run.stdout[-2000:] + run.stderr[-3000:]
