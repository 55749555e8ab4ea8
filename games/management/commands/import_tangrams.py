"""Load KILOGRAM tangram PNGs into the tangram library."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from games.tangrams import TangramImportError, find_splits_file, import_tangram_directory


class Command(BaseCommand):
    help = (
        "Load tangram images (*.png; the id is the file stem, e.g. page3-21) from DIR, or from "
        "settings.TANGRAM_DIR when DIR is left out. Splits come from --splits FILE "
        '({"splits": {"dev": [...], "train": [...], "test": [...]}}), or from a splits.json in '
        "DIR or beside it. Safe to run again: unchanged images are left alone. All or nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", nargs="?", help="directory of PNG images")
        parser.add_argument("--splits", help="JSON file assigning ids to dev/train/test")
        parser.add_argument(
            "--no-splits",
            action="store_true",
            help="ignore any splits.json found next to the images",
        )

    def handle(self, *args, directory: str | None, splits: str | None, no_splits: bool, **opts):
        if not directory:
            directory = settings.TANGRAM_DIR
            if not directory:
                raise CommandError(
                    "give the tangram directory (import_tangrams DIR) or set TANGRAM_DIR"
                )
        path = Path(directory)
        if splits and no_splits:
            raise CommandError("--splits and --no-splits exclude each other")
        splits_file = Path(splits) if splits else None
        if splits_file is None and not no_splits and path.is_dir():
            splits_file = find_splits_file(path)
        try:
            result = import_tangram_directory(path, splits_file)
        except TangramImportError as error:
            raise CommandError(f"{error} (nothing was changed)") from error
        source = f" with splits from {splits_file}" if splits_file else " without splits"
        self.stdout.write(self.style.SUCCESS(f"Loaded {path}{source}: {result.summary()}."))
