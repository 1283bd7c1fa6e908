"""The command line: a thin layer over :mod:`simulator.api`; results to stdout, progress to stderr."""

from __future__ import annotations

import functools
import math
import shlex
import sys
from pathlib import Path

import click

from . import __version__
from .api import DEFAULT_PATHS, run as run_simulation
from .config import DEFAULT_CONFIG, ConfigError, load_config
from .config import validate as validate_config
from .engine import DEFAULT_CHUNK
from .results import ResultsError, read_results
from .summary import headline_metrics

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def domain_errors(func):
    """Turn the library's user-facing errors into one line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ConfigError, ResultsError, ValueError) as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; no results were written", err=True)
            sys.exit(130)

    return wrapper


config_argument = click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
set_option = click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True,
                          help="Override a config value by its dotted key, e.g. funding.min_cash=15 (repeatable).")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="simulator")
def main():
    """Monte Carlo risk simulator for the finances of a frontier AI lab.

    \b
    Example:
        simulator run --paths 200000 --seed 11 --out results/base
    """


@main.command()
@config_argument
@click.option("-n", "--paths", "n_paths", type=click.IntRange(min=1), default=DEFAULT_PATHS, show_default=True,
              help="Number of Monte Carlo paths.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="Master seed [default: the config's simulation.seed].")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: results/<config name>].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for the kernel [default: all cores]. Never changes the results.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=DEFAULT_CHUNK, show_default=True,
              help="Paths simulated per kernel call. Never changes the results.")
@click.option("--steps-per-year", type=click.Choice(["1", "4", "12"]), default=None,
              help="Time steps per year [default: the config's simulation.steps_per_year].")
@click.option("--keep-paths", metavar="all|none|sample:N", default=None,
              help="Per-path rows to write to paths.parquet [default: all up to 1,000,000 paths, "
                   "else sample:100000, the first path ids]. Probabilities stay exact; without every "
                   "row, quantiles carry a rank error (recorded in the metadata).")
@set_option
@click.option("--force", is_flag=True, help="Replace the results in an existing output folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@domain_errors
def run(config, n_paths, seed, out, threads, chunk_size, steps_per_year, keep_paths, overrides, force, quiet):
    """Simulate a config and write paths, summary and by-year Parquet files.

    CONFIG is a TOML file (default: the packaged base config) or a run's config.json.

    \b
    Example:
        simulator run configs/base.toml -n 200000 --seed 11 --set funding.min_cash=15
    """
    overrides = list(overrides)
    if steps_per_year:
        overrides.append(f"simulation.steps_per_year={steps_per_year}")
    cfg = load_config(config, overrides)
    out = out or Path("results") / cfg.name
    seed = cfg.simulation.seed if seed is None else seed
    command = shlex.join(["simulator", "run", str(config or DEFAULT_CONFIG), "--paths", str(n_paths),
                          "--seed", str(seed), *[a for o in overrides for a in ("--set", o)]])
    with click.progressbar(length=n_paths, label="simulating", file=sys.stderr,
                           hidden=quiet or not sys.stderr.isatty()) as bar:
        results = run_simulation(cfg, n_paths, seed, out, threads=threads, chunk_size=chunk_size,
                                 keep_paths=keep_paths, force=force, progress=bar.update, command=command)
    click.echo(format_headline(results, cfg, headline_metrics(cfg)))
    click.echo(f"\nwrote {out}/ (paths, summary, by_year .parquet) in "
               f"{results.metadata['runtime']['total_seconds']:.1f} s")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@set_option
@domain_errors
def validate(config, overrides):
    """Check a config and print its resolved parameters.

    \b
    Example:
        simulator validate configs/base.toml --set funding.min_cash=15
    """
    cfg = load_config(config, overrides)
    click.echo(f"{config}: valid ({cfg.name}, {len(cfg.revenue)} segments, "
               f"{len(cfg.funding.scheduled)} scheduled raises, hash {cfg.digest()[:12]})")
    click.echo(f"{'parameter':48} {'distribution':12} {'p5':>10} {'median':>10} {'p95':>10}")
    for key, dist in cfg.parameters().items():
        p5, p50, p95 = (dist.quantile(q) for q in (0.05, 0.5, 0.95))
        click.echo(f"{key:48} {dist.dist:12} {p5:10.4g} {p50:10.4g} {p95:10.4g}")
    click.echo("schedules by year (" + ", ".join(str(y) for y in cfg.years) + "):")
    for key, sched in [("costs.partner_share", cfg.costs.partner_share), ("training.plan", cfg.training.plan),
                       ("training.committed", cfg.training.committed), ("plan.revenue", cfg.plan.revenue),
                       ("plan.fcf", cfg.plan.fcf)]:
        click.echo(f"  {key:28} " + " ".join(f"{sched[str(y)]:8.4g}" for y in cfg.years))


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="Every metric, not only the headline figures.")
@domain_errors
def show(folder, show_all):
    """Print the summary of a finished run from its Parquet files.

    \b
    Example:
        simulator show results/base
    """
    results = read_results(folder, paths=False)
    meta = results.metadata
    cfg = validate_config(meta["config"], source=f"{folder}/manifest.json")
    click.echo(f"{meta['config_name']}: {meta['n_paths']:,} paths, seed {meta['seed']}, "
               f"{meta['steps_per_year']} steps/year, config {meta['config_hash'][:12]}")
    click.echo(format_headline(results, cfg, None if show_all else headline_metrics(cfg)))


def format_headline(results, cfg, metrics=None) -> str:
    """The metrics (default: the headline ones; all of them if ``show`` passes None) with 95% intervals."""
    frame = results.summary.set_index("metric")
    lines = [f"{'metric':34} {'value':>10}  {'95% interval':>23} {'std err':>9}"]
    for name in frame.index if metrics is None else metrics:
        row = frame.loc[name]
        fmt = _fmt_probability if name.startswith("p_") else _fmt_number
        lines.append(f"{name:34} {fmt(row.value):>10}  [{fmt(row.ci_low):>10}, {fmt(row.ci_high):>10}] "
                     f"{fmt(row.stderr):>9}")
    return "\n".join(lines)


def _fmt_probability(x: float) -> str:
    if math.isnan(x):
        return "nan"
    return f"{x:.4f}" if x == 0 or x >= 0.01 else f"{x:.2e}"


def _fmt_number(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:,.3f}" if abs(x) < 10 else f"{x:,.1f}"


from .scenarios import DEFAULT_OUT, comparison, load_scenarios, run_scenarios  # noqa: E402


@main.command("scenarios")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("-n", "--paths", "n_paths", type=click.IntRange(min=1), default=DEFAULT_PATHS, show_default=True,
              help="Number of Monte Carlo paths of every scenario.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
              help="One master seed for every scenario [default: the configs' common simulation.seed].")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT,
              show_default=True, help="Output folder: a run folder per scenario and scenarios.parquet.")
@click.option("--force", is_flag=True, help="Replace the results in existing output folders.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@domain_errors
def scenarios_command(folder, n_paths, seed, out, force, quiet):
    """Run every config in a folder with the same seed and compare their headline figures.

    FOLDER holds the *.toml configs (default: the packaged configs). Each scenario's run is
    written to OUT/<name>/ and all the summaries to OUT/scenarios.parquet, with a scenario column.

    \b
    Example:
        simulator scenarios configs -n 200000 --seed 11 --out results/scenarios
    """
    scenarios = load_scenarios(folder) if folder else load_scenarios()
    with click.progressbar(length=n_paths * len(scenarios), label="simulating", file=sys.stderr,
                           hidden=quiet or not sys.stderr.isatty()) as bar:
        run_scenarios(scenarios, n_paths, seed, out, force=force, progress=lambda s: bar.update)
    table = comparison(scenarios)
    metrics = list(dict.fromkeys(table.columns.get_level_values("metric")))
    cells = {name: [] for name in table.index}
    for name, row in table.iterrows():
        for metric in metrics:
            fmt = _fmt_probability if metric.startswith("p_") else _fmt_number
            cells[name].append(f"{fmt(row[(metric, 'value')])} "
                               f"[{fmt(row[(metric, 'ci_low')])}, {fmt(row[(metric, 'ci_high')])}]")
    name_width = max(len("scenario"), *map(len, cells))
    widths = [max(len(m), *(len(c[i]) for c in cells.values())) for i, m in enumerate(metrics)]
    click.echo(f"{'scenario':{name_width}}  " + "  ".join(f"{m:>{w}}" for m, w in zip(metrics, widths)))
    for name, row_cells in cells.items():
        click.echo(f"{name:{name_width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(row_cells, widths)))
    click.echo(f"\nvalues with 95% intervals; {n_paths:,} paths per scenario, seed "
               f"{scenarios[0].results.metadata['seed']}")
    seconds = sum(s.results.metadata["runtime"]["total_seconds"] for s in scenarios)
    click.echo(f"wrote {out}/ ({len(scenarios)} run folders, scenarios.parquet) in {seconds:.1f} s")
