"""Where the tests find the 24 synthetic sample games (tests/data/samples/README.md).

A copy lives in ``tests/data/samples`` (synthetic games, no KILOGRAM images) so that a clone
tests the same way wherever it is checked out; ``RESPECT_SAMPLES_DIR`` points at another folder
holding files of the same names, to check a newer drop of them.
"""

from __future__ import annotations

import os
from pathlib import Path

SAMPLES_DIR = Path(
    os.environ.get("RESPECT_SAMPLES_DIR", Path(__file__).resolve().parent / "data" / "samples")
)
SAMPLE_JSON = SAMPLES_DIR / "respect_games_sample.json"
SAMPLE_PKL = SAMPLES_DIR / "respect_games_sample.pkl"
