"""``mrjax simulate``: a simulation study from a preset or a TOML scenario file to a folder.

A scenario file holds :class:`mrjax.simulation.Scenario` fields at the top level (optionally
starting from ``preset = "name"``), an optional ``[grid]`` table of value lists whose Cartesian
product is run, or a list of ``[[scenarios]]`` tables::

    preset = "directional_pleiotropy"
    n_instruments = 30
    [grid]
    theta = [0.0, 0.05, 0.1]
    pleiotropy_fraction = [0.0, 0.3]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrjax_cli._common import in_range, Debug, Devices, ProgressBars, Seed, check_out_folder, configure_jax, err_console, user_errors


def load_scenarios(spec: str) -> tuple[list, list[str]]:
    """Scenarios named by ``spec`` (a preset name or a TOML file) and the grid axes varied."""
    from mrjax.simulation import PRESETS, as_scenario, scenario_grid

    if spec in PRESETS:
        return [PRESETS[spec]], []
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"scenario {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a TOML file")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    grid = document.pop("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
        raise ValueError(f"{path}: [grid] must map Scenario fields to lists of values")
    bases = document.pop("scenarios", None)
    if bases is None:
        bases = [document]
    elif document:
        raise ValueError(f"{path}: put fields either at the top level or in [[scenarios]], not both ({', '.join(document)})")
    scenarios = []
    for base in bases:
        base = as_scenario(base)
        scenarios += scenario_grid(base, **grid) if grid else [base]
    return scenarios, list(grid)


def run_simulation(scenario: str, replicates: int, out: Path, methods: str | None = None, seed: int = 0,
                   n_boot: int = 1000, alpha: float = 0.05, chunk_size: int | None = None, progress=None) -> dict:
    """The work behind ``mrjax simulate`` (usable without the CLI): run the study, write
    ``simulation.tsv`` (one row per scenario × method), ``scenarios.tsv`` (every field of every
    scenario) and the figures (``bias_coverage``, and ``power_curve`` when ``theta`` is a grid
    axis) into ``out``; returns ``{"results": DataFrame, "files": [paths]}``."""
    import pandas as pd

    from mrjax.estimators.common import Params
    from mrjax.report import simulation_plots
    from mrjax.simulation import resolve_methods, simulate

    scenarios, axes = load_scenarios(scenario)
    labels = [s.name or f"scenario_{i}" for i, s in enumerate(scenarios)]
    if len(set(labels)) != len(labels):
        raise ValueError("scenario names must differ; give each [[scenarios]] table a distinct name")
    method_ids = resolve_methods(methods)
    total = replicates * len(scenarios)
    done = 0

    def advance(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress("simulate", done, total)

    results = simulate(scenarios, replicates, method_ids, seed, chunk_size=chunk_size, params=Params(n_boot=n_boot),
                       alpha=alpha, progress=advance)
    fields = pd.DataFrame([s.to_dict() for s in scenarios]).assign(scenario=labels)
    for position, axis in enumerate(axes, start=1):
        results.insert(position, axis, results["scenario"].map(dict(zip(fields["scenario"], fields[axis]))))
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "simulation.tsv", out / "scenarios.tsv"]
    results.to_csv(files[0], sep="\t", index=False)
    fields[["scenario"] + [c for c in fields.columns if c not in ("scenario", "name")]].to_csv(files[1], sep="\t", index=False)
    files += simulation_plots.save_figure(simulation_plots.plot_bias_coverage(results), out / "bias_coverage")
    if "theta" in axes:
        others = [a for a in axes if a != "theta"]
        for values, part in (results.groupby(others, sort=False) if others else [((), results)]):
            values = values if isinstance(values, tuple) else (values,)
            suffix = "".join(f"_{a}_{v:g}" if isinstance(v, float) else f"_{a}_{v}" for a, v in zip(others, values))
            title = ", ".join(f"{a} = {v}" for a, v in zip(others, values)) or None
            fig = simulation_plots.plot_power_curve(part, x="theta", alpha=alpha, title=title)
            files += simulation_plots.save_figure(fig, out / f"power_curve{suffix}")
    return {"results": results, "files": files}


def simulate_command(
    scenario: Annotated[str, typer.Argument(help="A preset name (valid_ivs, balanced_pleiotropy, directional_pleiotropy, inside_violated, weak_instruments, outliers) or a TOML scenario file.")],
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=2, help="Replicates per scenario.")] = 10_000,
    out: Annotated[Path, typer.Option("--out", "-O", help="Output folder for tables and figures.")] = Path("simulation"),
    methods: Annotated[list[str] | None, typer.Option("--method", "-m", "--methods", help="Method id (repeat for several; a comma-separated list also works). Default: ivw, egger_regression, weighted_median, weighted_mode.")] = None,
    seed: Seed = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", min=0, help="Bootstrap draws of the median and mode SEs (0: point estimates only).")] = 1000,
    alpha: Annotated[float, typer.Option("--alpha", callback=in_range(0, 1, low_open=True, high_open=True), help="Level of the rejection rate (type-I error / power).")] = 0.05,
    chunk_size: Annotated[int | None, typer.Option("--chunk-size", min=1, help="Replicates per device call (default: sized to memory).")] = None,
    devices: Devices = None,
    debug: Debug = False,
) -> None:
    """Simulate summary-data MR studies and report bias, coverage and power of each method."""
    check_out_folder(out)
    configure_jax(64, devices=devices)
    methods = ",".join(methods) if methods else None
    with user_errors(debug):
        if replicates < 2:
            raise ValueError(f"--replicates must be at least 2, not {replicates}")
        if n_boot < 0:
            raise ValueError(f"--n-boot must be >= 0, not {n_boot}")
        with ProgressBars() as progress:
            outcome = run_simulation(scenario, replicates, out, methods, seed, n_boot, alpha, chunk_size, progress)
    table = outcome["results"]
    err_console.print(f"{len(table)} rows ({table['method_id'].nunique()} methods) written to {out}/simulation.tsv")
