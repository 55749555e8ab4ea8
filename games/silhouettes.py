"""Tangram-like silhouettes for the zero-setup demo (pure geometry and Pillow; no ORM).

The seven tans of the classic set - two large triangles, one medium triangle, two small
triangles, a square and a parallelogram - are laid one by one, each glued edge to edge onto a
piece already placed and never overlapping one, so the figure is always one connected region.
The layout is drawn black on white. Everything follows from the seed: the same seed gives the
same PNG bytes (with the same Pillow), different seeds give different figures.

Units: the legs of a small triangle are 1, so the square has side 1, the medium triangle legs
√2, the large triangles legs 2, and the whole set has area 8.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

Point = tuple[float, float]
Polygon = tuple[Point, ...]

# Base shapes, counter-clockwise, every edge at a multiple of 45°.
TANS: dict[str, Polygon] = {
    "large": ((0.0, 0.0), (2.0, 0.0), (0.0, 2.0)),
    "medium": ((0.0, 0.0), (2.0, 0.0), (1.0, 1.0)),
    "small": ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)),
    "square": ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
    "parallelogram": ((0.0, 0.0), (1.0, 0.0), (2.0, 1.0), (1.0, 1.0)),
}
SET_OF_SEVEN: tuple[str, ...] = (
    "large",
    "large",
    "medium",
    "small",
    "small",
    "square",
    "parallelogram",
)
TOTAL_AREA = 8.0
_EPS = 1e-7


@dataclass(frozen=True)
class Layout:
    """The placed pieces of one silhouette, as polygons in tan units."""

    pieces: tuple[Polygon, ...]

    @property
    def area(self) -> float:
        return sum(polygon_area(piece) for piece in self.pieces)


def polygon_area(polygon: Sequence[Point]) -> float:
    """Signed area (positive for counter-clockwise polygons)."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(polygon, [*polygon[1:], polygon[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return total / 2.0


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_intersection_area(subject: Polygon, clip: Polygon) -> float:
    """Area shared by two convex counter-clockwise polygons (Sutherland-Hodgman clipping)."""
    output: list[Point] = list(subject)
    for a, b in zip(clip, [*clip[1:], clip[0]], strict=True):
        if not output:
            return 0.0
        points, output = output, []
        for p, q in zip(points, [*points[1:], points[0]], strict=True):
            p_in, q_in = _cross(a, b, p) > _EPS, _cross(a, b, q) > _EPS
            if p_in:
                output.append(p)
            if p_in != q_in:
                dp, dq = _cross(a, b, p), _cross(a, b, q)
                t = dp / (dp - dq)
                output.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return abs(polygon_area(output)) if len(output) >= 3 else 0.0


def _transform(polygon: Polygon, angle: float, shift: Point, origin: Point) -> Polygon:
    """Rotate ``polygon`` by ``angle`` about ``origin``, then move ``origin`` to ``shift``."""
    cos, sin = math.cos(angle), math.sin(angle)
    placed = []
    for x, y in polygon:
        dx, dy = x - origin[0], y - origin[1]
        placed.append((shift[0] + cos * dx - sin * dy, shift[1] + sin * dx + cos * dy))
    return tuple(placed)


def _mirror(polygon: Polygon) -> Polygon:
    """The mirror image, still counter-clockwise."""
    return tuple((-x, y) for x, y in reversed(polygon))


def _edges(polygon: Polygon) -> list[tuple[Point, Point]]:
    return list(zip(polygon, [*polygon[1:], polygon[0]], strict=True))


def _length(a: Point, b: Point) -> float:
    return math.hypot(b[0] - a[0], b[1] - a[1])


def _placements(shape: Polygon, placed: Sequence[Polygon]) -> list[Polygon]:
    """Every way to glue one edge of ``shape`` along an edge of a placed piece without overlap."""
    candidates: list[Polygon] = []
    for piece in placed:
        for p, q in _edges(piece):
            edge = _length(p, q)
            direction = ((p[0] - q[0]) / edge, (p[1] - q[1]) / edge)
            target_angle = math.atan2(direction[1], direction[0])
            for a, b in _edges(shape):
                own = _length(a, b)
                angle = target_angle - math.atan2(b[1] - a[1], b[0] - a[0])
                offsets = {0.0, round(edge - own, 9), round((edge - own) / 2, 9)}
                for offset in sorted(offsets):
                    start = (q[0] + offset * direction[0], q[1] + offset * direction[1])
                    candidate = _transform(shape, angle, start, a)
                    if all(convex_intersection_area(candidate, other) < 1e-6 for other in placed):
                        candidates.append(candidate)
    return candidates


def _bounding_area(pieces: Sequence[Polygon]) -> float:
    xs = [x for piece in pieces for x, _ in piece]
    ys = [y for piece in pieces for _, y in piece]
    return (max(xs) - min(xs)) * (max(ys) - min(ys))


def generate_layout(seed: int, *, compactness: float = 0.6) -> Layout:
    """A connected, non-overlapping arrangement of the seven tans, determined by ``seed``.

    ``compactness`` (0-1) is the share of placements drawn among the most compact candidates;
    the rest are drawn among all candidates, which gives limbs and spikes like real tangrams.
    """
    rng = random.Random(seed)
    order = list(SET_OF_SEVEN)
    rng.shuffle(order)
    placed: list[Polygon] = []
    for name in order:
        shape = TANS[name]
        if name == "parallelogram" and rng.random() < 0.5:
            shape = _mirror(shape)
        if not placed:
            angle = rng.randrange(8) * math.pi / 4
            placed.append(_transform(shape, angle, (0.0, 0.0), (0.0, 0.0)))
            continue
        candidates = _placements(shape, placed)
        if rng.random() < compactness:
            candidates.sort(key=lambda c: _bounding_area([*placed, c]))
            candidates = candidates[: max(1, len(candidates) // 4)]
        placed.append(rng.choice(candidates))
    return Layout(tuple(placed))


def render_layout(
    layout: Layout, *, size: int = 224, margin: int = 12, supersample: int = 4
) -> bytes:
    """PNG bytes of the layout: a black silhouette centred on a white square."""
    xs = [x for piece in layout.pieces for x, _ in piece]
    ys = [y for piece in layout.pieces for _, y in piece]
    width, height = max(xs) - min(xs), max(ys) - min(ys)
    big = size * supersample
    scale = (big - 2 * margin * supersample) / max(width, height)
    left = (big - width * scale) / 2 - min(xs) * scale
    bottom = (big - height * scale) / 2 - min(ys) * scale
    image = Image.new("L", (big, big), 255)
    draw = ImageDraw.Draw(image)
    for piece in layout.pieces:
        # Image rows grow downwards, so y is flipped to keep the layout upright.
        draw.polygon([(left + x * scale, big - (bottom + y * scale)) for x, y in piece], fill=0)
    image = image.resize((size, size), Image.Resampling.BOX)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def silhouette_png(seed: int, *, size: int = 224) -> bytes:
    """The PNG of the silhouette for ``seed``."""
    return render_layout(generate_layout(seed), size=size)
