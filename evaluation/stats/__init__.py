"""Pure statistics of the study metrics: numpy/scipy on arrays, never the ORM."""

from .study import STATS_VERSION

__all__ = ["STATS_VERSION"]
