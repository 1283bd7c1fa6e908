"""Monte Carlo risk simulator for the finances of a frontier AI lab."""

__version__ = "0.1.0"
