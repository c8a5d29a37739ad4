"""A scan's settings (:class:`ScanConfig`), its errors and its result.

``mrjax_cli`` parses options into a :class:`ScanConfig`; :func:`mrjax.scan.run_scan` takes it.
Everything here is plain data and validation: no file is read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import pandas as pd

from mrjax.scan.errors import ScanError, ScanInterrupted  # noqa: F401  (part of this module's API)
from mrjax.scan.inputs import ReadOptions

FORWARD = "forward"
REVERSE = "reverse"
TRAIT_TYPES = ("auto", "binary", "continuous")
CORRECTIONS = ("fdr", "bonferroni", "none")

#: Per-trait tables a scan produces (names of the keys of :class:`ScanResult.tables`).
TRAIT_TABLES = (
    "instruments",
    "results",
    "heterogeneity",
    "pleiotropy",
    "leave_one_out",
    "single_snp",
    "presso",
    "presso_instruments",
    "audit",
    "audit_counts",
)

#: ``progress(stage, done, total)``, called as traits finish.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EstimationSettings:
    """What the estimation stage needs of a scan's settings (``ScanConfig.estimation``):
    ``methods`` (None = TwoSampleMR's default set), ``n_boot``, ``seed``, ``phi``, ``penk``,
    ``dtype`` ("float64"/"float32"), ``presso_draws`` (0 = no MR-PRESSO), ``presso_threshold``."""

    methods: tuple[str, ...] | None = None
    n_boot: int = 1000
    seed: int = 0
    phi: float = 1.0
    penk: float = 20.0
    dtype: str = "float64"
    presso_draws: int = 10_000
    presso_threshold: float = 0.05


@dataclass(frozen=True)
class ScanConfig:
    """Every setting of a scan (the CLI's options map one to one onto these fields).

    Inputs: ``exposures`` (files or glob patterns; one long table with a ``trait_column``
    also works), ``outcome`` (one GWAS file, or a tuple of files/glob patterns: every
    exposure is then scanned against every outcome), ``ld_ref`` (PLINK prefix; needed unless
    ``already_clumped``), ``columns`` (explicit column mapping for the readers),
    ``gwas_format`` (force a reader); per input: ``exposure_columns``/``exposure_format`` and
    ``outcome_columns``/``outcome_format`` on top of those, and ``inputs`` (a manifest TSV of
    ``path, trait, format, columns[, role]`` rows, one per file; see
    :func:`mrjax.scan.inputs.read_manifest`); ``sep`` and ``skip_bad_lines`` as in
    :func:`mrjax.gwas.read_gwas`. Selection: ``p`` (instrument threshold, also plink's
    ``p1``), ``clump_r2``, ``clump_kb``, ``clump_p2``, ``f_min`` (drop F below it),
    ``proxies`` (None = on when a panel is given), ``proxy_r2``, ``action`` (harmonisation).
    Estimation: ``methods`` (None = TwoSampleMR's default set), ``n_boot``, ``phi``,
    ``penk``, ``presso_draws`` (0 turns MR-PRESSO off), ``presso_threshold``, ``seed``,
    ``precision`` (64 or 32). Scan: ``bidirectional``, ``permutations`` (0 = none),
    ``alpha`` and ``correction`` (which traits count as significant for the figures),
    ``chunk_size`` (exposures selected and clumped together; their pairs are estimated in
    blocks, :mod:`mrjax.scan.blocks`), ``figures``/``report`` (outputs).
    Reporting: ``outcome_type`` and ``exposure_type`` (``auto``, ``binary`` or
    ``continuous``; the exposures are the outcomes of the reverse direction): an estimate on
    a binary outcome is reported as an odds ratio, on a continuous one as b; ``auto`` asks
    :func:`mrjax.gwas.is_case_control` of the file.
    ``store``: a GWAS store folder (``mrjax.ingest``); ``exposures`` (globs) and ``outcome``
    are then its trait names and no whole table is read (:mod:`mrjax.scan.store_source`).
    """

    exposures: tuple[str, ...]
    outcome: str | tuple[str, ...]
    out: str
    ld_ref: str | None = None
    already_clumped: bool = False
    trait_column: str | None = None
    outcome_name: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    gwas_format: str | None = None
    exposure_columns: tuple[tuple[str, str], ...] = ()
    outcome_columns: tuple[tuple[str, str], ...] = ()
    exposure_format: str | None = None
    outcome_format: str | None = None
    inputs: str | None = None
    sep: str | None = None
    skip_bad_lines: bool = False
    p: float = 1e-5
    clump_r2: float = 0.001
    clump_kb: float = 10_000
    clump_p2: float = 1.0
    f_min: float = 10.0
    proxies: bool | None = None
    proxy_r2: float = 0.8
    action: int = 2
    methods: tuple[str, ...] | None = None
    n_boot: int = 1000
    phi: float = 1.0
    penk: float = 20.0
    presso_draws: int = 10_000
    presso_threshold: float = 0.05
    seed: int = 0
    precision: int = 64
    bidirectional: bool = False
    permutations: int = 0
    alpha: float = 0.05
    correction: str = "fdr"
    chunk_size: int = 64
    figures: bool = True
    report: bool = True
    outcome_type: str = "auto"
    exposure_type: str = "auto"
    correct_per_outcome: bool = False
    store: str | None = None

    adjust_for: tuple[str, ...] = ()  # GWAS files every exposure is adjusted for (mrjax.scan.adjust)

    def __post_init__(self):
        object.__setattr__(self, "exposures", tuple(str(e) for e in self.exposures))
        object.__setattr__(self, "adjust_for", tuple(str(a) for a in self.adjust_for))
        if not isinstance(self.outcome, (str, Path)):
            outcomes = tuple(str(o) for o in self.outcome)
            object.__setattr__(self, "outcome", outcomes[0] if len(outcomes) == 1 else outcomes)
        elif isinstance(self.outcome, Path):
            object.__setattr__(self, "outcome", str(self.outcome))
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(self.methods))
        for name in ("columns", "exposure_columns", "outcome_columns"):
            if isinstance(getattr(self, name), dict):
                object.__setattr__(self, name, tuple(sorted(getattr(self, name).items())))

    @property
    def use_proxies(self) -> bool:
        """Proxies are on when asked for, or by default whenever there is a panel."""
        return bool(self.ld_ref) if self.proxies is None else self.proxies

    @property
    def dtype(self) -> str:
        return "float64" if self.precision == 64 else "float32"

    @property
    def estimation(self) -> EstimationSettings:
        """The settings the estimation stage uses."""
        return EstimationSettings(methods=self.methods, n_boot=self.n_boot, seed=self.seed, phi=self.phi, penk=self.penk,
                                  dtype=self.dtype, presso_draws=self.presso_draws, presso_threshold=self.presso_threshold)

    @property
    def read_options(self) -> ReadOptions:
        """How every GWAS file of the scan is read (format, column mapping, trait column)."""
        return ReadOptions(format=self.gwas_format, columns=self.columns, trait_column=self.trait_column, sep=self.sep,
                           skip_bad_lines=self.skip_bad_lines, store=self.store)

    @property
    def outcome_patterns(self) -> tuple[str, ...]:
        """The outcome files or glob patterns (one for a single-outcome scan)."""
        return (self.outcome,) if isinstance(self.outcome, str) else tuple(self.outcome)

    @property
    def directions(self) -> tuple[str, ...]:
        return (FORWARD, REVERSE) if self.bidirectional else (FORWARD,)

    @property
    def correction_by(self) -> tuple[str, ...]:
        """The groups multiple-testing corrections run within: per direction and method
        (across every exposure–outcome pair), and per scanned outcome when
        ``correct_per_outcome``."""
        return ("direction", "method_id", "scan_outcome") if self.correct_per_outcome else ("direction", "method_id")

    @property
    def significance_column(self) -> str:
        """The ``results`` column that decides significance under ``correction``."""
        return {"fdr": "qval_fdr", "bonferroni": "pval_bonferroni", "none": "pval"}[self.correction]

    def validate(self) -> None:
        """Raise :class:`ScanError` for missing inputs and conflicting settings.

        (Exposure patterns that match no file are reported by :mod:`mrjax.scan.inputs` when
        the scan expands them.)"""
        if not self.exposures and not self.inputs:
            raise ScanError("no exposure GWAS given", "pass --exposure FILE (or a glob such as 'gwas/*.tsv.gz'), or --inputs MANIFEST")
        if not self.ld_ref and not self.already_clumped:
            raise ScanError(
                "clumping needs an LD reference panel",
                "pass --ld-ref PLINK_PREFIX, or --already-clumped if the exposure files hold clumped instruments",
            )
        if self.ld_ref and self.already_clumped:
            raise ScanError("--ld-ref and --already-clumped contradict each other", "give only one of them")
        if self.proxies and not self.ld_ref:
            raise ScanError("LD proxies need an LD reference panel", "pass --ld-ref PLINK_PREFIX or drop --proxies")
        if self.ld_ref:
            missing = [s for s in (".bed", ".bim", ".fam") if not Path(self.ld_ref + s).is_file()]
            if missing:
                raise ScanError(
                    f"LD reference {self.ld_ref!r} is incomplete: {', '.join(self.ld_ref + s for s in missing)} not found",
                    "--ld-ref takes the PLINK prefix, e.g. data/eur for data/eur.bed/.bim/.fam",
                )
        if self.store:
            from mrjax.scan import store_source

            for pattern in self.outcome_patterns:
                if any(ch in pattern for ch in "*?["):
                    store_source.exposure_traits(self.store, [pattern])  # raises when nothing matches
                else:
                    store_source.check_trait(self.store, pattern, "outcome")
            if self.outcome_name not in (None, self.outcome):
                raise ScanError("--outcome-name renames a file's trait; a store's outcome keeps its name",
                                f"drop --outcome-name (the outcome is {self.outcome!r})")
        else:
            if not self.outcome_patterns:
                raise ScanError("no outcome GWAS given", "pass --outcome FILE (repeatable, or a quoted glob)")
            for pattern in self.outcome_patterns:
                if not any(ch in pattern for ch in "*?[") and not Path(pattern).is_file():
                    raise ScanError(f"outcome file {pattern!r} not found", "check the path given to --outcome")
            if self.outcome_name and (len(self.outcome_patterns) > 1 or any(ch in self.outcome_patterns[0] for ch in "*?[")):
                raise ScanError("--outcome-name names a single outcome, but several are given",
                                "drop --outcome-name: each outcome is named after its file")
        for path in self.adjust_for:
            if not Path(path).is_file():
                raise ScanError(f"adjust-for file {path!r} not found", "check the paths given to --adjust-for")
        if self.precision not in (32, 64):
            raise ScanError(f"precision must be 64 or 32, not {self.precision}", "use --precision 64 (default) or 32")
        for name in ("outcome_type", "exposure_type"):
            if getattr(self, name) not in TRAIT_TYPES:
                raise ScanError(f"{name.replace('_', ' ')} must be one of {', '.join(TRAIT_TYPES)}, not {getattr(self, name)!r}",
                                f"use --{name.replace('_', '-')} binary for a case-control trait, continuous otherwise")
        if self.action not in (1, 2, 3):
            raise ScanError(f"harmonisation action must be 1, 2 or 3, not {self.action}", "see TwoSampleMR::harmonise_data")
        if not 0 < self.p <= 1:
            raise ScanError(f"p threshold must be in (0, 1], not {self.p}", "e.g. --p 5e-8")
        if not 0 < self.clump_r2 <= 1:
            raise ScanError(f"clump r² must be in (0, 1], not {self.clump_r2}", "e.g. --clump-r2 0.001")
        if not 0 < self.proxy_r2 <= 1:
            raise ScanError(f"proxy r² must be in (0, 1], not {self.proxy_r2}", "e.g. --proxy-r2 0.8")
        if not 0 < self.alpha < 1:
            raise ScanError(f"alpha must be in (0, 1), not {self.alpha}", "e.g. --alpha 0.05")
        if self.n_boot < 1 or self.presso_draws < 0 or self.permutations < 0 or self.chunk_size < 1:
            raise ScanError("n_boot and chunk size must be positive, draws and permutations non-negative", "check the numbers given")
        if self.correction not in CORRECTIONS:
            raise ScanError(f"unknown correction {self.correction!r}", "use fdr, bonferroni or none")

    def fingerprint(self, checksums: dict[str, str], exposure_paths: list[str], outcome_paths: list[str]) -> str:
        """Hash of every result-changing setting and the inputs' contents (checkpoint key).

        ``checksums``: SHA-256 per input path; ``exposure_paths``/``outcome_paths``: the
        files the patterns expand to."""
        reporting = ("out", "figures", "report", "alpha", "correction", "permutations", "outcome_type", "exposure_type",
                     "correct_per_outcome")
        settings = {k: v for k, v in asdict(self).items() if k not in reporting}
        settings["exposures"] = sorted(checksums[f] for f in exposure_paths)
        outcomes = [checksums[f] for f in outcome_paths]
        settings["outcome"] = outcomes[0] if len(outcomes) == 1 else outcomes
        if self.ld_ref:
            settings["ld_ref"] = [checksums[self.ld_ref + s] for s in (".bed", ".bim", ".fam")]
        text = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def replace_config(config: ScanConfig, **changes) -> ScanConfig:
    """A copy of ``config`` with some fields changed (``dataclasses.replace``)."""
    return replace(config, **changes)


@dataclass
class ScanResult:
    """What :func:`mrjax.scan.run_scan` produced: the tables (``tables[name]`` DataFrames),
    the significant traits, the output files, timings per stage (seconds) and the manifest."""

    tables: dict[str, pd.DataFrame]
    significant: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    resumed_traits: int = 0
