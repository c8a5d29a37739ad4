"""Checkpoint files: how a killed scan resumes with identical outputs.

Every finished block of pairs (:mod:`mrjax.scan.blocks`) is written to
``DIR/.checkpoints/<fingerprint>/block__<chunk>-<part>.pkl``, each chunk's block plan to
``plan__<chunk>.pkl`` and each outcome's own audit to ``outcome_instruments__<name>.pkl``,
atomically (temporary file, then rename). The fingerprint hashes every setting that changes a
number plus the inputs' checksums (:meth:`mrjax.scan.config.ScanConfig.fingerprint`), so a
re-run with the same command reloads the finished blocks and computes only the others,
starting at the first unfinished one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import time
from pathlib import Path

import pandas as pd

from mrjax.scan.errors import ScanInterrupted

#: Checkpoint of the outcome side (its read audit; bi-directional: its instrument selection).
OUTCOME_SIDE = "outcome_instruments"

#: Layout of a block's checkpoint and of the chunk plan (part of the folder name, so an older
#: layout is never loaded): ``stacked`` = ``{direction: {table: [mrjax.scan.stacked.Run]}}``;
#: ``balanced``: exposures cut by :func:`mrjax.scan.blocks.chunk_exposures` (before it, chunks of
#: exactly ``chunk_size`` and a remainder, so chunk ``i`` held other exposures).
FORMAT = "stacked-balanced"

#: Environment variable read by the scan: raise :class:`ScanInterrupted` after this many
#: blocks have been checkpointed (how the resumption test kills a scan half-way).
STOP_AFTER_ENV = "MRJAX_SCAN_STOP_AFTER"


class Checkpoints:
    """Checkpoint files in ``DIR/.checkpoints/<fingerprint>/``: finished blocks, the chunks'
    block plans and the outcomes' own audits.

    Each is one pickle, written to a temporary file and then renamed, so a killed scan leaves
    either the whole file or nothing.
    """

    def __init__(self, out: Path, fingerprint: str):
        self.folder = Path(out) / ".checkpoints" / f"{fingerprint}-{FORMAT}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.written = 0

    def discard(self) -> None:
        """Remove this fingerprint's checkpoints (a scan that failed for good)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def path(self, direction: str, trait: str) -> Path:
        safe = hashlib.sha1(trait.encode()).hexdigest()[:10]
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in trait)[:60]
        return self.folder / f"{direction}__{stem}__{safe}.pkl"

    def load(self, direction: str, trait: str) -> dict[str, pd.DataFrame] | None:
        """One outcome's own audit tables (``direction`` :data:`OUTCOME_SIDE`), None if absent."""
        return _read(self.path(direction, trait))

    def save(self, direction: str, trait: str, tables: dict[str, pd.DataFrame]) -> None:
        """Write one outcome's own audit tables atomically."""
        _write(self.path(direction, trait), tables)

    def block_path(self, name: str) -> Path:
        return self.folder / f"block__{name}.pkl"

    def has_block(self, name: str) -> bool:
        return self.block_path(name).is_file()

    def load_block(self, name: str) -> dict:
        """A finished block's ``{direction: {exposure: tables}}``."""
        return _read(self.block_path(name))

    def save_block(self, name: str, pieces: dict) -> None:
        """Write one finished block atomically; count it towards ``MRJAX_SCAN_STOP_AFTER``."""
        _write(self.block_path(name), pieces)
        self.written += 1
        limit = os.environ.get(STOP_AFTER_ENV)
        if limit and self.written >= int(limit):
            raise ScanInterrupted(f"stopped after {self.written} checkpointed blocks ({STOP_AFTER_ENV}={limit})")

    def load_plan(self, chunk: int) -> list | None:
        """The blocks of chunk ``chunk`` (:class:`mrjax.scan.blocks.Block`), None before it was planned."""
        return _read(self.folder / f"plan__{chunk:05d}.pkl")

    def save_plan(self, chunk: int, blocks: list) -> None:
        _write(self.folder / f"plan__{chunk:05d}.pkl", blocks)


def _read(path: Path):
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        return pickle.load(handle)


def _write(path: Path, value) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


#: Name of the marker file of a scan in progress (or killed, or failed).
RUNNING_NAME = "RUNNING"


class RunningMarker:
    """``DIR/RUNNING`` while a scan writes into ``DIR``: created at the start (process id,
    start time), rewritten with the error when the scan fails, removed once the manifest is
    written — so a folder with every table but no report looks unfinished, as it is."""

    def __init__(self, out: Path):
        self.path = Path(out) / RUNNING_NAME
        self.path.write_text(f"scan running since {time.strftime('%Y-%m-%d %H:%M:%S')} (process {os.getpid()})\n")

    def failed(self, error: BaseException) -> None:
        message = " ".join(str(error).split()) or type(error).__name__
        self.path.write_text(f"scan stopped at {time.strftime('%Y-%m-%d %H:%M:%S')}: {type(error).__name__}: {message}\n"
                             "re-run the same command to resume\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
