"""What every command shares: JAX set-up, error reporting, progress bars, common options."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Exit status for a user mistake (bad file, option or data); an unexpected failure exits 1.
USER_ERROR = 2

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback when something fails.")]
Precision = Annotated[int, typer.Option("--precision", help="Floating-point precision of the estimation: 64 or 32.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of every random draw (bootstrap, MR-PRESSO); each trait's stream depends only on it and the trait.")]
NBoot = Annotated[int, typer.Option("--n-boot", help="Bootstrap replicates for the median, mode and Egger-bootstrap methods.")]
Methods = Annotated[
    list[str] | None,
    typer.Option("--method", "-m", help="MR method id (repeat for several), e.g. ivw, egger_regression, weighted_median. Default: TwoSampleMR's default set."),
]


CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Private folder for JAX's persistent compilation cache: re-runs skip most compilation (trusted code only)."),
]


def configure_jax(precision: int, cache_dir: Path | None = None) -> None:
    """The one place mrjax sets JAX's global configuration.

    float64 stays enabled (``import mrjax`` turns it on, and the p-value code needs it); with
    ``--precision 32`` the estimators receive float32 batches instead. Matrix products use
    full precision so TF32 never creeps into float32 runs on GPUs. ``cache_dir`` turns on
    JAX's persistent compilation cache there (the cache holds executable code: use a folder
    only you can write).
    """
    import jax

    if precision not in (32, 64):
        raise typer.BadParameter(f"precision must be 64 or 32, not {precision}", param_hint="--precision")
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


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
    from mrjax.pipeline import ScanError

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


def _sentence(error: BaseException) -> str:
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(text.split()) or type(error).__name__


class ProgressBars:
    """A callable ``progress(stage, done, total)`` drawing one rich bar per stage."""

    def __init__(self, quiet: bool = False):
        self.progress = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err_console, transient=False, disable=quiet or not sys.stderr.isatty() and not os.environ.get("MRJAX_PROGRESS"),
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> "ProgressBars":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def parse_mapping(pairs: list[str] | None, option: str) -> dict[str, str]:
    """``["beta=BETA", "se=SE"]`` → ``{"beta": "BETA", "se": "SE"}`` (a bad pair is a user error)."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            fail(f"{option} expects NAME=COLUMN, got {pair!r}", f"e.g. {option} beta=BETA {option} pval=P")
        mapping[key.strip()] = value.strip()
    return mapping
