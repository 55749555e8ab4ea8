"""Helpers of the viewer tests."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw


def png_bytes(shade: int, *, size: int = 32) -> bytes:
    """A small PNG: a dark square of grey level ``shade`` on white (distinct shades, distinct
    bytes)."""
    image = Image.new("L", (size, size), 255)
    ImageDraw.Draw(image).rectangle((8, 8, 23, 23), fill=shade)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
