"""Per-input read options in a scan: an exposure that needs a column mapping beside an outcome
that must not get it (--exposure-column / --outcome-column), and an inputs manifest."""

from __future__ import annotations

import pandas as pd
import pytest

from mrjax.scan import ScanConfig, ScanError, run_scan
from mrjax.scan.inputs import options_for, read_manifest

TRAIT = "trait_014"


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory):
    """trait_014 twice: with the readers' usual names, and with names only a mapping finds."""
    folder = tmp_path_factory.mktemp("scan_inputs_per_file")
    table = pd.read_parquet(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "==", TRAIT)])
    table = table.drop(columns="exposure")
    plain = folder / f"{TRAIT}.tsv"
    table.to_csv(plain, sep="\t", index=False)
    odd = folder / "odd" / f"{TRAIT}.tsv"
    odd.parent.mkdir()
    table.rename(columns={"beta": "EffectEstimate", "pval": "ProbValue"}).to_csv(odd, sep="\t", index=False)
    return {"plain": str(plain), "odd": str(odd), "outcome": str(shared_data / "scan" / "outcome.parquet"),
            "ld_ref": str(shared_data / "ldref" / "eur_sim"), "folder": folder}


def _config(files, out, **changes):
    settings = dict(exposures=(files["plain"],), outcome=files["outcome"], out=str(out), ld_ref=files["ld_ref"],
                    outcome_name="outcome", proxies=False, methods=("ivw",), presso_draws=0, n_boot=10,
                    figures=False, report=False)
    settings.update(changes)
    return ScanConfig(**settings)


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    return run_scan(_config(inputs, tmp_path_factory.mktemp("reference"))).tables["results"]


def _same_estimates(result, reference):
    columns = ["exposure", "outcome", "method", "nsnp", "b", "se", "pval"]
    pd.testing.assert_frame_equal(result.tables["results"][columns].reset_index(drop=True),
                                  reference[columns].reset_index(drop=True))


def test_exposure_column_mapping_applies_to_the_exposures_only(inputs, reference, tmp_path):
    mapping = {"beta": "EffectEstimate", "pval": "ProbValue"}
    with pytest.raises(ScanError, match="not in the header"):  # one mapping for every input: the outcome lacks them
        run_scan(_config(inputs, tmp_path / "a", exposures=(inputs["odd"],), columns=mapping))
    result = run_scan(_config(inputs, tmp_path / "b", exposures=(inputs["odd"],), exposure_columns=mapping))
    _same_estimates(result, reference)


def test_inputs_manifest(inputs, reference, tmp_path):
    manifest = inputs["folder"] / "inputs.tsv"
    manifest.write_text("path\ttrait\tformat\tcolumns\n"
                        f"odd/{TRAIT}.tsv\t{TRAIT}\tplain\tbeta=EffectEstimate;pval=ProbValue\n")
    entries = read_manifest(manifest)
    assert entries[0].path == inputs["odd"] and entries[0].trait == TRAIT
    config = _config(inputs, tmp_path / "m", exposures=(), inputs=str(manifest))
    assert dict(options_for(config, inputs["odd"], "exposure").columns) == {"beta": "EffectEstimate", "pval": "ProbValue"}
    assert options_for(config, inputs["outcome"], "outcome").columns == ()
    _same_estimates(run_scan(config), reference)


def test_bad_manifests_are_named(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("file\ttrait\nx.tsv\tx\n")
    with pytest.raises(ScanError, match="no 'path' column"):
        read_manifest(bad)
    bad.write_text("path\tcolumns\nx.tsv\tbeta\n")
    with pytest.raises(ScanError, match="line 2: bad mapping 'beta'"):
        read_manifest(bad)
    bad.write_text("path\tweight\nx.tsv\t1\n")
    with pytest.raises(ScanError, match=r"unknown column\(s\) \['weight'\]"):
        read_manifest(bad)
