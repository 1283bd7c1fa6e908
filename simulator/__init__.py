"""Monte Carlo risk simulator for the finances of a frontier AI lab.

>>> import simulator
>>> cfg = simulator.load_config()                      # the packaged base config
>>> res = simulator.run(cfg, n_paths=100_000, seed=1)  # or out="results/x" to write Parquet
>>> res.metric("p_fcf_positive_2030")
"""

__version__ = "0.5.0.dev0"

from .api import run  # noqa: E402
from .config import ConfigError, load_config  # noqa: E402
from .errors import SimulatorError  # noqa: E402
from .results import Results, ResultsError, read_results  # noqa: E402

__all__ = ["ConfigError", "Results", "ResultsError", "SimulatorError", "load_config", "read_results", "run",
           "__version__"]
