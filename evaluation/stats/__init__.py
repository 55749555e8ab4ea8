"""Pure statistics of the study metrics: numpy/scipy on arrays, never the ORM."""

from .inputs import STATS_VERSION

__all__ = ["STATS_VERSION"]
