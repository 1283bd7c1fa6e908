"""Solve base's training plan by the calibration rule of the compute model (docs/model.md §4, [training]).

    python docs/calibrate_training_plan.py

With revenue pinned to the plan (configs/checks/plan_revenue.toml, every other parameter drawn as in base),
finds the training units of 2026, 2027 and 2028 whose median burn is 17 / 35 / 45 (secant steps, one year at a
time), then the level of 2029 and 2030 (2030 = 1.25 x 2029, a judgment of the shape) whose median total compute
spend through 2030 is 600. Prints the plan to copy into configs/base.toml; tests/test_plan_consistency.py holds
base to the targets.
"""

import numpy as np

from simulator.config import PACKAGED_CONFIGS, load_config
from simulator.engine import simulate
from simulator.summary import yearly

CHECK = PACKAGED_CONFIGS / "checks" / "plan_revenue.toml"
BURN = {"2026": 17.0, "2027": 35.0, "2028": 45.0}
COMPUTE_TOTAL, SHAPE_2030 = 600.0, 1.25
PATHS, SEED = 20_000, 7


def evaluate(plan: dict[str, float]) -> tuple[np.ndarray, float]:
    """(median burn by year, median total compute spend) with training ``plan``."""
    setting = "training.plan={ " + ", ".join(f"{y} = {v:.3f}" for y, v in plan.items()) + " }"
    y = yearly(simulate(load_config(CHECK, [setting]), PATHS, SEED, keep_paths="all").annual)
    return np.median(-y["fcf"], axis=0), float(np.median(y["compute_spend"].sum(axis=1)))


def secant(plan: dict[str, float], years: list[str], value, target: float) -> None:
    """Move ``plan[years]`` (the first; the others follow its shape) until ``value(plan)`` is ``target``."""
    for _ in range(6):
        now = value(plan)
        trial = dict(plan)
        trial[years[0]] = plan[years[0]] * 1.1 + 1.0
        for other in years[1:]:
            trial[other] = SHAPE_2030 * trial[years[0]]
        slope = (value(trial) - now) / (trial[years[0]] - plan[years[0]])
        plan[years[0]] = max(0.0, plan[years[0]] + (target - now) / slope)
        for other in years[1:]:
            plan[other] = SHAPE_2030 * plan[years[0]]
        if abs(value(plan) - target) < 0.005 * target:
            return


def main() -> None:
    plan = {str(y): float(v) for y, v in load_config(PACKAGED_CONFIGS / "base.toml").training.plan.items()}
    for _ in range(4):
        for j, year in enumerate(BURN):
            secant(plan, [year], lambda p, j=j: evaluate(p)[0][j], BURN[year])
        secant(plan, ["2029", "2030"], lambda p: evaluate(p)[1], COMPUTE_TOTAL)
        burn, total = evaluate(plan)
        print({y: round(v, 1) for y, v in plan.items()}, burn.round(1), round(total, 1), flush=True)
        if all(abs(burn[j] - BURN[y]) < 0.3 for j, y in enumerate(BURN)) and abs(total - COMPUTE_TOTAL) < 3:
            break


if __name__ == "__main__":
    main()
