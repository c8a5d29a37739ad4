"""mrjax.scan.stacked: a block's tables kept stacked by trait, and the scan's tables joined from
the blocks, against the plain join of per-trait pieces the module replaces (each trait in scan
order, its pieces in block order, direction by direction, a ``direction`` column first)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pandas.testing as pdt

from mrjax.scan.config import FORWARD, REVERSE, TRAIT_TABLES
from mrjax.scan.stacked import grouped_run, join_blocks, stack_by_trait, stack_parts

TRAITS = ["exp_b", "exp_a", "exp_c"]  # scan order, deliberately not sorted


def _table(rng, names, rows_each, extra=None):
    """A table with rows of ``names`` interleaved (as an estimate table's rows come)."""
    labels = [name for name, n in zip(names, rows_each) for _ in range(n)]
    order = rng.permutation(len(labels))
    frame = pd.DataFrame({
        "exposure": np.array(labels, dtype=object)[order],
        "b": rng.normal(size=len(labels)),
        "nsnp": rng.integers(3, 30, len(labels)),
    })
    if extra:
        frame[extra] = rng.normal(size=len(frame))
    return frame


def _reference(blocks_tables, directions):
    """The plain join: per direction, per trait in scan order, the trait's rows of each block in
    block order (table order within a block), with the direction as the first column."""
    pieces = []
    for direction in directions:
        for name in TRAITS:
            for tables in blocks_tables:
                table = tables.get(direction)
                if table is None:
                    continue
                part = table[table["exposure"] == name]
                if len(part):
                    pieces.append(part.assign(direction=direction))
    joined = pd.concat(pieces, ignore_index=True)
    joined.insert(0, "direction", joined.pop("direction"))
    return joined


def _blocks(blocks_tables):
    """Each block as ``stack_by_trait`` keeps it: ``{direction: {table: [Run]}}`` (every table of
    the scan given the same frame, so each is checked)."""
    out = []
    for tables in blocks_tables:
        block = {}
        for direction, table in tables.items():
            names = sorted(set(table["exposure"]), key=TRAITS.index)
            estimate_tables = {t: table for t in TRAIT_TABLES if t != "instruments"}
            block[direction] = stack_by_trait(estimate_tables, table, "exposure", names)
        out.append(block)
    return out


def test_grouped_run_holds_each_trait_rows_in_table_order():
    rng = np.random.default_rng(1)
    table = _table(rng, TRAITS, [4, 0, 7])
    run = grouped_run(table, table["exposure"], TRAITS)
    parts = run.parts()
    assert list(parts) == ["exp_b", "exp_c"]  # a trait without rows is left out
    for name, part in parts.items():
        pdt.assert_frame_equal(part, table[table["exposure"] == name].reset_index(drop=True))
    assert run.ends.tolist() == [0, 4, 4, 11]


def test_join_blocks_equals_the_per_trait_join_across_blocks_and_directions():
    rng = np.random.default_rng(2)
    blocks_tables = [
        {FORWARD: _table(rng, ["exp_a", "exp_c"], [3, 5]), REVERSE: _table(rng, ["exp_c"], [2])},
        {FORWARD: _table(rng, ["exp_b", "exp_a"], [6, 2]), REVERSE: _table(rng, ["exp_b", "exp_a"], [1, 4])},
        {FORWARD: _table(rng, ["exp_c"], [1])},
    ]
    config = SimpleNamespace(directions=(FORWARD, REVERSE))
    joined = join_blocks(_blocks(blocks_tables), TRAITS, config)
    expected = _reference(blocks_tables, config.directions)
    for table in TRAIT_TABLES:
        pdt.assert_frame_equal(joined[table], expected, check_dtype=True)


def test_join_blocks_with_differing_columns_joins_the_per_trait_pieces():
    rng = np.random.default_rng(3)
    blocks_tables = [
        {FORWARD: _table(rng, ["exp_a", "exp_b"], [2, 3])},
        {FORWARD: _table(rng, ["exp_a", "exp_c"], [4, 1], extra="presso_only")},
    ]
    config = SimpleNamespace(directions=(FORWARD,))
    joined = join_blocks(_blocks(blocks_tables), TRAITS, config)["results"]
    # the plain join of the per-trait pieces (each trait's pieces joined first, as pandas unions columns)
    per_trait = []
    for name in TRAITS:
        chunks = [t[FORWARD][t[FORWARD]["exposure"] == name] for t in blocks_tables]
        chunks = [c for c in chunks if len(c)]
        per_trait.append(pd.concat(chunks).reset_index(drop=True))
    expected = pd.concat(per_trait, ignore_index=True).assign(direction=FORWARD)
    expected.insert(0, "direction", expected.pop("direction"))
    pdt.assert_frame_equal(joined, expected)
    assert joined["presso_only"].isna().sum() == 5  # rows of the block without the column


def test_stack_parts_keeps_frames_of_other_types_apart():
    same = [("exp_a", pd.DataFrame({"b": [1.0, 2.0]})), ("exp_b", pd.DataFrame({"b": [3.0]})),
            ("exp_c", pd.DataFrame({"b": []}, dtype=float))]
    runs = stack_parts(same)
    assert len(runs) == 1 and runs[0].names == ("exp_a", "exp_b")
    pdt.assert_frame_equal(runs[0].parts()["exp_b"], pd.DataFrame({"b": [3.0]}))

    mixed = [("exp_a", pd.DataFrame({"b": [1.0]})), ("exp_b", pd.DataFrame({"b": ["text"]}))]
    runs = stack_parts(mixed)
    assert [r.names for r in runs] == [("exp_a",), ("exp_b",)]
    assert [r.frame["b"].dtype for r in runs] == [frame["b"].dtype for _, frame in mixed]  # no column retyped
    assert stack_parts([("exp_a", pd.DataFrame({"b": []}))]) == []
