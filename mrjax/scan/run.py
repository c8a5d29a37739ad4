"""The bi-directional MR scan: GWAS files in, a folder a paper can be written from out.

One exposure–outcome *trait* goes through, in order (each stage from its own module):

    read (:mod:`~mrjax.scan.inputs`) → select (p) → clump against a PLINK panel → strength
    filter (F) → outcome look-up with LD proxies → harmonise (:mod:`~mrjax.scan.stages`) →
    estimate: methods, diagnostics, MR-PRESSO (:mod:`~mrjax.scan.estimate`).

With ``bidirectional`` the reverse direction runs too: instruments are selected and clumped
once from the outcome GWAS and looked up in each exposure GWAS (outcome → exposure). The scan
then assembles the scan-level tables (:mod:`~mrjax.scan.assemble`) and writes the folder
(:mod:`~mrjax.scan.write`).

**Resumption.** Exposures are processed in fixed chunks of ``chunk_size`` (both directions
of a chunk estimated in one call); every finished exposure is checkpointed
(:mod:`~mrjax.scan.checkpoints`). Chunk membership depends only on the exposure list, and
each trait's random draws come from ``fold_in(key(seed), trait_uid)``
(``mrjax.batch.trait_keys``), so resumed outputs are identical, bit for bit, to an
uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mrjax.ld import LDPanel
from mrjax.outputs import StageTimer, remove_stale_temporaries, write_table
from mrjax.scan.assemble import concat_traits, split_by_trait, with_effect_scale
from mrjax.scan.audits import forward_audits, side_audit
from mrjax.scan.checkpoints import OUTCOME_SIDE, Checkpoints, RunningMarker
from mrjax.scan.config import FORWARD, REVERSE, Progress, ScanConfig, ScanError, ScanResult
from mrjax.scan.estimate import estimate_tables, permutation_table
from mrjax.scan.frames import plain
from mrjax.scan.inputs import ExposureSource, exposure_files, input_checksums, list_exposures, read_chunk, read_table, trait_name_of
from mrjax.scan.stages import look_up, reverse_pairs, select_and_clump
from mrjax.scan.write import write_outputs


def run_scan(config: ScanConfig, progress: Progress | None = None) -> ScanResult:
    """Run the whole scan described by ``config`` and write its outputs to ``config.out``.

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
        result = _scan(config, out, progress)
    except BaseException as error:
        marker.failed(error)
        raise
    marker.remove()
    return result


def _scan(config: ScanConfig, out: Path, progress: Progress) -> ScanResult:
    timings = StageTimer()
    progress("inputs", 0, 1)
    with timings("checksums"):
        checksums = input_checksums(config)
    checkpoints = Checkpoints(out, config.fingerprint(checksums, exposure_files(config.exposures)))
    panel = None
    if config.ld_ref:
        with timings("load_panel"):
            panel = LDPanel.load(config.ld_ref)
    cache: dict = {}
    with timings("read"):
        sources = list_exposures(config, cache)
    outcome_name = config.outcome_name or trait_name_of(config.outcome)
    progress("inputs", 1, 1)

    # Chunk membership depends only on the exposure list and chunk_size, never on what a
    # previous run finished: a resumed chunk is recomputed whole, with the same shapes as
    # in an uninterrupted run, so its numbers agree to the last bit.
    per_trait = {(d, s.trait): done for s in sources for d in config.directions
                 if (done := checkpoints.load(d, s.trait)) is not None}
    finished_traits = {s.trait for s in sources if all((d, s.trait) in per_trait for d in config.directions)}
    chunks = [sources[i : i + config.chunk_size] for i in range(0, len(sources), config.chunk_size)]
    todo = [chunk for chunk in chunks if any(s.trait not in finished_traits for s in chunk)]
    total, finished = len(sources), len(finished_traits)
    progress("estimate", finished, total)

    outcome, reverse_instruments = None, None
    outcome_side = checkpoints.load(OUTCOME_SIDE, outcome_name)
    if todo or outcome_side is None:
        with timings("read"):
            outcome = read_table(config.outcome, config.read_options, trait=outcome_name)
        if config.bidirectional:
            reverse_instruments = select_and_clump(outcome, config, panel, timings)
        outcome_side = _outcome_side_audit(outcome, reverse_instruments, outcome_name, config)
        checkpoints.save(OUTCOME_SIDE, outcome_name, outcome_side, count=False)

    for done_chunks, chunk in enumerate(todo):
        progress("instruments", done_chunks, len(todo))
        pieces = _run_chunk(chunk, config, cache, outcome, reverse_instruments, outcome_name, panel, timings)
        progress("instruments", done_chunks + 1, len(todo))
        for name in (s.trait for s in chunk):
            for direction, split in pieces.items():
                if (direction, name) not in per_trait:
                    per_trait[(direction, name)] = split[name]
                    with timings("checkpoints"):
                        checkpoints.save(direction, name, split[name])
            if name not in finished_traits:
                finished += 1
                progress("estimate", finished, total)

    with timings("collect"):
        tables = concat_traits(per_trait, sources, config)
        tables["results"] = with_effect_scale(tables["results"], config, sources)
    for name in ("audit", "audit_counts"):
        if len(outcome_side[name]):
            tables[name] = pd.concat([outcome_side[name], tables[name]], ignore_index=True)
    if not any(len(t.get("instruments", ())) for t in per_trait.values()):
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
    return write_outputs(tables, config, timings, len(finished_traits), progress=progress)


def _outcome_side_audit(outcome: pd.DataFrame, reverse_instruments, outcome_name: str, config: ScanConfig) -> dict:
    """The outcome's own audit, checkpointed apart from the exposures so that a fully resumed
    scan still reports it: its read step (forward only: shared by every exposure) or, in a
    bi-directional scan, its instrument selection."""
    if config.bidirectional:
        return side_audit(reverse_instruments, outcome_name, direction=REVERSE, exposure=outcome_name,
                          outcome="(each exposure)")
    return side_audit(outcome, outcome_name, steps=("read",), direction=FORWARD, exposure="(each exposure)",
                      outcome=outcome_name)


def _run_chunk(chunk: list[ExposureSource], config: ScanConfig, cache: dict, outcome: pd.DataFrame,
               reverse_instruments, outcome_name: str, panel, timings: StageTimer) -> dict[str, dict]:
    """Both directions of one chunk of exposures, estimated in one call: returns
    ``{direction: {trait: tables}}`` with each trait's tables and audit."""
    with timings("read"):
        exposures = read_chunk(chunk, config, cache, full=config.bidirectional)
    names = [s.trait for s in chunk]
    forward = select_and_clump(exposures, config, panel, timings)
    harmonised = look_up(forward, outcome, config, panel, timings) if len(forward) else forward
    with timings("audit"):
        audits = {FORWARD: forward_audits(harmonised, names, outcome_name)}
    pairs = {FORWARD: plain(harmonised)}
    if config.bidirectional:
        pairs[REVERSE], audits[REVERSE] = reverse_pairs(reverse_instruments, exposures, names, outcome_name, config, panel, timings)
    # both directions in one estimation call: fewer distinct shapes to compile
    with timings("split"):
        nonempty = [t for t in pairs.values() if len(t)]
        everything = pd.concat(nonempty, ignore_index=True) if nonempty else plain(harmonised)
    estimates = estimate_tables(everything, config.estimation, timings)
    pieces = {}
    with timings("split"):
        for direction, table in pairs.items():
            key, other = ("exposure", "outcome") if direction == FORWARD else ("outcome", "exposure")
            mine = {k: v[v[other].astype(str) == outcome_name] if other in v.columns else v for k, v in estimates.items()}
            pieces[direction] = split_by_trait(mine, table, key, names)
            for name in names:
                pieces[direction][name].update(audits[direction][name])
    return pieces
