"""Reported figures (an actuals file) and the likelihood weight they give each simulated path.

An actuals file lists figures the company or the press reported after a config's ``as_of`` date: a period (a
quarter ``2026Q1`` or a year ``2026``), a variable, the value and its source. Each source states how far its
figures can be trusted (its confidence, or its errors), one error per source, not per figure:

* revenue and cash: a log-normal error, ``relative_error`` (the standard deviation of the log);
* burn and FCF (burn = -FCF): a normal error whose standard deviation is ``relative_error`` times the period's
  simulated gross cash costs (revenue - FCF), so that a burn near zero is not taken as infinitely precise;
* gross margin: a normal error of ``margin_error`` (a share, 0.05 = 5 points).

A path's weight is the likelihood of every reported figure given that path's figures for the same periods:
``w = prod_i p(reported_i | simulated_i)``, up to a factor common to all paths. Weighted summaries of the paths
are then the model's view *given* what was reported (docs/model.md, "Updating on reported figures").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import re
import tomllib
from pathlib import Path

import numpy as np

from .config import PACKAGED_CONFIGS, ConfigError, read_toml
from .layout import T_CASH, T_FCF, T_GM, T_REV
from .samples import WeightedSample
from .stats import effective_paths

PACKAGED_ACTUALS = PACKAGED_CONFIGS / "actuals"
VARIABLES = ("revenue", "burn", "fcf", "gross_margin", "cash")
# Default errors by a source's confidence, in the terms of docs/model.md §7: high, medium, low.
RELATIVE_ERRORS = {"H": 0.05, "M": 0.10, "L": 0.20}
MARGIN_ERROR = 0.05  # 5 points, whatever the confidence: a margin is a ratio of two reported figures
PERIOD = re.compile(r"(\d{4})(?:Q([1-4]))?")
SOURCE_KEYS = {"title", "published", "confidence", "relative_error", "margin_error", "url"}
FIGURE_KEYS = {"period", "variable", "value", "source", "note"}


class ActualsError(ConfigError):
    """A problem of an actuals file, naming the entry."""


@dataclasses.dataclass(frozen=True)
class Source:
    id: str
    title: str
    published: dt.date
    relative_error: float
    margin_error: float


@dataclasses.dataclass(frozen=True)
class Figure:
    period: str
    variable: str
    value: float
    source: Source

    @property
    def label(self) -> str:
        return f"{self.period} {self.variable} {self.value:g}"

    def steps(self, start_year: int, spy: int) -> tuple[int, int]:
        """The simulation steps ``k0 .. k1 - 1`` the figure's period covers."""
        m = PERIOD.fullmatch(self.period)
        assert m is not None  # checked when read
        year, quarter = int(m.group(1)), m.group(2)
        if quarter is None:
            return (year - start_year) * spy, (year - start_year + 1) * spy
        per_quarter = spy // 4
        k0 = (year - start_year) * spy + (int(quarter) - 1) * per_quarter
        return k0, k0 + per_quarter


@dataclasses.dataclass(frozen=True)
class Actuals:
    """The figures of an actuals file; ``name`` is the file as the user gave it, ``text`` as read (a run keeps it
    in its metadata)."""

    name: str
    figures: tuple[Figure, ...]
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def check(self, start_year: int, end_year: int, spy: int) -> None:
        """Refuse a figure whose period the simulation does not cover, or cannot resolve (a quarter at 1 step a
        year)."""
        for i, f in enumerate(self.figures):
            year = int(f.period[:4])
            if not start_year <= year <= end_year:
                raise ActualsError(f"{self.name}: figures[{i}] ({f.label}): period {f.period} is outside the "
                                   f"simulation ({start_year}..{end_year})")
            if "Q" in f.period and spy < 4:
                raise ActualsError(f"{self.name}: figures[{i}] ({f.label}): a quarterly figure needs "
                                   f"simulation.steps_per_year = 4 or 12 (the config has {spy})")

    def traced_steps(self, start_year: int, spy: int) -> int:
        """How many steps from the start the kernel must record for these figures (0 without any)."""
        return max((f.steps(start_year, spy)[1] for f in self.figures), default=0)

    def simulated(self, steps: np.ndarray, start_year: int, spy: int) -> tuple[np.ndarray, np.ndarray]:
        """Per figure and path, the path's own value of the figure's variable over its period (NaN: a margin
        without revenue), and the period's gross cash costs (revenue - FCF, which scale a burn's error): two
        (figures, paths) arrays from ``steps``, ``kernel.trace_block``'s (paths, T, len(STEP_VARS)) values."""
        values, costs = np.empty((2, len(self.figures), len(steps)))
        dt_ = 1.0 / spy
        for i, f in enumerate(self.figures):
            k0, k1 = f.steps(start_year, spy)
            part = steps[:, k0:k1]
            revenue = part[:, :, T_REV].sum(axis=1) * dt_
            fcf = part[:, :, T_FCF].sum(axis=1) * dt_
            # A step without revenue has an undefined margin and no cost of revenue to add.
            cogs = np.where(part[:, :, T_REV] > 0, (1.0 - part[:, :, T_GM]) * part[:, :, T_REV], 0.0).sum(axis=1)
            with np.errstate(all="ignore"):
                margin = np.where(revenue > 0, 1.0 - cogs * dt_ / revenue, np.nan)
            values[i] = {"revenue": revenue, "cash": part[:, -1, T_CASH], "gross_margin": margin, "fcf": fcf,
                         "burn": -fcf}[f.variable]
            costs[i] = revenue - fcf
        return values, costs

    def log_likelihoods(self, steps: np.ndarray, start_year: int, spy: int) -> np.ndarray:
        """Per figure and path, the log-likelihood of the reported value given the path's steps (see
        :meth:`simulated`), up to a constant: (figures, paths); -inf where the path cannot produce the figure
        (no revenue for a margin, revenue or cash at or below 0, no cash costs for a burn)."""
        values, costs = self.simulated(steps, start_year, spy)
        out = np.empty_like(values)
        for i, f in enumerate(self.figures):
            x = values[i]
            with np.errstate(all="ignore"):
                if f.variable in ("revenue", "cash"):
                    z = (math.log(f.value) - np.log(x)) / f.source.relative_error
                    out[i] = np.where(x > 0, -0.5 * z * z, -np.inf)
                elif f.variable == "gross_margin":
                    z = (f.value - x) / f.source.margin_error
                    out[i] = np.where(np.isnan(x), -np.inf, -0.5 * z * z)
                else:
                    sd = f.source.relative_error * np.maximum(costs[i], 0.0)
                    z = (f.value - x) / sd
                    out[i] = np.where(sd > 0, -0.5 * z * z - np.log(sd), -np.inf)
        return out




def actuals_file(given: str | Path) -> Path:
    """The file an ``--actuals`` argument names: that file where it exists, else the packaged actuals file of
    that plain name (``2026h1``: ``simulator/configs/actuals/2026h1.toml``), else the path as given."""
    path = Path(given)
    packaged = PACKAGED_ACTUALS / f"{given}.toml"
    if not path.exists() and re.fullmatch(r"[A-Za-z0-9_-]+", str(given)) and packaged.is_file():
        return packaged
    return path


def command_actuals(given: str | Path) -> str:
    """How a command line that reproduces a run names its actuals file, with no path of this machine in it: a
    packaged file by its name, a relative path as typed, an absolute path inside the working folder relative to
    it, else the file's name (its text is in the run's metadata)."""
    path = Path(given)
    if not path.is_absolute():
        return str(path)
    if path.parent.resolve() == PACKAGED_ACTUALS.resolve():
        return path.stem
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return path.name


def load_actuals(given: str | Path) -> Actuals:
    """Read and check an actuals file (see the module docstring; a packaged one by its name: ``actuals_file``);
    one :class:`ActualsError` line per problem."""
    path = actuals_file(given)
    raw = read_toml(path, "actuals")
    return _actuals(str(given), raw, path.read_text(encoding="utf-8"))


def actuals_of_run(metadata: dict) -> Actuals | None:
    """The actuals a run was updated on, from the text its metadata keeps (None: a prior run)."""
    kept = metadata.get("actuals")
    if kept is None:
        return None
    try:
        raw = tomllib.loads(kept["text"])
    except tomllib.TOMLDecodeError as e:
        raise ActualsError(f"{kept['file']} (kept in the run's metadata): not valid TOML: {e}") from None
    return _actuals(kept["file"], raw, kept["text"])


def _actuals(name: str, raw: dict, text: str) -> Actuals:
    """The checked figures of an actuals file's table ``raw`` (``name``: the file, for the messages)."""
    unknown = set(raw) - {"description", "sources", "figures"}
    if unknown:
        raise ActualsError(f"{name}: unknown key {sorted(unknown)[0]!r}; expected description, sources, figures")
    sources_raw = raw.get("sources", {})
    if not isinstance(sources_raw, dict):
        raise ActualsError(f"{name}: sources must be a table of sources by id")
    sources = {key: _source(name, key, value) for key, value in sources_raw.items()}
    figures_raw = raw.get("figures", [])
    if not isinstance(figures_raw, list):
        raise ActualsError(f"{name}: figures must be an array of tables ([[figures]])")
    figures: list[Figure] = []
    seen: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(figures_raw):
        figure = _figure(name, i, entry, sources)
        # burn and FCF are one figure, of opposite signs
        key = (figure.period, "fcf" if figure.variable == "burn" else figure.variable)
        if key in seen:
            raise ActualsError(f"{name}: figures[{i}] ({figure.label}): a second {figure.variable} figure for "
                               f"{figure.period} (figures[{seen[key]}] has one already)")
        seen[key] = i
        figures.append(figure)
    return Actuals(name, tuple(figures), text)


def _check_table(where: str, value, keys: set[str], needed: tuple[str, ...]) -> None:
    """``value`` is a table of ``keys`` only, with each of ``needed``."""
    if not isinstance(value, dict):
        raise ActualsError(f"{where}: expected a table ({', '.join(needed)})")
    unknown = set(value) - keys
    if unknown:
        raise ActualsError(f"{where}: unknown key {sorted(unknown)[0]!r}; expected {', '.join(sorted(keys))}")
    for key in needed:
        if key not in value:
            raise ActualsError(f"{where}: no {key}")


def _source(name: str, key: str, value) -> Source:
    where = f"{name}: sources.{key}"
    _check_table(where, value, SOURCE_KEYS, ("title", "published", "confidence"))
    if not isinstance(value["published"], dt.date) or isinstance(value["published"], dt.datetime):
        raise ActualsError(f"{where}.published = {value['published']!r}: expected a date (2026-06-15)")
    confidence = value["confidence"]
    if confidence not in RELATIVE_ERRORS:
        raise ActualsError(f"{where}.confidence = {confidence!r}: expected H, M or L")
    errors = {}
    for what, default in (("relative_error", RELATIVE_ERRORS[confidence]), ("margin_error", MARGIN_ERROR)):
        e = value.get(what, default)
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 < e < math.inf:
            raise ActualsError(f"{where}.{what} = {e!r}: expected a positive number")
        errors[what] = float(e)
    return Source(key, str(value["title"]), value["published"], **errors)


def _figure(name: str, i: int, entry, sources: dict[str, Source]) -> Figure:
    where = f"{name}: figures[{i}]"
    _check_table(where, entry, FIGURE_KEYS, ("period", "variable", "value", "source"))
    period, variable, value, source = (entry[k] for k in ("period", "variable", "value", "source"))
    if not isinstance(period, (str, int)) or not PERIOD.fullmatch(str(period)):
        raise ActualsError(f"{where}.period = {period!r}: expected a quarter (\"2026Q1\") or a year (\"2026\")")
    period = str(period)
    if variable not in VARIABLES:
        raise ActualsError(f"{where}.variable = {variable!r}: expected one of {', '.join(VARIABLES)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ActualsError(f"{where}.value = {value!r}: expected a number")
    if variable in ("revenue", "cash") and value <= 0:
        raise ActualsError(f"{where} ({period} {variable}): value = {value!r}: expected a positive amount in $B")
    if variable == "gross_margin" and not value < 1:
        raise ActualsError(f"{where} ({period} gross_margin): value = {value!r}: expected a share below 1 "
                           "(0.39 for 39%)")
    if source not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise ActualsError(f"{where}.source = {source!r}: expected the id of a [sources.<id>] table ({known})")
    return Figure(period, variable, float(value), sources[source])


def path_weights(loglik: np.ndarray) -> np.ndarray:
    """Each path's likelihood weight from its per-figure log-likelihoods (figures, paths): the product over the
    figures, path by path, so a path's weight does not depend on the chunk or task that simulated it."""
    return np.exp(loglik.sum(axis=0))


MIN_EFFECTIVE_PATHS = 1_000  # fewer, and the weighted figures' standard errors are themselves unreliable


def figure_report(actuals: Actuals, loglik: np.ndarray, values: np.ndarray | None = None,
                  weights: np.ndarray | None = None) -> list[dict]:
    """Per figure (rows of ``loglik``, paths in columns): what it is, its error, and the share of the paths it
    alone would leave effective (Kish): the figures the model finds least likely have the smallest. With the
    figures' ``values`` on some paths (:meth:`Actuals.simulated`, e.g. those of ``by_step``) and those paths'
    ``weights``, also the 5%, 50% and 95% of the path's own figure before (``prior_``) and after (``posterior_``)
    the update, and the share of the paths below the reported value before it (its percentile in the prior:
    an out-of-sample test of the config) with its standard error."""
    out = []
    for i, (f, row) in enumerate(zip(actuals.figures, loglik)):
        error = f.source.margin_error if f.variable == "gross_margin" else f.source.relative_error
        entry = {"period": f.period, "variable": f.variable, "value": f.value, "source": f.source.id,
                 "published": f.source.published.isoformat(), "error": error,
                 "ess_share_alone": effective_paths(np.exp(row - row.max())) / row.size if np.isfinite(row.max())
                 else 0.0}
        if values is not None and weights is not None:
            x = values[i]
            defined = ~np.isnan(x)
            x, w = x[defined], weights[defined]
            for side, sample in (("prior", WeightedSample(x, np.ones_like(x))), ("posterior", WeightedSample(x, w))):
                entry.update({f"{side}_q{q:02d}": sample.at(q / 100) for q in (5, 50, 95)})
            below = float(np.mean(x < f.value))
            entry.update(prior_percentile=below, prior_percentile_se=math.sqrt(below * (1 - below) / x.size),
                         paths=int(x.size))
        out.append(entry)
    return out


def check_effective(actuals: Actuals, loglik: np.ndarray, weights: np.ndarray) -> None:
    """Refuse a posterior run worth fewer than MIN_EFFECTIVE_PATHS effective paths (``weights``: the paths', from
    their per-figure ``loglik``), naming the figure furthest in the model's tail and the path count that would
    do."""
    n = loglik.shape[1]
    ess = effective_paths(weights)
    if ess >= MIN_EFFECTIVE_PATHS:
        return
    report = figure_report(actuals, loglik)
    worst = min(range(len(report)), key=lambda i: report[i]["ess_share_alone"])
    alone = report[worst]["ess_share_alone"]
    need = "more paths than can be run" if ess == 0 else f"about {math.ceil(MIN_EFFECTIVE_PATHS * n / ess):,} paths"
    raise ActualsError(f"{actuals.name}: {n:,} paths are worth {ess:,.0f} effective paths given its figures, under "
                       f"the {MIN_EFFECTIVE_PATHS:,} their standard errors need; figures[{worst}] "
                       f"({actuals.figures[worst].label}) is furthest in the model's tail (alone it leaves "
                       f"{alone:.2%} of the paths effective); run {need} (--paths)")
