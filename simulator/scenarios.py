"""Scenarios: every config in a folder, run with the same seed and path count, side by side.

With one seed, path ``k`` of every scenario starts from the same random numbers (common random
numbers), so differences between scenarios are mostly the configs' and not Monte Carlo noise.
Each scenario's run folder is written under ``out/<name>/`` (a local folder or a URL) by
:func:`simulator.api.execute`, and ``out/scenarios.parquet`` holds all their summary tables with a
``scenario`` column. On a Dask cluster the scenarios are simulated at once.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from . import __version__
from .api import PreparedRun, check_cluster, execute, prepare, release
from .config import PACKAGED_CONFIGS, Config, ConfigError, command_config, load_config
from .defaults import DEFAULT_OUT, DEFAULT_PATHS
from .results import SCHEMA_VERSION, Results, ResultsError, write_parquet
from .storage import Location

SCENARIOS_FILE = "scenarios.parquet"
# The comparison's columns; ``{end}`` is the scenario's last simulated year.
COMPARISON_METRICS = ("p_fcf_positive_{end}", "p_shortfall_by_{end}", "revenue_{end}_q50", "fcf_{end}_q50",
                      "funding_gap_q95")


@dataclass
class Scenario:
    """One config of the folder and, once run, its results."""

    name: str
    path: Path
    config: Config
    results: Results | None = None

    def finished(self) -> Results:
        """The results; an error before the scenario has run."""
        if self.results is None:
            raise RuntimeError(f"scenario {self.name!r} has not run")
        return self.results


def load_scenarios(folder: str | Path = PACKAGED_CONFIGS) -> list[Scenario]:
    """Every ``*.toml`` config in ``folder`` (sorted by file name), loaded and validated.

    Raises
    ------
    ConfigError
        When the folder holds no config, a config is invalid, or two configs share a name
        (their run folders would collide).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ConfigError(f"{folder}: no *.toml config in this folder")
    scenarios: list[Scenario] = []
    for path in files:
        cfg = load_config(path)
        clash = next((s for s in scenarios if s.name == cfg.name), None)
        if clash:
            raise ConfigError(f"{path}: name = {cfg.name!r} is also the name of {clash.path.name}; "
                              "each scenario needs its own name (it names the output folder)")
        scenarios.append(Scenario(cfg.name, path, cfg))
    return scenarios


def common_seed(scenarios: list[Scenario]) -> int:
    """The configs' ``simulation.seed`` when they all agree (common random numbers need one seed)."""
    seeds = {s.config.simulation.seed for s in scenarios}
    if len(seeds) > 1:
        listing = ", ".join(f"{s.name} {s.config.simulation.seed}" for s in scenarios)
        raise ConfigError(f"the configs disagree on simulation.seed ({listing}); pass a seed to run them all with")
    return seeds.pop()


def run_scenarios(scenarios: list[Scenario], n_paths: int = DEFAULT_PATHS, seed: int | None = None,
                  out: str | Path = DEFAULT_OUT, *, force: bool = False,
                  progress: Callable[[Scenario], Callable[[int], None] | None] | None = None,
                  workers: int | None = None, scheduler=None, note: Callable[[str], None] | None = None
                  ) -> pd.DataFrame:
    """Run every scenario with ``seed`` and ``n_paths``, write ``out/<name>/`` and ``out/scenarios.parquet``.

    Parameters
    ----------
    scenarios : list of Scenario
        From :func:`load_scenarios`; each gets its ``results`` filled in.
    seed : int, optional
        One seed for all (default: their common ``simulation.seed``, see :func:`common_seed`).
    force : bool
        Replace existing results; without it, nothing is run if any output already exists.
    progress : callable, optional
        ``progress(scenario)`` returns the ``progress(k)`` callback for that scenario's run (or None).
    workers, scheduler : optional
        Run the scenarios on one Dask cluster (see :func:`simulator.api.run`), all at once: their
        blocks share the workers, and each scenario's result equals its own local run's.

    Returns
    -------
    DataFrame
        The scenarios' summary tables, concatenated, with a first column ``scenario`` (string).
    """
    out = Location(out)
    seed = common_seed(scenarios) if seed is None else seed
    # Check every destination before the first (possibly long) run.
    target = out / SCENARIOS_FILE
    if target.exists() and not force:
        raise ResultsError(f"{target}: exists; use --force to replace it")
    # The run adds --seed, --paths and --keep-paths to the command.
    check_cluster(workers, scheduler)
    runs: list[PreparedRun] = []
    try:
        for s in scenarios:
            runs.append(prepare(s.config, n_paths, seed, out / s.name, force=force,
                                progress=progress(s) if progress else None, note=note,
                                command=f"simulator run {shlex.quote(command_config(s.path))}"))
    except BaseException:  # the scenarios prepared before this one do not run: nothing of theirs stays
        release(runs, failed=True)
        raise
    for s, results in zip(scenarios, execute(runs, workers, scheduler)):
        s.results = results
    table = combined_summary(scenarios)
    metadata = {"schema_version": SCHEMA_VERSION, "simulator_version": __version__, "seed": seed, "n_paths": n_paths,
                "scenarios": {s.name: {"config_hash": s.finished().metadata["config_hash"], "file": s.path.name}
                              for s in scenarios}}
    write_parquet(target, table, metadata)
    return table


def combined_summary(scenarios: list[Scenario]) -> pd.DataFrame:
    """The run scenarios' summary tables stacked, with a first column ``scenario``."""
    frames = [s.finished().summary.assign(scenario=s.name) for s in scenarios]
    table = pd.concat(frames, ignore_index=True)
    table = table[["scenario", *frames[0].columns.drop("scenario")]]
    return table.astype({"scenario": "string"})


def comparison(scenarios: list[Scenario]) -> pd.DataFrame:
    """One row per run scenario and, for each of :data:`COMPARISON_METRICS`, its value and 95% interval.

    Columns are a MultiIndex (metric pattern with ``{end}`` filled in when every scenario ends in
    the same year, else kept as ``END``; one of value / ci_low / ci_high).
    """
    ends = {s.config.simulation.end_year for s in scenarios}
    label_end = str(ends.pop()) if len(ends) == 1 else "END"
    rows = {}
    for s in scenarios:
        summary = s.finished().summary.set_index("metric")
        row = {}
        for pattern in COMPARISON_METRICS:
            metric = summary.loc[pattern.format(end=s.config.simulation.end_year)]
            for field in ("value", "ci_low", "ci_high"):
                row[(pattern.format(end=label_end), field)] = metric[field]
        rows[s.name] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["metric", "field"])
    frame.index.name = "scenario"
    return frame
