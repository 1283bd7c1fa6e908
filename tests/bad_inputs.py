"""Every bad input the simulator is tried with, and what its message must say.

Each case is a scenario file that extends the base config with ``toml`` (if any) and the
command-line arguments ``args`` ({config} and {out} are filled in). ``tests/test_bad_inputs.py``
runs every case; ``docs/make_reliability.py`` turns the list into the table of docs/reliability.md.
"""

import sys
from contextlib import contextmanager
from dataclasses import dataclass

from click.testing import CliRunner

from simulator.cli import main
from simulator.config import DEFAULT_CONFIG


@dataclass(frozen=True)
class Case:
    what: str
    toml: str = ""
    args: tuple = ("run", "{config}", "-n", "100", "-q", "--out", "{out}")
    expect: str = ""  # the message must contain this
    standalone: bool = False  # the file is ``toml`` alone (no extends of the base config)
    requires: str = ""  # a module the case needs (the dask extra's), skipped where it is not installed
    actuals: str = ""  # the text of an actuals file, for {actuals}
    hides: str = ""  # a module made unimportable while the case runs (an extra that is not installed)


SOURCE = '[sources.s]\ntitle = "a report"\npublished = 2026-06-30\nconfidence = "M"\n'
POSTERIOR = ("run", "{config}", "-n", "2000", "-q", "--out", "{out}", "--actuals", "{actuals}")


def figure(period: str, variable: str, value: str, source: str = "s") -> str:
    """An actuals file: SOURCE and one figure."""
    return SOURCE + f'[[figures]]\nperiod = "{period}"\nvariable = "{variable}"\nvalue = {value}\nsource = "{source}"\n'


VALIDATE = ("validate", "{config}")

CASES = [
    Case("missing key", 'name = "incomplete"\n[competition]\nintensity = 0.1\n', VALIDATE,
         "revenue: missing required key", standalone=True),
    Case("unknown key", "[funding]\nmin_cahs = 15\n", VALIDATE, "funding.min_cahs: unknown key"),
    Case("unknown key inside a distribution",
         '[compute]\nprice_drift = { dist = "normal", mean = 0.1, sd = 0.1, sigma = 1 }\n', VALIDATE,
         "compute.price_drift.sigma: unknown key"),
    Case("unknown distribution", '[compute]\nprice_drift = { dist = "gamma", k = 2 }\n', VALIDATE,
         "expected a number or a table with dist = one of"),
    Case("wrong type", '[funding]\nmin_cash = "ten"\n', VALIDATE, "funding.min_cash"),
    Case("negative volatility", "[revenue.consumer]\nsigma = -0.1\n", VALIDATE,
         "revenue.consumer.sigma = -0.1: expected a value in [0, inf]"),
    Case("zero half-life", "[revenue.consumer]\nhalf_life = 0\n", VALIDATE,
         "revenue.consumer.half_life = 0: expected a value in (0, inf]"),
    Case("ceiling at or below the starting run-rate", "[revenue.enterprise]\nrun_rate = 7.0\nceiling = 7.0\n",
         VALIDATE, "revenue.enterprise: ceiling = 7: expected a ceiling above the starting run_rate (7)"),
    Case("negative ceiling", "[revenue.enterprise]\nceiling = -5\n", VALIDATE,
         "revenue.enterprise.ceiling = -5: expected a value in (0, inf]"),
    Case("negative credit rate", "[funding.credit]\nrate = -0.1\n", VALIDATE,
         "funding.credit.rate = -0.1: expected a value in [0, inf]"),
    Case("volatility that can go negative",
         '[revenue.consumer]\nsigma = { dist = "normal", mean = 0.1, sd = 0.1 }\n', VALIDATE,
         "add lower/upper truncation bounds"),
    Case("p5 above p95", '[compute]\nusage_drift = { dist = "normal", p5 = 0.3, p95 = 0.1 }\n', VALIDATE,
         "p5 (0.3) must be below p95 (0.1)"),
    Case("p5 equal to p95", '[compute]\nusage_drift = { dist = "normal", p5 = 0.2, p95 = 0.2 }\n', VALIDATE,
         "p5 (0.2) must be below p95 (0.2)"),
    Case("probability above 1", "[funding.scheduled.ipo]\nprobability = 1.5\n", VALIDATE,
         "funding.scheduled.ipo.probability = 1.5"),
    Case("fraction outside [0, 1]", "[revenue.ads]\ncompetition_exposure = 1.2\n", VALIDATE,
         "revenue.ads.competition_exposure = 1.2: expected a value in [0, 1]"),
    Case("correlation not symmetric",
         '[shocks]\nnames = ["revenue.consumer", "market"]\nmatrix = [[1, 0.2], [0.3, 1]]\n', VALIDATE,
         "not symmetric"),
    Case("correlation not positive definite",
         '[shocks]\nnames = ["revenue.consumer", "revenue.enterprise", "market"]\n'
         "matrix = [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]\n", VALIDATE, "not positive definite"),
    Case("correlation of the wrong size",
         '[shocks]\nnames = ["revenue.consumer", "market"]\nmatrix = [[1, 0.2, 0], [0.2, 1, 0]]\n', VALIDATE,
         "matrix must be 2x2"),
    Case("correlation naming an unknown variable",
         '[parameter_correlation]\nnames = ["compute.price_drfit", "compute.usage_drift"]\n'
         "matrix = [[1, -0.5], [-0.5, 1]]\n", VALIDATE, "unknown name 'compute.price_drfit'"),
    Case("schedule with a missing year", "", ("validate", "{config}", "--set",
                                               "training.plan={ 2026 = 14, 2027 = 32, 2029 = 55, 2030 = 60 }"),
         "training.plan: expected one value for each year 2026..2030, missing 2028"),
    Case("NaN value", "[costs]\ncash_interest = nan\n", VALIDATE, "costs.cash_interest"),
    Case("infinite value", "[funding]\ninitial_cash = inf\n", VALIDATE, "funding.initial_cash"),
    Case("extends a missing file", 'extends = "nowhere.toml"\n', VALIDATE, "no such file"),
    Case("extends itself", 'extends = "{self}"\n', VALIDATE, "extends forms a cycle"),
    Case("not TOML", "[funding\n", VALIDATE, "not valid TOML"),
    Case("--set on a key that does not exist", "",
         ("run", "{config}", "-n", "100", "-q", "--out", "{out}", "--set", "funding.min_cahs=15"),
         "--set funding.min_cahs: no such key"),
    Case("--set with a value of the wrong type", "",
         ("run", "{config}", "-n", "100", "-q", "--out", "{out}", "--set", "funding.credit.limit=lots"),
         "funding.credit.limit"),
    Case("--set without a value", "", ("run", "{config}", "-n", "100", "--set", "funding.min_cash"),
         "expected KEY=VALUE"),
    # Zero paths, a negative seed, zero threads, a zero chunk size and a bad --keep-paths are usage errors
    # (exit status 2, with the usage line): tests/test_cli.py's test_bad_option_values_are_usage_errors.
    Case("more threads than cores", "",
         ("run", "{config}", "-n", "10", "--threads", "100000", "-q", "--out", "{out}"),
         "threads = 100000: expected 1.."),
    Case("output folder exists", "", ("run", "{config}", "-n", "10", "-q", "--out", "{existing}"),
         "folder exists and is not empty; use --force"),
    Case("output path is a file", "", ("run", "{config}", "-n", "10", "-q", "--out", "{config}"),
         "exists and is not a folder"),
    Case("output folder not writable", "", ("run", "{config}", "-n", "10", "-q", "--out", "/proc/simulator-results"),
         "cannot write results there"),
    Case("output URL not writable", "",
         ("run", "{config}", "-n", "10", "-q", "--out", "file:///proc/simulator-results"),
         "cannot write results there"),
    Case("output URL of an unknown file system", "",
         ("run", "{config}", "-n", "10", "-q", "--out", "nosuch://bucket/run"), "unknown protocol 'nosuch'"),
    Case("more per-path rows than the disk holds", "",
         ("run", "{config}", "-n", "1000000000000", "--keep-paths", "all", "-q", "--out", "{out}"),
         "per-path rows need about"),
    Case("config file missing", "", ("validate", "{missing}"), "config file not found"),
    Case("show a folder with no finished run", "", ("show", "{out_empty}"), "no manifest.json"),
    Case("replay a path the run does not have", "", ("replay", "{existing}", "--path", "999"),
         "the run has path ids 0..9"),
    # output folders, names and config files (issue 35)
    Case("name that climbs out of results/", "", ("run", "{config}", "-n", "10", "-q", "--set",
                                                  "name=../../escaped_target"), "name = '../../escaped_target'"),
    Case("name that is the parent folder", "", ("run", "{config}", "-n", "10", "-q", "--force", "--set", "name=.."),
         "expected a plain name"),
    Case("empty name", "", ("run", "{config}", "-n", "10", "-q", "--set", "name="), "name = '': expected a plain name"),
    Case("name with markup", "name = \"<img src=x onerror=alert(1)>\"\n", VALIDATE, "expected a plain name"),
    Case("output in memory only", "", ("run", "{config}", "-n", "10", "-q", "--out", "memory://x"),
         "a memory:// folder ends with the command"),
    Case("output at a data: URL", "", ("run", "{config}", "-n", "10", "-q", "--out", "data:text/plain,x"),
         "a data: URL holds the bytes of one file"),
    Case("output folder inside a file", "", ("run", "{config}", "-n", "10", "-q", "--out", "{config}/run"),
         "cannot write results there (Not a directory)"),
    Case("--force over files the simulator did not write", "",
         ("run", "{config}", "-n", "10", "-q", "--force", "--out", "{foreign}"),
         "notes.txt: not written by the simulator"),
    Case("extends a device", 'extends = "/dev/zero"\n', VALIDATE, "/dev/zero: not a regular file"),
    Case("extends a file over 1 MiB", 'extends = "{big}"\n', VALIDATE, "expected a config of at most 1,048,576"),
    Case("date in year 9999", "[funding.scheduled.ipo]\ndate = 9999-12-31\n", VALIDATE,
         "funding.scheduled.ipo.date = 9999-12-31: expected a date between"),
    Case("end year past the calendar", "[simulation]\nend_year = 9999\n", VALIDATE, "simulation.end_year = 9999"),
    # report, replay and cluster (issue 35)
    Case("report over a report.html it did not write", "", ("report", "{existing}", "-o", "{foreign}"),
         "report.html: not written by simulator report"),
    Case("report into a file", "", ("report", "{existing}", "-o", "{config}"), "exists and is not a folder"),
    Case("replay --csv into a missing folder", "", ("replay", "{existing}", "--path", "3", "--csv", "{out}/trace.csv"),
         "trace.csv: no folder"),
    Case("unreachable --scheduler", "", ("run", "{config}", "-n", "10", "-q", "--out", "{out}",
                                         "--scheduler", "tcp://127.0.0.1:9"), "cannot connect to the Dask scheduler",
         requires="distributed"),
    Case("--scheduler-security without --scheduler", "",
         ("run", "{config}", "-n", "10", "-q", "--out", "{out}", "--scheduler-security", "{missing}"),
         "only used with --scheduler"),
    Case("--scheduler-security file missing", "",
         ("run", "{config}", "-n", "10", "-q", "--out", "{out}", "--scheduler", "tcp://127.0.0.1:9",
          "--scheduler-security", "{missing}"), "missing.toml: cannot read it", requires="distributed"),
    # kernel and model (issue 35)
    Case("supply shocks beyond one a day", "[compute]\nsupply_shock_intensity = 1e9\n", expect=
         "compute.supply_shock_intensity = 1000000000.0: expected a value in [0, 365] (at most one a day"),
    Case("competition shocks beyond one a day", "[competition]\nintensity = 1000\n", VALIDATE,
         "competition.intensity = 1000: expected a value in [0, 365]"),
    Case("an amount too large for the summaries", "[funding]\nmin_cash = 1e308\n", expect=
         "funding.min_cash = 1e+308: expected a value within +/-1e+09"),
    Case("draws too large for the summaries",
         '[funding]\ninitial_cash = { dist = "lognormal", mu = 30, sigma = 1 }\n', VALIDATE,
         "funding.initial_cash: expected draws (over"),
    Case("more tranches than an int64", "[funding.scheduled.softbank]\ntranches = 18446744073709551616\n",
         VALIDATE, "funding.scheduled.softbank.tranches = 18446744073709551616"),
    Case("one path", "", ("run", "{config}", "-n", "1", "-q", "--out", "{out}"),
         "n_paths = 1: expected at least 2 paths"),
    Case("one antithetic pair", "", ("run", "{config}", "-n", "2", "--antithetic", "-q", "--out", "{out}"),
         "n_paths = 2: expected at least 4 paths (2 antithetic pairs)"),
    # compute contracts (model v2)
    Case("a contract with a negative amount", "[compute.contracts.oracle]\namount = { 2027 = -30.0 }\n", expect=
         "compute.contracts.oracle.amount.2027 = -30.0: Input should be greater than or equal to 0"),
    Case("take_or_pay outside [0, 1]", "[compute.contracts.aws]\ntake_or_pay = 1.2\n", expect=
         "compute.contracts.aws.take_or_pay = 1.2: Input should be less than or equal to 1"),
    Case("actuals: unknown variable", actuals=figure("2026Q1", "ebitda", "1.0"), args=POSTERIOR,
         expect="figures[0].variable = 'ebitda': expected one of revenue, burn, fcf, gross_margin, cash"),
    Case("actuals: a period outside the simulation", actuals=figure("2031Q1", "revenue", "50.0"), args=POSTERIOR,
         expect="period 2031Q1 is outside the simulation (2026..2030)"),
    Case("actuals: a quarter at one step a year", "[simulation]\nsteps_per_year = 1\n",
         actuals=figure("2026Q1", "revenue", "5.7"), args=POSTERIOR,
         expect="a quarterly figure needs simulation.steps_per_year = 4 or 12"),
    Case("actuals: the same figure twice",
         actuals=figure("2026Q1", "burn", "3.7") + figure("2026Q1", "fcf", "-3.7")[len(SOURCE):], args=POSTERIOR,
         expect="figures[1] (2026Q1 fcf -3.7): a second fcf figure for 2026Q1"),
    Case("actuals: a negative revenue", actuals=figure("2026Q1", "revenue", "-5.7"), args=POSTERIOR,
         expect="figures[0] (2026Q1 revenue): value = -5.7: expected a positive amount"),
    Case("actuals: an error of 0",
         actuals=figure("2026Q1", "revenue", "5.7").replace('"M"', '"M"\nrelative_error = 0'), args=POSTERIOR,
         expect="sources.s.relative_error = 0: expected a positive number"),
    Case("actuals: a source not defined", actuals=figure("2026Q1", "revenue", "5.7", source="ft"), args=POSTERIOR,
         expect="figures[0].source = 'ft': expected the id of a [sources.<id>] table (s)"),
    Case("actuals: not TOML", actuals="[[figures]\nperiod = 2026Q1\n", args=POSTERIOR,
         expect="actuals.toml: not valid TOML"),
    Case("actuals: a figure far in the model's tail", actuals=figure("2026Q1", "revenue", "57.0"), args=POSTERIOR,
         expect="figures[0] (2026Q1 revenue 57) is furthest in the model's tail"),
    Case("actuals with antithetic paths", actuals=figure("2026Q1", "revenue", "5.7"),
         args=(*POSTERIOR, "--antithetic"), expect="an antithetic run cannot be weighted"),
    # rejected options leave no folder behind (issue 33): tests/test_bad_inputs.py checks that nothing was made
    Case("odd path count with --antithetic", "", ("run", "{config}", "-n", "101", "--antithetic", "-q", "--out",
                                                  "{out}"), "n_paths = 101: an antithetic run needs an even number"),
    Case("--target-se 0", "", ("run", "{config}", "-n", "100", "--target-se", "0", "-q", "--out", "{out}"),
         "--target-se 0.0: expected a positive standard error"),
    Case("--workers without the dask extra", "", ("run", "{config}", "-n", "100", "--workers", "2", "-q", "--out",
                                                  "{out}"), "running on a Dask cluster needs the dask extra",
         hides="distributed"),
    Case("--actuals file missing", "", ("run", "{config}", "-n", "100", "-q", "--out", "{out}", "--actuals",
                                        "{missing}"), "missing.toml: actuals file not found"),
    Case("v1's training.committed", "[training]\ncommitted = { 2026 = 0.7 }\n", expect=
         "training.committed was replaced by [compute.contracts.<name>]"),
]


def run_case(case, tmp_path):
    """Run one case in the folder ``tmp_path``; returns click's Result."""
    config = tmp_path / "scenario.toml"
    toml = case.toml.replace("{self}", config.name).replace("{big}", str(tmp_path / "big.toml"))
    standalone = case.standalone or "extends" in toml
    config.write_text(toml if standalone else f'extends = "{DEFAULT_CONFIG}"\n{toml}')
    existing = tmp_path / "existing"
    if any("{existing}" in a for a in case.args):
        assert CliRunner().invoke(main, ["run", "-n", "10", "-q", "--out", str(existing)]).exit_code == 0
    (tmp_path / "empty").mkdir()
    foreign = tmp_path / "foreign"  # a folder holding someone else's files where a run and a report write
    (foreign / "paths").mkdir(parents=True)
    (foreign / "paths" / "notes.txt").write_text("thesis")
    (foreign / "report.html").write_text("<html><title>my own page</title></html>\n")
    (tmp_path / "big.toml").write_text("# padding\n" * 120_000)
    actuals = tmp_path / "actuals.toml"
    actuals.write_text(case.actuals)
    fill = {"config": str(config), "out": str(tmp_path / "out"), "existing": str(existing),
            "missing": str(tmp_path / "missing.toml"), "out_empty": str(tmp_path / "empty"), "foreign": str(foreign),
            "big": str(tmp_path / "big.toml"), "actuals": str(actuals)}
    args = list(case.args)
    for key, value in fill.items():
        args = [a.replace("{" + key + "}", value) for a in args]
    with hidden(case.hides):
        return CliRunner().invoke(main, args)


@contextmanager
def hidden(module: str):
    """``import module`` fails inside (as where the extra that provides it is not installed)."""
    if not module:
        yield
        return
    saved = sys.modules.get(module)
    sys.modules[module] = None  # type: ignore[assignment]  # import then raises ImportError
    try:
        yield
    finally:
        if saved is None:
            del sys.modules[module]
        else:
            sys.modules[module] = saved


