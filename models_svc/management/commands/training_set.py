"""Build (or find) the training manifest of a system for a round and print its summary."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from ._study import study_named


class Command(BaseCommand):
    help = (
        "Select a system's training examples from rounds ≤ N with their decoded labels, store "
        "them as an immutable content-hashed manifest, and print how many were kept and why "
        "the others were excluded."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True)
        parser.add_argument("--round", type=int, required=True, dest="round_index")
        parser.add_argument("--system", required=True, dest="system_name", help="e.g. B-FFT")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        from models_svc.training.manifests import build_training_manifest
        from models_svc.training.selectors import TrainingError

        study = study_named(options["study"])
        try:
            manifest = build_training_manifest(
                study, options["round_index"], options["system_name"]
            )
        except TrainingError as exc:
            raise CommandError(str(exc)) from exc
        document = manifest_document(manifest)
        if options["json"]:
            self.stdout.write(json.dumps(document, indent=2))
            return
        summary = manifest.summary
        self.stdout.write(
            f"manifest {manifest.content_hash[:12]}: {summary['examples']} examples from "
            f"{summary.get('games', 0)} games ({', '.join(summary.get('systems', []))})"
        )
        self.stdout.write(f"decoder {manifest.decoder} {manifest.kind} {manifest.decoder_version}")
        for label, count in summary["labels"].items():
            self.stdout.write(f"  {label}: {count}")
        for reason, count in summary["excluded"].items():
            self.stdout.write(f"  excluded, {reason.replace('_', ' ')}: {count}")


def manifest_document(manifest) -> dict:
    return {
        "manifest": manifest.content_hash,
        "role": manifest.role,
        "study": manifest.study.name,
        "round": manifest.round_index,
        "system": manifest.system_name,
        "decoder": manifest.decoder,
        "decoder_version": manifest.decoder_version,
        "kind": manifest.kind,
        "prompt_format": manifest.prompt_format,
        **manifest.summary,
    }
