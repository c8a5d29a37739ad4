"""docs/r_equivalents.md is the current rendering of mrjax.methods.R_EQUIVALENTS."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_r_equivalents_doc_is_current(shared_data):
    spec = importlib.util.spec_from_file_location("render_r_equivalents", ROOT / "tools" / "render_r_equivalents.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = tool.render(shared_data)
    assert (ROOT / "docs" / "r_equivalents.md").read_text() == text, (
        "docs/r_equivalents.md is out of date: run .venv/bin/python tools/render_r_equivalents.py"
    )
    assert "| `mendelianrandomization.ivw_robust` | `set.seed(1); mr_ivw(inp, robust=TRUE)` | `mrivw` | `robust=True` |" in text
