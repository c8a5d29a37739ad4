"""Atomic output files and the run manifest.

Every file of a scan's output folder is written through :func:`atomic_path`: the content goes
to a temporary file in the destination folder, is flushed and ``fsync``-ed, and only then
renamed over the destination with ``os.replace`` (atomic on POSIX and Windows within one file
system). A crash or an exception in the writer therefore leaves either the previous file or
no file — never a half-written one — and the temporary file is removed.

The manifest (:func:`build_manifest`) records what is needed to reproduce a run bit for bit:
the parameters and seed, SHA-256 checksums of the input files, the versions of mrjax, JAX,
NumPy, pandas and Python, the platform, and the wall time of each pipeline stage.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

MANIFEST_NAME = "manifest.json"
FIGURE_FORMATS = ("png", "svg")
# SVG text stays text (editable in a vector editor, smaller, faster to write); ids use a fixed salt.
SAVE_RC = {"svg.hashsalt": "mrjax", "svg.fonttype": "none"}
PNG_DPI = 120  # figures lay themselves out (tight_layout), so no costly bbox_inches="tight" pass
# No creation date in the files, so the same figure gives the same bytes on every run.
FIGURE_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it atomically becomes ``path``.

    The caller writes the whole file to the yielded path. When the ``with`` block ends
    normally the file is fsync-ed and moved over ``path`` with :func:`os.replace` (then the
    folder entry is fsync-ed where the OS allows). When the block raises, the temporary file
    is deleted and ``path`` is left untouched. The parent folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Persist a rename (POSIX); silently a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed run left in ``folder`` (and below): the
    ``.NAME.XXXX.tmp`` files of :func:`atomic_path` and the checkpoints' ``*.tmpPID``
    files of processes that no longer run. Returns what was removed."""
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    for path in Path(folder).rglob("*.tmp[0-9]*"):
        pid = path.suffix[len(".tmp"):]
        if path.is_file() and pid.isdigit() and not _process_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_with(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Atomically create ``path`` by calling ``writer(temporary_path)``; returns ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy without ``attrs`` (written files hold the table alone; audit records go beside it)."""
    out = frame.copy(deep=False)
    out.attrs = {}
    return out


def write_tsv(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Atomically write ``frame`` as tab-separated text (no index, missing values as ``NA``)."""
    frame = _plain(frame)
    return write_with(path, lambda tmp: frame.to_csv(tmp, sep="\t", index=False, na_rep="NA"))


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Atomically write ``frame`` as parquet (pyarrow, zstd, no index)."""
    frame = _plain(frame)
    return write_with(path, lambda tmp: frame.to_parquet(tmp, index=False, compression="zstd"))


def write_table(folder: str | os.PathLike, stem: str, frame: pd.DataFrame, formats=("tsv",)) -> list[Path]:
    """Write ``frame`` as ``folder/stem.<fmt>`` for each format in ``formats`` (tsv, parquet)."""
    writers = {"tsv": write_tsv, "parquet": write_parquet}
    unknown = set(formats) - set(writers)
    if unknown:
        raise ValueError(f"unknown table format(s) {sorted(unknown)}; use tsv or parquet")
    return [writers[fmt](Path(folder) / f"{stem}.{fmt}", frame) for fmt in formats]


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def to_json(obj: Any) -> str:
    """Serialise ``obj`` as indented JSON (NumPy scalars/arrays, paths and frames allowed)."""
    return json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return write_text(path, to_json(obj))


def write_figure(folder: str | os.PathLike, stem: str, figure, formats: Iterable[str] = FIGURE_FORMATS) -> list[Path]:
    """Atomically save a matplotlib ``figure`` as ``folder/stem.png`` and ``.svg``; returns the paths.

    The figure is not closed (the caller may embed it elsewhere first). The files carry no
    creation date and SVG ids use a fixed salt, so identical figures give identical bytes;
    SVG text is kept as text (``svg.fonttype = "none"``) so journals' editors can restyle it.
    """
    import matplotlib

    paths = []
    for fmt in formats:
        target = Path(folder) / f"{stem}.{fmt}"
        with matplotlib.rc_context(SAVE_RC):
            write_with(target, lambda tmp, fmt=fmt: figure.savefig(
                tmp, format=fmt, dpi=PNG_DPI, metadata=FIGURE_METADATA.get(fmt)))
        paths.append(target)
    return paths


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def input_checksums(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """One record per input file: ``path`` (absolute), ``bytes``, ``sha256``.

    A PLINK prefix (no such file, but ``prefix.bed`` exists) expands to its ``.bed/.bim/.fam``.
    Raises ``ValueError`` naming the path when an input does not exist.
    """
    records = []
    for raw in paths:
        path = Path(raw)
        members = [path]
        if not path.is_file() and Path(f"{path}.bed").is_file():
            members = [Path(f"{path}.{ext}") for ext in ("bed", "bim", "fam")]
        for member in members:
            if not member.is_file():
                raise ValueError(f"input file {member} does not exist; cannot checksum it for the manifest")
            records.append({"path": str(member.resolve()), "bytes": member.stat().st_size, "sha256": sha256_file(member)})
    return records


def software_versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on."""
    import jax
    import jaxlib
    import scipy

    try:
        from mrjax import __version__ as mrjax_version
    except ImportError:  # pragma: no cover - only during a partial install
        mrjax_version = "unknown"
    return {
        "mrjax": mrjax_version,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def platform_info() -> dict[str, Any]:
    """The machine a run used: OS, CPU architecture, CPU count, JAX backend and devices, x64 flag."""
    import jax

    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "python_executable": sys.executable,
    }


class StageTimer:
    """Wall-clock time per pipeline stage: ``with timer("clump"): ...``; ``timer.seconds``.

    Re-entering a stage adds to its total, so a stage run per trait accumulates.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def build_manifest(
    *,
    parameters: Mapping[str, Any],
    seed: int | None,
    inputs: Iterable[str | os.PathLike] = (),
    timings: Mapping[str, float] | StageTimer | None = None,
    outputs: Iterable[str | os.PathLike] = (),
    command: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a run, as a JSON-ready dict.

    Keys: ``created_utc``, ``command``, ``seed``, ``parameters``, ``inputs`` (path, bytes,
    sha256 per file, see :func:`input_checksums`), ``versions`` (:func:`software_versions`),
    ``platform`` (:func:`platform_info`), ``timings_s`` (stage -> seconds, plus ``total``),
    ``outputs`` (file names) and any ``extra`` entries.
    """
    if isinstance(timings, StageTimer):
        timings = timings.seconds
    timings = {str(k): round(float(v), 4) for k, v in (timings or {}).items()}
    if timings:
        timings["total"] = round(sum(v for k, v in timings.items() if k != "total"), 4)
    manifest = {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else " ".join(sys.argv),
        "seed": seed,
        "parameters": dict(parameters),
        "inputs": input_checksums(inputs),
        "versions": software_versions(),
        "platform": platform_info(),
        "timings_s": timings,
        "outputs": sorted(Path(p).name for p in outputs),
    }
    if extra:
        manifest.update(extra)
    return manifest


def write_manifest(folder: str | os.PathLike, **kwargs) -> Path:
    """Build the manifest (:func:`build_manifest` arguments) and write ``folder/manifest.json``."""
    return write_json(Path(folder) / MANIFEST_NAME, build_manifest(**kwargs))
