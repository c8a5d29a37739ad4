"""A block's per-trait tables kept stacked: one frame per table and the row range of each trait.

A finished block (:mod:`mrjax.scan.blocks`) holds, per direction, ten tables for each of its
exposures. Kept as ``{exposure: {table: frame}}`` a 731-trait scan pickled, unpickled and
concatenated ~15,000 small frames (about 40 s of a 100 s scan on 2 cores, pandas' per-frame
cost). Instead each table of a block is a list of :class:`Run`: a frame whose rows are grouped
by trait, with each trait's row range. :func:`join_blocks` joins the runs of every block into
the scan's tables with one concatenation and at most one row selection per table — the rows,
their order and the columns' types that joining the per-trait pieces (exposure order, each
exposure's pieces in block order) gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mrjax.scan.config import TRAIT_TABLES, ScanConfig
from mrjax.scan.frames import NO_ROWS, rows_by


@dataclass(frozen=True)
class Run:
    """Rows of several traits, trait by trait: ``names[i]``'s rows are ``frame[ends[i]:ends[i + 1]]``."""

    frame: pd.DataFrame
    names: tuple[str, ...]
    ends: np.ndarray

    def parts(self) -> dict[str, pd.DataFrame]:
        """Each trait's rows as its own frame (index from 0), traits without rows left out."""
        return {name: self.frame.iloc[start:end].reset_index(drop=True)
                for name, start, end in zip(self.names, self.ends[:-1], self.ends[1:]) if end > start}


def grouped_run(table: pd.DataFrame, labels: pd.Series, names: list[str]) -> Run:
    """The rows of ``table`` whose ``labels`` is one of ``names``, grouped in ``names`` order
    (each trait's rows in table order): one take, then the bounds."""
    rows_of = rows_by(labels)
    parts = [rows_of.get(name, NO_ROWS) for name in names]
    together = table.take(np.concatenate(parts)).reset_index(drop=True) if names else table.iloc[:0]
    return Run(together, tuple(names), np.cumsum([0] + [len(rows) for rows in parts]))


def stack_by_trait(tables: dict[str, pd.DataFrame], harmonised: pd.DataFrame, key: str,
                   names: list[str]) -> dict[str, list[Run]]:
    """A block's estimate tables (and its harmonised ``instruments``) grouped by trait; ``key``
    is the column (``exposure`` forward, ``outcome`` reverse) that names the scanned exposure.
    A table without that column is left out, as it has no rows of any trait."""
    everything = dict(tables, instruments=harmonised)
    return {name: [grouped_run(table, table[key], names)] for name, table in everything.items()
            if table is not None and key in table.columns}


def stack_parts(parts: list[tuple[str, pd.DataFrame]]) -> list[Run]:
    """Runs holding the per-trait frames ``(trait, frame)`` in that order: one run when the
    non-empty frames share their columns and column types (concatenated), else one run each
    (so no column's type is changed here)."""
    filled = [(name, frame) for name, frame in parts if len(frame)]
    if not filled:
        return []
    first = filled[0][1]
    if all(_same_layout(first, frame) for _, frame in filled[1:]):
        frame = pd.concat([f for _, f in filled], ignore_index=True) if len(filled) > 1 else filled[0][1]
        return [Run(frame, tuple(n for n, _ in filled), np.cumsum([0] + [len(f) for _, f in filled]))]
    return [Run(frame, (name,), np.array([0, len(frame)])) for name, frame in filled]


def _same_layout(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return a.columns.equals(b.columns) and a.dtypes.equals(b.dtypes)


def join_blocks(blocks: list[dict], traits: list[str], config: ScanConfig) -> dict[str, pd.DataFrame]:
    """The scan's per-trait tables from its blocks' runs (``{direction: {table: [Run]}}``, in
    block order): for each table, direction by direction (``config.directions``), each trait of
    ``traits`` in that order, its rows from every block in block order, then a ``direction``
    column first. The frames are concatenated whole and their rows put in that order by one
    take; when their columns differ (their union's order would depend on the frames' order)
    the per-trait frames are joined instead."""
    position = {name: i for i, name in enumerate(traits)}
    tables = {}
    for table in TRAIT_TABLES:
        frames, segments = [], []  # segments: (direction number, trait position, frame number, start, end)
        for d, direction in enumerate(config.directions):
            for block in blocks:
                for run in block.get(direction, {}).get(table, ()):
                    mine = [(d, position[name], len(frames), start, end)
                            for name, start, end in zip(run.names, run.ends[:-1], run.ends[1:])
                            if end > start and name in position]
                    if mine:
                        segments += mine
                        frames.append(run.frame)
        # output order: direction, then trait, then as enumerated (block order; sorted() is stable)
        segments.sort(key=lambda s: (s[0], s[1]))
        if not frames:
            tables[table] = pd.DataFrame(columns=["direction"])
            continue
        if all(f.columns.equals(frames[0].columns) for f in frames[1:]):
            joined, sizes = _joined(frames, segments), [end - start for *_, start, end in segments]
            labels = [config.directions[s[0]] for s in segments]
        else:
            joined, labels, sizes = _joined_per_trait(frames, segments, config.directions)
        if "direction" not in joined.columns:  # one column for the whole table instead of one per part
            joined["direction"] = np.repeat(np.array(labels, dtype=object), sizes)
        joined.insert(0, "direction", joined.pop("direction"))
        tables[table] = joined
    return tables


def _joined(frames: list[pd.DataFrame], segments: list) -> pd.DataFrame:
    """The frames (same columns) as one, rows in ``segments`` order (one take unless already so)."""
    offsets = np.cumsum([0] + [len(f) for f in frames])
    rows = np.concatenate([np.arange(offsets[f] + start, offsets[f] + end) for _, _, f, start, end in segments])
    table = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(rows) != len(table) or not np.array_equal(rows, np.arange(len(table))):
        table = table.take(rows)
    return table.reset_index(drop=True)


def _joined_per_trait(frames: list[pd.DataFrame], segments: list, directions: tuple) -> tuple[pd.DataFrame, list, list]:
    """The join of the per-trait pieces (each trait's rows from every block
    joined first), for tables whose frames' columns differ; with each piece's direction and size."""
    pieces: dict[tuple, list] = {}
    for d, trait, f, start, end in segments:
        pieces.setdefault((d, trait), []).append(frames[f].iloc[start:end])
    parts = [(chunks[0] if len(chunks) == 1 else pd.concat(chunks)).reset_index(drop=True) for chunks in pieces.values()]
    labels = [directions[d] for d, _ in pieces]
    labelled = ["direction" in p.columns for p in parts]
    if any(labelled) and not all(labelled):
        parts = [p if has else p.assign(direction=label) for p, label, has in zip(parts, labels, labelled)]
    return pd.concat(parts, ignore_index=True), labels, [len(p) for p in parts]
