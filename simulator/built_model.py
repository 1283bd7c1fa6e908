"""The model a config describes, built once: what every layer of a run (engine, Dask tasks, summaries, report)
reads, so that none of them derives it again from the config."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .actuals import Actuals
from .config import Config
from .model import ModelInputs, build_inputs, drawn_parameters
from .summary import event_names, variable_names


@dataclass(frozen=True, eq=False)
class Model:
    """A validated config and everything derived from it that a run needs.

    ``parameters`` names the columns of the kernel's ``theta`` output (the drawn parameters, kernel order);
    ``variables`` the rows of :func:`simulator.summary.variables`; ``events`` the probability metrics whose
    paths :func:`simulator.summary.event_counts` counts. ``initial_cash`` is the column of the drawn initial
    cash in ``theta``, or its fixed value: the invariant checks read it. ``unkept`` is ``inputs`` narrowed to
    that column, for chunks whose rows are not kept (they write only what their checks read). ``actuals``: the
reported figures a posterior run weights its paths by (None: a prior run); the kernel then records the first
``traced`` steps of every path, which those figures cover."""

    config: Config
    inputs: ModelInputs
    unkept: ModelInputs
    parameters: tuple[str, ...]
    variables: tuple[str, ...]
    events: tuple[str, ...]
    initial_cash: int | float
    actuals: Actuals | None = None

    @classmethod
    def of(cls, config: Config | Model, actuals: Actuals | None = None) -> Model:
        """The model of ``config`` (a model is its own), weighted by ``actuals`` when given."""
        if isinstance(config, Model):
            assert actuals is None or actuals is config.actuals  # a model's actuals are part of it
            return config
        if actuals is not None:
            sim = config.simulation
            actuals.check(sim.start_year, sim.end_year, sim.steps_per_year)
        inputs = build_inputs(config)
        parameters = tuple(drawn_parameters(config))
        key = "funding.initial_cash"
        initial_cash = parameters.index(key) if key in parameters else config.funding.initial_cash.value
        unkept = inputs.keeping([initial_cash] if isinstance(initial_cash, int) else [])
        return cls(config, inputs, unkept, parameters, tuple(variable_names(config)), tuple(event_names(config)),
                   initial_cash, actuals if actuals is not None and actuals.figures else None)

    @property
    def traced(self) -> int:
        """Steps from the start the kernel records for the actuals' likelihoods (0 for a prior run)."""
        if self.actuals is None:
            return 0
        return self.actuals.traced_steps(self.config.simulation.start_year, self.steps_per_year)

    def log_likelihoods(self, steps: np.ndarray) -> np.ndarray:
        """Per reported figure and path, the log-likelihood from the paths' first ``traced`` steps:
        :meth:`simulator.actuals.Actuals.log_likelihoods`."""
        assert self.actuals is not None  # only a posterior run traces steps for its weights
        return self.actuals.log_likelihoods(steps, self.config.simulation.start_year, self.steps_per_year)

    @property
    def years(self) -> list[int]:
        return self.config.years

    @property
    def steps_per_year(self) -> int:
        return self.inputs.spy

    @property
    def n_steps(self) -> int:
        return self.inputs.n_years * self.inputs.spy
