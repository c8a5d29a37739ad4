"""The settings of ``mrjax demo``: the bundled simulated example (10 exposures, one
case/control outcome, a PLINK panel) scanned in both directions."""

from __future__ import annotations

from pathlib import Path

from mrjax.scan.config import ScanConfig


def example_data_folder() -> Path:
    """The example data bundled inside the package (``mrjax/example_data``)."""
    return Path(__file__).resolve().parents[1] / "example_data"


def demo_config(out: str | Path = "mrjax_demo", **changes) -> ScanConfig:
    """The settings of ``mrjax demo``: a bi-directional scan of the 10 bundled simulated
    exposures against the bundled outcome, clumped against the bundled panel, with the
    library defaults otherwise (``changes`` override any field)."""
    folder = example_data_folder()
    settings = dict(
        exposures=(str(folder / "exposures.parquet"),), outcome=str(folder / "outcome.tsv.gz"), out=str(out),
        ld_ref=str(folder / "demo_panel"), outcome_name="outcome", bidirectional=True,
    )
    settings.update(changes)
    return ScanConfig(**settings)
