"""What every command shares: JAX set-up, error reporting, progress bars, common options."""

from __future__ import annotations

import gzip
import os
import sys
import time
import warnings
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Exit status for a user mistake (bad file, option or data); an unexpected failure exits 1.
USER_ERROR = 2

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

def _method_ids() -> str:
    from mrjax.methods import METHODS

    return ", ".join(METHODS)


def _formats() -> str:
    from mrjax.gwas.formats import FORMATS

    return ", ".join(FORMATS)


def in_range(low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False):
    """A typer option callback that rejects values outside ``low .. high`` (open ends where
    asked): the one rule every numeric option of the CLI is checked with (exit 2, naming the
    option)."""
    def check(value):
        if value is None:
            return value
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            span = f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"
            raise typer.BadParameter(f"{value:g} is outside {span}")
        return value

    return check


#: The largest seed (seeds are non-negative integers below 2^63).
MAX_SEED = 2**63 - 1

# Every numeric option is range-checked here, by typer, the same way in every command (a value
# out of range exits 2 naming the option).
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback when something fails.")]
Precision = Annotated[int, typer.Option("--precision", help="Floating-point precision of the estimation: 64 or 32.", min=32, max=64)]
Seed = Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of every random draw (bootstrap, MR-PRESSO); each trait's stream depends only on it and the trait.")]
NBoot = Annotated[int, typer.Option("--n-boot", min=1, help="Bootstrap replicates for the median, mode and Egger-bootstrap methods.")]
PressoDraws = Annotated[int, typer.Option("--presso-draws", "--draws", min=0, help="MR-PRESSO null draws per trait (0 turns MR-PRESSO off).")]
Methods = Annotated[
    list[str] | None,
    typer.Option("--method", "-m", help=f"MR method id (repeat for several). Default: TwoSampleMR's default set. Ids: {_method_ids()}."),
]
Format = Annotated[str | None, typer.Option("--format", help=f"Force the GWAS reader (default: detected from the header): {_formats()}.")]
OutFolder = Annotated[Path, typer.Option("--out", "-O", help="Output folder (created if needed).")]
OutFile = Annotated[Path, typer.Option("--out", "-O", help="Output file; the format follows the extension: .tsv, .csv or .parquet.")]
TABLE_SUFFIXES = (".tsv", ".csv", ".parquet")


CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Folder of JAX's persistent compilation cache (default: mrjax/jax in the user's cache folder, $XDG_CACHE_HOME or ~/.cache): re-runs skip most compilation."),
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not use the persistent compilation cache.")]
Devices = Annotated[int | None, typer.Option("--devices", min=1, help="Use at most N of the local devices JAX sees (GPUs, or forced CPU devices); default: all. Results are the same for any N.")]

def configure_jax(precision: int, cache_dir: Path | None = None, no_cache: bool = False, devices: int | None = None) -> None:
    """The one place mrjax sets JAX's global configuration.

    float64 stays enabled (the p-value code needs it); with ``--precision 32`` the estimators
    receive float32 batches instead. Matrix products use full precision so TF32 never creeps
    into float32 runs on GPUs. JAX's persistent compilation cache is on by default in
    ``mrjax.compilation_cache.default_cache_dir()`` (or ``cache_dir``), so a second run in a new process skips most
    compilation; ``no_cache`` or ``MRJAX_NO_CACHE=1`` turns it off. The cache holds
    executable code, so its folder is created private (0700); JAX writes each entry to a
    temporary file and renames it, so two processes may share it. ``devices``: the engine
    spreads its calls over at most that many local devices (``mrjax.engine.set_devices``; more
    than JAX sees is a user error).
    """
    import jax

    if precision not in (32, 64):
        fail(f"--precision must be 64 or 32, not {precision}", "use --precision 64 (default) or 32")
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")
    if devices is not None:
        from mrjax import engine

        seen = jax.local_devices()
        if devices > len(seen):
            fail(f"--devices {devices}, but JAX sees {len(seen)} device(s) ({', '.join(str(d) for d in seen)})",
                 f"use --devices {len(seen)} or fewer")
        engine.set_devices(devices)
    if no_cache:
        return
    from mrjax.compilation_cache import use_compilation_cache

    try:
        use_compilation_cache(cache_dir)
    except OSError as error:
        if cache_dir is not None:
            fail(f"cannot create the compilation cache folder {str(cache_dir)!r}: {error.strerror}", "pass another --cache-dir or --no-cache")
        # the default folder is a convenience: without it mrjax compiles as before


def fail(message: str, hint: str = "") -> None:
    """Print one sentence (and a hint) to stderr and exit with :data:`USER_ERROR`."""
    err_console.print(f"[bold red]Error:[/] {message}")
    if hint:
        err_console.print(f"[dim]Hint:[/] {hint}")
    raise typer.Exit(USER_ERROR)


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn library exceptions into one clear sentence and a non-zero exit.

    ``ScanError``/``ValueError``/``FileNotFoundError`` are user mistakes (exit
    :data:`USER_ERROR`); anything else is a bug (exit 1, asking for ``--debug``). With
    ``debug`` the exception propagates with its traceback.
    """
    from mrjax.scan import ScanError

    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except ScanError as error:
        if debug:
            raise
        fail(_sentence(error), error.hint or "rerun with --debug for details")
    except FileNotFoundError as error:
        if debug:
            raise
        name = error.filename or str(error)
        fail(f"file not found: {name}", "check the path")
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        if debug:
            raise
        fail(f"a compressed input is corrupt or truncated ({_sentence(error)})", "check the file downloaded completely (gzip -t FILE)")
    except OSError as error:  # read-only file system, no space, no permission
        if debug:
            raise
        where = f" {error.filename!r}" if error.filename else ""
        fail(f"cannot read or write{where}: {error.strerror or _sentence(error)}", "check the path, its permissions and the free space")
    except (ValueError, KeyError, IsADirectoryError, PermissionError) as error:
        if debug:
            raise
        fail(_sentence(error), "check the input file and options; rerun with --debug for the traceback")
    except Exception as error:  # a bug, not a user mistake
        if debug:
            raise
        err_console.print(f"[bold red]Internal error:[/] {type(error).__name__}: {_sentence(error)}")
        err_console.print("[dim]Hint:[/] rerun with --debug and report the traceback")
        raise typer.Exit(1)


def check_out_folder(out: Path, option: str = "--out") -> None:
    """Fail (exit 2) before any computing when ``out`` cannot be an output folder: it is a
    file, or it cannot be created or written (read-only file system, no permission)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        fail(f"{option} {str(out)!r} is an existing file, not a folder", f"give {option} a folder name (it is created)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".mrjax_write_test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        fail(f"cannot write to {option} {str(out)!r}: {error.strerror or error}", "choose a folder you can write to")


def check_out_file(path: Path, option: str = "--out") -> None:
    """Fail (exit 2) before any computing when ``path`` has no known table extension or its
    folder cannot be written."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        fail(f"{option} {str(path)!r} has no known table extension", f"end it in {', '.join(TABLE_SUFFIXES)}")
    if path.is_dir():
        fail(f"{option} {str(path)!r} is a folder, not a file", "give a file name ending in .tsv, .csv or .parquet")
    check_out_folder(path.parent if str(path.parent) else Path("."), option=f"{option}'s folder")


def report_failures(table, what: str) -> None:
    """Say which estimates failed (rows with a non-empty ``reason``, grouped by method when
    there is one) and exit 2 when nothing at all was estimated."""
    if table is None or not len(table) or "reason" not in table.columns:
        return
    failed = table["reason"].fillna("").astype(str) != ""
    if not failed.any():
        return
    group = "method" if "method" in table.columns else None
    parts = (table[failed].groupby([group, "reason"], sort=False).size() if group
             else table[failed].groupby("reason", sort=False).size())
    for key, n in parts.items():
        label = f"{key[0]}: {n} {what} ({key[1]})" if group else f"{n} {what} ({key})"
        err_console.print(f"[yellow]not estimated[/] {label}")
    if failed.all():
        fail(f"no {what} could be estimated", "see the reason column; most often there are too few instruments")


def print_drops(audit, what: str = "rows") -> None:
    """One line per drop reason (``audit``: an audit table with ``step`` and ``reason``)."""
    if audit is None or not len(audit):
        return
    counts = audit.groupby(["step", "reason"], sort=False).size()
    err_console.print(f"dropped {int(counts.sum())} {what}:")
    for (step, reason), n in counts.items():
        err_console.print(f"  {step}: {n} {reason}")


def _sentence(error: BaseException) -> str:
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(text.split()) or type(error).__name__


class ProgressBars:
    """A callable ``progress(stage, done, total)``: in a terminal one rich bar per stage,
    advancing as work completes; otherwise (piped, logged) one line per stage when it
    completes, with its time."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.live = not quiet and (sys.stderr.isatty() or bool(os.environ.get("MRJAX_PROGRESS")))
        self.progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err_console, transient=False, disable=not self.live,
        )
        self.tasks: dict[str, int] = {}
        self.started: dict[str, float] = {}
        self.logged: set[str] = set()

    def __enter__(self) -> "ProgressBars":
        self.progress.start()
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.showwarning = _note  # Python warnings become one-line notes
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()
        self._warnings.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self.started.setdefault(stage, now)
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)
        if not self.live and not self.quiet and done >= total and stage not in self.logged:
            self.logged.add(stage)
            err_console.print(f"{stage}: {done}/{total} done in {now - self.started[stage]:.1f} s")


def _note(message, category, filename, lineno, file=None, line=None) -> None:
    err_console.print(f"[dim]note:[/] {' '.join(str(message).split())}")


def parse_mapping(pairs: list[str] | None, option: str) -> dict[str, str]:
    """``["beta=BETA", "se=SE"]`` → ``{"beta": "BETA", "se": "SE"}`` (a bad pair is a user error)."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            fail(f"{option} expects NAME=COLUMN, got {pair!r}", f"e.g. {option} beta=BETA {option} pval=P")
        mapping[key.strip()] = value.strip()
    return mapping


def check_panel(prefix: str) -> None:
    """Stop (exit 2) when the PLINK prefix of an LD reference lacks one of its three files."""
    from mrjax.scan import ScanError

    missing = [prefix + s for s in (".bed", ".bim", ".fam") if not Path(prefix + s).is_file()]
    if missing:
        raise ScanError(f"LD reference {prefix!r} is incomplete: {', '.join(missing)} not found",
                        "--ld-ref takes the PLINK prefix, e.g. data/eur for data/eur.bed/.bim/.fam")
