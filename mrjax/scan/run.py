"""The bi-directional MR scan: GWAS files in, a folder a paper can be written from out.

One exposure–outcome *trait* goes through, in order (each stage from its own module):

    read (:mod:`~mrjax.scan.inputs`) → select (p) → clump against a PLINK panel → strength
    filter (F) → outcome look-up with LD proxies → harmonise (:mod:`~mrjax.scan.stages`) →
    estimate: methods, diagnostics, MR-PRESSO (:mod:`~mrjax.scan.estimate`).

With ``bidirectional`` the reverse direction runs too: instruments are selected and clumped
once from the outcome GWAS and looked up in each exposure GWAS (outcome → exposure). The scan
then assembles the scan-level tables (:mod:`~mrjax.scan.assemble`) and writes the folder
(:mod:`~mrjax.scan.write`).

**Blocks and resumption.** Exposures are processed in fixed chunks of at most ``chunk_size``, as
equal as they can be (their instruments selected and clumped together, once); a chunk's pairs (× every outcome, both
directions) are estimated in blocks of at most as many pairs as one device call holds under
``mrjax.batch.MEMORY_BUDGET_ELEMENTS`` (:mod:`~mrjax.scan.blocks`), so the memory of the
estimation does not grow with the number of pairs. Every finished block is checkpointed
(:mod:`~mrjax.scan.checkpoints`) and a re-run starts at the first unfinished one. Blocks depend
only on the inputs and settings, and each trait's random draws come from
``fold_in(key(seed), trait_uid)`` (``mrjax.batch.trait_keys``), so resumed outputs are
identical, bit for bit, to an uninterrupted run.

**Outputs.** ``results`` is written as the parquet dataset ``results/`` partitioned by
direction and block (``pyarrow.dataset.dataset(DIR / "results", partitioning="hive")``). A scan
of at most ``mrjax.scan.blocks.RESULTS_TSV_MAX_ROWS`` (1,000,000) result rows (pairs × methods)
also writes ``results.tsv``, ``results.parquet`` and its other tables as TSV, from one table in
memory; a larger one is written block by block (:mod:`~mrjax.scan.streamed`): every per-pair
table as a dataset only, findings, figures and report for the significant pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mrjax.audit import Audit, Audited
from mrjax.ld import LDPanel
from mrjax.methods import resolve
from mrjax.outputs import StageTimer, remove_stale_temporaries, write_table
from mrjax.scan.assemble import with_effect_scale
from mrjax.scan.audits import forward_audit_runs, side_audit
from mrjax.scan import blocks as scan_blocks
from mrjax.scan.blocks import Block, plan_blocks, result_rows
from mrjax.scan.checkpoints import OUTCOME_SIDE, Checkpoints, RunningMarker
from mrjax.scan.config import FORWARD, REVERSE, Progress, ScanConfig, ScanError, ScanResult
from mrjax.scan.estimate import permutation_table
from mrjax.scan import store_source
from mrjax.scan.inputs import (
    ExposureSource,
    OutcomeSource,
    default_read_threads,
    exposure_keys,
    input_checksums,
    list_exposures,
    outcome_sources,
    read_chunk,
    read_outcome,
)
from mrjax.scan.stacked import join_blocks, stack_by_trait
from mrjax.scan.reverse import reverse_pairs
from mrjax.scan.stages import look_up, reachable_snps, rows_at, select_and_clump
from mrjax.scan.workers import block_client, estimate_in_order
from mrjax.scan.write import write_outputs


def run_scan(config: ScanConfig, progress: Progress | None = None, *, workers: int | None = None,
             scheduler: str | None = None, devices: int | None = None, read_threads: int | None = None) -> ScanResult:
    """Run the whole scan described by ``config`` and write its outputs to ``config.out``.

    Blocks are estimated in this process, or with ``workers`` (a ``LocalCluster`` of that many
    processes) or ``scheduler`` (a running Dask cluster's address) on Dask workers
    (:mod:`mrjax.scan.workers`; the same outputs), each using at most ``devices`` devices.
    GWAS files are read ``read_threads`` at a time (default
    :func:`mrjax.scan.inputs.default_read_threads`; each file read whole is held whole until
    it is cut, so memory grows with it; the outputs do not change).

    Returns the tables (also written as TSV and parquet), the significant traits and the
    manifest. ``progress(stage, done, total)`` is called as each stage advances (inputs,
    instruments per chunk, estimate per trait, tables, figures, report).

    While the scan runs, ``DIR/RUNNING`` says so (and after a kill or a failure it stays,
    saying which): a folder is complete when ``manifest.json`` exists and ``RUNNING`` does
    not. Temporary files a killed run left behind are removed when the scan starts.
    Raises :class:`ScanError` for user mistakes (missing files, no instruments left, …).
    """
    config.validate()
    progress = progress or (lambda stage, done, total: None)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    marker = RunningMarker(out)
    try:
        with block_client(workers, scheduler) as client:
            result = _scan(config, out, progress, client, devices, read_threads or default_read_threads())
    except BaseException as error:
        marker.failed(error)
        raise
    marker.remove()
    return result


@dataclass
class Outcome:
    """One outcome of a scan while it runs: its file and name, its GWAS with its read records
    (None when every chunk was resumed from checkpoints) and the rows of the full table a
    store left out, and, bi-directional, its own instruments."""

    source: OutcomeSource
    gwas: Audited | None = None
    not_read: dict = field(default_factory=dict)
    instruments: Audited | None = None
    _reachable: set | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.source.name

    def reachable(self, config: ScanConfig, panel) -> set:
        """The SNPs of an exposure GWAS the reverse look-up can use (``reachable_snps`` of the
        outcome's instruments): the same for every chunk, so found once."""
        if self._reachable is None:
            some = len(self.instruments.table) > 0
            self._reachable = reachable_snps(self.instruments.table, config, panel) if some else set()
        return self._reachable


def _scan(config: ScanConfig, out: Path, progress: Progress, client, devices: int | None, read_threads: int) -> ScanResult:
    timings = StageTimer()
    progress("inputs", 0, 1)
    with timings("checksums"):
        checksums = input_checksums(config)
    outcome_list = outcome_sources(config)
    checkpoints = Checkpoints(out, config.fingerprint(checksums, exposure_keys(config), [o.path for o in outcome_list]))
    panel = None
    if config.ld_ref:
        with timings("load_panel"):
            panel = LDPanel.load(config.ld_ref)
    cache: dict = {}
    with timings("read"):
        sources = list_exposures(config, cache)

    # Chunk membership depends only on the exposure list and chunk_size, and a chunk's block
    # plan only on its instruments, never on what a previous run finished: a resumed block is
    # recomputed with the same shapes as in an uninterrupted run, so its numbers agree to the
    # last bit.
    chunks = scan_blocks.chunk_exposures(sources, config.chunk_size)
    plans = [checkpoints.load_plan(i) for i in range(len(chunks))]
    todo = [i for i, plan in enumerate(plans) if plan is None or not all(checkpoints.has_block(b.name) for b in plan)]
    total = len(sources)
    finished = resumed = total - sum(len(chunks[i]) for i in todo)

    # Each outcome is read (and, bi-directional, its instruments selected) once per scan; its
    # own audit is checkpointed apart from the exposures so a fully resumed scan reports it.
    outcomes, outcome_sides = [], []
    for source in outcome_list:
        outcome, side = Outcome(source), checkpoints.load(OUTCOME_SIDE, source.name)
        if todo or side is None:
            with timings("read"):
                outcome.gwas, outcome.not_read = read_outcome(config, source)
            if config.bidirectional:
                outcome.instruments = select_and_clump(outcome.gwas, config, panel, timings, outcome.not_read)
            side = _outcome_side_audit(outcome, config)
            checkpoints.save(OUTCOME_SIDE, source.name, side)
        outcomes.append(outcome)
        outcome_sides.append(side)
    progress("inputs", 1, 1)
    progress("estimate", finished, total)

    for done_chunks, i in enumerate(todo):
        progress("instruments", done_chunks, len(todo))
        plans[i] = _run_chunk(i, chunks[i], config, cache, outcomes, panel, timings, checkpoints, client, devices,
                              read_threads)
        progress("instruments", done_chunks + 1, len(todo))
        finished += len(chunks[i])
        progress("estimate", finished, total)
    blocks = [block for plan in plans for block in plan]
    if result_rows(blocks, len(config.directions), len(resolve(config.methods))) > scan_blocks.RESULTS_TSV_MAX_ROWS:
        from mrjax.scan.streamed import write_streamed

        return write_streamed(blocks, checkpoints, sources, outcome_list, outcome_sides, config, timings, resumed, progress)
    with timings("collect"):
        tables = join_blocks([checkpoints.load_block(block.name) for block in blocks], [s.trait for s in sources], config)
        tables["results"] = with_effect_scale(tables["results"], config, sources, outcome_list)
    for name in ("audit", "audit_counts"):
        sides = [side[name] for side in outcome_sides if len(side[name])]
        if sides:
            tables[name] = pd.concat([*sides, tables[name]], ignore_index=True)
    if not len(tables["instruments"]):
        for name in ("audit", "audit_counts"):
            write_table(out, name, tables[name])
        checkpoints.discard()  # nothing in them is worth resuming
        raise ScanError(
            f"no instruments left in any of the {total} exposures (p < {config.p:g}, F ≥ {config.f_min:g})",
            f"relax --p or check the exposure files; {out / 'audit_counts.tsv'} shows where they were lost",
        )
    if config.adjust_for:
        from mrjax.scan.adjust import adjusted_tables

        with timings("adjust_for"):
            tables.update(adjusted_tables(tables["instruments"], config))
    if config.permutations > 0:
        with timings("permutations"):
            tables["permutations"] = permutation_table(tables["instruments"], config.directions, config.permutations, config.seed)
        write_table(out, "permutations", tables["permutations"])
    return write_outputs(tables, config, timings, resumed, progress=progress, blocks=blocks,
                         about={"blocks": len(blocks), "streamed": False})


def _outcome_side_audit(outcome: Outcome, config: ScanConfig) -> dict:
    """The outcome's own audit: its read step (forward only: shared by every exposure) or, in
    a bi-directional scan, its instrument selection."""
    if config.bidirectional:
        return side_audit(outcome.instruments.audit, outcome.name, direction=REVERSE, exposure=outcome.name,
                          outcome="(each exposure)")
    return side_audit(outcome.gwas.audit, outcome.name, steps=("read",), direction=FORWARD, exposure="(each exposure)",
                      outcome=outcome.name)


def _run_chunk(number: int, chunk: list[ExposureSource], config: ScanConfig, cache: dict, outcomes: list[Outcome],
               panel, timings: StageTimer, checkpoints: Checkpoints, client=None, devices: int | None = None,
               read_threads: int = 1) -> list[Block]:
    """One chunk of exposures against every outcome: their instruments selected and clumped
    once, the chunk's pairs planned into blocks (:func:`mrjax.scan.blocks.plan_blocks`, saved
    first), each unfinished block harmonised here, estimated here or on the Dask ``client``'s
    workers (:func:`mrjax.scan.workers.estimate_in_order`) and checkpointed in block order.
    Returns the plan."""
    with timings("read"):
        lookup_snps = set().union(*(o.reachable(config, panel) for o in outcomes)) if config.bidirectional else ()
        exposures, not_read = read_chunk(chunk, config, cache, full=config.bidirectional, lookup_snps=lookup_snps,
                                         threads=read_threads)
    names = [s.trait for s in chunk]
    forward = select_and_clump(exposures, config, panel, timings, not_read)
    widest = _most_instruments(forward.table)
    if config.bidirectional:
        widest = max([widest] + [len(o.instruments.table) for o in outcomes])
    plan = checkpoints.load_plan(number) or plan_blocks(number, names, [o.name for o in outcomes], widest,
                                                        directions=len(config.directions), n_boot=config.n_boot)
    checkpoints.save_plan(number, plan)
    by_name = {o.name: o for o in outcomes}

    def harmonised_blocks():  # lazily: block k+1 is harmonised while workers estimate block k
        for block in plan:
            if not checkpoints.has_block(block.name):
                pairs, audits, everything = _harmonise_block(block, exposures, forward, config,
                                                             [by_name[o] for o in block.outcomes], panel, timings)
                yield (block, pairs, audits), everything

    for (block, pairs, audits), estimates in estimate_in_order(harmonised_blocks(), config.estimation, timings,
                                                               client, devices):
        pieces = _split_block(block, pairs, audits, estimates, timings)
        with timings("checkpoints"):
            checkpoints.save_block(block.name, pieces)
    return plan


def _most_instruments(instruments: pd.DataFrame) -> int:
    """The most instruments any one trait of ``instruments`` has."""
    if not len(instruments):
        return 1
    column = "exposure" if "exposure" in instruments.columns else "trait"
    return int(instruments[column].astype(str).value_counts().max())


def _block_rows(audited: Audited, names: tuple[str, ...]) -> Audited:
    """The rows of ``names`` (all of them when the block has every trait of the table)."""
    table = audited.table
    column = "exposure" if "exposure" in table.columns else "trait"
    if not len(table) or set(table[column].astype(str).unique()) <= set(names):
        return audited
    return Audited(table[table[column].astype(str).isin(names).to_numpy()].reset_index(drop=True), audited.audit)


def _harmonise_block(block: Block, exposures: Audited, forward: Audited, config: ScanConfig, outcomes: list[Outcome],
                     panel, timings: StageTimer) -> tuple[dict, dict, pd.DataFrame]:
    """Both directions of one block (its exposures against its outcomes) looked up and
    harmonised: the pairs per direction, each exposure's audit pieces per direction, and both
    directions' pairs in one table (one estimation call: fewer distinct shapes to compile)."""
    names = list(block.exposures)
    forward, exposures = _block_rows(forward, block.exposures), _block_rows(exposures, block.exposures)
    pairs: dict[str, list] = {d: [] for d in config.directions}
    audits: dict[str, dict[str, list]] = {d: {"audit": [], "audit_counts": []} for d in config.directions}
    for outcome in outcomes:
        gwas = outcome.gwas
        if len(forward.table):  # the outcome's rows these instruments can use
            with timings("read"):
                snps = reachable_snps(forward.table, config, panel)
                gwas = store_source.rows_for(config.store, outcome.name, snps) if config.store else rows_at(gwas, snps)
        harmonised = look_up(forward, gwas, config, panel, timings) if len(forward.table) else forward
        with timings("audit"):
            for part, runs in forward_audit_runs(harmonised.audit, names, outcome.name).items():
                audits[FORWARD][part] += runs
        pairs[FORWARD].append(harmonised.table)
        if config.bidirectional:
            looked_up = exposures
            if config.store:  # each exposure's rows the outcome's instruments can use
                with timings("read"):
                    looked_up = Audited(store_source.rows_of_traits(config.store, names, outcome.reachable(config, panel)), Audit.empty())
            reverse, reverse_audits = reverse_pairs(outcome.instruments, looked_up, names, outcome.name, config, panel,
                                                    timings)
            pairs[REVERSE].append(reverse)
            for part, runs in reverse_audits.items():
                audits[REVERSE][part] += runs
    with timings("split"):
        pairs = {d: _join(frames) for d, frames in pairs.items()}
        # both directions in one estimation call: fewer distinct shapes to compile
        nonempty = [t for t in pairs.values() if len(t)]
        everything = pd.concat(nonempty, ignore_index=True) if nonempty else pairs[FORWARD]
    return pairs, audits, everything


def _split_block(block: Block, pairs: dict, audits: dict, estimates: dict, timings: StageTimer) -> dict[str, dict]:
    """A block's estimates grouped by exposure, per direction and table
    (``{direction: {table: [Run]}}``, :mod:`mrjax.scan.stacked`), with its audit runs: what is
    checkpointed."""
    names, outcome_names = list(block.exposures), list(block.outcomes)
    pieces = {}
    with timings("split"):
        for direction, table in pairs.items():
            key, other = ("exposure", "outcome") if direction == FORWARD else ("outcome", "exposure")
            mine = {k: v[v[other].astype(str).isin(outcome_names)] if other in v.columns else v for k, v in estimates.items()}
            pieces[direction] = {**stack_by_trait(mine, table, key, names), **audits[direction]}
    return pieces


def _join(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One table from the per-outcome pieces (a single outcome's piece as it is)."""
    if len(frames) == 1:
        return frames[0]
    nonempty = [f for f in frames if len(f)]
    return pd.concat(nonempty, ignore_index=True) if nonempty else frames[0]
