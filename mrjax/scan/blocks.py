"""Blocks of pairs: the unit of work a scan estimates, checkpoints, resumes and streams.

A scan's exposures are cut into chunks of at most ``chunk_size``, as equal as they can be
(:func:`chunk_exposures`; their instruments are selected and clumped together, once); the
pairs of a chunk — each of its exposures against each outcome, both directions with
``bidirectional`` — are cut into *blocks*. A block is a rectangle: some of
the chunk's exposures × some consecutive outcomes. It holds at most
:func:`pairs_per_block` pairs, the number of traits :data:`mrjax.batch.PANEL_BUCKETS` puts in
one device call of the chunk's widest padded width under
:data:`mrjax.batch.MEMORY_BUDGET_ELEMENTS` (one trait of the method panel holds about
``width × max(n_boot, width)`` elements: its bootstrap draws, or its leave-one-out matrix).
So the memory of one block's estimation (device arrays and host tables) does not grow with
the number of pairs of the scan: more pairs make more blocks.

The plan depends only on the inputs and the settings (the chunk's instrument counts), never
on what a previous run finished, so a resumed block is computed with the same shapes as in an
uninterrupted run and agrees to the last bit. A chunk whose pairs fit in one block (every
scan of a few outcomes) is one block: its outputs are those of a scan without blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from mrjax.batch import PANEL_BUCKETS, panel_row_elements

#: A scan whose ``results`` table has at most this many rows also writes ``results.tsv`` (and
#: ``results.parquet``) and every other table as TSV, as a scan always did; above it, the
#: per-pair tables are only the partitioned parquet datasets ``DIR/<table>/`` (a TSV of a
#: million rows is ~200 MB that no spreadsheet opens) and the figures and report cover the
#: significant pairs. ``results/`` is written in both cases.
RESULTS_TSV_MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class Block:
    """Exposures × outcomes of one chunk estimated together: ``chunk`` (its number),
    ``part`` (the block's number within the chunk), the exposure and outcome names."""

    chunk: int
    part: int
    exposures: tuple[str, ...]
    outcomes: tuple[str, ...]

    @property
    def name(self) -> str:
        """The block's label: its checkpoint file and its partition of ``DIR/results/``."""
        return f"{self.chunk:05d}-{self.part:04d}"


def chunk_exposures(exposures: list, chunk_size: int) -> list[list]:
    """``exposures`` in consecutive chunks of at most ``chunk_size``, as few as that allows and
    as equal as they can be (sizes differ by at most one: 731 by 64 is 11 × 61 + 1 × 60, not
    11 × 64 + 1 × 27).

    Equal chunks give equal device calls: the calls of every chunk have the same number of rows
    (a power of two), so a scan compiles each kernel once instead of once more for a small last
    chunk (~11 CPU-s of XLA compilation for the method panel and diagnostics on a first run).
    Results do not depend on the chunks (each trait's draws depend only on the seed and the trait).
    """
    n_chunks = -(-len(exposures) // max(int(chunk_size), 1))
    if n_chunks == 0:
        return []
    small, extra = divmod(len(exposures), n_chunks)
    bounds = [0]
    for i in range(n_chunks):
        bounds.append(bounds[-1] + small + (i < extra))
    return [exposures[bounds[i] : bounds[i + 1]] for i in range(n_chunks)]


def pairs_per_block(widest: int, n_boot: int) -> int:
    """The most pairs a block holds when its widest pair has ``widest`` instruments: one full
    device call of :data:`~mrjax.batch.PANEL_BUCKETS` at that padded width
    (:meth:`~mrjax.batch.BucketPolicy.traits_per_call`, budget read now)."""
    return PANEL_BUCKETS.traits_per_call(PANEL_BUCKETS.width(widest), panel_row_elements(n_boot))


def plan_blocks(chunk: int, exposures: list[str], outcomes: list[str], widest: int, *, directions: int,
                n_boot: int) -> list[Block]:
    """The blocks of one chunk: its ``exposures`` against the ``outcomes`` (``directions`` pairs
    each, 1 or 2), ``widest`` the most instruments any of its pairs can have.

    All in one block when they fit; otherwise consecutive groups of outcomes with every
    exposure; when even one outcome's pairs do not fit, groups of exposures with one outcome."""
    limit = pairs_per_block(widest, n_boot)
    per_outcome = len(exposures) * directions
    if per_outcome * len(outcomes) <= limit:
        return [Block(chunk, 0, tuple(exposures), tuple(outcomes))]
    if per_outcome <= limit:
        step = limit // per_outcome
        groups = [(tuple(exposures), tuple(outcomes[i : i + step])) for i in range(0, len(outcomes), step)]
    else:
        step = max(1, limit // directions)
        groups = [(tuple(exposures[i : i + step]), (outcome,)) for outcome in outcomes
                  for i in range(0, len(exposures), step)]
    return [Block(chunk, part, names, group) for part, (names, group) in enumerate(groups)]


def block_of_pairs(blocks: list[Block]) -> dict[tuple[str, str, str], str]:
    """``(direction, exposure, outcome) → block name`` for every pair of ``blocks`` as the
    results table names them (a reverse pair's exposure is the scan's outcome)."""
    labels = {}
    for block in blocks:
        for exposure in block.exposures:
            for outcome in block.outcomes:
                labels[("forward", exposure, outcome)] = block.name
                labels[("reverse", outcome, exposure)] = block.name
    return labels


def result_rows(blocks: list[Block], directions: int, methods: int) -> int:
    """The rows ``results`` can have: every pair of ``blocks`` × ``methods`` (pairs left
    without instruments have none), compared with :data:`RESULTS_TSV_MAX_ROWS`."""
    return sum(len(b.exposures) * len(b.outcomes) for b in blocks) * directions * methods
