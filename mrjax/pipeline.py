"""The bi-directional MR scan: GWAS files in, a folder a paper can be written from out.

One exposure–outcome *trait* goes through, in order (each step from its own module):

    read (``mrjax.gwas``) → select (p) → clump against a PLINK panel (``mrjax.ld``; skipped
    when the user says the instruments are already clumped) → strength filter (F) → outcome
    lookup with LD proxies → harmonise (action 1/2/3) → estimate (``mrjax.api``: methods,
    heterogeneity, pleiotropy, leave-one-out, single-SNP) → MR-PRESSO (``mrjax.presso``).

With ``bidirectional`` the reverse direction runs too: instruments are selected and clumped
once from the outcome GWAS and looked up in each exposure GWAS (outcome → exposure).
The scan then assembles the results tables with odds ratios, BH-FDR and Bonferroni per
direction and method (``mrjax.report.tables``), draws the figures, writes ``report.html``
and ``manifest.json`` (``mrjax.outputs``).

**Resumption.** Exposures are processed in fixed chunks of ``chunk_size`` (both directions
of a chunk estimated in one call); every finished exposure is written to
``DIR/.checkpoints/<fingerprint>/`` atomically (temporary file, then rename). The fingerprint
hashes every setting that changes a number plus the inputs' checksums, so a scan killed
half-way and re-run with the same command reloads the finished exposures and recomputes only
the chunks that were not complete. Chunk membership depends only on the exposure list, and
each trait's random draws come from ``fold_in(key(seed), trait_uid)``
(``mrjax.batch.trait_keys``), so the resumed outputs are identical, bit for bit, to an
uninterrupted run.

This module holds no command-line code: ``mrjax_cli`` parses options into a
:class:`ScanConfig` and calls :func:`run_scan` with a progress callback.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import glob
import hashlib
import itertools
import json
import os
import pickle
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from mrjax.outputs import StageTimer

FORWARD = "forward"
REVERSE = "reverse"
TRAIT_TYPES = ("auto", "binary", "continuous")
OUTCOME_SIDE = "outcome_instruments"  # checkpoint of the reverse direction's instrument selection
#: LD-proxy search radius in kb (``mrjax.ld.substitute_proxies``' default, LDlink LDproxy's
#: ±500 kb); the reverse direction also uses it to keep only the exposure rows a proxy
#: could come from.
PROXY_KB = 500

#: Environment variable read by :func:`run_scan`: raise :class:`ScanInterrupted` after this
#: many traits have been checkpointed (how the resumption test kills a scan half-way).
STOP_AFTER_ENV = "MRJAX_SCAN_STOP_AFTER"

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

Progress = Callable[[str, int, int], None]


class ScanError(ValueError):
    """A user mistake in a scan's inputs or settings (the CLI prints it as one sentence).

    ``hint`` says what to do about it.
    """

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class ScanInterrupted(RuntimeError):
    """Raised by the ``MRJAX_SCAN_STOP_AFTER`` hook once that many traits are checkpointed."""


@dataclass(frozen=True)
class ScanConfig:
    """Every setting of a scan (the CLI's options map one to one onto these fields).

    Inputs: ``exposures`` (files or glob patterns; one long table with a ``trait_column``
    also works), ``outcome`` (one GWAS file), ``ld_ref`` (PLINK prefix; needed unless
    ``already_clumped``), ``columns`` (explicit column mapping for the readers),
    ``gwas_format`` (force a reader). Selection: ``p`` (instrument threshold, also plink's
    ``p1``), ``clump_r2``, ``clump_kb``, ``clump_p2``, ``f_min`` (drop F below it),
    ``proxies`` (None = on when a panel is given), ``proxy_r2``, ``action`` (harmonisation).
    Estimation: ``methods`` (None = TwoSampleMR's default set), ``n_boot``, ``phi``,
    ``penk``, ``presso_draws`` (0 turns MR-PRESSO off), ``presso_threshold``, ``seed``,
    ``precision`` (64 or 32). Scan: ``bidirectional``, ``permutations`` (0 = none),
    ``alpha`` and ``correction`` (which traits count as significant for the figures),
    ``chunk_size`` (traits per checkpointed batch), ``figures``/``report`` (outputs).
    Reporting: ``outcome_type`` and ``exposure_type`` (``auto``, ``binary`` or
    ``continuous``; the exposures are the outcomes of the reverse direction): an estimate on
    a binary outcome is reported as an odds ratio, on a continuous one as b; ``auto`` asks
    :func:`mrjax.gwas.is_case_control` of the file.
    """

    exposures: tuple[str, ...]
    outcome: str
    out: str
    ld_ref: str | None = None
    already_clumped: bool = False
    trait_column: str | None = None
    outcome_name: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    gwas_format: str | None = None
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

    def __post_init__(self):
        object.__setattr__(self, "exposures", tuple(str(e) for e in self.exposures))
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(self.methods))
        if isinstance(self.columns, dict):
            object.__setattr__(self, "columns", tuple(sorted(self.columns.items())))

    @property
    def use_proxies(self) -> bool:
        """Proxies are on when asked for, or by default whenever there is a panel."""
        return bool(self.ld_ref) if self.proxies is None else self.proxies

    @property
    def dtype(self) -> str:
        return "float64" if self.precision == 64 else "float32"

    def validate(self) -> None:
        """Raise :class:`ScanError` for missing inputs and conflicting settings."""
        if not self.exposures:
            raise ScanError("no exposure GWAS given", "pass --exposure FILE (or a glob such as 'gwas/*.tsv.gz')")
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
        if not Path(self.outcome).is_file():
            raise ScanError(f"outcome file {self.outcome!r} not found", "check the path given to --outcome")
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
        if self.n_boot < 1 or self.presso_draws < 0 or self.permutations < 0 or self.chunk_size < 1:
            raise ScanError("n_boot and chunk size must be positive, draws and permutations non-negative", "check the numbers given")
        if self.correction not in ("fdr", "bonferroni", "none"):
            raise ScanError(f"unknown correction {self.correction!r}", "use fdr, bonferroni or none")
        exposure_files(self.exposures)  # raises when a pattern matches nothing

    def fingerprint(self, checksums: dict[str, str]) -> str:
        """Hash of every result-changing setting and the inputs' contents (checkpoint key)."""
        reporting = ("out", "figures", "report", "alpha", "correction", "permutations", "outcome_type", "exposure_type")
        settings = {k: v for k, v in asdict(self).items() if k not in reporting}
        settings["exposures"] = sorted(checksums[f] for f in exposure_files(self.exposures))
        settings["outcome"] = checksums[str(Path(self.outcome))]
        if self.ld_ref:
            settings["ld_ref"] = [checksums[self.ld_ref + s] for s in (".bed", ".bim", ".fam")]
        text = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ScanResult:
    """What :func:`run_scan` produced: the tables (``tables[name]`` DataFrames), the
    significant traits, the output files, timings per stage (seconds) and the manifest."""

    tables: dict[str, pd.DataFrame]
    significant: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    resumed_traits: int = 0


# --------------------------------------------------------------------------------------
# inputs


def exposure_files(patterns) -> list[str]:
    """Expand files and glob patterns (sorted, duplicates removed, order of first mention).

    Raises :class:`ScanError` naming a pattern that matches no file.
    """
    files: list[str] = []
    for pattern in patterns:
        pattern = str(pattern)
        if any(ch in pattern for ch in "*?["):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise ScanError(f"exposure pattern {pattern!r} matches no file", "quote the glob and check the folder")
        else:
            if not Path(pattern).is_file():
                raise ScanError(f"exposure file {pattern!r} not found", "check the path given to --exposure")
            matches = [pattern]
        files += [str(Path(m)) for m in matches if str(Path(m)) not in files]
    return files


def input_paths(config: ScanConfig) -> list[str]:
    """Every input file of a scan: exposures, outcome and the panel's .bed/.bim/.fam."""
    paths = exposure_files(config.exposures) + [str(Path(config.outcome))]
    if config.ld_ref:
        paths += [config.ld_ref + s for s in (".bed", ".bim", ".fam")]
    return list(dict.fromkeys(paths))


def input_checksums(config: ScanConfig) -> dict[str, str]:
    """SHA-256 of every input file, keyed by path (the checkpoint fingerprint uses them)."""
    from mrjax.outputs import sha256_file

    return {p: sha256_file(p) for p in input_paths(config)}


def _reader_columns(config: ScanConfig) -> dict | None:
    mapping = dict(config.columns)
    if config.trait_column:
        mapping.setdefault("trait", config.trait_column)
    return mapping or None


def read_table(path: str, config: ScanConfig, *, trait: str | None = None, p_max: float | None = None) -> pd.DataFrame:
    """Read one GWAS file into mrjax's normalised table (``mrjax.gwas.read_gwas``).

    ``trait`` names a single-trait file (default: the file name without its suffixes); a
    long table keeps its own trait column. Reader errors become :class:`ScanError`.
    """
    from mrjax.gwas import read_gwas

    try:
        return read_gwas(path, format=config.gwas_format, columns=_reader_columns(config), p_max=p_max, trait=trait)
    except FileNotFoundError as error:
        raise ScanError(f"GWAS file {path!r} not found", "check the path") from error
    except (ValueError, KeyError) as error:
        raise ScanError(_one_line(error), "pass --format, or --column NAME=COLUMN to map the file's columns") from error


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def trait_name_of(path: str | Path) -> str:
    """A trait's name from its file name: ``gwas/ldl.tsv.gz`` → ``ldl``."""
    name = Path(path).name
    for suffix in (".gz", ".bgz", ".bz2", ".zst", ".tsv", ".txt", ".csv", ".vcf", ".parquet", ".h"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class ExposureSource:
    """Where one exposure trait's GWAS comes from: a file (``path``) holding only it, or a
    long table shared with other traits (``shared`` key into the scan's table cache)."""

    trait: str
    path: str
    long_table: bool


def list_exposures(config: ScanConfig, cache: dict[str, pd.DataFrame]) -> list[ExposureSource]:
    """The exposure traits of a scan in a stable order.

    A file whose table has more than one value in its trait column is a long table: it is
    read once (kept in ``cache``) and yields one source per trait.
    """
    sources: list[ExposureSource] = []
    for path in exposure_files(config.exposures):
        if config.trait_column or _looks_long(path):
            table = read_table(path, config)
            cache[path] = table
            names = pd.unique(table["trait"].astype(str))
            if len(names) > 1 or config.trait_column:
                sources += [ExposureSource(str(n), path, True) for n in names]
                continue
            cache.pop(path)
        sources.append(ExposureSource(trait_name_of(path), path, False))
    seen: dict[str, str] = {}
    for source in sources:
        if source.trait in seen:
            raise ScanError(
                f"exposure {source.trait!r} appears twice ({seen[source.trait]} and {source.path})",
                "give each exposure file a distinct name",
            )
        seen[source.trait] = source.path
    return sources


def _looks_long(path: str) -> bool:
    """A file with a trait/exposure/phenotype column is read as a long multi-trait table."""
    from mrjax.gwas.formats import is_gzip, is_parquet, read_head, split_header

    file = Path(path)
    try:
        if is_parquet(file):
            import pyarrow.parquet as pq

            names = pq.read_schema(file).names
        else:
            names = split_header(read_head(file, is_gzip(file))[1])[1]
    except (OSError, ValueError) as error:
        raise ScanError(_one_line(error), "check that the exposure file is a readable GWAS table") from error
    return bool({n.strip().lower() for n in names} & {"trait", "exposure", "phenotype"})


# --------------------------------------------------------------------------------------
# per-trait stages


def select_and_clump(gwas: pd.DataFrame, config: ScanConfig, panel, timings: StageTimer) -> pd.DataFrame:
    """Instruments of one or many traits: p < ``config.p``, clumped, F ≥ ``config.f_min``.

    Uses ``mrjax.gwas.select_instruments``, ``mrjax.ld.clump`` (plink 1.9 ``--clump``
    semantics; skipped when ``already_clumped``) and ``mrjax.gwas.filter_weak``; each step
    appends its audit records to the table's ``attrs``. Traits left without instruments are
    data in a scan, not an error: the result is then empty (its audit says why).
    """
    from mrjax.gwas import filter_weak, select_instruments

    with timings("select"):
        instruments = _tolerate_empty(select_instruments, gwas, "select", p=config.p)
    if panel is not None and len(instruments):
        from mrjax.ld import clump

        with timings("clump"):
            instruments = _tolerate_empty(
                clump, instruments, "clump", ld_ref=panel, r2=config.clump_r2, kb=config.clump_kb, p1=config.p, p2=config.clump_p2
            )
    if len(instruments):
        with timings("strength"):
            instruments = _tolerate_empty(filter_weak, instruments, "strength", f_min=config.f_min)
    return instruments


def _tolerate_empty(step, table: pd.DataFrame, name: str, trait_column: str = "trait", carry: tuple = (),
                    **options) -> pd.DataFrame:
    """Run a data-layer step whose "no instrument left" ``ValueError`` is, inside a scan,
    an empty result: all the step's input rows are counted as dropped in the audit, and the
    earlier records of ``table`` and of the step's other inputs ``carry`` are kept.

    The warnings a step gives for some traits left empty (``mrjax.ld.clump``'s
    :class:`~mrjax.ld.clump.NoIndexSNPWarning`; ``select_instruments``/``filter_weak``'s
    :class:`~mrjax.gwas.select.NoInstrumentWarning`) are expected in a scan: the step's audit already counts those
    traits with no instrument kept, and the scan goes on with the others."""
    import warnings

    from mrjax.audit import COUNT_COLUMNS, attach, counts_of
    from mrjax.gwas.select import NoInstrumentWarning
    from mrjax.ld.clump import NoIndexSNPWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NoIndexSNPWarning)
        warnings.filterwarnings("ignore", category=NoInstrumentWarning)
        try:
            return step(table, **options)
        except ValueError as error:
            if not any(text in str(error) for text in ("no instrument", "no index", "no SNP usable")):
                raise
            partial = getattr(error, "table", None)  # harmonise's result, with its drop records
    if partial is not None:
        return _empty_carrying(partial)
    n_in = table[trait_column].astype(str).value_counts(sort=False)
    counts = pd.DataFrame({"step": name, "trait": n_in.index, "n_in": n_in.to_numpy(), "n_kept": 0, "n_dropped": n_in.to_numpy()})
    empty = _empty_carrying(table, *carry)
    return attach(empty, audit_counts=pd.concat([counts_of(empty), counts[COUNT_COLUMNS]], ignore_index=True))


def look_up(instruments: pd.DataFrame, outcome: pd.DataFrame, config: ScanConfig, panel, timings: StageTimer) -> pd.DataFrame:
    """Harmonise ``instruments`` against the ``outcome`` GWAS (TwoSampleMR
    ``harmonise_data`` with ``config.action``), first substituting LD proxies for
    instruments missing in the outcome when proxies are on. A pair with no usable SNP gives
    an empty table (with the harmonise audit counts), not an error."""
    from mrjax.gwas import harmonise

    if config.use_proxies and panel is not None:
        from mrjax.ld import substitute_proxies

        with timings("proxies"):
            outcome = substitute_proxies(instruments, outcome, panel, r2_min=config.proxy_r2, kb=PROXY_KB)
            # The proxies step has recorded every instrument the outcome lacks ("missing in
            # outcome"): only the others go on, so each loss is recorded once and harmonise's
            # counts start where the proxies step's end. (A scan's outcome is one trait.)
            instruments = instruments[_snps_in(instruments["SNP"], outcome["SNP"])]
        if len(instruments) == 0:
            return _empty_carrying(instruments, outcome)
    with timings("harmonise"):
        return _tolerate_empty(harmonise, instruments, "harmonise", trait_column="exposure" if "exposure" in instruments.columns else "trait",
                               carry=(outcome,), outcome=outcome, action=config.action)


def _snps_in(few: pd.Series, many: pd.Series) -> np.ndarray:
    """``few.isin(many)`` for a short ``few`` and a long ``many``: pandas' string-array
    ``isin`` converts every one of its *values* to a Python scalar, so the long side is
    first cut down to the values the short side holds (≈ 0.4 s per 40 k-row GWAS saved)."""
    found = many[many.isin(pd.unique(few.to_numpy(dtype=object)))]
    return few.isin(pd.unique(found.to_numpy(dtype=object))).to_numpy()


def _empty_carrying(*tables: pd.DataFrame) -> pd.DataFrame:
    """An empty copy of the first table carrying the audit records of all of them."""
    from mrjax.audit import carry

    return carry(_plain(tables[0].iloc[:0]), *tables)


def estimate_tables(harmonised: pd.DataFrame, config: ScanConfig, timings: StageTimer | None = None) -> dict[str, pd.DataFrame]:
    """Every per-trait analysis of a harmonised table (one or many traits).

    ``results`` (``mrjax.api.mr`` with the configured methods, ``n_boot``, ``seed``),
    ``heterogeneity``, ``pleiotropy``, ``leave_one_out``, ``single_snp`` (TwoSampleMR's
    ``mr_heterogeneity``, ``mr_pleiotropy_test``, ``mr_leaveoneout``, ``mr_singlesnp``)
    and, unless ``presso_draws`` is 0, ``presso``/``presso_instruments``
    (MRPRESSO::mr_presso with ``presso_draws`` null draws), the three groups computed
    concurrently (timed together as the ``estimate`` stage). Each trait's randomness
    depends on the seed and the trait only, so any grouping of traits gives the same rows.
    """
    from mrjax import api

    timings = timings or StageTimer()
    usable = harmonised
    if "mr_keep" in usable.columns:
        usable = usable[usable["mr_keep"].astype(bool)]
    tables: dict[str, pd.DataFrame] = {}
    if len(usable) == 0:
        return tables
    def method_panel():
        return {"results": api.mr(
            usable, list(config.methods) if config.methods else None, n_boot=config.n_boot, seed=config.seed,
            phi=config.phi, penk=config.penk, dtype=config.dtype,
        )}

    def diagnostics():
        return {"heterogeneity": api.heterogeneity(usable), "pleiotropy": api.pleiotropy(usable),
                "leave_one_out": api.leave_one_out(usable), "single_snp": api.single_snp(usable)}

    def mr_presso():
        from mrjax.mr_presso import presso

        fit = presso(usable, n_draws=config.presso_draws, signif_threshold=config.presso_threshold, seed=config.seed)
        return {"presso": fit.traits, "presso_instruments": fit.instruments}

    jobs = [method_panel, diagnostics] + ([mr_presso] if config.presso_draws > 0 else [])
    # The three kernels are independent: in threads, XLA compiles (single-threaded each) and
    # runs them side by side, which on a first run roughly halves the compile wait.
    with timings("estimate"), ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for part in pool.map(lambda job: job(), jobs):
            tables.update(part)
    return tables


# --------------------------------------------------------------------------------------
# checkpoints


class Checkpoints:
    """Per-trait checkpoint files in ``DIR/.checkpoints/<fingerprint>/``.

    Each finished trait is one pickle of its tables, written to a temporary file and then
    renamed, so a killed scan leaves either the whole file or nothing.
    """

    def __init__(self, out: Path, fingerprint: str):
        self.folder = Path(out) / ".checkpoints" / fingerprint
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written = 0

    def path(self, direction: str, trait: str) -> Path:
        safe = hashlib.sha1(trait.encode()).hexdigest()[:10]
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in trait)[:60]
        return self.folder / f"{direction}__{stem}__{safe}.pkl"

    def load(self, direction: str, trait: str) -> dict[str, pd.DataFrame] | None:
        path = self.path(direction, trait)
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            return pickle.load(handle)

    def save(self, direction: str, trait: str, tables: dict[str, pd.DataFrame], *, count: bool = True) -> None:
        """Write one trait's tables atomically; ``count`` it towards ``MRJAX_SCAN_STOP_AFTER``."""
        path = self.path(direction, trait)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as handle:
            pickle.dump(tables, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        if not count:
            return
        self.written += 1
        limit = os.environ.get(STOP_AFTER_ENV)
        if limit and self.written >= int(limit):
            raise ScanInterrupted(f"stopped after {self.written} checkpointed traits ({STOP_AFTER_ENV}={limit})")


def _split_by_trait(tables: dict[str, pd.DataFrame], harmonised: pd.DataFrame, key: str, names: list[str]) -> dict[str, dict[str, pd.DataFrame]]:
    """Cut a chunk's tables into one dict of tables per trait; ``key`` is the column
    (``exposure`` forward, ``outcome`` reverse) that names the scanned exposure."""
    per_trait: dict[str, dict[str, pd.DataFrame]] = {name: {} for name in names}
    everything = dict(tables, instruments=harmonised)
    for table_name, table in everything.items():
        if table is None or key not in table.columns:
            continue
        table = _plain(table)
        rows_of = _rows_by(table[key])
        for name in names:
            per_trait[name][table_name] = table.iloc[rows_of.get(name, _NO_ROWS)].reset_index(drop=True)
    return per_trait


_NO_ROWS = np.zeros(0, np.intp)


def _rows_by(labels: pd.Series) -> dict[str, np.ndarray]:
    """Row positions of each value of ``labels`` (as text), in table order."""
    if not len(labels):
        return {}
    codes, names = pd.factorize(labels.astype(str))  # missing labels get -1 and no rows
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {str(name): order[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}


def _audit_rows(records: pd.DataFrame, trait: str, *, direction: str, exposure: str, outcome: str, steps=None,
                rows_of: dict | None = None) -> pd.DataFrame:
    """The audit rows (drops or counts) of ``trait`` (optionally only some ``steps``), labelled
    with the direction and the exposure–outcome pair they belong to. ``rows_of``: the
    records' row positions per trait (:func:`_rows_by`), when many traits are cut from them."""
    if records is None or len(records) == 0 or "trait" not in records.columns:
        return pd.DataFrame()
    rows_of = _rows_by(records["trait"]) if rows_of is None else rows_of
    rows = records.iloc[rows_of.get(trait, _NO_ROWS)]
    if steps is not None:
        rows = rows[rows["step"].isin(steps)]
    rows = rows.copy()
    rows.attrs = {}
    rows.insert(0, "outcome", outcome)
    rows.insert(0, "exposure", exposure)
    rows.insert(0, "direction", direction)
    return rows.reset_index(drop=True)


# --------------------------------------------------------------------------------------
# the scan


def run_scan(config: ScanConfig, progress: Progress | None = None) -> ScanResult:
    """Run the whole scan described by ``config`` and write its outputs to ``config.out``.

    Returns the tables (also written as TSV and parquet), the significant traits and the
    manifest. ``progress(stage, done, total)`` is called as traits finish.
    Raises :class:`ScanError` for user mistakes (missing files, no instruments left, …).
    """
    from mrjax.audit import audit_of, counts_of

    config.validate()
    progress = progress or (lambda stage, done, total: None)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    timings = StageTimer()

    with timings("checksums"):
        checksums = input_checksums(config)
    checkpoints = Checkpoints(out, config.fingerprint(checksums))

    panel = None
    if config.ld_ref:
        from mrjax.ld import LDPanel

        with timings("load_panel"):
            panel = LDPanel.load(config.ld_ref)

    cache: dict[str, pd.DataFrame] = {}
    with timings("read"):
        sources = list_exposures(config, cache)
    outcome_name = config.outcome_name or trait_name_of(config.outcome)
    # Chunk membership depends only on the exposure list and chunk_size, never on what a
    # previous run finished: a resumed chunk is recomputed whole, with the same shapes as
    # in an uninterrupted run, so its numbers agree to the last bit.
    per_trait: dict[tuple[str, str], dict[str, pd.DataFrame]] = {}
    for source in sources:
        for direction in _directions(config):
            done = checkpoints.load(direction, source.trait)
            if done is not None:
                per_trait[(direction, source.trait)] = done
    finished_traits = {s.trait for s in sources if all((d, s.trait) in per_trait for d in _directions(config))}
    chunks = [sources[i : i + config.chunk_size] for i in range(0, len(sources), config.chunk_size)]
    todo = [s for chunk in chunks if any(s.trait not in finished_traits for s in chunk) for s in chunk]
    resumed = len(finished_traits)
    total = len(sources)
    progress("estimate", resumed, total)

    outcome = None
    reverse_instruments = None
    # The outcome's own audit (its read step; bi-directional: also its instrument selection)
    # is checkpointed apart from the exposures, so a fully resumed scan still reports it.
    outcome_side = checkpoints.load(OUTCOME_SIDE, outcome_name)
    if todo or outcome_side is None:
        with timings("read"):
            outcome = read_table(config.outcome, config, trait=outcome_name)
        if config.bidirectional:
            reverse_instruments = select_and_clump(outcome, config, panel, timings)
            side, steps = reverse_instruments, None
            label = dict(direction=REVERSE, exposure=outcome_name, outcome="(each exposure)")
        else:
            # forward only: the outcome's read-time drops are shared by every exposure
            side, steps = outcome, ("read",)
            label = dict(direction=FORWARD, exposure="(each exposure)", outcome=outcome_name)
        outcome_side = {
            "audit": _audit_rows(audit_of(side), outcome_name, steps=steps, **label),
            "audit_counts": _audit_rows(counts_of(side), outcome_name, steps=steps, **label),
        }
        checkpoints.save(OUTCOME_SIDE, outcome_name, outcome_side, count=False)

    finished = resumed
    for chunk in chunks:
        if all(s.trait in finished_traits for s in chunk):
            continue
        with timings("read"):
            exposures = _read_chunk(chunk, config, cache, full=config.bidirectional)
        names = [s.trait for s in chunk]
        forward = select_and_clump(exposures, config, panel, timings)
        harmonised = look_up(forward, outcome, config, panel, timings) if len(forward) else forward
        with timings("audit"):
            audits = {FORWARD: _forward_audits(harmonised, names, outcome_name)}
        pairs = {FORWARD: _plain(harmonised)}
        if config.bidirectional:
            pairs[REVERSE], audits[REVERSE] = _reverse_pairs(reverse_instruments, exposures, names, outcome_name, config, panel, timings)
        # both directions in one estimation call: fewer distinct shapes to compile
        with timings("split"):
            everything = pd.concat([t for t in pairs.values() if len(t)], ignore_index=True) if any(len(t) for t in pairs.values()) else _plain(harmonised)
        estimates = estimate_tables(everything, config, timings)
        pieces = {}
        with timings("split"):
            for direction, table in pairs.items():
                key, other = ("exposure", "outcome") if direction == FORWARD else ("outcome", "exposure")
                mine = {k: v[v[other].astype(str) == outcome_name] if other in v.columns else v for k, v in estimates.items()}
                pieces[direction] = _split_by_trait(mine, table, key, names)
                for name in names:
                    pieces[direction][name].update(audits[direction][name])
        for name in names:
            for direction, split in pieces.items():
                if (direction, name) not in per_trait:
                    per_trait[(direction, name)] = split[name]
                    with timings("checkpoints"):
                        checkpoints.save(direction, name, split[name])
            if name not in finished_traits:
                finished += 1
                progress("estimate", finished, total)

    with timings("collect"):
        tables = _concat(per_trait, sources, config)
        tables["results"] = _with_effect_scale(tables["results"], config, sources)
    for name in ("audit", "audit_counts"):
        if outcome_side is not None and len(outcome_side[name]):
            tables[name] = pd.concat([outcome_side[name], tables[name]], ignore_index=True)
    if sum(len(t["instruments"]) if "instruments" in t else 0 for t in per_trait.values()) == 0:
        from mrjax.outputs import write_table

        for name in ("audit", "audit_counts"):
            write_table(out, name, tables[name])
        raise ScanError(
            f"no instruments left in any of the {total} exposures (p < {config.p:g}, F ≥ {config.f_min:g})",
            f"relax --p or check the exposure files; {out / 'audit_counts.tsv'} shows where they were lost",
        )
    if config.permutations > 0:
        from mrjax.outputs import write_table

        with timings("permutations"):
            tables["permutations"] = _permutations(tables, config)
        write_table(out, "permutations", tables["permutations"])
    return write_outputs(tables, config, timings, resumed)


def _reverse_pairs(instruments: pd.DataFrame, exposures: pd.DataFrame, names: list[str], outcome_name: str,
                   config: ScanConfig, panel, timings: StageTimer) -> tuple[pd.DataFrame, dict]:
    """Outcome → exposure for a chunk: the outcome's instruments looked up in each exposure
    GWAS, one harmonisation per exposure so every pair has its own audit. Returns the
    harmonised pairs and each exposure's audit tables.

    Each exposure GWAS is first cut down to the rows the look-up can use
    (:func:`_reachable_rows`), which leaves every result and audit record unchanged."""
    from mrjax.audit import audit_of, counts_of

    frames, audits = [], {}
    with timings("reverse_split"):
        exposures = _plain(exposures)  # the exposure-side records belong to the forward direction
        # The outcome's own selection records are reported once (OUTCOME_SIDE), not per pair:
        # without them every pair's audit bookkeeping stays small.
        instruments = _plain(instruments)
        traits = exposures["trait"].astype(str)
        present = set(traits.unique())
        keep = _reachable_rows(instruments, exposures, config, panel) if len(instruments) else np.zeros(len(exposures), bool)
        near = exposures[keep]
        rows_of = near.groupby(traits[keep].to_numpy(dtype=object), sort=False).indices
    for name in names:
        with timings("reverse_split"):
            if name in rows_of:
                gwas = near.iloc[rows_of[name]]
            elif name in present:  # nothing reachable: the full GWAS, so the audit says why
                gwas = exposures[(traits == name).to_numpy()]
            else:
                gwas = exposures.iloc[:0]
        pair = look_up(instruments, gwas, config, panel, timings) if len(instruments) and len(gwas) else instruments.iloc[:0]
        with timings("audit"):
            audits[name] = _trait_audit(audit_of(pair), counts_of(pair), outcome_name, steps=("harmonise", "proxies"),
                                        direction=REVERSE, exposure=outcome_name, outcome=name)
        if len(pair):
            frames.append(_plain(pair))
    with timings("reverse_split"):
        harmonised = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["exposure", "outcome"])
    return harmonised, audits


def _reachable_rows(instruments: pd.DataFrame, gwas: pd.DataFrame, config: ScanConfig, panel) -> np.ndarray:
    """Which rows of ``gwas`` :func:`look_up` can use for ``instruments`` (boolean mask): the
    instruments' own SNPs and, with proxies on, every panel variant that
    ``substitute_proxies`` could pick for one of them — ``mrjax.ld.find_proxies`` against the
    whole panel (r² ≥ ``proxy_r2`` within ``PROXY_KB``). A proxy's r² depends only on the
    panel, so the proxies found in the cut table, and their order, are the same as in the
    whole GWAS. Harmonisation reads only the instruments' rows."""
    targets = pd.unique(instruments["SNP"].to_numpy(dtype=object))
    usable = set(targets)
    if config.use_proxies and panel is not None:
        from mrjax.ld import find_proxies

        usable |= set(find_proxies(panel, targets, panel.snp, r2_min=config.proxy_r2, kb=PROXY_KB)["proxy"])
    return gwas["SNP"].isin(list(usable)).to_numpy(dtype=bool)


def _trait_audit(drops: pd.DataFrame, counts: pd.DataFrame, trait: str, *, rows_of: tuple = (None, None),
                 **label) -> dict[str, pd.DataFrame]:
    return {"audit": _audit_rows(drops, trait, rows_of=rows_of[0], **label),
            "audit_counts": _audit_rows(counts, trait, rows_of=rows_of[1], **label)}


def _forward_audits(harmonised: pd.DataFrame, names: list[str], outcome_name: str) -> dict[str, dict[str, pd.DataFrame]]:
    """Each exposure's forward audit tables, cut from the chunk's records in one pass."""
    from mrjax.audit import audit_of, counts_of

    drops, counts = audit_of(harmonised), counts_of(harmonised)
    rows_of = tuple(_rows_by(r["trait"]) if len(r) and "trait" in r.columns else {} for r in (drops, counts))
    return {name: _trait_audit(drops, counts, name, rows_of=rows_of, direction=FORWARD, exposure=name, outcome=outcome_name)
            for name in names}


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy without ``attrs``: its audit records are carried or reported separately."""
    table = table.copy(deep=False)
    table.attrs = {}
    return table


def _directions(config: ScanConfig) -> tuple[str, ...]:
    return (FORWARD, REVERSE) if config.bidirectional else (FORWARD,)


def _read_chunk(chunk: list[ExposureSource], config: ScanConfig, cache: dict, *, full: bool) -> pd.DataFrame:
    """The GWAS rows of a chunk's exposures, in chunk order, with their read-time audit.

    The traits of a long table (consecutive in the chunk) are taken in one go, and the
    table's audit records are carried once (not once per trait)."""
    frames = []
    for (path, long_table), group in itertools.groupby(chunk, key=lambda s: (s.path, s.long_table)):
        group = list(group)
        if not long_table:
            frames += [read_table(s.path, config, trait=s.trait, p_max=None if full or config.use_proxies else config.p) for s in group]
            continue
        table = cache[path]
        rows_of = _trait_rows(cache, path)
        rows = np.concatenate([rows_of.get(s.trait, np.zeros(0, np.intp)) for s in group])
        whole = len(rows) == len(table) and bool(np.all(rows == np.arange(len(table))))
        part = table.reset_index(drop=True) if whole else table.iloc[rows].reset_index(drop=True)
        part.attrs = dict(table.attrs)
        frames.append(part)
    if len(frames) == 1:
        return frames[0]
    from mrjax.audit import carry

    return carry(pd.concat([_plain(f) for f in frames], ignore_index=True), *frames)


def _trait_rows(cache: dict, path: str) -> dict[str, np.ndarray]:
    """Row positions of each trait of the long table ``cache[path]`` (computed once, kept
    in ``cache`` under ``(path, "rows")``)."""
    key = (path, "rows")
    if key not in cache:
        cache[key] = _rows_by(cache[path]["trait"])
    return cache[key]


def _concat(per_trait: dict, sources: list[ExposureSource], config: ScanConfig) -> dict[str, pd.DataFrame]:
    """Join the per-trait tables in exposure order (forward first, then reverse)."""
    tables: dict[str, pd.DataFrame] = {}
    for name in TRAIT_TABLES:
        frames, labels = [], []
        for direction in _directions(config):
            for source in sources:
                part = per_trait.get((direction, source.trait), {}).get(name)
                if part is not None and len(part):
                    frames.append(part)
                    labels.append(direction)
        if not frames:
            tables[name] = pd.DataFrame(columns=["direction"])
            continue
        labelled = ["direction" in f.columns for f in frames]
        if any(labelled) and not all(labelled):
            frames = [f if has else f.assign(direction=d) for f, d, has in zip(frames, labels, labelled)]
        table = pd.concat(frames, ignore_index=True)
        if not any(labelled):  # one column for the whole table instead of one per part
            table["direction"] = np.repeat(np.array(labels, dtype=object), [len(f) for f in frames])
        table.insert(0, "direction", table.pop("direction"))
        tables[name] = table
    return tables


def effect_scale(path: str, declared: str, config: ScanConfig) -> str:
    """How estimates with the trait of ``path`` as outcome are reported: ``"OR"`` for a binary
    trait (``declared``, or for ``"auto"`` :func:`mrjax.gwas.is_case_control` of the file),
    ``"beta"`` for a continuous one."""
    if declared == "auto":
        from mrjax.gwas import is_case_control

        try:
            return "OR" if is_case_control(path, config.gwas_format, _reader_columns(config)) else "beta"
        except ValueError:  # the readers report unreadable files; the scale is then beta
            return "beta"
    return "OR" if declared == "binary" else "beta"


def _with_effect_scale(results: pd.DataFrame, config: ScanConfig, sources: list[ExposureSource]) -> pd.DataFrame:
    """``results`` with ``effect_scale`` per row: forward rows take the outcome file's scale,
    reverse rows (whose outcome is an exposure) their exposure file's."""
    if not len(results):
        return results
    forward = effect_scale(config.outcome, config.outcome_type, config)
    by_file = {path: effect_scale(path, config.exposure_type, config) for path in dict.fromkeys(s.path for s in sources)}
    if len(set(by_file.values())) == 1:  # the usual case: all exposures binary or all continuous
        reverse = next(iter(by_file.values()))
    else:
        reverse = results["outcome"].astype(str).map({s.trait: by_file[s.path] for s in sources})
    return results.assign(effect_scale=np.where(results["direction"] == REVERSE, reverse, forward))


def _nonempty(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame | None:
    table = tables.get(name)
    return table if table is not None and len(table) else None


def _significance_column(config: ScanConfig) -> str:
    return {"fdr": "qval_fdr", "bonferroni": "pval_bonferroni", "none": "pval"}[config.correction]


def _permutations(tables: dict[str, pd.DataFrame], config: ScanConfig) -> pd.DataFrame:
    from mrjax.permutation import permutation_test

    frames = []
    instruments = tables["instruments"]
    for direction in _directions(config):
        part = instruments[instruments["direction"] == direction]
        if len(part):
            result = permutation_test(part.drop(columns="direction"), n_perm=config.permutations, seed=config.seed)
            result.insert(0, "direction", direction)
            frames.append(result)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["direction"])


#: Tables written as TSV (``results`` also as parquet), in this order.
OUTPUT_TABLES = ("results", "findings", "findings_paper", "heterogeneity", "pleiotropy", "presso", "presso_instruments",
                 "leave_one_out", "single_snp", "instruments", "audit", "audit_counts", "permutations")


def assemble_tables(tables: dict[str, pd.DataFrame], config: ScanConfig) -> dict[str, pd.DataFrame]:
    """The scan-level tables (``mrjax.report.tables``): ``results`` with odds ratios and, per
    direction and method, BH-FDR q-values and Bonferroni p-values across traits;
    ``findings`` (significant traits beside their sensitivity analyses) and
    ``findings_paper`` (the same, formatted for a manuscript)."""
    from mrjax.report import tables as report_tables

    out = dict(tables)
    out["results"] = report_tables.scan_results(tables["results"])
    out["findings"] = report_tables.findings_table(
        out["results"], heterogeneity=_nonempty(tables, "heterogeneity"), pleiotropy=_nonempty(tables, "pleiotropy"),
        presso=_nonempty(tables, "presso"), leave_one_out=_nonempty(tables, "leave_one_out"),
        alpha=config.alpha, by=_significance_column(config),
    )
    out["findings_paper"] = report_tables.paper_table(out["findings"], out["results"])
    return out


def write_outputs(tables: dict[str, pd.DataFrame], config: ScanConfig, timings: StageTimer, resumed: int = 0) -> ScanResult:
    """Write the scan's folder: the tables (TSV; ``results`` also parquet), the figures
    (``mrjax.report.plots.scan_figures``, PNG + SVG), ``report.html``
    (``mrjax.report.html``) and, last, ``manifest.json`` — every file atomically, so a folder
    whose manifest exists is complete."""
    from mrjax import outputs
    from mrjax.report import tables as report_tables

    out = Path(config.out)
    by = _significance_column(config)
    with timings("tables"):
        tables = assemble_tables(tables, config)
    significant = report_tables.significant(tables["results"], alpha=config.alpha, by=by)
    files: list[Path] = []
    with timings("write"):
        for name in OUTPUT_TABLES:
            if name in tables:
                formats = ("tsv", "parquet") if name == "results" else ("tsv",)
                files += outputs.write_table(out, name, _writable(tables[name]), formats=formats)
    figures: dict = {}
    if config.figures:
        from mrjax.report import plots

        with timings("figures"):
            figures = plots.scan_figures(
                out / "figures", tables["results"], harmonised=_nonempty(tables, "instruments"),
                pleiotropy=_nonempty(tables, "pleiotropy"), leave_one_out=_nonempty(tables, "leave_one_out"),
                single_snp=_nonempty(tables, "single_snp"), alpha=config.alpha, by=by,
            )
        files += figure_paths(figures)
    inputs = outputs.input_checksums(input_paths(config))
    if config.report:
        from mrjax.report import html

        with timings("report"):
            files.append(html.write_report(
                tables, significant, figures, out / "report.html", settings=settings_of(config), inputs=inputs,
                timings=dict(timings.seconds), alpha=config.alpha, by=by,
            ))
    manifest = outputs.build_manifest(parameters=settings_of(config), seed=config.seed, inputs=[], timings=timings,
                                      outputs=[Path(p).relative_to(out) for p in files])
    manifest["inputs"] = inputs
    manifest["outputs"] = sorted(str(Path(p).relative_to(out)) for p in files)
    manifest["resumed_exposures"] = resumed
    files.append(outputs.write_json(out / outputs.MANIFEST_NAME, manifest))
    return ScanResult(tables=tables, significant=significant, files=files, timings=dict(timings.seconds),
                      manifest=manifest, resumed_traits=resumed)


def figure_paths(figures: dict) -> list[Path]:
    """Every file in ``plots.scan_figures``'s answer (scan level, then per trait)."""
    paths = [p for group in figures.get("scan", {}).values() for p in group]
    for entry in figures.get("traits", []):
        paths += [p for key, group in entry.items() if key not in ("direction", "exposure", "outcome") for p in group]
    return [Path(p) for p in paths]


def _writable(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding lists (e.g. PRESSO outlier sets) become ``;``-joined text."""
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object and table[column].map(lambda v: isinstance(v, (list, tuple))).any():
            table[column] = table[column].map(lambda v: ";".join(map(str, v)) if isinstance(v, (list, tuple)) else v)
    return table


def settings_of(config: ScanConfig) -> dict:
    """The scan's settings as plain JSON-able values (for the manifest and the report)."""
    settings = asdict(config)
    settings["columns"] = dict(config.columns)
    settings["proxies"] = config.use_proxies
    settings["exposure_files"] = exposure_files(config.exposures)
    return settings


def replace_config(config: ScanConfig, **changes) -> ScanConfig:
    """A copy of ``config`` with some fields changed (``dataclasses.replace``)."""
    return replace(config, **changes)


# --------------------------------------------------------------------------------------
# single steps, for users who bring their own intermediate tables (``mrjax mr`` …)


def read_harmonised(path: str | Path) -> pd.DataFrame:
    """Read a harmonised table (CSV, TSV, gzip'd text or parquet), e.g. TwoSampleMR's ``dat``
    written with ``write.csv``: R's unnamed row-name column is dropped, ``NA`` is missing.

    Raises :class:`ScanError` for a missing, empty or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise ScanError(f"harmonised table {str(path)!r} not found", "check the path")
    try:
        if path.name.endswith(".parquet"):
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, sep=None, engine="python", na_values=["NA"], keep_default_na=True)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise ScanError(f"cannot read {str(path)!r} as a table: {error}", "give a CSV, TSV or parquet file") from error
    first = table.columns[0] if len(table.columns) else None
    if first is not None and (str(first) == "" or str(first).startswith("Unnamed: 0")):
        table = table.drop(columns=first)
    if len(table) == 0:
        raise ScanError(f"harmonised table {str(path)!r} has no rows", "check that the file is the harmonised data")
    return table


def analyse_harmonised(
    data: pd.DataFrame,
    *,
    methods=None,
    n_boot: int = 1000,
    seed: int = 0,
    precision: int = 64,
    presso_draws: int = 0,
    presso_threshold: float = 0.05,
    source: str = "harmonised table",
) -> dict[str, pd.DataFrame]:
    """Every per-trait analysis of a harmonised table (see :func:`estimate_tables`) with the
    ``results`` table completed by odds ratios, BH-FDR and Bonferroni across traits.

    Bad input (missing column, non-numeric values, SE ≤ 0) raises :class:`ScanError`
    naming ``source``, the column and the rows.
    """
    from mrjax.batch import from_frame
    from mrjax.report import tables as report_tables

    try:
        from_frame(data, source=source)
    except ValueError as error:
        raise ScanError(str(error), "the table needs TwoSampleMR's columns (beta.exposure, se.exposure, beta.outcome, se.outcome, …)") from error
    config = ScanConfig(
        exposures=("-",), outcome="-", out="-", already_clumped=True, methods=tuple(methods) if methods else None,
        n_boot=n_boot, seed=seed, precision=precision, presso_draws=presso_draws, presso_threshold=presso_threshold,
    )
    tables = estimate_tables(data, config)
    if "results" in tables:
        tables["results"] = report_tables.scan_results(tables["results"])
    return tables


def write_tables(tables: dict[str, pd.DataFrame], out: str | Path, parquet: tuple[str, ...] = ("results",)) -> list[Path]:
    """Write each table as ``out/<name>.tsv`` (and parquet for the names in ``parquet``),
    atomically; returns the paths."""
    from mrjax import outputs

    files: list[Path] = []
    for name, table in tables.items():
        formats = ("tsv", "parquet") if name in parquet else ("tsv",)
        files += outputs.write_table(Path(out), name, _writable(table), formats=formats)
    return files


def write_single_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write one table atomically; the format follows the suffix (``.parquet``, ``.csv``,
    otherwise tab-separated). The audit records in ``table.attrs`` go to
    ``<stem>.audit.tsv`` beside it when there are any."""
    from mrjax import outputs
    from mrjax.audit import audit_of

    path = Path(path)
    plain = _writable(table)
    plain.attrs = {}
    if path.name.endswith(".parquet"):
        outputs.write_parquet(path, plain)
    elif path.name.endswith(".csv"):
        outputs.write_with(path, lambda tmp: plain.to_csv(tmp, index=False, na_rep="NA"))
    else:
        outputs.write_tsv(path, plain)
    records = audit_of(table)
    if len(records):
        stem = path.name.split(".")[0]
        outputs.write_tsv(path.with_name(f"{stem}.audit.tsv"), records)
    return path


def example_data_folder() -> Path:
    """The example data bundled inside the package (``mrjax/example_data``)."""
    return Path(__file__).resolve().parent / "example_data"


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
