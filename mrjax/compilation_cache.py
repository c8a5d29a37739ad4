"""JAX's persistent compilation cache for mrjax's kernels: a new Python process that calls the
same estimators on the same shapes loads their compiled code instead of compiling it again (the
731-analysis MV workload's first call: 36 s without, 11 s with, benchmarks/RESULTS.md). The
command line turns it on by default; in Python, call :func:`use_compilation_cache` once, before
the first estimate.

The cache holds executable code, so its folder is created private (0700). JAX writes each entry
to a temporary file and renames it, so processes may share one folder.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that turns the cache off (the tests set it).
NO_CACHE_ENV = "MRJAX_NO_CACHE"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mrjax/jax`` (``~/.cache/mrjax/jax`` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mrjax" / "jax"


def use_compilation_cache(folder: str | os.PathLike | None = None) -> Path | None:
    """Keep every compiled kernel in ``folder`` (default :func:`default_cache_dir`, created
    if missing) for later processes; returns the folder, or ``None`` when
    ``MRJAX_NO_CACHE`` is set. Raises ``OSError`` when the folder cannot be created."""
    if os.environ.get(NO_CACHE_ENV):
        return None
    import jax

    folder = Path(folder).expanduser() if folder is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder
