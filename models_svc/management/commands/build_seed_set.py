"""Build the seed set D₀ from human–human games on the dev split."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from ._study import study_named
from .training_set import manifest_document


class Command(BaseCommand):
    help = (
        "Build the seed set D₀: the good turns of a round's human–human games whose tangrams "
        "are all on the dev split, plus synthetic deselection turns at 1:12 (seeded). Every "
        "later training run of the study rehearses it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True)
        parser.add_argument("--round", type=int, default=0, dest="round_index")
        parser.add_argument("--system", default="HH", dest="system_name")
        parser.add_argument(
            "--split",
            default="dev",
            choices=["dev", "train", "test", "main"],
            help="the tangrams' split (main: train and test; the study uses dev)",
        )
        parser.add_argument("--format", default="", help="prompt format (default respect-2024)")
        parser.add_argument("--seed", default="0")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        from models_svc.prompt_formats import UnknownPromptFormat
        from models_svc.training.manifests import build_seed_manifest
        from models_svc.training.selectors import TrainingError

        study = study_named(options["study"])
        try:
            manifest = build_seed_manifest(
                study,
                options["round_index"],
                system_name=options["system_name"],
                split=options["split"],
                prompt_format=options["format"],
                seed=options["seed"],
            )
        except (TrainingError, UnknownPromptFormat) as exc:
            raise CommandError(str(exc)) from exc
        document = manifest_document(manifest)
        if options["json"]:
            self.stdout.write(json.dumps(document, indent=2))
            return
        self.stdout.write(
            f"seed set {manifest.content_hash[:12]}: {document['real']} good turns and "
            f"{document['synthetic']['undo']} undo + {document['synthetic']['clear']} clear "
            f"synthetic turns from {document['games']} games"
        )
