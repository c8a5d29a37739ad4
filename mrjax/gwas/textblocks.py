"""Text GWAS files as blocks of whole lines, each parsed with pyarrow, optionally prefiltered on p.

A block is ``block_size`` bytes of decompressed text cut after its last newline, with the
file line number of its first line, so every error and every skipped line can name its real
line. gzip/bgzip is decompressed with python-isal (``isal.igzip``: the same stream as zlib,
~2x faster), one block at a time: memory stays bounded by the block size whatever the file's.

``prefilter`` makes reading with ``p_max`` cheap: polars parses only the p-value column(s) of a
block (``pl.read_csv`` with a one-column projection), and only the lines whose p may pass (or
is missing, 0 or unparsable) are handed to pyarrow and the normaliser — the same parser and
options as a full read, so the rows kept are identical; the others are counted as not
significant without ever being parsed whole.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
from isal import igzip
from isal.igzip_lib import IsalError

from mrjax.gwas.formats import WHITESPACE, Layout

NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", ".", "-nan", "#N/A", "#NA"]
PREFILTER_MAX_FRACTION = 0.05  # above this share of candidate lines a block is parsed whole


class Block:
    """Whole lines of decompressed text and the file line number of the first."""

    def __init__(self, data: bytes, first_line: int):
        self.data = data
        self.first_line = first_line  # 1-based line number in the file of the block's first line
        self._ends = None

    @property
    def ends(self) -> np.ndarray:
        """Offset of each line's newline (the last line's end when it has none)."""
        if self._ends is None:
            ends = np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 10)
            if not self.data.endswith(b"\n"):
                ends = np.append(ends, len(self.data))
            self._ends = ends
        return self._ends

    @property
    def lines(self) -> int:
        """Physical lines in the block (blank ones included)."""
        return len(self.ends)

    def starts(self) -> np.ndarray:
        return np.concatenate([[0], self.ends[:-1] + 1])

    def blank_lines(self) -> np.ndarray:
        """Indices of empty lines (pyarrow skips them; they are no data row)."""
        lengths = self.ends - self.starts()
        blank = lengths == 0
        short = np.flatnonzero(lengths == 1)
        if len(short):
            view = np.frombuffer(self.data, dtype=np.uint8)
            blank[short[view[self.starts()[short]] == 13]] = True  # "\r\n"
        return np.flatnonzero(blank)


_LEADING = re.compile(rb"^[ \t]+", re.MULTILINE)
_TRAILING = re.compile(rb"[ \t]+(?=\r?$)", re.MULTILINE)
_RUNS = re.compile(rb"[ \t]+")


def spaces_to_tabs(data: bytes) -> bytes:
    """Space-aligned columns (PLINK 1.9 output) as tab-separated: leading and trailing blanks of
    each line removed, every run of blanks one tab."""
    return _RUNS.sub(b"\t", _TRAILING.sub(b"", _LEADING.sub(b"", data)))


def _open(path: Path, compressed: bool):
    if compressed:
        return igzip.open(path, "rb")
    return open(path, "rb")


DECOMPRESSION_ERRORS = (OSError, EOFError, ValueError, IsalError)


def iter_blocks(path: Path, layout: Layout, block_size: int):
    """Blocks of whole data lines after the meta lines and the header."""
    errors = DECOMPRESSION_ERRORS
    line = layout.skip_rows + 2
    try:
        handle = _open(path, layout.compressed)
        for _ in range(layout.skip_rows + 1):
            handle.readline()
    except errors as err:
        raise ValueError(f"{path}: cannot read the header ({err}); the file is corrupt or truncated") from err
    with handle:
        while True:
            try:
                chunk = handle.read(block_size)
                tail = handle.readline() if chunk and not chunk.endswith(b"\n") else b""
            except errors as err:
                raise ValueError(f"{path}: cannot read after line {line - 1} ({err}); the file is corrupt or truncated") from err
            if not chunk:
                return
            data = chunk + tail if tail else chunk
            if layout.delimiter == WHITESPACE:
                data = spaces_to_tabs(data)
            block = Block(data, line)
            yield block
            line += block.lines


def _delimiter(layout: Layout) -> str:
    return "\t" if layout.delimiter == WHITESPACE else layout.delimiter


def parse(data: bytes, layout: Layout, wanted: list[str], types: dict, on_bad) -> pa.Table:
    """pyarrow parse of whole lines (no header) into the ``wanted`` columns.

    ``on_bad(number, text, expected, actual)`` is called for a line with the wrong number of
    fields (``number``: 1-based line within ``data``) and returns ``"skip"`` or ``"error"``.
    """
    read_options = pacsv.ReadOptions(column_names=list(_unique(layout.header)), use_threads=False,
                                     block_size=max(1 << 20, len(data) + 1))
    # Two checks the parser need not make when a scan of the block (well under 1 ms per 16 MB)
    # shows they can find nothing: quote handling without a quote character, and UTF-8
    # validation of pure ASCII (valid UTF-8). Together ~8% of the parse.
    parse_options = pacsv.ParseOptions(
        delimiter=_delimiter(layout), quote_char='"' if b'"' in data else False,
        invalid_row_handler=lambda row: on_bad(row.number, row.text, row.expected_columns, row.actual_columns),
    )
    convert_options = pacsv.ConvertOptions(
        include_columns=list(wanted), column_types=types, check_utf8=not data.isascii(),
        null_values=NULL_VALUES, strings_can_be_null=True, quoted_strings_can_be_null=True,
    )
    table = pacsv.read_csv(pa.py_buffer(data), read_options, parse_options, convert_options)
    return table.rename_columns(list(wanted))


def _unique(header) -> list[str]:
    """Header names made unique (a repeated name gets ``#2``, ``#3`` …) so pyarrow can address them."""
    seen: dict[str, int] = {}
    out = []
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def prefilter(block: Block, layout: Layout, floats: list[str], strings: list[str]):
    """polars parse of a few columns of a block: ``{column: numpy array}`` (floats with NaN for
    missing, strings as object arrays with None), or ``None`` when polars cannot parse them or
    counts lines differently (then the block is parsed whole)."""
    header = list(layout.header)
    names = [f"c{i}" for i in range(len(header))]
    schema = {name: pl.String for name in names}
    picked = []
    for column in floats + strings:
        index = header.index(column)
        schema[names[index]] = pl.Float64 if column in floats else pl.String
        picked.append(index)
    try:
        frame = pl.read_csv(
            io.BytesIO(block.data), separator=_delimiter(layout), has_header=False, columns=picked, schema=schema,
            null_values=NULL_VALUES, quote_char='"',
        )
    except pl.exceptions.PolarsError:  # what polars cannot read is left to pyarrow's exact errors
        return None
    if frame.height != block.lines:
        return None
    out = {}
    for column in floats + strings:
        series = frame.get_column(names[header.index(column)])
        out[column] = series.to_numpy() if column in floats else series.to_numpy().astype(object)
    return out


def take_lines(block: Block, index: np.ndarray) -> bytes:
    """The lines ``index`` of a block, joined (each with its newline)."""
    starts, ends = block.starts(), block.ends + 1
    data = block.data
    text = b"".join(data[starts[i]:ends[i]] for i in index)
    return text if text.endswith(b"\n") else text + b"\n"


def find_non_numeric(path: Path, layout: Layout, column: str, block_size: int, limit: int = 5) -> str:
    """Second pass over one column as text: the first rows whose value is not a number."""
    found, offset = [], 0
    for block in iter_blocks(path, layout, block_size):
        table = parse(block.data, layout, [column], {column: pa.string()}, lambda *a: "skip")
        values = pd.Series(table.column(0).to_pylist(), dtype=object)
        parsed = pd.to_numeric(values, errors="coerce")
        for i in np.flatnonzero(values.notna().to_numpy() & parsed.isna().to_numpy()):
            found.append(f"data row {offset + i} (line {block.first_line + i}): {values.iloc[i]!r}")
        offset += table.num_rows
        if len(found) > limit:
            break
    shown = ", ".join(found[:limit])
    more = " and more" if len(found) > limit else ""
    return f"non-numeric values at {shown}{more}" if found else "a value that is not a number"
