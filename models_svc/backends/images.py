"""Tangram image files as the models see them (PIL only)."""

from __future__ import annotations


def tangram_on_white(path: str):
    """The image file as RGB on a white background (tangram files are transparent PNGs)."""
    from PIL import Image

    with Image.open(path) as image:
        rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")
