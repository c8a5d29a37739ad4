"""The report layer: multiple testing, results table, figures, HTML, atomic files, manifest, demo data.

Numbers are checked against independent computations written here (plain loops, scipy), never
against the code under test. The scan tables fed to the figures and the report are small
hand-made frames in the shapes of ``mrjax.mr`` / ``heterogeneity`` / ``pleiotropy`` /
``leave_one_out`` / ``single_snp``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control, norm

from mrjax import outputs
from mrjax.report import html, plots, tables

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "mrjax" / "example_data"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SITE_PATH = "/opt/venv/lib/python3.11/site-packages/mrjax/example_data/out.tsv"


# ----------------------------------------------------------------------------- independent references
def fake_scan(seed: int = 0, n_traits: int = 5, big_trait_snps: int = 0):
    """Small scan tables in the estimators' shapes, built with plain numpy formulas."""
    rng = np.random.default_rng(seed)
    harm, mr, het, pleio, loo, single = [], [], [], [], [], []
    for direction in ("forward", "reverse"):
        for t in range(n_traits):
            exposure, outcome = (f"trait_{t}", "disease") if direction == "forward" else ("disease", f"trait_{t}")
            k = int(rng.integers(4, 10)) if not (t == 0 and big_trait_snps) else big_trait_snps
            theta = 0.4 if (t < 2 and direction == "forward") else 0.0
            bx = rng.choice([-1, 1], k) * rng.uniform(0.05, 0.1, k)
            sx = np.full(k, 0.01)
            sy = np.full(k, 0.01)
            by = theta * bx + rng.normal(0, 0.01, k)
            snps = [f"rs{t}_{i}" for i in range(k)]
            snps[1] = snps[0]  # duplicated SNP ids must not break a figure
            harm.append(pd.DataFrame({"direction": direction, "exposure": exposure, "outcome": outcome, "SNP": snps,
                                      "beta.exposure": bx, "se.exposure": sx, "beta.outcome": by, "se.outcome": sy,
                                      "mr_keep": True}))
            w = bx ** 2 / sy ** 2
            b = np.sum(bx * by / sy ** 2) / np.sum(w)
            se = 1 / np.sqrt(np.sum(w))
            for method_id, method, bb, ss in (("mr_ivw", "Inverse variance weighted", b, se),
                                              ("mr_egger_regression", "MR Egger", 1.1 * b, 2 * se),
                                              ("mr_weighted_median", "Weighted median", 0.95 * b, 1.3 * se)):
                mr.append(dict(direction=direction, exposure=exposure, outcome=outcome, method_id=method_id, method=method,
                               nsnp=k, b=bb, se=ss, pval=2 * norm.sf(abs(bb / ss)), reason=""))
            het.append(dict(direction=direction, exposure=exposure, outcome=outcome, method="Inverse variance weighted",
                            Q=float(np.sum((by - b * bx) ** 2 / sy ** 2)), Q_df=k - 1, Q_pval=0.3))
            het.append(dict(direction=direction, exposure=exposure, outcome=outcome, method="MR Egger", Q=1.0, Q_df=k - 2, Q_pval=0.4))
            pleio.append(dict(direction=direction, exposure=exposure, outcome=outcome, egger_intercept=0.002, se=0.001, pval=0.05))
            for i in range(k):
                keep = np.arange(k) != i
                bi = np.sum(bx[keep] * by[keep] / sy[keep] ** 2) / np.sum(w[keep])
                si = 1 / np.sqrt(np.sum(w[keep]))
                loo.append(dict(direction=direction, exposure=exposure, outcome=outcome, SNP=snps[i], b=bi, se=si, p=2 * norm.sf(abs(bi / si))))
                single.append(dict(direction=direction, exposure=exposure, outcome=outcome, SNP=snps[i], b=by[i] / bx[i],
                                   se=sy[i] / abs(bx[i]), p=0.5))
            loo.append(dict(direction=direction, exposure=exposure, outcome=outcome, SNP="All", b=b, se=se, p=2 * norm.sf(abs(b / se))))
    frame = pd.DataFrame
    return pd.concat(harm, ignore_index=True), frame(mr), frame(het), frame(pleio), frame(loo), frame(single)


# ----------------------------------------------------------------------------- results table (BH/Bonferroni themselves: test_multiple_testing.py)
def test_scan_results_columns_odds_ratios_and_corrections_per_direction_and_method():
    _, mr, *_ = fake_scan(seed=2, n_traits=6)
    forward = mr[mr["direction"] == "forward"].drop(columns="direction")
    reverse = mr[mr["direction"] == "reverse"].drop(columns="direction")
    res = tables.scan_results({"forward": forward, "reverse": reverse})
    assert list(res.columns[:15]) == ["direction", "exposure", "outcome", "method_id", "method", "nsnp", "b", "se", "pval",
                                      "or", "or_lci95", "or_uci95", "effect_scale", "qval_fdr", "pval_bonferroni"]
    assert set(res["effect_scale"]) == {"OR"}  # no scale given: odds ratios, as generate_odds_ratios
    assert set(res["direction"]) == {"forward", "reverse"}
    assert len(res) == len(mr)
    np.testing.assert_allclose(res["or"], np.exp(res["b"]), rtol=1e-15)
    np.testing.assert_allclose(res["or_lci95"], np.exp(res["b"] - 1.96 * res["se"]), rtol=1e-14)
    np.testing.assert_allclose(res["or_uci95"], np.exp(res["b"] + 1.96 * res["se"]), rtol=1e-14)
    for (direction, method_id), group in res.groupby(["direction", "method_id"]):
        assert len(group) == 6  # corrected across the 6 traits of this direction and method only
        np.testing.assert_allclose(group["qval_fdr"], false_discovery_control(group["pval"].to_numpy()), rtol=1e-13)
        np.testing.assert_allclose(group["pval_bonferroni"], np.minimum(1, group["pval"] * 6), rtol=1e-14)


def test_continuous_outcomes_are_reported_as_b_not_odds_ratios():
    """Rows whose outcome is continuous (``effect_scale`` beta, e.g. an immune trait in the
    reverse direction) show b (95% CI) in the paper table and on a linear forest panel."""
    _, mr, het, pleio, loo, _ = fake_scan(seed=3, n_traits=5)
    scale = np.where(mr["direction"] == "forward", "OR", "beta")
    res = tables.scan_results(mr.assign(effect_scale=scale))
    assert (res["effect_scale"] == np.where(res["direction"] == "forward", "OR", "beta")).all()
    ivw = res[res["method_id"] == "mr_ivw"]
    findings = tables.findings_table(res.assign(qval_fdr=np.where(res.index.isin(ivw.index[[0, 7]]), 0.01, 0.9)),
                                     heterogeneity=het, pleiotropy=pleio, leave_one_out=loo)
    assert list(findings["direction"]) == ["forward", "reverse"]
    paper = tables.paper_table(findings, res)
    assert list(paper["Effect"]) == ["OR", "b"]
    reverse = findings.iloc[1]
    b, se = reverse["mr_ivw_b"], reverse["mr_ivw_se"]
    z = 1.96  # TwoSampleMR generate_odds_ratios
    assert paper["Inverse variance weighted estimate (95% CI)"].iloc[1] == f"{b:.3f} ({b - z * se:.3f} to {b + z * se:.3f})"
    assert re.fullmatch(r"\d+\.\d\d \(\d+\.\d\d–\d+\.\d\d\)", paper["Inverse variance weighted estimate (95% CI)"].iloc[0])
    assert not any(" or b " in c for c in paper.columns)  # no "OR or b" headers
    only_reverse = tables.paper_table(findings.iloc[1:], res)
    assert "Inverse variance weighted b (95% CI)" in only_reverse.columns and "Effect" not in only_reverse.columns
    assert "LOO range (b)" in only_reverse.columns
    only_forward = tables.paper_table(findings.iloc[:1], res)
    low, high = findings.iloc[0][["loo_min_b", "loo_max_b"]]
    assert only_forward["LOO range (OR)"].iloc[0] == f"{math.exp(low):.2f} to {math.exp(high):.2f}"  # the table's scale

    figure = plots.forest_plot(res.assign(qval_fdr=np.where(res.index.isin(ivw.index[[0, 7]]), 0.01, 0.9)))
    estimate_axes = [ax for ax in figure.axes if ax.get_xlabel()]
    assert [ax.get_xscale() for ax in estimate_axes] == ["log", "linear"]
    assert "continuous" in estimate_axes[1].get_xlabel()
    low, high = estimate_axes[1].get_xlim()
    assert low <= b - z * se and b + z * se <= high and low <= 0 <= high


def test_many_hits_draw_only_the_strongest_traits(tmp_path):
    """A scan with many significant traits (e.g. no correction) gets a forest plot and
    per-trait figures for the ones with the smallest p only, and the report says so."""
    harm, mr, *_ = fake_scan(seed=5, n_traits=6)
    res = tables.scan_results(mr).assign(qval_fdr=0.01)  # every trait of both directions "significant"
    ivw = tables.significant(res)
    assert len(ivw) == 12
    figures = plots.scan_figures(tmp_path, res, harmonised=harm, max_traits=3)
    expected = ivw.nsmallest(3, "pval")[["direction", "exposure", "outcome"]]
    drawn = pd.DataFrame(figures["traits"])[["direction", "exposure", "outcome"]]
    assert sorted(map(tuple, drawn.to_numpy())) == sorted(map(tuple, expected.to_numpy()))
    forest = plots.forest_plot(res, max_traits=4)
    assert forest._suptitle.get_text().endswith("the 4 with the smallest p of 12")
    labels = [t.get_text() for ax in forest.axes for t in ax.texts if t.get_fontweight() == "bold" and "→" in t.get_text()]
    assert len(labels) == 4
    report = html.render_report({"results": res}, None, figures)
    assert "Per-trait figures for the 3 traits with the smallest p of the 12 significant." in report


def test_scan_results_reports_a_missing_column():
    _, mr, *_ = fake_scan(n_traits=2)
    with pytest.raises(ValueError, match="lacks column.*pval"):
        tables.scan_results(mr.drop(columns="pval"))


def test_findings_put_sensitivity_analyses_beside_the_significant_traits():
    _, mr, het, pleio, loo, _ = fake_scan(seed=3, n_traits=5)
    res = tables.scan_results(mr)
    findings = tables.findings_table(res, heterogeneity=het, pleiotropy=pleio, leave_one_out=loo)
    # traits 0 and 1 of the forward direction are causal (theta 0.4), the rest null
    assert set(zip(findings["direction"], findings["exposure"])) == {("forward", "trait_0"), ("forward", "trait_1")}
    row = findings[findings["exposure"] == "trait_0"].iloc[0]
    ivw = res[(res["exposure"] == "trait_0") & (res["method_id"] == "mr_ivw") & (res["direction"] == "forward")].iloc[0]
    assert row["mr_ivw_b"] == ivw["b"] and row["mr_weighted_median_pval"] > 0
    assert row["Q_pval_ivw"] == 0.3 and row["Q_pval_egger"] == 0.4 and row["egger_intercept_pval"] == 0.05
    mine = loo[(loo["exposure"] == "trait_0") & (loo["direction"] == "forward") & (loo["SNP"] != "All")]
    assert row["loo_min_b"] == mine["b"].min() and row["loo_max_b"] == mine["b"].max() and row["loo_n"] == len(mine)
    same = tables.findings_table(tables.scan_results(mr.assign(method_id=mr["method_id"].str.removeprefix("mr_"))),
                                 heterogeneity=het, pleiotropy=pleio, leave_one_out=loo)
    assert len(same) == 2 and "ivw_b" in same.columns  # method ids without TwoSampleMR's mr_ prefix
    paper = tables.paper_table(findings, res)
    assert {"Inverse variance weighted OR (95% CI)", "MR Egger P", "FDR q"} <= set(paper.columns)
    assert re.fullmatch(r"\d+\.\d\d \(\d+\.\d\d–\d+\.\d\d\)", paper["Inverse variance weighted OR (95% CI)"].iloc[0])


# ----------------------------------------------------------------------------- figures and report
@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Every figure of a small two-direction scan, plus the report built from them."""
    folder = tmp_path_factory.mktemp("scan")
    harm, mr, het, pleio, loo, single = fake_scan(seed=4, n_traits=3, big_trait_snps=150)
    res = tables.scan_results(mr)
    res.loc[res["exposure"] == "trait_1", "exposure"] = "<script>alert('x')</script>"
    for frame in (harm, het, pleio, loo, single):
        frame.loc[frame["exposure"] == "trait_1", "exposure"] = "<script>alert('x')</script>"
    figures = plots.scan_figures(folder / "figures", res, harmonised=harm, pleiotropy=pleio, leave_one_out=loo, single_snp=single)
    counts = pd.DataFrame({"direction": "forward", "step": ["read", "read", "clump", "clump"], "trait": ["trait_0", "trait_2"] * 2,
                           "n_in": [900, 800, 300, 40], "n_kept": [300, 40, 12, 8], "n_dropped": [600, 760, 288, 32]})
    audit = pd.DataFrame({"step": "clump", "trait": "trait_0", "SNP": ["rs1", "rs2"], "reason": "clumped", "detail": "clumped by rs9"})
    report = html.write_report({"results": res, "heterogeneity": het, "pleiotropy": pleio, "leave_one_out": loo,
                                "audit_counts": counts, "audit": audit},
                               None, figures, folder / "report.html", settings={"p": 5e-8, "outcome": SITE_PATH},
                               timings={"estimate": 1.25})
    return folder, figures, report, res


def test_every_figure_is_written_as_png_and_svg(drawn):
    folder, figures, _, res = drawn
    assert set(figures["scan"]) == {"forest", "volcano"}
    significant = tables.significant(res)
    assert len(figures["traits"]) == len(significant) == 2
    for entry in figures["traits"]:
        assert {"scatter", "leave_one_out", "funnel"} <= set(entry)
    groups = list(figures["scan"].values()) + [entry[k] for entry in figures["traits"] for k in ("scatter", "leave_one_out", "funnel")]
    assert len(groups) == 8
    for paths in groups:
        suffixes = sorted(Path(p).suffix for p in paths)
        assert suffixes == [".png", ".svg"]
        for path in paths:
            data = Path(path).read_bytes()
            if path.suffix == ".png":
                assert data.startswith(PNG_MAGIC) and len(data) > 2000
            else:
                assert ET.fromstring(data).tag.endswith("svg")
    assert not list(folder.rglob("*.tmp"))


def test_large_instrument_sets_and_duplicate_snp_ids_draw():
    harm, mr, _, pleio, loo, single = fake_scan(seed=5, n_traits=1, big_trait_snps=400)
    trait = (loo["direction"] == "forward")
    fig = plots.leave_one_out_plot(loo[trait])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 401 and labels[-1] == "All" and labels.count("rs0_0") == 2
    fig = plots.scatter_plot(harm[harm["direction"] == "forward"], mr[mr["direction"] == "forward"], egger_intercept=0.01)
    egger = [line for line in fig.axes[0].get_lines() if line.get_label() == "MR Egger"]
    assert len(egger) == 1 and egger[0].get_ydata()[0] == pytest.approx(0.01)  # Egger line starts at its intercept
    ivw = [line for line in fig.axes[0].get_lines() if line.get_label() == "Inverse variance weighted"][0]
    assert ivw.get_ydata()[0] == 0.0


def test_scatter_orients_snps_so_exposure_effects_are_positive():
    harm, mr, *_ = fake_scan(seed=6, n_traits=1)
    one = harm[harm["direction"] == "forward"]
    fig = plots.scatter_plot(one, mr[mr["direction"] == "forward"])
    points = fig.axes[0].get_lines()[0]  # errorbar data line
    x, y = points.get_xdata(), points.get_ydata()
    sign = np.sign(one["beta.exposure"].to_numpy())
    np.testing.assert_allclose(x, np.abs(one["beta.exposure"]))
    np.testing.assert_allclose(y, one["beta.outcome"].to_numpy() * sign)


def test_report_is_self_contained_escaped_and_holds_every_figure(drawn):
    folder, figures, report, _ = drawn
    text = Path(report).read_text(encoding="utf-8")
    for attribute in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", text):
        assert attribute.startswith("data:image/png;base64,"), attribute[:60]
    assert "<link" not in text and "@import" not in text and "url(" not in text
    pngs = [p for paths in figures["scan"].values() for p in paths if p.suffix == ".png"]
    pngs += [p for e in figures["traits"] for k in ("scatter", "leave_one_out", "funnel") for p in e[k] if p.suffix == ".png"]
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(embedded) == len(pngs) == 8
    assert sorted(embedded) == sorted(base64.b64encode(p.read_bytes()).decode() for p in pngs)
    assert "<script" not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    for heading in ("Inputs", "Settings", "Instruments per pipeline step", "Significant findings", "Heterogeneity",
                    "Pleiotropy", "MR-PRESSO", "Leave-one-out", "Software"):
        assert heading in text
    assert "clumped" in text and "out.tsv" in text


# ----------------------------------------------------------------------------- the report as a reader sees it
RAW_NAMES = ("id.exposure", "id.outcome", "Q_df", "Q_pval", "raw_b", "rss_obs", "global_pval_bound", "qval_fdr",
             "pval_bonferroni", "pval", "nsnp", "n_in", "n_kept", "method_id", "egger_intercept", "loo_min_b", "setting",
             "effect_scale", "or_lci95")


def headers(text: str) -> list[str]:
    """The column headers of the HTML tables in ``text``, unescaped."""
    return [unescape(h) for h in re.findall(r"<th>(.*?)</th>", text)]


def test_report_puts_findings_first_and_folds_the_run_details(drawn):
    text = Path(drawn[2]).read_text(encoding="utf-8")
    assert re.findall(r"<h2>(.*?)</h2>", text) == ["Summary", "Significant findings", "Figures",
                                                  "Instruments and diagnostics", "Run details"]
    run = text.index("<h2>Run details</h2>")
    assert text.index("<h2>Significant findings</h2>") < text.index("<img") < text.index("<h2>Instruments") < run
    assert "site-packages" not in text[:run] and "sha256" not in text[:run].lower()  # no paths or checksums up top
    details = re.findall(r"<details><summary>(.*?)</summary>(.*?)</details>", text[run:], flags=re.S)
    assert [name for name, _ in details] == ["Inputs", "Settings", "Timings", "Software"]
    folded = dict(details)
    assert SITE_PATH in folded["Settings"] and "5e-08" in folded["Settings"]
    assert headers(folded["Timings"]) == ["Stage", "Time (s)"] and "1.25" in folded["Timings"]
    assert headers(folded["Settings"]) == ["Setting", "Value"] and headers(folded["Software"]) == ["Package", "Version"]
    summary = text[text.index("<h2>Summary</h2>"):text.index("<h2>Significant findings</h2>")]
    assert "2 significant" in summary and "trait_0" in summary  # the two causal traits, by name


def test_report_tables_show_display_names_not_raw_columns(drawn):
    text = Path(drawn[2]).read_text(encoding="utf-8")
    shown = set(headers(text))
    assert not shown & set(RAW_NAMES), shown & set(RAW_NAMES)
    assert {"Exposure", "Outcome", "Method", "SNPs", "OR (95% CI)", "P", "FDR q", "Q P (IVW)", "Egger intercept P",
            "Cochran's Q", "Q df", "Variants in", "Variants kept"} <= shown
    assert "Egger intercept (log OR)" in shown and "LOO range (OR)" in shown  # effect columns name their scale
    assert not any(" or b " in h for h in shown)


def test_each_report_table_holds_one_effect_scale():
    _, mr, het, pleio, loo, _ = fake_scan(seed=3, n_traits=4)
    res = tables.scan_results(mr.assign(effect_scale=np.where(mr["direction"] == "reverse", "beta", "OR")))
    res.loc[(res["direction"] == "reverse") & (res["outcome"] == "trait_2"), "qval_fdr"] = 0.001
    text = html.render_report({"results": res, "heterogeneity": het, "pleiotropy": pleio, "leave_one_out": loo}, None, None)
    tables_html = re.findall(r"<table>.*?</table>", text, flags=re.S)
    assert len(tables_html) > 8
    for table in tables_html:
        heads = headers(table)
        odds = any("OR" in h for h in heads)
        beta = any(h.startswith("b (") or "outcome units" in h for h in heads)
        assert not (odds and beta), heads
        for head in heads:  # every effect column says its unit
            if re.match(r"^(b|Raw b|Corrected b|Egger intercept|LOO lowest b|LOO highest b)( |$)", head) and not head.endswith(" P"):
                assert "(" in head, head
    assert "b (95% CI)" in headers(text) and "OR (95% CI)" in headers(text)
    findings = text[text.index("<h2>Significant findings</h2>"):text.index("<h2>Figures</h2>")]
    assert "Reverse: outcome → exposure" in findings and "b (continuous outcome)" not in findings  # one scale per direction here


def test_wide_tables_scroll_inside_the_page():
    """Every table sits in a horizontally scrolling container, and MR-PRESSO is narrowed."""
    _, mr, *_ = fake_scan(seed=3, n_traits=2)
    res = tables.scan_results(mr)
    presso = res[res["method_id"] == "mr_ivw"][["direction", "exposure", "outcome", "nsnp"]].assign(
        raw_b=0.1, raw_se=0.05, raw_t=2.0, raw_pval=0.04, corrected_b=np.nan, corrected_se=np.nan, corrected_t=np.nan,
        corrected_pval=np.nan, rss_obs=12.0, global_pval=1e-4, global_pval_bound=True, n_outliers=2,
        outliers="rs1,rs2", distortion_coef=np.nan, distortion_pval=np.nan, distortion_pval_bound=False, reason="")
    text = html.render_report({"results": res, "presso": presso}, None, None)
    assert text.count("<table>") == text.count('<div class="wide"><table>')
    assert ".wide{overflow-x:auto" in text
    block = text[text.index("<h4>MR-PRESSO</h4>"):]
    block = block[:block.index("</table>")]
    assert "Raw t" not in headers(block) and "RSS (observed)" not in headers(block)
    assert "&lt; 1.00e-04" in block and "rs1, rs2" in block  # a bound p reads as "< 1/draws"; SNP lists wrap


def test_figures_draw_cjk_and_emoji_trait_names_without_missing_glyph_warnings(tmp_path):
    import warnings

    from matplotlib.text import Text

    from mrjax.report import fonts

    harm, mr, het, pleio, loo, single = fake_scan(seed=4, n_traits=2)
    name = "收缩压 🧬 Crohn’s"
    for frame in (harm, mr, pleio, loo, single):
        frame.loc[frame["exposure"] == "trait_0", "exposure"] = name
    res = tables.scan_results(mr)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Gg]lyph.*")
        figures = plots.scan_figures(tmp_path, res, harmonised=harm, pleiotropy=pleio, leave_one_out=loo, single_snp=single)
        volcano = plots.volcano_plot(res)
        volcano.savefig(tmp_path / "v.svg")
    assert name in {entry["exposure"] for entry in figures["traits"]}
    label = next(t.get_text() for t in volcano.findobj(Text) if "Crohn" in t.get_text())
    assert label.endswith("Crohn’s")
    if not {"Symbola", "Noto Emoji"} & set(fonts.families()):  # no font has the DNA emoji: a visible stand-in
        assert "🧬" not in label and "?" in label
    if any("CJK" in family for family in fonts.families()):  # drawn with the fallback font, not replaced
        assert label.startswith("收缩压")


def test_overlapping_method_lines_are_distinguishable():
    harm, mr, *_ = fake_scan(seed=4, n_traits=1)
    one = harm[harm["direction"] == "forward"]
    rows = mr[mr["direction"] == "forward"].copy()
    extra = rows[rows["method"] == "Weighted median"].assign(method="Simple mode", method_id="mr_simple_mode")
    rows = pd.concat([rows, extra, extra.assign(method="Weighted mode", method_id="mr_weighted_mode")], ignore_index=True)
    fig = plots.scatter_plot(one, rows)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    simple, weighted = lines["Simple mode"], lines["Weighted mode"]
    np.testing.assert_allclose(simple.get_ydata(), weighted.get_ydata())  # the same slope: drawn on top of each other
    assert simple.get_color() != weighted.get_color() and simple.get_marker() != weighted.get_marker()
    assert simple.get_linestyle() != "-" and weighted.get_linestyle() != "-"  # dashed, so the lower one shows through
    markers = {line.get_marker() for line in lines.values() if line.get_label() in set(rows["method"])}
    assert len(markers) == rows["method"].nunique()


def test_axes_name_their_scale_and_the_overview_lines_are_labelled():
    harm, mr, _, _, loo, _ = fake_scan(seed=3, n_traits=3)
    res = tables.scan_results(mr.assign(effect_scale=np.where(mr["direction"] == "reverse", "beta", "OR")))
    volcano = plots.volcano_plot(res)
    forward_ax, reverse_ax = volcano.axes
    assert "log OR" in forward_ax.get_xlabel() and "units" in reverse_ax.get_xlabel()
    legend = [t.get_text() for t in forward_ax.get_legend().get_texts()]
    assert "p = 0.05" in legend and any(t.startswith("Bonferroni") for t in legend)
    forward = res[(res["direction"] == "forward") & (res["exposure"] == "trait_0")]
    scatter = plots.scatter_plot(harm[(harm["direction"] == "forward") & (harm["exposure"] == "trait_0")], forward)
    assert scatter.axes[0].get_ylabel().endswith("(log OR)") and scatter.axes[0].get_xlabel().endswith("(b)")
    trait_loo = loo[(loo["direction"] == "forward") & (loo["exposure"] == "trait_0")]
    assert "log OR" in plots.leave_one_out_plot(trait_loo, scale="OR").axes[0].get_xlabel()
    funnel = plots.funnel_plot(harm[(harm["direction"] == "forward") & (harm["exposure"] == "trait_0")], forward)
    assert "log OR" in funnel.axes[0].get_xlabel()


def test_empty_scan_still_gives_figures_and_a_report(tmp_path):
    _, mr, *_ = fake_scan(seed=7, n_traits=3)
    res = tables.scan_results(mr.assign(b=0.0, pval=0.9))
    figures = plots.scan_figures(tmp_path, res)
    assert figures["traits"] == [] and all(p.exists() for paths in figures["scan"].values() for p in paths)
    text = html.render_report({"results": res}, None, figures)
    assert "No trait passed the threshold" in text
    nothing = tables.scan_results(pd.DataFrame(columns=["direction"]))  # every trait failed upstream
    assert list(nothing.columns) == list(res.columns[:15]) and len(nothing) == 0
    assert plots.scan_figures(tmp_path / "none", nothing)["traits"] == []


def test_figures_and_report_are_byte_reproducible(tmp_path):
    _, mr, *_ = fake_scan(seed=8, n_traits=2)
    res = tables.scan_results(mr)
    digests = []
    for run in ("a", "b"):
        figs = plots.scan_figures(tmp_path / run, res)
        html.write_report({"results": res}, None, figs, tmp_path / run / "report.html")
        digests.append({p.relative_to(tmp_path / run): hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / run).rglob("*.*")})
    assert digests[0] == digests[1] and len(digests[0]) == 5  # forest + volcano (PNG, SVG) + report


# ----------------------------------------------------------------------------- atomic writes and manifest
class Boom(RuntimeError):
    pass


def test_atomic_write_leaves_no_partial_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "results.tsv"

    def half_then_fail(tmp):
        tmp.write_text("direction\texposure\nforward\t")
        raise Boom("disk full")

    with pytest.raises(Boom):
        outputs.write_with(target, half_then_fail)
    assert not target.exists() and list(tmp_path.iterdir()) == []

    outputs.write_text(target, "old complete content\n")
    with pytest.raises(Boom):
        outputs.write_with(target, half_then_fail)
    assert target.read_text() == "old complete content\n" and list(tmp_path.iterdir()) == [target]

    frame = pd.DataFrame({"a": [1, 2]})
    frame.attrs["audit"] = pd.DataFrame({"x": [1]})  # attrs must not leak into parquet metadata
    outputs.write_parquet(tmp_path / "t.parquet", frame)
    outputs.write_tsv(tmp_path / "t.tsv", frame)
    assert pd.read_parquet(tmp_path / "t.parquet")["a"].tolist() == [1, 2]
    assert (tmp_path / "t.tsv").read_text() == "a\n1\n2\n"


def test_failed_figure_save_leaves_no_file(tmp_path):
    fig = plots.volcano_plot(tables.scan_results(fake_scan(n_traits=2)[1]))
    with pytest.raises(ValueError):
        outputs.write_figure(tmp_path, "broken", fig, formats=("png", "not-a-format"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png"]


def test_manifest_checksums_match_hashlib(tmp_path):
    first = tmp_path / "exposure.tsv"
    first.write_bytes(b"SNP\tbeta\nrs1\t0.1\n" * 1000)
    prefix = EXAMPLE / "demo_panel"
    timer = outputs.StageTimer()
    with timer("read"):
        pass
    with timer("read"):
        pass
    path = outputs.write_manifest(tmp_path / "out", parameters={"p": 5e-8, "methods": ("mr_ivw",)}, seed=42,
                                  inputs=[first, prefix], timings=timer, outputs=[tmp_path / "out" / "results.tsv"])
    manifest = json.loads(path.read_text())
    assert manifest["seed"] == 42 and manifest["parameters"] == {"p": 5e-8, "methods": ["mr_ivw"]}
    expected = {str(p.resolve()): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in [first] + [Path(f"{prefix}.{ext}") for ext in ("bed", "bim", "fam")]}
    assert {r["path"]: r["sha256"] for r in manifest["inputs"]} == expected
    assert all(r["bytes"] == Path(r["path"]).stat().st_size for r in manifest["inputs"])
    assert set(manifest["versions"]) >= {"mrjax", "jax", "numpy", "pandas", "python"}
    assert manifest["versions"]["numpy"] == np.__version__ and manifest["versions"]["pandas"] == pd.__version__
    assert set(manifest["timings_s"]) == {"read", "total"} and manifest["outputs"] == ["results.tsv"]
    assert manifest["platform"]["jax_enable_x64"] is True
    with pytest.raises(ValueError, match="does-not-exist"):
        outputs.build_manifest(parameters={}, seed=0, inputs=[tmp_path / "does-not-exist.tsv"])


# ----------------------------------------------------------------------------- bundled demo data
def read_bim(prefix: Path) -> pd.DataFrame:
    return pd.read_csv(f"{prefix}.bim", sep="\t", header=None, names=["chr", "snp", "cm", "pos", "a1", "a2"], dtype={"chr": str})


def test_demo_data_is_small_complete_and_consistent():
    files = {p.name: p.stat().st_size for p in EXAMPLE.iterdir()}
    assert {"demo_panel.bed", "demo_panel.bim", "demo_panel.fam", "exposures.parquet", "outcome.tsv.gz",
            "harmonised_example.tsv", "truth.json", "README.md"} <= set(files)
    assert sum(files.values()) < 4_000_000
    bim = read_bim(EXAMPLE / "demo_panel")
    n_people = len((EXAMPLE / "demo_panel.fam").read_text().splitlines())
    bed = (EXAMPLE / "demo_panel.bed").read_bytes()
    assert bed[:3] == bytes([0x6C, 0x1B, 0x01]) and len(bed) == 3 + len(bim) * ((n_people + 3) // 4)
    assert bim["snp"].is_unique and set(bim["chr"]) == {str(i) for i in range(1, 23)}
    exposures = pd.read_parquet(EXAMPLE / "exposures.parquet")
    assert list(exposures.columns) == ["exposure", "SNP", "effect_allele", "other_allele", "eaf", "beta", "se", "pval", "samplesize"]
    assert exposures["exposure"].nunique() == 10
    outcome = pd.read_csv(EXAMPLE / "outcome.tsv.gz", sep="\t")
    assert list(outcome.columns) == ["SNP", "effect_allele", "other_allele", "eaf", "beta", "se", "pval", "ncase", "ncontrol"]
    truth = json.loads((EXAMPLE / "truth.json").read_text())
    causal = {k for k, v in truth["exposures"].items() if v["theta_logOR_per_SD"] != 0}
    assert len(causal) >= 3 and any(v["pleiotropic_outliers"] for v in truth["exposures"].values())
    assert len(truth["outcome"]["own_loci"]) >= 3
    # p-values agree with beta/se (two-sided normal), in both files
    for frame in (exposures, outcome):
        z = frame["beta"].to_numpy(float) / frame["se"].to_numpy(float)
        np.testing.assert_allclose(frame["pval"], 2 * norm.sf(np.abs(z)), rtol=2e-3)
    harmonised = pd.read_csv(EXAMPLE / "harmonised_example.tsv", sep="\t")
    assert {"SNP", "exposure", "outcome", "id.exposure", "id.outcome", "beta.exposure", "se.exposure",
            "beta.outcome", "se.outcome", "mr_keep"} <= set(harmonised.columns)
    assert harmonised["exposure"].nunique() == 3


def test_demo_causal_exposures_are_strong_in_a_plain_ivw_on_their_causal_variants():
    """Independent of the clumper: IVW on each causal exposure's true causal variants finds it."""
    truth = json.loads((EXAMPLE / "truth.json").read_text())
    exposures = pd.read_parquet(EXAMPLE / "exposures.parquet")
    outcome = pd.read_csv(EXAMPLE / "outcome.tsv.gz", sep="\t").set_index("SNP")
    for name, info in truth["exposures"].items():
        if info["theta_logOR_per_SD"] == 0 or info["pleiotropic_outliers"]:
            continue
        snps = [v["SNP"] for v in info["causal_variants"]]
        x = exposures[(exposures["exposure"] == name) & exposures["SNP"].isin(snps)].set_index("SNP")
        y = outcome.loc[x.index]
        sign = np.where(y["effect_allele"].to_numpy() == x["effect_allele"].astype(str).to_numpy(), 1.0, -1.0)
        bx, by, sy = x["beta"].to_numpy(float), sign * y["beta"].to_numpy(float), y["se"].to_numpy(float)
        b = np.sum(bx * by / sy ** 2) / np.sum(bx ** 2 / sy ** 2)
        se = 1 / np.sqrt(np.sum(bx ** 2 / sy ** 2))
        assert abs(b - info["theta_logOR_per_SD"]) < 3 * se
        assert abs(b / se) > 3, (name, b, se)


def test_demo_generator_reproduces_the_committed_files(tmp_path, shared_data):
    panel = shared_data / "ldref" / "eur_sim"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_demo_data.py"), "--panel", str(panel), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("demo_panel.bed", "demo_panel.bim", "demo_panel.fam", "outcome.tsv.gz", "harmonised_example.tsv", "truth.json"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "exposures.parquet"), pd.read_parquet(EXAMPLE / "exposures.parquet"))
