"""The walkthrough notebook runs top to bottom (executed with nbclient, as CI does), its own
check cells pass (IVW by hand), and what it prints agrees with the library run here."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mrjax.gwas import read_gwas
from mrjax.scan import example_data_folder

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    folder = tmp_path_factory.mktemp("notebook")
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    except CellExecutionError as error:  # a failing check cell or a broken step
        pytest.fail(f"the walkthrough notebook failed: {str(error).splitlines()[-1] if str(error) else error}")
    return notebook


def _text(notebook, marker: str) -> str:
    """The printed output of the code cell whose source contains ``marker``."""
    cell = next(c for c in notebook.cells if c.cell_type == "code" and marker in c.source)
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def test_walkthrough_notebook_runs_and_its_checks_pass(executed):
    assert "IVW checked by hand for 10 exposures" in _text(executed, "IVW by hand")
    images = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert len(images) >= 4  # scatter, leave-one-out, funnel and the scan's forest plot


def test_walkthrough_prints_what_the_library_reads(executed):
    data = example_data_folder()
    exposures = read_gwas(data / "exposures.parquet")
    outcome = read_gwas(data / "outcome.tsv.gz", trait="outcome")
    expected = f"{exposures['trait'].nunique()} exposures, {len(exposures)} rows; {len(outcome)} outcome rows"
    assert expected in _text(executed, "exposures = read_gwas(")
