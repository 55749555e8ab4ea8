"""The run page's plot: train loss and validation exact match per epoch, one line per seed
(pure; returns SVG coordinates the template draws)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, MARGIN = 560, 220, 36


@dataclass(frozen=True)
class Line:
    seed: int
    metric: str
    points: str  # "x,y x,y ..." in SVG coordinates


@dataclass(frozen=True)
class Plot:
    lines: list[Line]
    epochs: int
    max_loss: float
    width: int = WIDTH
    height: int = HEIGHT
    margin: int = MARGIN

    @property
    def inner_right(self) -> int:
        return self.width - self.margin

    @property
    def inner_bottom(self) -> int:
        return self.height - self.margin


def history_plot(history: Sequence[dict]) -> Plot | None:
    """Loss (left axis, 0..max) and exact match (right axis, 0..1) against the epoch."""
    if not history:
        return None
    epochs = max(h["epoch"] for h in history) + 1
    max_loss = max(max(h["loss"] for h in history), 1e-9)
    lines = []
    for seed in sorted({h["seed"] for h in history}):
        rows = sorted((h for h in history if h["seed"] == seed), key=lambda h: h["epoch"])
        lines.append(Line(seed, "loss", _points(rows, "loss", max_loss, epochs)))
        scored = [h for h in rows if h.get("exact_match") is not None]
        if scored:
            lines.append(Line(seed, "exact_match", _points(scored, "exact_match", 1.0, epochs)))
    return Plot(lines, epochs, max_loss)


def _points(rows: Sequence[dict], key: str, top: float, epochs: int) -> str:
    span_x = WIDTH - 2 * MARGIN
    span_y = HEIGHT - 2 * MARGIN
    coordinates = []
    for row in rows:
        x = MARGIN + (span_x * row["epoch"] / max(epochs - 1, 1))
        y = HEIGHT - MARGIN - span_y * (row[key] / top)
        coordinates.append(f"{x:.1f},{y:.1f}")
    return " ".join(coordinates)
