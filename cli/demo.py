"""``mrjax demo``: the full bi-directional scan on the example data bundled with mrjax."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrjax_cli._common import (
    CacheDir,
    Debug,
    Methods,
    NBoot,
    NoCache,
    PressoDraws,
    ProgressBars,
    Seed,
    check_out_folder,
    configure_jax,
    user_errors,
)
from mrjax_cli.scan import summarise


def demo(
    out: Annotated[Path, typer.Option("--out", "-O", help="Output folder (created if needed).")] = Path("mrjax_demo"),
    method: Methods = None,
    n_boot: NBoot = 1000,
    presso_draws: PressoDraws = 10_000,
    seed: Seed = 0,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
    debug: Debug = False,
) -> None:
    """Run the whole product on the bundled simulated example: a bi-directional scan of 10
    exposures against one outcome, with tables, figures and report.html."""
    from mrjax.scan import demo_config, run_scan

    check_out_folder(out)
    configure_jax(64, cache_dir, no_cache)
    with user_errors(debug), ProgressBars() as progress:
        config = demo_config(out, methods=tuple(method) if method else None, n_boot=n_boot, presso_draws=presso_draws, seed=seed)
        result = run_scan(config, progress=progress)
    summarise(result, out)
