"""The command line: a thin layer over :mod:`simulator.api`; results to stdout, progress to stderr.

Each command imports the modules it needs when it runs, not this module at its top: `simulator --help`,
`--version` and `validate` then start in a fraction of a second, without numba, pandas or scipy (~1.5 s to load;
tests/test_cli.py checks it).
"""

from __future__ import annotations

import contextlib
import functools
import math
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import click

from . import __version__
from .defaults import DEFAULT_CHUNK, DEFAULT_OUT, DEFAULT_PATHS, OUTCOMES, POSTERIOR_PATHS
from .errors import SettingsError, SimulatorError
from .keep import KeepPaths
from .memory import small_pages

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def domain_errors(func):
    """Turn the library's user-facing errors (:class:`simulator.errors.SimulatorError`) into one line on stderr
    and exit code 1. Any other exception is a bug: it keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SimulatorError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; no results were written", err=True)
            sys.exit(130)

    return wrapper


def note(message: str) -> None:
    """A one-line message about what a command did besides its output, on stderr."""
    click.echo(message, err=True)


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT or SIGTERM asks the run to stop after the current chunk and save its progress;
    a second SIGINT stops at once (nothing is written, and the folder has no manifest)."""
    requested = []

    def handler(signum, frame):
        if requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested.append(signum)
        click.echo("\nstopping after the current chunk (Ctrl-C again to abandon the run)", err=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class CompileNote:
    """While numba compiles (a cold cache: the first run after an install or upgrade, a minute or more on a small
    machine, which looked like a hang), says so on stderr with the seconds elapsed: a line that ticks on a
    terminal, one line otherwise. Compiles that follow one another within ``GRACE`` seconds (the kernel, then the
    checks and summaries after the first chunk) share the line; ``close`` ends it (before a progress update)."""

    TEXT = "compiling the kernel (first run only)…"
    GRACE = 1.0

    def __init__(self, stream):
        self.stream, self.tty = stream, stream.isatty()
        self.cond = threading.Condition()
        self.opened: float | None = None   # when the line was started; None while none is shown
        self.idle: float | None = None     # when the last compile ended; None while one runs

    def start(self) -> None:
        with self.cond:
            self.idle = None
            if self.opened is None:
                self.opened = time.perf_counter()
                if not self.tty:
                    self.stream.write(self.TEXT)
                    self.stream.flush()
                threading.Thread(target=self._tick, daemon=True).start()

    def end(self) -> None:
        with self.cond:
            self.idle = time.perf_counter()

    def close(self) -> None:
        with self.cond:
            if self.opened is not None:
                seconds = time.perf_counter() - self.opened
                self.stream.write(f"\r{self.TEXT} {seconds:.0f} s\x1b[K\n" if self.tty else f" {seconds:.0f} s\n")
                self.stream.flush()
                self.opened = None
                self.cond.notify_all()

    def _tick(self) -> None:
        with self.cond:
            opened = self.opened
            assert opened is not None  # started by start(), which set it
            while self.opened == opened:
                now = time.perf_counter()
                if self.idle is not None and now - self.idle > self.GRACE:
                    self.close()
                elif self.tty:
                    self.stream.write(f"\r{self.TEXT} {now - opened:.0f} s\x1b[K")
                    self.stream.flush()
                self.cond.wait(0.25)


@contextlib.contextmanager
def compile_note(quiet: bool):
    """Inside the block, :class:`CompileNote` on stderr (nothing if ``quiet``); yields a function that ends the
    note's line, for the progress bar to call before it draws."""
    if quiet:
        yield lambda: None
        return
    from .jit import compiles_reported

    note = CompileNote(sys.stderr)
    try:
        with compiles_reported(note.start, note.end):
            yield note.close
    finally:
        note.close()


def lasting_location(ctx, param, value):
    """An output folder from the command line must outlive the command: a ``memory://`` folder would vanish
    with the process after "wrote" was printed."""
    if value is not None and str(value).lower().startswith("memory:"):
        raise click.ClickException(f"{value}: a memory:// folder ends with the command; write to a local folder "
                                   "or a URL of a lasting file system (file://, s3://, gs://, ...)")
    return value


config_argument = click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
# Run folders are local paths or URLs (s3://bucket/run, file:///data/run): strings, which
# simulator.storage resolves (click.Path would turn s3://b/x into s3:/b/x).
folder_argument = click.argument("folder")
set_option = click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True,
                          help="Override a config value by its dotted key, e.g. funding.min_cash=15 (repeatable).")


# The options several commands share: the same mistake (-n 0, --seed -1, --threads 0) is the same usage
# error, exit status 2, in every command.
SEED = click.IntRange(0, 2**63 - 1)


def paths_option(help: str = "Number of Monte Carlo paths."):
    return click.option("-n", "--paths", "n_paths", type=click.IntRange(min=1), default=DEFAULT_PATHS,
                        show_default=True, help=help)


def seed_option(help: str = "Master seed [default: the config's simulation.seed]."):
    return click.option("--seed", type=SEED, default=None, help=help)


def out_option(help: str, default: str | None = None):
    """``-o/--out``: a folder or URL that outlives the command (see :func:`lasting_location`)."""
    return click.option("-o", "--out", metavar="DIR|URL", default=default, show_default=default is not None,
                        callback=lasting_location, help=help)


# Above the machine's core count is the run's own one-line error (exit status 1), whatever the command.
threads_option = click.option("--threads", type=click.IntRange(min=1), default=None,
                              help="Threads for the kernel [default: all cores]. Never changes the results.")


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print the summary table (every metric, with its standard error, 95% interval and "
                                "unit) as JSON on stdout; messages go to stderr.")


def quiet_option(help: str = "No progress bar."):
    return click.option("-q", "--quiet", is_flag=True, help=help)


class KeepPathsType(click.ParamType):
    """``--keep-paths``, parsed into a :class:`simulator.keep.KeepPaths` where it enters; a bad value is a usage
    error that names the option."""

    name = "keep_paths"

    def convert(self, value, param, ctx):
        try:
            return KeepPaths.parse(value)
        except SettingsError:
            self.fail(f"{value!r}: expected all, none or sample:N", param, ctx)


workers_option = click.option("--workers", type=click.IntRange(min=1), default=None,
                                help="Run on a new local Dask cluster of this many worker processes (needs the "
                                     "dask extra). Never changes the results.")


def _remember_security(ctx, param, value):
    ctx.meta["scheduler_security"] = value  # eager: read by --scheduler's callback, whatever the order given


def _connect_scheduler(ctx, param, address):
    """Connect to the scheduler while the options are read, before the command writes or removes anything:
    an unreachable scheduler (or bad TLS settings) then changes nothing. The client is closed with the command."""
    security = ctx.meta.get("scheduler_security")
    if address is None:
        if security is not None:
            raise click.ClickException(f"--scheduler-security {security}: only used with --scheduler ADDRESS")
        return None
    from . import distributed  # dask loads only for a cluster

    try:
        client = distributed.open_client(distributed.Scheduler(address, security))
    except SimulatorError as e:
        raise click.ClickException(str(e)) from None
    ctx.call_on_close(client.close)
    return client


def scheduler_option(command):
    command = click.option(
        "--scheduler", metavar="ADDRESS", default=None, callback=_connect_scheduler,
        help="Run on the Dask cluster whose scheduler is at ADDRESS, e.g. tcp://host:8786 or tls://host:8786. "
             "Never changes the results. The scheduler and its workers run the code they are sent (pickles): "
             "use only one you trust, on a private network or over TLS.")(command)
    return click.option(
        "--scheduler-security", metavar="FILE", default=None, is_eager=True, expose_value=False,
        callback=_remember_security,
        help="YAML or JSON file of distributed.Security settings for --scheduler (tls_ca_file, tls_client_cert, "
             "tls_client_key, require_encryption, ...) [default: Dask's configuration, distributed.comm.tls].")(command)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="simulator")
def main():
    """Monte Carlo risk simulator for the finances of a frontier AI lab.

    \b
    Example:
        simulator run --paths 200000 --seed 11 --out results/base
    """
    click.get_current_context().with_resource(small_pages())


@main.command()
@config_argument
@paths_option()
@seed_option()
@out_option("Output folder, or a URL of a file system fsspec knows, e.g. s3://bucket/run "
            "[default: results/<config name>].")
@threads_option
@click.option("--chunk-size", type=click.IntRange(min=1), default=DEFAULT_CHUNK, show_default=True,
              help="Paths simulated per kernel call. Never changes the results.")
@click.option("--steps-per-year", type=click.Choice(["1", "4", "12"]), default=None,
              help="Time steps per year [default: the config's simulation.steps_per_year].")
@click.option("--keep-paths", type=KeepPathsType(), metavar="all|none|sample:N", default=None,
              help="Per-path rows to write to the paths/ dataset [default: all up to 1,000,000 paths, "
                   "else sample:100000, the first path ids]. Probabilities stay exact; without every "
                   "row, quantiles carry a rank error (recorded in the metadata).")
@set_option
@click.option("--force", is_flag=True, help="Replace the results in an existing output folder.")
@click.option("--target-se", type=float, default=None,
              help="Stop when every probability's standard error is at most this (checked every 65,536 "
                   "paths); --max-paths is then the limit and --paths is not used.")
@click.option("--max-paths", type=click.IntRange(min=1), default=10_000_000, show_default=True,
              help="Most paths a --target-se run may use.")
@click.option("--antithetic", is_flag=True,
              help="Antithetic variates: path 2k+1 mirrors path 2k's random numbers; standard errors "
                   "account for the pairing (sets simulation.antithetic).")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run in --out (same config, seed, paths and --keep-paths).")
@workers_option
@scheduler_option
@quiet_option()
@click.option("--report", "make_report", is_flag=True,
              help="Also write report.html and its charts into the output folder (see `simulator report`).")
@click.option("--actuals", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Reported figures (configs/actuals/*.toml): weight every path by their likelihood and report "
                   f"the figures given them, with the effective paths (ess) [--paths default: {POSTERIOR_PATHS:,}].")
@json_option
@domain_errors
def run(config, n_paths, seed, out, threads, chunk_size, steps_per_year, keep_paths, overrides, force, target_se,
        max_paths, antithetic, resume, workers, scheduler, quiet, make_report, actuals, as_json):
    """Simulate a config and write paths, summary and by-year Parquet files.

    CONFIG is a TOML file, a packaged config's name (base, bear, plan, ...; default: base) or a run's
    config.json.

    \b
    With --actuals, every path is weighted by how likely the reported figures are given it, and every figure is
    the model's view given them (docs/model.md, "Updating on reported figures").

    \b
    Example:
        simulator run configs/base.toml -n 200000 --seed 11 --set funding.min_cash=15
        simulator run --actuals configs/actuals/2026h1.toml --out results/base-2026h1
    """
    from .actuals import load_actuals
    from .api import RunInterrupted
    from .api import run as run_simulation
    from .config import command_config, load_config
    from .summary import headline_metrics

    overrides = list(overrides)
    if steps_per_year:
        overrides.append(f"simulation.steps_per_year={steps_per_year}")
    if antithetic:
        overrides.append("simulation.antithetic=true")
    cfg = load_config(config, overrides)
    out = out or f"results/{cfg.name}"
    seed = cfg.simulation.seed if seed is None else seed
    command = shlex.join(["simulator", "run", command_config(config),
                          *[a for o in overrides for a in ("--set", o)]])
    if actuals is not None:
        actuals = load_actuals(actuals)
    if actuals is not None and actuals.figures:  # a file of no figures is a prior run, bit for bit
        # Weighted paths are worth fewer: a posterior run needs more of them for the same standard errors.
        if click.get_current_context().get_parameter_source("n_paths") == click.core.ParameterSource.DEFAULT:
            n_paths = POSTERIOR_PATHS
    if target_se is not None:
        n_paths = max_paths
    try:
        with click.progressbar(length=n_paths, label="simulating", file=sys.stderr,
                               hidden=quiet or not sys.stderr.isatty()) as bar, stop_on_signals() as stop, \
                compile_note(quiet) as end_note:
            def progress(k):
                end_note()
                bar.update(k)

            results = run_simulation(cfg, n_paths, seed, out, threads=threads, chunk_size=chunk_size,
                                     keep_paths=keep_paths, target_se=target_se, force=force, resume=resume,
                                     should_stop=stop, workers=workers, scheduler=scheduler,
                                     progress=progress, command=command, actuals=actuals,
                                     note=note)
    except RunInterrupted as e:
        click.echo(str(e), err=True)
        sys.exit(130)
    if as_json:  # the table alone on stdout; the rest goes with the progress, to stderr
        echo_json(results, cfg, out)
    else:
        click.echo(format_headline(results, cfg, headline_metrics(cfg)))
    precision = results.metadata["precision"]
    if target_se is not None:
        reached = results.metadata["n_paths"]
        verdict = "reached" if precision["largest_probability_se"] <= target_se else "NOT reached"
        click.echo(f"\ntarget standard error {target_se:g} {verdict} with {reached:,} paths "
                   f"(largest standard error of a probability: {precision['largest_probability_se']:.2g})",
                   err=as_json)
    click.echo(f"\nwrote {out}/ (paths/, summary, by_year, by_step, histograms .parquet) in "
               f"{results.metadata['runtime']['total_seconds']:.1f} s", err=as_json)
    if make_report:
        from .report import make_report as write_report  # matplotlib loads only when a report is made

        click.echo(f"wrote {write_report(out).html}", err=as_json)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option("--toml", "as_toml", is_flag=True, help="Print the resolved config as TOML (extends merged in).")
@domain_errors
def validate(config, overrides, as_toml):
    """Check a config and print its resolved parameters.

    \b
    Example:
        simulator validate configs/base.toml --set funding.min_cash=15
    """
    from .config import load_config
    from .judgments import check as check_judgments

    cfg = load_config(config, overrides)
    check_judgments(cfg)
    if as_toml:
        click.echo(cfg.to_toml(), nl=False)
        return
    click.echo(f"{config}: valid ({cfg.name}, {len(cfg.revenue)} segments, "
               f"{len(cfg.funding.scheduled)} scheduled raises, hash {cfg.digest()[:12]})")
    click.echo(f"{'parameter':48} {'distribution':12} {'p5':>10} {'median':>10} {'p95':>10}")
    for key, dist in cfg.parameters().items():
        p5, p50, p95 = (dist.quantile(q) for q in (0.05, 0.5, 0.95))
        click.echo(f"{key:48} {dist.dist:12} {p5:10.4g} {p50:10.4g} {p95:10.4g}")
    click.echo("schedules by year (" + ", ".join(str(y) for y in cfg.years) + "):")
    for key, sched in [("costs.partner_share", cfg.costs.partner_share), ("training.plan", cfg.training.plan),
                       ("plan.revenue", cfg.plan.revenue),
                       ("plan.fcf", cfg.plan.fcf)]:
        click.echo(f"  {key:28} " + " ".join(f"{sched[str(y)]:8.4g}" for y in cfg.years))
    for name, c in cfg.compute.contracts.items():
        key = f"contracts.{name} (top {c.take_or_pay:g})"
        click.echo(f"  {key:28} " + " ".join(f"{c.amount.get(str(y), 0.0):8.4g}" for y in cfg.years))
    if cfg.judgments:
        click.echo("judgments (simulator sensitivity --judgments RUN tests them):")
    for name, j in cfg.judgments.items():
        sides = f"x{j.scale[0]:g} / x{j.scale[1]:g}" if j.scale else f"{j.low:g} / {j.high:g}"
        pair = f"[{', '.join(j.pair)}]" if j.pair else ""
        click.echo(f"  {name:28} {j.key + pair:44} {sides:16} {j.why}")


@main.command()
@folder_argument
@click.option("--all", "show_all", is_flag=True, help="Every metric, not only the headline figures.")
@json_option
@domain_errors
def show(folder, show_all, as_json):
    """Print the summary of a finished run from its Parquet files.

    \b
    Example:
        simulator show results/base
        simulator show results/base --json > summary.json
    """
    from .config import validate as validate_config
    from .results import read_results
    from .summary import headline_metrics

    results = read_results(folder, paths=False)
    meta = results.metadata
    cfg = validate_config(meta["config"], source=f"{folder}/manifest.json")
    if as_json:
        echo_json(results, cfg, folder)
        return
    click.echo(f"{meta['config_name']}: {meta['n_paths']:,} paths, seed {meta['seed']}, "
               f"{meta['steps_per_year']} steps/year, config {meta['config_hash'][:12]}")
    click.echo(format_headline(results, cfg, None if show_all else headline_metrics(cfg)))


def echo_json(results, cfg, folder) -> None:
    """The summary table as JSON on stdout (``simulator.export.summary_json``): every metric, null where a
    statistic is undefined (never NaN)."""
    import json

    from .export import summary_json

    click.echo(json.dumps(summary_json(results, cfg, str(folder)), indent=2, allow_nan=False))


def format_headline(results, cfg, metrics=None) -> str:
    """The metrics (default: the headline ones; all of them if ``show`` passes None) with 95% intervals."""
    from .summary import format_number, format_probability

    frame = results.summary.set_index("metric")
    # A posterior run (--actuals) also gives its prior's figure on the same paths, and what its paths are worth.
    prior = results.metadata.get("prior", {})
    lines = [f"{'metric':34} {'value':>10}  {'95% interval':>23} {'std err':>9}" + (f" {'prior':>10}" if prior else "")]
    if metrics is not None and "ess" in frame.index:
        metrics = [*metrics, "ess", "ess_share"]
    for name in frame.index if metrics is None else metrics:
        row = frame.loc[name]
        fmt = format_probability if name.startswith("p_") else format_number
        before = prior.get(name, [None])[0]
        lines.append(f"{name:34} {fmt(row.value):>10}  [{fmt(row.ci_low):>10}, {fmt(row.ci_high):>10}] "
                     f"{fmt(row.stderr):>9}" + (f" {'' if before is None else fmt(before):>10}" if prior else ""))
    return "\n".join(lines)


@main.command("scenarios")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@paths_option("Number of Monte Carlo paths of every scenario.")
@seed_option("One master seed for every scenario [default: the configs' common simulation.seed].")
@out_option("Output folder (or URL): a run folder per scenario and scenarios.parquet.", default=str(DEFAULT_OUT))
@click.option("--force", is_flag=True, help="Replace the results in existing output folders.")
@workers_option
@scheduler_option
@quiet_option()
@domain_errors
def scenarios_command(folder, n_paths, seed, out, force, workers, scheduler, quiet):
    """Run every config in a folder with the same seed and compare their headline figures.

    FOLDER holds the *.toml configs (default: the packaged configs). Each scenario's run is
    written to OUT/<name>/ and all the summaries to OUT/scenarios.parquet, with a scenario column.

    \b
    Example:
        simulator scenarios configs -n 200000 --seed 11 --out results/scenarios
    """
    from .scenarios import comparison, load_scenarios, run_scenarios
    from .summary import format_number, format_probability

    scenarios = load_scenarios(folder) if folder else load_scenarios()
    started = time.perf_counter()
    with click.progressbar(length=n_paths * len(scenarios), label="simulating", file=sys.stderr,
                           hidden=quiet or not sys.stderr.isatty()) as bar, compile_note(quiet):
        run_scenarios(scenarios, n_paths, seed, out, force=force, progress=lambda s: bar.update,
                      workers=workers, scheduler=scheduler, note=note)
    table = comparison(scenarios)
    metrics = list(dict.fromkeys(table.columns.get_level_values("metric")))
    cells = {name: [] for name in table.index}
    for name, row in table.iterrows():
        for metric in metrics:
            fmt = format_probability if metric.startswith("p_") else format_number
            cells[name].append(f"{fmt(row[(metric, 'value')])} "
                               f"[{fmt(row[(metric, 'ci_low')])}, {fmt(row[(metric, 'ci_high')])}]")
    name_width = max(len("scenario"), *map(len, cells))
    widths = [max(len(m), *(len(c[i]) for c in cells.values())) for i, m in enumerate(metrics)]
    click.echo(f"{'scenario':{name_width}}  " + "  ".join(f"{m:>{w}}" for m, w in zip(metrics, widths)))
    for name, row_cells in cells.items():
        click.echo(f"{name:{name_width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(row_cells, widths)))
    click.echo(f"\nvalues with 95% intervals; {n_paths:,} paths per scenario, seed "
               f"{scenarios[0].results.metadata['seed']}")
    click.echo(f"wrote {out}/ ({len(scenarios)} run folders, scenarios.parquet) in "
               f"{time.perf_counter() - started:.1f} s")


def _paths_note(used: int, n_paths: int) -> str:
    return "" if used == n_paths else f" (the run kept a sample: {used:,} of {n_paths:,} paths)"


@main.command("sensitivity")
@folder_argument
@click.option("--top", "top", type=click.IntRange(min=1), default=None,
              help="Print only the K highest-ranked parameters [default: all; the file has all].")
@click.option("--judgments", "judged", is_flag=True,
              help="Test the config's [judgments] instead: re-run the run at each one's low and high alternative "
                   "(same seed and paths) and write judgments.parquet with the paired changes.")
@domain_errors
def sensitivity_command(folder, top, judged):
    """Rank the drawn parameters by their effect on shortfall and FCF (tornado-chart numbers).

    For each drawn parameter: Spearman rank correlation with the last year's FCF and with the
    funding gap, and P(shortfall by the end) and P(FCF > 0) in the parameter's bottom and top
    deciles, with standard errors. Ranked by |swing| (top - bottom) of P(shortfall); written to
    FOLDER/sensitivity.parquet.

    \b
    Example:
        simulator sensitivity results/base --top 10
    """
    if judged:
        show_judgments(folder, top)
        return
    from .analysis import sensitivity as sensitivity_table
    from .analysis import write_sensitivity
    from .results import read_results

    results = read_results(folder)
    result = sensitivity_table(results, folder)
    end = result.end_year
    meta = results.metadata
    table = result.table
    click.echo(f"{meta['config_name']}: {result.n_used:,} paths{_paths_note(result.n_used, result.n_paths)}, "
               f"seed {meta['seed']}; deciles of {table['n_bottom'].min():,}+ paths")
    sf, fp = f"p_shortfall_by_{end}", f"p_fcf_positive_{end}"
    width = max(len("parameter"), *(len(p) for p in table["parameter"]))
    click.echo(f"{'':4} {'':{width}}  {'Spearman rho with':>19}  {'P(shortfall by ' + str(end) + ')':^32}  "
               f"{'P(FCF ' + str(end) + ' > 0)':^24}".rstrip())
    click.echo(f"{'rank':>4} {'parameter':{width}}  {'FCF ' + str(end):>9} {'gap':>9}  {'bottom':>7} {'top':>7} "
               f"{'swing':>8} {'± se':>7}  {'bottom':>7} {'top':>7} {'swing':>8}")
    for row in table.head(top).itertuples(index=False):
        r = row._asdict()
        click.echo(f"{r['rank']:4d} {r['parameter']:{width}}  {r[f'rho_fcf_{end}']:+9.3f} "
                   f"{r['rho_funding_gap']:+9.3f}  {r[sf + '_bottom']:7.4f} {r[sf + '_top']:7.4f} "
                   f"{r[sf + '_swing']:+8.4f} {r[sf + '_swing_se']:7.4f}  "
                   f"{r[fp + '_bottom']:7.4f} {r[fp + '_top']:7.4f} {r[fp + '_swing']:+8.4f}")
    if top is not None and top < len(table):
        click.echo(f"... {len(table) - top} more in the file")
    click.echo(f"\nrho: Spearman rank correlation, stderr <= {table[f'rho_fcf_{end}_se'].max():.4f}; bottom/top: "
               f"probability in the parameter's bottom/top decile; swing = top - bottom")
    path = write_sensitivity(folder, result, meta)
    click.echo(f"wrote {path}")


def show_judgments(folder, top):
    """`sensitivity --judgments`: run and print the judgments table."""
    from .config import validate as validate_config
    from .judgments import run_judgments

    def progress(k, n, alt):
        click.echo(f"judgment {k // 2 + 1}/{n // 2}: {alt.name} ({alt.side})", err=True)

    table, meta, path = run_judgments(folder, progress)
    end = validate_config(meta["config"]).simulation.end_year
    sf, fp = f"p_shortfall_by_{end}", f"p_fcf_positive_{end}"
    click.echo(f"{meta['config_name']}: {meta['n_paths']:,} paths, seed {meta['seed']}; change from the run "
               f"(P(shortfall by {end}) {table[sf + '_base'].iloc[0]:.4f}, P(FCF {end} > 0) "
               f"{table[fp + '_base'].iloc[0]:.4f}, funding gap q95 {table['funding_gap_q95_base'].iloc[0]:.1f})")
    width = max(len("judgment"), *(len(j) for j in table["judgment"]))
    click.echo(f"{'rank':>4} {'judgment':{width}} {'side':5} {'setting':>9}  {'P(shortfall)':>18}  "
               f"{'P(FCF > 0)':>18}  {'gap q95':>16}")
    shown = table if top is None else table[table["rank"] <= top]
    for r in shown.to_dict("records"):
        setting = f"x{r['setting']:.3g}" if r["scaled"] else f"{r['setting']:.4g}"
        click.echo(f"{r['rank']:4d} {r['judgment']:{width}} {r['side']:5} {setting:>9}  "
                   f"{r[sf + '_change']:+8.4f} ± {r[sf + '_change_se']:.4f}  "
                   f"{r[fp + '_change']:+8.4f} ± {r[fp + '_change_se']:.4f}  "
                   f"{r['funding_gap_q95_change']:+7.1f} ± {r['funding_gap_q95_change_se']:5.1f}")
    if len(shown) < len(table):
        click.echo(f"... {table['rank'].max() - top} more in the file")
    click.echo(f"\nchanges paired path by path (same seed and paths), ± one standard error; wrote {path}")


@main.command("compare")
@click.argument("folder_a")
@click.argument("folder_b")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table to this Parquet file.")
@domain_errors
def compare_command(folder_a, folder_b, out):
    """Paired differences B - A between two runs with the same seed and path count.

    Path k of both runs starts from the same random numbers, so the differences are computed path
    by path; the paired standard error is usually far smaller than the unpaired one (two
    independent runs). Both runs must keep every path (their paths/ datasets).

    \b
    Example:
        simulator run -o results/tight --set funding.min_cash=15
        simulator compare results/base results/tight
    """
    from .analysis import compare as compare_runs
    from .analysis import comparison_metadata, write_table
    from .results import read_results
    from .summary import format_number, format_probability

    a, b = read_results(folder_a), read_results(folder_b)
    result = compare_runs(a, b, folder_a, folder_b)
    for label, folder, r in (("A", folder_a, a), ("B", folder_b, b)):
        click.echo(f"{label}: {folder} ({r.metadata['config_name']}, config {r.metadata['config_hash'][:12]})")
    click.echo(f"{result.n_paths:,} paired paths, seed {result.seed}")
    for note in result.notes:
        click.echo(f"note: {note}")
    table = result.table
    width = max(len("metric"), *(len(m) for m in table["metric"]))
    click.echo(f"{'metric':{width}} {'A':>10} {'B':>10} {'B - A':>10} {'se paired':>10}  {'se unpaired':>11}  "
               f"{'95% interval (paired)':>23}")
    for row in table.itertuples(index=False):
        fmt = format_probability if row.metric.startswith("p_") else format_number
        click.echo(f"{row.metric:{width}} {fmt(row.a):>10} {fmt(row.b):>10} {_fmt_signed(row.diff):>10} "
                   f"{_fmt_se(row.se_paired):>10}  {_fmt_se(row.se_unpaired):>11}  "
                   f"[{_fmt_signed(row.ci_low):>10}, {_fmt_signed(row.ci_high):>10}]")
    if out is not None:
        write_table(out, table, comparison_metadata(a, b, folder_a, folder_b))
        click.echo(f"\nwrote {out}")


def _fmt_signed(x: float) -> str:
    return "nan" if math.isnan(x) else "0" if x == 0 else f"{x:+.3g}" if abs(x) < 0.01 else f"{x:+.4g}"


def _fmt_se(x: float) -> str:
    return "nan" if math.isnan(x) else "0" if x == 0 else f"{x:.2e}" if abs(x) < 0.01 else f"{x:.4g}"


@main.command("discover")
@folder_argument
@click.option("--outcome", type=click.Choice(OUTCOMES), required=True,
              help="shortfall: cash under min_cash by the end; fcf_negative: last year's FCF <= 0.")
@click.option("--max-params", type=click.IntRange(min=1), default=3, show_default=True,
              help="Keep at most this many parameters in the box (those whose restriction matters most).")
@click.option("--min-coverage", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="Stop peeling before the box would hold less than this share of the outcome's paths.")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Share of the box's paths removed at each peeling step.")
@domain_errors
def discover_command(folder, outcome, max_params, min_coverage, alpha):
    """Find the parameter ranges where an outcome concentrates (PRIM: "what must be true").

    Peels the drawn parameters' ranges (Friedman & Fisher's PRIM) on the even path ids and reports
    the box's coverage (share of the outcome's paths inside it) and density (share of its paths
    with the outcome) on the odd path ids, held out, with binomial standard errors.

    \b
    Example:
        simulator discover results/base --outcome shortfall --max-params 3
    """
    from .analysis import discover as discover_box
    from .results import read_results

    results = read_results(folder)
    d = discover_box(results, outcome, max_params=max_params, min_coverage=min_coverage, alpha=alpha,
                     folder=folder)
    meta = results.metadata
    used = d.fit.n + d.test.n
    click.echo(f"{meta['config_name']}: {used:,} paths{_paths_note(used, d.n_paths)}, seed {meta['seed']}; "
               f"box found on the {d.fit.n:,} even path ids, measured on the {d.test.n:,} odd ones")
    click.echo(f"outcome: {outcome} ({d.description}); base rate {d.test.base_rate:.4f} ± {d.test.base_rate_se:.4f}")
    click.echo(f"box: {d.box.conditions()}")
    click.echo(f"{'':10} {'held out':>18} {'fit':>8}")
    click.echo(f"{'coverage':10} {d.test.coverage:8.4f} ± {d.test.coverage_se:.4f} {d.fit.coverage:8.4f}   "
               "share of outcome paths inside the box")
    click.echo(f"{'density':10} {d.test.density:8.4f} ± {d.test.density_se:.4f} {d.fit.density:8.4f}   "
               "share of in-box paths with the outcome")
    click.echo(f"{'support':10} {d.test.support:8.4f} {'':8} {d.fit.support:8.4f}   share of all paths inside the box")
    click.echo(f"{'lift':10} {d.test.lift:8.2f} {'':8} {d.fit.lift:8.2f}   density / base rate")


@main.command("solve")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", "target", metavar="METRIC=VALUE", required=True,
              help="Summary metric and the value it should take, e.g. p_fcf_positive_2030=0.5.")
@click.option("--vary", "key", metavar="KEY", required=True,
              help="Dotted config key to solve for, e.g. funding.min_cash (fixed at each value tried).")
@click.option("--low", type=float, default=None,
              help="Low end of the search bracket [default: 50% of the config's value].")
@click.option("--high", type=float, default=None,
              help="High end of the search bracket [default: 150% of the config's value].")
@paths_option("Paths per evaluation (the same paths at every evaluation).")
@seed_option("Master seed of every evaluation [default: the config's simulation.seed].")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop when the bracket is narrower than this [default: 1/1000 of the initial bracket].")
@set_option
@quiet_option("Do not print each evaluation.")
@domain_errors
def solve_command(config, target, key, low, high, n_paths, seed, tol, overrides, quiet):
    """Find the value of a config parameter at which a summary metric hits a target.

    Bisection over common random numbers: every evaluation simulates the same paths (same seed and
    path count), so the metric changes only through KEY. The metric must bracket the target at
    --low and --high.

    \b
    Example:
        simulator solve --target p_shortfall_by_2030=0.10 --vary funding.initial_cash --low 30 --high 80
        simulator solve --target p_shortfall_by_2030=0.15 --vary funding.min_cash -n 20000
    """
    from .analysis import parse_target
    from .analysis import solve as solve_parameter
    from .stats import with_error

    metric, value = parse_target(target)

    def show(x, f):
        if not quiet:
            click.echo(f"  {key} = {x:.6g}: {metric} = {f:.6g}", err=True)

    sol = solve_parameter(config, metric, value, key, low=low, high=high, n_paths=n_paths, seed=seed, tol=tol,
                          overrides=overrides, on_evaluation=show)
    for note in sol.notes:
        click.echo(f"note: {note}")
    # The answer to the digits its Monte Carlo error allows (the metric's stderr over its local slope).
    if math.isfinite(sol.value_se) and sol.value_se > 0:
        click.echo(f"{key} = {with_error(sol.value, sol.value_se)} (Monte Carlo error: the metric's standard "
                   "error / its local slope)")
    else:
        click.echo(f"{key} = {sol.value:.6g} (Monte Carlo error not measured: too few evaluations near the "
                   "solution for the metric's slope)")
    click.echo(f"{metric} = {with_error(sol.estimate, sol.stderr)} there (target {value:g})")
    click.echo(f"bracket [{sol.bracket[0]:.6g}, {sol.bracket[1]:.6g}] after {sol.evaluations} evaluations "
               f"of {n_paths:,} paths each, seed {sol.seed}")


@main.command("replay")
@folder_argument
@click.option("--path", "path_id", type=click.IntRange(min=0), required=True, help="Path id to replay.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the step-by-step trace to this CSV file.")
@domain_errors
def replay_command(folder, path_id, csv_file):
    """Recompute one path of a run step by step, from its seed and config alone.

    \b
    Example:
        simulator replay results/base --path 42
    """
    import pandas as pd

    from .replay import replay

    if csv_file is not None and not csv_file.resolve().parent.is_dir():
        # Checked first: the trace is printed before the file is written, and the error must be the only line.
        raise click.ClickException(f"--csv {csv_file}: no folder {csv_file.resolve().parent} to write it in")
    r = replay(folder, path_id)
    click.echo(f"path {r.path_id}: drawn parameters")
    for name, value in r.parameters.items():
        click.echo(f"  {name:48} {value:12.6g}")
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.float_format", "{:,.4g}".format):
        click.echo(r.trace.to_string(index=False))
    # The run's files passed their checksums (replay checks them), so a difference is the simulator's, unless
    # another version made the run: a version may change the numbers (CHANGELOG.md says when).
    differs = ("DIFFERS from the run's stored row (please report)" if r.run_version == __version__ else
               f"DIFFERS from the run's stored row, made by simulator {r.run_version} (this is {__version__}, "
               "whose numbers may differ: see CHANGELOG.md)")
    verdict = {True: "matches the run's stored row", False: differs,
               None: "the run did not keep this path's row"}[r.matches_run]
    click.echo(f"recomputed with the plain-Python reference: {verdict}")
    if r.figures is not None:
        click.echo(f"weight {r.weight:.6g}: the likelihood of the reported figures given this path")
        with pd.option_context("display.float_format", "{:,.4g}".format):
            click.echo(r.figures.to_string(index=False))
    if csv_file:
        try:
            r.trace.to_csv(csv_file, index=False)
        except OSError as e:
            raise click.ClickException(f"--csv {csv_file}: cannot write it ({e.strerror or e})") from None
    if r.matches_run is False:
        sys.exit(1)


@main.command("report")
@folder_argument
@out_option("Folder (or URL) for report.html and the PNG charts [default: FOLDER].")
@click.option("--format", "formats", type=click.Choice(["png", "svg"]), multiple=True, default=["png"],
              show_default=True, help="svg: also write each chart as SVG beside its PNG (the page embeds the PNGs).")
@domain_errors
def report_command(folder, out, formats):
    """Write the charts of a finished run and one self-contained report.html page.

    A verdict in plain words, fan charts per step of revenue, gross margin, FCF and cash (with the
    plan), the last year's FCF histogram with CFaR, the survival curve, the funding gap of the paths
    that fell short and, when FOLDER has sensitivity.parquet (`simulator sensitivity`) or
    judgments.parquet, a tornado chart; all read from the run's Parquet files.

    \b
    Example:
        simulator sensitivity results/base
        simulator report results/base --format svg
    """
    from .report import make_report

    report = make_report(folder, out, tuple(formats))
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(f"wrote {report.html} ({len(report.figures)} charts: "
               + ", ".join(f.name for f in report.figures) + ")")


@main.command("export")
@folder_argument
@click.option("--xlsx", "xlsx", type=click.Path(path_type=Path), default=None,
              help="Write an Excel workbook: sheets run, summary, by_year, by_step, inputs and config (needs "
                   "openpyxl: pip install 'ai-lab-risk-simulator[excel]').")
@click.option("--csv", "csv_dir", metavar="DIR", type=click.Path(path_type=Path), default=None,
              help="Write the same tables as CSV files into DIR (run, summary, by_year, by_step, inputs .csv, "
                   "config.toml and export.json, the list of files written).")
@click.option("--force", is_flag=True,
              help="Replace an existing workbook or CSV files, only where simulator export wrote them.")
@domain_errors
def export_command(folder, xlsx, csv_dir, force):
    """Export a finished run for spreadsheets: an Excel workbook and/or CSV files.

    Numbers stay numbers and dates dates; every metric has its standard error and 95% interval, every
    table its units. Nothing is written when a check fails.

    \b
    Example:
        simulator export results/base --xlsx base.xlsx --csv base-csv
    """
    if xlsx is None and csv_dir is None:
        raise click.UsageError("give --xlsx FILE, --csv DIR or both")
    from .export import export_run

    for path in export_run(folder, xlsx, csv_dir, force):
        click.echo(f"wrote {path}")
