#!/usr/bin/env python3
"""Write docs/r_equivalents.md: the table of ``mrjax.methods.R_EQUIVALENTS`` (each R call of the
golden files and the mrjax call that reproduces it). ``tests/test_r_equivalents_doc.py`` checks
that the committed file is current.

Usage (from the project root): ``.venv/bin/python tools/render_r_equivalents.py``
"""

from __future__ import annotations

import json
from pathlib import Path

from mrjax.methods import METHODS, R_EQUIVALENTS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "r_equivalents.md"
GOLDENS = ROOT.parent / "shared" / "data"


def r_calls(goldens: Path = GOLDENS) -> dict[str, str]:
    """``"<section>.<label>" -> R call`` from every ``golden_methods_*.json`` (first seen wins)."""
    calls: dict[str, str] = {}
    for path in sorted(goldens.glob("*/golden_methods_*.json")):
        golden = json.loads(path.read_text())
        for section in ("mendelianrandomization", "mr_raps"):
            for label, entry in golden.get(section, {}).items():
                calls.setdefault(f"{section}.{label}", entry["call"])
    return calls


def _settings(settings: dict) -> str:
    return f"`{', '.join(f'{k}={v!r}' for k, v in settings.items())}`" if settings else "(defaults)"


def render(goldens: Path = GOLDENS) -> str:
    calls = r_calls(goldens)
    lines = [
        "# R calls and their mrjax equivalents",
        "",
        "Generated from `mrjax.methods.R_EQUIVALENTS` by `tools/render_r_equivalents.py` (do not edit;",
        "`tests/test_r_equivalents_doc.py` fails when it is out of date). Each row: the label of the",
        "golden files (`../shared/data/*/golden_methods_*.json`), the R call, and the mrjax call",
        "`mrjax.mr(dat, methods=[id], **settings)` that gives the same numbers (`inp` is the",
        "MRInput of `dat`; `set.seed` only matters to R). Package versions: MendelianRandomization",
        "0.10.0, mr.raps 0.4.2.",
        "",
        "| golden label | R call | mrjax method | settings | method label |",
        "|---|---|---|---|---|",
    ]
    for label, (method_id, settings) in R_EQUIVALENTS.items():
        call = calls.get(label, "").replace("|", "\\|")
        lines.append(f"| `{label}` | `{call}` | `{method_id}` | {_settings(settings)} | {METHODS[method_id].label} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(render())
    print(f"wrote {DOC.relative_to(ROOT)} ({len(R_EQUIVALENTS)} rows)")
