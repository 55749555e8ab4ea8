"""The tangram library: KILOGRAM images loaded from a directory, or generated demo silhouettes.

Images live in the default storage (``MEDIA_ROOT`` on one machine) under a content-addressed
name, ``tangrams/<id>-<sha256 prefix>.png``: loading the same image again writes nothing, and a
changed image gets a new name, so browsers and proxies may cache image URLs for long.
Loading is all or nothing: every image and the splits file are checked before the first row is
written, and files written for a failed load are removed again.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from PIL import Image, UnidentifiedImageError

from games.models import Tangram
from games.silhouettes import silhouette_png

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SPLITS = (Tangram.Split.DEV, Tangram.Split.TRAIN, Tangram.Split.TEST)
DEMO_PREFIX = "demo-"
GENERATED = "generated"
KILOGRAM = "kilogram"


class TangramImportError(ValueError):
    """A tangram directory, image or splits file that cannot be loaded (nothing was changed)."""


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    splits_file: Path | None = None

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)

    def summary(self) -> str:
        return (
            f"{self.total} tangrams: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


@dataclass(frozen=True)
class TangramImage:
    """One image to load: its id, PNG bytes, split and source."""

    name: str
    data: bytes
    split: str = ""
    source: str = KILOGRAM


def tangram_image_url(name: str) -> str:
    """The URL that serves a tangram's image (public: crowdworkers see these images too)."""
    return reverse("games:tangram_image", kwargs={"name": name})


def read_splits(path: Path) -> dict[str, str]:
    """Tangram id → split from ``{"splits": {"dev": [...], "train": [...], "test": [...]}}``."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise TangramImportError(f"splits file {path} does not exist") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TangramImportError(f"splits file {path} is not readable JSON: {error}") from error
    splits = document.get("splits") if isinstance(document, dict) else None
    if not isinstance(splits, dict):
        raise TangramImportError(f"splits file {path}: expected an object with key 'splits'")
    assignment: dict[str, str] = {}
    for split, names in splits.items():
        if split not in SPLITS:
            raise TangramImportError(
                f"splits file {path}: unknown split {split!r} (expected dev, train or test)"
            )
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TangramImportError(f"splits file {path}: 'splits.{split}' must be a list of ids")
        for name in names:
            stem = name.removesuffix(".png").removesuffix(".svg")
            if stem in assignment and assignment[stem] != split:
                raise TangramImportError(
                    f"splits file {path}: {stem} is in both {assignment[stem]} and {split}"
                )
            assignment[stem] = split
    return assignment


def find_splits_file(directory: Path) -> Path | None:
    """``splits.json`` in the image directory or beside it (the KILOGRAM layout), if any."""
    for candidate in (directory / "splits.json", directory.parent / "splits.json"):
        if candidate.is_file():
            return candidate
    return None


def read_png(path: Path) -> bytes:
    """The bytes of a readable PNG image; raises naming the file otherwise."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            image_format = image.format
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise TangramImportError(f"image {path} is not a readable PNG: {error}") from error
    if image_format != "PNG":
        raise TangramImportError(f"image {path} is a {image_format} file, not a PNG")
    return data


def scan_directory(directory: Path, splits_file: Path | None) -> list[TangramImage]:
    """Every ``*.png`` in ``directory`` checked and paired with its split."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TangramImportError(f"tangram directory {directory} does not exist")
    paths = sorted(directory.glob("*.png"))
    if not paths:
        raise TangramImportError(f"tangram directory {directory} holds no .png images")
    assignment = read_splits(splits_file) if splits_file else {}
    names = [path.stem for path in paths]
    bad_names = [name for name in names if not NAME_PATTERN.match(name)]
    if bad_names:
        raise TangramImportError(
            f"tangram ids must be letters, digits, '-', '_' or '.', at most 64 characters: "
            f"{', '.join(bad_names[:10])}"
        )
    unknown = sorted(set(assignment) - set(names))
    if unknown:
        shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
        raise TangramImportError(
            f"splits file {splits_file} names {len(unknown)} ids with no image in {directory}: "
            f"{shown}"
        )
    return [
        TangramImage(path.stem, read_png(path), assignment.get(path.stem, ""), KILOGRAM)
        for path in paths
    ]


def _storage_name(image: TangramImage) -> str:
    digest = hashlib.sha256(image.data).hexdigest()[:16]
    return f"{image.name}-{digest}.png"


def store_images(images: Iterable[TangramImage]) -> LoadResult:
    """Create or update a Tangram row per image, all or nothing; unchanged images write nothing."""
    images = list(images)
    result = LoadResult()
    written: list[str] = []
    replaced: list[str] = []
    existing = {t.name: t for t in Tangram.objects.filter(name__in=[i.name for i in images])}
    try:
        with transaction.atomic():
            for image in images:
                tangram = existing.get(image.name) or Tangram(name=image.name)
                wanted = Tangram.image.field.generate_filename(tangram, _storage_name(image))
                in_storage = default_storage.exists(wanted)
                fields = (image.split, image.source)
                if tangram.image.name == wanted and in_storage:
                    if (tangram.split, tangram.source) == fields:
                        result.unchanged.append(image.name)
                        continue
                else:
                    if tangram.image.name and tangram.image.name != wanted:
                        replaced.append(tangram.image.name)
                    if in_storage:
                        # Content-addressed: a file of this name already holds these bytes
                        # (left by an earlier load), so the row points at it again.
                        tangram.image.name = wanted
                    else:
                        tangram.image.save(
                            _storage_name(image), ContentFile(image.data), save=False
                        )
                        if tangram.image.name:  # always, once saved
                            written.append(tangram.image.name)
                tangram.split, tangram.source = fields
                (result.updated if tangram.pk else result.created).append(image.name)
                tangram.save()
            transaction.on_commit(lambda: _delete_files(replaced))
    except BaseException:
        _delete_files(written)
        raise
    return result


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        if default_storage.exists(name):
            default_storage.delete(name)


def import_tangram_directory(directory: Path, splits_file: Path | None = None) -> LoadResult:
    """Load KILOGRAM PNGs from ``directory`` (id = file stem); splits from ``splits_file``."""
    images = scan_directory(Path(directory), Path(splits_file) if splits_file else None)
    result = store_images(images)
    result.splits_file = Path(splits_file) if splits_file else None
    return result


def demo_split(index: int) -> str:
    """The split of the ``index``-th (1-based) generated tangram: 1 in 10 dev, the rest
    alternating train and test, mirroring KILOGRAM's small dev and even train/test halves."""
    if index % 10 == 0:
        return Tangram.Split.DEV
    return Tangram.Split.TRAIN if index % 2 else Tangram.Split.TEST


def demo_tangram_name(index: int) -> str:
    return f"{DEMO_PREFIX}{index:03d}"


def generate_demo_tangrams(count: int = 60, seed: int = 0) -> LoadResult:
    """Create (or keep) ``count`` generated silhouettes named ``demo-001`` … with splits."""
    if not 1 <= count <= 999:
        raise TangramImportError(f"count must be between 1 and 999, got {count}")
    rng = random.Random(seed)
    images = [
        TangramImage(
            demo_tangram_name(index),
            silhouette_png(rng.randrange(2**32)),
            demo_split(index),
            GENERATED,
        )
        for index in range(1, count + 1)
    ]
    return store_images(images)
