"""Are a refactor's scan outputs byte-identical to an earlier commit's?

Runs the same two scans — the shared 20-exposure bi-directional scan (../shared/data/scan,
200 bootstraps, 1,000 MR-PRESSO draws, no figures) and ``mrjax demo`` (figures included) — once
with the code of ``--base`` (a git revision, checked out into a temporary worktree) and once
with the working tree, each in its own process, then compares every output file's SHA-256.
``manifest.json`` and ``report.html`` hold timings, paths and dates, so they are compared
after removing those.

    python tools/compare_scan_outputs.py --base e23f5e7

Prints one line per file that differs and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

RUN = r'''
import os, sys
os.environ.setdefault("JAX_PLATFORMS", "cpu")
from pathlib import Path
import pandas as pd
out, shared, layout = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if layout == "scan":
    from mrjax.scan import ScanConfig, demo_config
    from mrjax.scan.run import run_scan
else:  # revisions before the scan package
    from mrjax.pipeline import ScanConfig, demo_config, run_scan
import mrjax
assert Path(mrjax.__file__).resolve().parents[1] == Path(sys.argv[4]).resolve(), mrjax.__file__
names = [f"trait_{i:03d}" for i in range(1, 21)]
sub = pd.read_parquet(shared / "scan/exposures.parquet", filters=[("exposure", "in", names)])
sub["exposure"] = sub["exposure"].astype(str)
sub.to_parquet(out.parent / "exposures_in.parquet", index=False)
run_scan(ScanConfig(exposures=(str(out.parent / "exposures_in.parquet"),), outcome=str(shared / "scan/outcome.parquet"),
                    out=str(out / "scan"), ld_ref=str(shared / "ldref/eur_sim"), outcome_name="outcome",
                    bidirectional=True, n_boot=200, presso_draws=1000, figures=False))
run_scan(demo_config(out / "demo"))
'''

VOLATILE = ("manifest.json", "report.html")


def run(code_root: Path, out: Path) -> None:
    out.mkdir(parents=True)
    env = {"PYTHONPATH": str(code_root), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    layout = "scan" if (code_root / "mrjax" / "scan" / "run.py").is_file() else "pipeline"
    subprocess.run([sys.executable, "-c", RUN, str(out), str(SHARED), layout, str(code_root)], check=True, cwd=out,
                   env={**_environ(), **env})


def _environ() -> dict:
    import os

    return dict(os.environ)


def digest(path: Path, roots: tuple[Path, ...]) -> str:
    data = path.read_bytes()
    if path.name in VOLATILE:
        text = data.decode()
        if path.name == "manifest.json":
            manifest = json.loads(text)
            for key in ("timings_s", "created_utc", "command", "inputs", "parameters"):
                manifest.pop(key, None)
            text = json.dumps(manifest, sort_keys=True)
        for root in sorted(roots, key=lambda r: -len(str(r))):  # longest first: paths differ, nothing else may
            text = text.replace(str(root), "ROOT")
        text = re.sub(r"\d+\.\d+ s\b|<td( class=\"num\")?>\d+(\.\d+)?</td>", "T", text)  # timings
        data = text.encode()
    return hashlib.sha256(data).hexdigest()


def files_of(folder: Path, code_root: Path) -> dict[str, str]:
    roots = (folder.parents[1], code_root)  # work/<base|head> holds the input copies and outputs
    return {str(p.relative_to(folder)): digest(p, roots) for p in sorted(folder.rglob("*"))
            if p.is_file() and ".checkpoints" not in p.parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare the working tree with")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="compare_scan_"))
    base_tree = work / "base_tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), args.base], check=True,
                   capture_output=True)
    try:
        run(base_tree, work / "base" / "out")
        run(ROOT, work / "head" / "out")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], capture_output=True)
    differ = 0
    for scan in ("scan", "demo"):
        base = files_of(work / "base" / "out" / scan, base_tree)
        head = files_of(work / "head" / "out" / scan, ROOT)
        for name in sorted(set(base) | set(head)):
            if base.get(name) != head.get(name):
                differ += 1
                print(f"{scan}/{name}: {'missing' if name not in head else 'new' if name not in base else 'differs'}")
        print(f"{scan}: {len(head)} files compared, {sum(base.get(n) != h for n, h in head.items())} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
