"""The GWAS store: ingest → read back equals read_gwas; look-ups equal full-table filters;
idempotent, resumable, failure-isolated, and independent of the number of Dask workers."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mrjax
from mrjax.store import GWASStore, ingest, layout, tables

GWAS_FILES = ("exposure_a.h.tsv.gz", "exposure_b.vcf.gz", "exposure_c.tsv", "outcome_finngen.gz")
VOLATILE = ("ingested_at", "seconds")


@pytest.fixture(scope="module")
def gwas_dir(shared_data) -> Path:
    return shared_data / "gwas"


@pytest.fixture(scope="module")
def store(tmp_path_factory, gwas_dir) -> GWASStore:
    """Every file of ../shared/data/gwas plus the demo's long exposure table, in this process."""
    root = tmp_path_factory.mktemp("store") / "gwas_store"
    demo = Path(mrjax.__file__).parent / "example_data" / "exposures.parquet"
    summary = ingest([str(gwas_dir / "*")] + [str(demo)], store=root, workers=0, progress=False)
    written = summary[summary["status"] == "written"]
    assert sorted(written["source"].map(lambda p: Path(p).name).unique()) == sorted(GWAS_FILES + ("exposures.parquet",))
    # the folder's README.md and truth.json are not GWAS files: they fail alone, with their reason
    failed = summary[summary["status"] == "failed"]
    assert sorted(failed["trait"]) == ["README.md", "truth.json"]
    assert failed["reason"].str.contains("missing required column").all()
    return GWASStore(root)


def _read(gwas_dir, name, **options):
    return mrjax.read_gwas(gwas_dir / name, **options)


@pytest.mark.parametrize("name", GWAS_FILES)
def test_round_trip_equals_read_gwas(store, gwas_dir, name):
    expected = _read(gwas_dir, name)
    trait = expected["trait"].iloc[0]
    got = store.table(trait)
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))
    info = store.metadata(trait)
    counts = mrjax.counts_of(expected)
    assert info["rows"]["read"] == int(counts["n_in"].sum())
    assert info["rows"]["kept"] == len(expected)
    assert info["rows"]["dropped"] == int(counts["n_dropped"].sum())
    assert sum(info["rows"]["dropped_by_reason"].values()) == info["rows"]["dropped"]
    path = gwas_dir / name
    assert info["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["source"]["size"] == path.stat().st_size
    assert info["effect_scale"] == ("OR" if mrjax.gwas.is_case_control(path) else "beta")
    # the read step's records, rebuilt from the store, are read_gwas's
    for records in (mrjax.audit_of, mrjax.counts_of, mrjax.gwas.unlisted_of):
        pd.testing.assert_frame_equal(records(got), records(expected))


def test_metadata_facts(store):
    a = store.metadata("exposure_a")
    assert a["rows"]["dropped_by_reason"] == {"bad value": 51}  # the hm_code 15 rows (README)
    assert a["genome_build"] == "GRCh38" and a["source"]["format"] == "gwas_catalog"
    b = store.metadata("exposure_b")
    assert b["sample_size"]["n"] == 80_000 and b["genome_build"] == "SIMULATED"
    assert store.metadata("outcome_finngen")["effect_scale"] == "OR"
    assert store.metadata("exp_01")["ingest"]["source_traits"] == [f"exp_{i:02d}" for i in range(1, 11)]
    assert all(b[k] for k in ("mrjax_version", "store_version"))


def test_long_table_becomes_one_trait_per_value(store):
    demo = Path(mrjax.__file__).parent / "example_data" / "exposures.parquet"
    expected = mrjax.read_gwas(demo)
    assert store.traits("exp_*") == sorted(expected["trait"].unique())
    for trait in ("exp_01", "exp_07"):
        want = expected[expected["trait"] == trait].reset_index(drop=True)
        pd.testing.assert_frame_equal(store.table(trait), want)


@pytest.mark.parametrize("p", [1e-4, 1e-5, 5e-8])
def test_top_hits_equal_read_gwas_with_p_max(store, gwas_dir, p):
    for name in ("exposure_a.h.tsv.gz", "outcome_finngen.gz"):
        expected = _read(gwas_dir, name, p_max=p).reset_index(drop=True)
        got = store.top_hits(expected["trait"].iloc[0], p=p)
        pd.testing.assert_frame_equal(got, expected)


def test_top_hits_carry_the_read_audit_of_a_p_max_read(store, gwas_dir):
    for name in GWAS_FILES:
        expected = _read(gwas_dir, name, p_max=1e-5)
        got = store.top_hits(expected["trait"].iloc[0], p=1e-5)
        pd.testing.assert_frame_equal(mrjax.counts_of(got), mrjax.counts_of(expected))
        if name != "exposure_a.h.tsv.gz":  # no row dropped for a bad value: records identical
            pd.testing.assert_frame_equal(mrjax.audit_of(got), mrjax.audit_of(expected))
            pd.testing.assert_frame_equal(mrjax.gwas.unlisted_of(got), mrjax.gwas.unlisted_of(expected))
    # exposure_a's 51 hm_code-15 rows: the store lists them all as bad values, where the
    # file's reader counts those above p as not significant; the totals agree
    got = store.top_hits("exposure_a", p=1e-5)
    assert len(mrjax.audit_of(got)) == 51
    assert mrjax.gwas.unlisted_of(got)["n"].sum() + 51 == mrjax.counts_of(got)["n_dropped"].sum()


def test_top_hits_above_keep_p_is_refused(store):
    with pytest.raises(ValueError, match="keeps top hits at p <= 0.0001"):
        store.top_hits("exposure_a", p=1e-3)


def test_unknown_trait_names_the_store(store):
    with pytest.raises(ValueError, match="no trait 'Exposure_A'.*did you mean 'exposure_a'"):
        store.metadata("Exposure_A")


@pytest.fixture(scope="module")
def small_groups(tmp_path_factory, gwas_dir):
    """exposure_a and exposure_c written with small row groups, so pruning is visible."""
    patch = pytest.MonkeyPatch()
    patch.setattr(tables, "VARIANT_GROUP_ROWS", 512)
    patch.setattr(tables, "INDEX_GROUP_ROWS", 256)
    root = tmp_path_factory.mktemp("small") / "store"
    try:
        ingest([str(gwas_dir / "exposure_a.h.tsv.gz"), str(gwas_dir / "exposure_c.tsv")], store=root, workers=0,
               progress=False)
    finally:
        patch.undo()
    return GWASStore(root)


def test_snp_lookup_equals_full_filter_and_reads_few_groups(small_groups):
    rng = np.random.default_rng(1)
    for trait in ("exposure_a", "exposure_c"):
        full = small_groups.table(trait)
        hits = full[full["pval"] < 1e-6]["SNP"]  # clustered, as instruments are
        snps = list(hits.sample(min(40, len(hits)), random_state=1)) + ["rs_not_there", "1:2:A:C"]
        got = small_groups.lookup(trait, snps=snps)
        pd.testing.assert_frame_equal(got, full[full["SNP"].isin(snps)].reset_index(drop=True))
        cost = got.attrs["store_read"]
        assert cost["rows_returned"] == len(got) == len(set(snps) & set(full["SNP"]))
        assert cost["row_groups_read"] <= 40 and cost["rows_read"] < 0.4 * cost["rows_total"]
        scattered = list(rng.choice(full["SNP"].to_numpy(), 300, replace=False))
        pd.testing.assert_frame_equal(small_groups.lookup(trait, snps=scattered),
                                      full[full["SNP"].isin(scattered)].reset_index(drop=True))


def test_position_lookup_equals_full_filter(small_groups):
    full = small_groups.table("exposure_a")
    rows = full.sample(25, random_state=3)
    pairs = list(zip(rows["chr"], rows["pos"].astype(int)))
    got = small_groups.lookup("exposure_a", positions=pairs + [("22", 1), ("7", 5)])
    key = full["chr"] + ":" + full["pos"].astype(str)
    want = full[key.isin({f"{c}:{p}" for c, p in pairs})].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs["store_read"]["row_groups_read"] <= 25
    as_text = small_groups.lookup("exposure_a", positions=[f"chr{c}:{p}" for c, p in pairs])
    pd.testing.assert_frame_equal(as_text, want)
    as_frame = small_groups.lookup("exposure_a", positions=rows[["chr", "pos"]])
    pd.testing.assert_frame_equal(as_frame, want)


def test_row_groups_hold_one_chromosome_and_are_sorted(small_groups):
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(small_groups.folders["exposure_a"] / layout.VARIANTS)
    chromosomes, last = [], (-1, -1)
    for g in range(handle.num_row_groups):
        group = handle.metadata.row_group(g)
        chr_stats, pos_stats = group.column(1).statistics, group.column(2).statistics
        assert chr_stats.min == chr_stats.max
        key = (tables.chromosome_key(chr_stats.min)[0], pos_stats.min)
        assert key >= last
        last = (key[0], pos_stats.max)
        chromosomes.append(chr_stats.min)
    assert list(dict.fromkeys(chromosomes)) == ["2", "10", "22"]


def test_snp_lookup_without_positions(tmp_path, shared_data):
    """The scan fixture's long exposure table has no chr/pos: SNP look-ups still work."""
    import pyarrow.parquet as pq

    source = tmp_path / "two_traits.parquet"
    table = pq.read_table(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", ["trait_001", "trait_002"])])
    pq.write_table(table, source)
    ingest([str(source)], store=tmp_path / "s", workers=0, progress=False)
    store = GWASStore(tmp_path / "s")
    full = mrjax.read_gwas(source, trait="trait_002").reset_index(drop=True)
    pd.testing.assert_frame_equal(store.table("trait_002"), full)
    snps = list(full["SNP"].iloc[::997])
    pd.testing.assert_frame_equal(store.lookup("trait_002", snps=snps), full[full["SNP"].isin(snps)].reset_index(drop=True))
    assert store.lookup("trait_002", positions=[("2", 101353572)]).empty


def _snapshot(root: Path) -> dict:
    """Every file's bytes (parquet) or content less volatile fields (metadata)."""
    out = {}
    for path in sorted((root / layout.TRAITS).rglob("*")):
        if path.is_dir():
            continue
        if path.name == layout.METADATA:
            info = json.loads(path.read_text())
            for key in VOLATILE:
                info["ingest"].pop(key)
            out[str(path.relative_to(root))] = info
        else:
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_second_ingest_skips_everything(tmp_path, gwas_dir):
    files = [str(gwas_dir / "exposure_c.tsv"), str(gwas_dir / "outcome_finngen.gz")]
    first = ingest(files, store=tmp_path / "s", workers=0, progress=False)
    assert list(first["status"]) == ["written", "written"]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "s" / layout.TRAITS).rglob("*")}
    again = ingest(files, store=tmp_path / "s", workers=0, progress=False)
    assert list(again["status"]) == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "s" / layout.TRAITS).rglob("*")} == before
    # another keep_p is another ingest of the same bytes: replaced, with more top hits
    wider = ingest(files[:1], store=tmp_path / "s", workers=0, progress=False, keep_p=1e-3)
    assert list(wider["status"]) == ["replaced"] and wider["top_hits"].iloc[0] > first["top_hits"].iloc[0]
    log = (tmp_path / "s" / layout.LOG_FILE).read_text().splitlines()
    assert [line.split("\t")[1] for line in log] == ["written"] * 2 + ["skipped"] * 2 + ["replaced"]


class _Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing inside ingest catches it."""


def test_killed_ingest_leaves_no_half_trait_and_resumes(tmp_path, gwas_dir, monkeypatch):
    files = [str(gwas_dir / n) for n in ("exposure_c.tsv", "outcome_finngen.gz", "exposure_a.h.tsv.gz")]
    root = tmp_path / "s"
    write_top_hits = tables.write_top_hits
    calls = []

    def dies_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise _Killed()
        return write_top_hits(*args, **kwargs)

    monkeypatch.setattr(tables, "write_top_hits", dies_on_second)
    with pytest.raises(_Killed):
        ingest(files, store=root, workers=0, progress=False)
    monkeypatch.setattr(tables, "write_top_hits", write_top_hits)
    assert GWASStore(root).traits() == ["exposure_c"]  # finished before the kill
    assert any((root / layout.TMP).iterdir())  # the half-written trait sits in .tmp only
    for folder in (root / layout.TRAITS).iterdir():
        assert sorted(p.name for p in folder.iterdir()) == sorted(layout.TRAIT_FILES)
    resumed = ingest(files, store=root, workers=0, progress=False)
    assert list(resumed["status"]) == ["skipped", "written", "written"]
    assert not any((root / layout.TMP).iterdir())
    assert GWASStore(root).traits() == ["exposure_a", "exposure_c", "outcome_finngen"]


def test_corrupt_file_fails_only_its_trait(tmp_path, gwas_dir):
    truncated = tmp_path / "truncated.h.tsv.gz"
    truncated.write_bytes((gwas_dir / "exposure_a.h.tsv.gz").read_bytes()[:400_000])
    garbage = tmp_path / "garbage.tsv.gz"
    garbage.write_bytes(gzip.compress(b"SNP\tA1\tA2\tBETA\tSE\tP\nrs1\tA\tG\tnot_a_number\t0.1\t0.5\n"))
    files = [str(truncated), str(gwas_dir / "exposure_c.tsv"), str(garbage), str(tmp_path / "missing.tsv")]
    summary = ingest(files, store=tmp_path / "s", workers=0, progress=False)
    status = dict(zip(summary["trait"], summary["status"]))
    assert status == {"truncated": "failed", "exposure_c": "written", "garbage": "failed", "missing": "failed"}
    reasons = dict(zip(summary["trait"], summary["reason"]))
    assert "corrupt or truncated" in reasons["truncated"]
    assert "BETA" in reasons["garbage"] and "not_a_number" in reasons["garbage"]
    assert "missing.tsv" in reasons["missing"]
    assert all("\n" not in r for r in reasons.values())
    log = (tmp_path / "s" / layout.LOG_FILE).read_text().splitlines()
    assert sorted(line.split("\t")[2] for line in log if line.split("\t")[1] == "failed") == ["garbage", "missing", "truncated"]
    assert GWASStore(tmp_path / "s").traits() == ["exposure_c"]


def test_manifest_names_traits_maps_columns_and_adds_facts(tmp_path, gwas_dir):
    renamed = tmp_path / "renamed.tsv"
    text = (gwas_dir / "exposure_c.tsv").read_text().replace("BETA", "Effect", 1)
    renamed.write_text(text)
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(
        "path\ttrait\tformat\tcolumns\tn_cases\tn_controls\tbuild\n"
        f"renamed.tsv\tbody_fat\tplain\tbeta=Effect\t\t\tGRCh37\n"
        f"{gwas_dir / 'outcome_finngen.gz'}\tlow_back_pain\t\t\t100000\t300000\t\n"
    )
    summary = ingest(None, store=tmp_path / "s", manifest=manifest, workers=0, progress=False)
    assert list(summary["status"]) == ["written", "written"]
    store = GWASStore(tmp_path / "s")
    assert store.traits() == ["body_fat", "low_back_pain"]
    expected = mrjax.read_gwas(gwas_dir / "exposure_c.tsv", trait="body_fat").reset_index(drop=True)
    pd.testing.assert_frame_equal(store.table("body_fat"), expected)
    assert store.metadata("body_fat")["genome_build"] == "GRCh37"
    lbp = store.metadata("low_back_pain")
    assert (lbp["n_cases"], lbp["n_controls"], lbp["effect_scale"]) == (100000, 300000, "OR")


def test_two_files_claiming_one_trait_name(tmp_path, gwas_dir):
    copy = tmp_path / "other" / "exposure_c.tsv"
    copy.parent.mkdir()
    shutil.copy(gwas_dir / "exposure_c.tsv", copy)
    summary = ingest([str(gwas_dir / "exposure_c.tsv"), str(copy)], store=tmp_path / "s", workers=0, progress=False)
    assert list(summary["status"]) == ["written", "failed"]
    assert "also given by" in summary["reason"].iloc[1]


def test_store_json_versions_the_format(tmp_path, gwas_dir):
    ingest([str(gwas_dir / "exposure_c.tsv")], store=tmp_path / "s", workers=0, progress=False)
    info = json.loads((tmp_path / "s" / layout.STORE_FILE).read_text())
    assert (info["format"], info["version"]) == ("mrjax-gwas-store", layout.FORMAT_VERSION)
    info["version"] = layout.FORMAT_VERSION + 1
    (tmp_path / "s" / layout.STORE_FILE).write_text(json.dumps(info))
    with pytest.raises(ValueError, match="newer than this mrjax reads"):
        GWASStore(tmp_path / "s")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("not a store")
    with pytest.raises(ValueError, match="not a GWAS store"):
        ingest([str(gwas_dir / "exposure_c.tsv")], store=tmp_path / "plain", workers=0, progress=False)


def test_cli_ingest_and_ls(tmp_path, gwas_dir):
    from mrjax_cli.main import app

    runner = CliRunner()
    root = tmp_path / "s"
    bad = tmp_path / "bad.tsv"
    bad.write_text("nothing useful\n1\n")
    result = runner.invoke(app, ["ingest", str(gwas_dir / "exposure_c.tsv"), str(bad), "--store", str(root),
                                 "--workers", "0", "--quiet"])
    assert result.exit_code == 2, result.output
    assert "1 written, 1 failed" in result.output and "bad" in result.output
    listed = runner.invoke(app, ["store", "ls", str(root), "--tsv"])
    assert listed.exit_code == 0, listed.output
    table = pd.read_csv(__import__("io").StringIO(listed.stdout), sep="\t")
    assert list(table["trait"]) == ["exposure_c"] and table["rows_kept"].iloc[0] == 39270
    missing = runner.invoke(app, ["store", "ls", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "not a GWAS store" in missing.output


@pytest.mark.slow
def test_two_dask_workers_write_the_same_store_as_one(tmp_path, gwas_dir):
    """LocalCluster (processes) with 2 workers vs 1: identical parquet bytes and metadata."""
    demo = Path(mrjax.__file__).parent / "example_data" / "exposures.parquet"
    files = [str(gwas_dir / "exposure_c.tsv"), str(demo), str(gwas_dir / "outcome_finngen.gz")]
    options = dict(progress=False, cluster_options={"memory_limit": "2GiB"})
    one = ingest(files, store=tmp_path / "one", workers=1, **options)
    two = ingest(files, store=tmp_path / "two", workers=2, **options)
    assert (one["status"] == "written").all() and len(one) == 12
    pd.testing.assert_frame_equal(one.drop(columns="seconds"), two.drop(columns="seconds"))
    a, b = _snapshot(tmp_path / "one"), _snapshot(tmp_path / "two")
    assert a.keys() == b.keys() and len(a) == 12 * len(layout.TRAIT_FILES)
    assert a == b


def test_store_imports_no_jax():
    import subprocess
    import sys

    code = "import sys, mrjax.store, mrjax_cli.store\nprint('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- mrjax scan --store ------------------------------------------------------------------------

SCAN_SETTINGS = dict(n_boot=20, presso_draws=50, figures=False, report=False, seed=3,
                     methods=("ivw", "egger_regression", "weighted_median"))


def _assert_same_scan(from_files, from_store):
    assert sorted(from_files.tables) == sorted(from_store.tables)
    for name, table in from_files.tables.items():
        pd.testing.assert_frame_equal(from_store.tables[name].reset_index(drop=True), table.reset_index(drop=True),
                                      obj=name)
    assert len(from_files.tables["results"]) > 0


def _no_whole_tables(monkeypatch):
    """A scan from the store must not read a whole table (nor any GWAS file)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a scan from the store read a whole table")

    monkeypatch.setattr(GWASStore, "table", refuse)
    monkeypatch.setattr("mrjax.scan.inputs.read_gwas", refuse)


@pytest.mark.slow
def test_demo_scan_from_store_equals_scan_from_files(tmp_path, monkeypatch):
    """Bi-directional, clumped against the demo panel, LD proxies on: every table identical."""
    from mrjax.scan import run_scan
    from mrjax.scan.demo import demo_config, example_data_folder

    folder = example_data_folder()
    from_files = run_scan(demo_config(tmp_path / "files", **SCAN_SETTINGS))
    ingest([str(folder / "exposures.parquet"), str(folder / "outcome.tsv.gz")], store=tmp_path / "store", workers=0,
           progress=False)
    _no_whole_tables(monkeypatch)
    from_store = run_scan(demo_config(tmp_path / "from_store", exposures=("exp_*",), outcome="outcome",
                                      outcome_name=None, store=str(tmp_path / "store"), **SCAN_SETTINGS))
    _assert_same_scan(from_files, from_store)
    assert {r["trait"] for r in from_store.manifest["inputs"] if "trait" in r} == {f"exp_{i:02d}" for i in range(1, 11)} | {"outcome"}


@pytest.mark.slow
def test_shared_scan_from_store_equals_scan_from_files(tmp_path, shared_data, monkeypatch):
    """The shared scan fixture (6 of its 50 exposures), forward only without proxies, chunks
    of 2: the long exposure table's read records are the whole table's, as a scan of the file
    reads it whole."""
    import pyarrow.parquet as pq

    from mrjax.scan import ScanConfig, run_scan

    traits = ["trait_004", "trait_007", "trait_014", "trait_018", "trait_026", "trait_033"]
    table = pq.read_table(shared_data / "scan" / "exposures.parquet", filters=[("exposure", "in", traits)])
    pq.write_table(table, tmp_path / "exposures.parquet")
    outcome = str(shared_data / "scan" / "outcome.parquet")
    settings = dict(ld_ref=str(shared_data / "ldref" / "eur_sim"), action=1, proxies=False, chunk_size=2, **SCAN_SETTINGS)
    from_files = run_scan(ScanConfig(exposures=(str(tmp_path / "exposures.parquet"),), outcome=outcome,
                                     out=str(tmp_path / "files"), outcome_name="outcome", **settings))
    ingest([str(tmp_path / "exposures.parquet"), outcome], store=tmp_path / "store", workers=0, progress=False)
    _no_whole_tables(monkeypatch)
    from_store = run_scan(ScanConfig(exposures=("trait_0[01]*", "trait_02*", "trait_03*"), outcome="outcome",
                                     out=str(tmp_path / "from_store"), store=str(tmp_path / "store"), **settings))
    _assert_same_scan(from_files, from_store)


def test_scan_from_store_names_missing_traits(tmp_path, gwas_dir):
    from mrjax.scan import ScanConfig, ScanError

    ingest([str(gwas_dir / "exposure_c.tsv")], store=tmp_path / "s", workers=0, progress=False)
    config = ScanConfig(exposures=("exposure_*",), outcome="nope", out=str(tmp_path / "o"), already_clumped=True,
                        store=str(tmp_path / "s"))
    with pytest.raises(ScanError, match="outcome 'nope' is not a trait of the store"):
        config.validate()
