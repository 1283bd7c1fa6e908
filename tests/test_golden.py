"""Golden outputs: a refactoring must leave every number bit-identical.

The files under tests/golden/ were written by ``python tests/test_golden.py --write`` before the kernel was
cut into modules (issue 34). A change that is meant to move numbers (a model change) rewrites them in the same
commit and says so; any other change must pass as it is."""

import hashlib
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.api import run
from simulator.config import PACKAGED_CONFIGS, load_config

GOLDEN = Path(__file__).parent / "golden"
# (name, config, overrides, paths, seed, keep_paths): exact and streamed quantiles, 4 and 12 steps a year,
# antithetic pairs, and a config with other raises and shocks.
RUNS = [
    ("base_exact", "base", (), 70_000, 5, "all"),
    ("base_streamed", "base", (), 600_000, 6, "none"),
    ("plan_monthly", "plan", ("simulation.steps_per_year=12",), 20_000, 7, "all"),
    ("bear_antithetic", "bear", ("simulation.antithetic=true",), 20_000, 8, "all"),
    ("compute_shock", "compute_shock", (), 20_000, 9, "all"),
]


def simulate(name, config, overrides, n_paths, seed, keep):
    cfg = load_config(PACKAGED_CONFIGS / f"{config}.toml", overrides)
    with tempfile.TemporaryDirectory() as tmp:
        res = run(cfg, n_paths, seed, Path(tmp) / "run", keep_paths=keep)
        tables = {"summary": res.summary, "by_year": res.by_year,
                  "by_step": pq.read_table(Path(tmp) / "run" / "by_step.parquet").to_pandas()}
        if keep != "none":  # every kept number, as a SHA-256 of each column's bytes: small files, exact comparison
            rows = res.paths
            tables["paths"] = pd.DataFrame({"column": list(rows.columns),
                                            "sha256": [hashlib.sha256(pd.util.hash_pandas_object(rows[c], index=False)
                                                                      .to_numpy().tobytes()).hexdigest()
                                                       for c in rows.columns]})
    return tables


def load(name):
    return {p.stem.split("__")[1]: pq.read_table(p).to_pandas() for p in sorted(GOLDEN.glob(f"{name}__*.parquet"))}


@pytest.mark.parametrize("spec", RUNS, ids=[r[0] for r in RUNS])
def test_outputs_are_bit_identical_to_the_golden_files(spec):
    golden = load(spec[0])
    assert golden, f"no golden files for {spec[0]}; write them with python tests/test_golden.py --write"
    got = simulate(*spec)
    assert sorted(got) == sorted(golden)
    for table, frame in got.items():
        pd.testing.assert_frame_equal(frame.reset_index(drop=True), golden[table], check_exact=True,
                                      check_dtype=False, obj=f"{spec[0]} {table}")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.mkdir(exist_ok=True)
    for spec in RUNS:
        for table, frame in simulate(*spec).items():
            pq.write_table(pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False),
                           GOLDEN / f"{spec[0]}__{table}.parquet")
