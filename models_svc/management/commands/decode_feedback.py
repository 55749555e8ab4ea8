"""Label every turn of a study that has a follow-up utterance with a feedback decoder."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from games.models import Study


class Command(BaseCommand):
    help = (
        "Decode implicit feedback for a study's turns and store FeedbackLabels "
        "(re-running skips turns this decoder, version and kind already labelled)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True, help="study name")
        parser.add_argument("--round", type=int, dest="round_index", help="only this round")
        parser.add_argument("--system", dest="system_name", help="only this system, e.g. B-FFT")
        parser.add_argument(
            "--decoder", default="", help="lexicon or hf:PATH (default: settings.MODELS_SVC)"
        )
        parser.add_argument("--kind", choices=["binary", "ternary"], default="binary")
        parser.add_argument("--force", action="store_true", help="relabel already labelled turns")
        parser.add_argument("--chunk-size", type=int, default=2048)

    def handle(self, *args, **options) -> None:
        from models_svc.registry import default_spec
        from models_svc.services import decode_study

        try:
            study = Study.objects.get(name=options["study"])
        except Study.DoesNotExist as exc:
            raise CommandError(f"no study named {options['study']!r}") from exc
        spec = options["decoder"] or default_spec("decoder") or "lexicon"
        tty = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            line = f"decoded {done}/{total} turns"
            if tty:
                self.stderr.write("\r" + line, ending="")
            else:
                self.stderr.write(line)

        try:
            summary = decode_study(
                study,
                decoder_spec=spec,
                kind=options["kind"],
                round_index=options["round_index"],
                system_name=options["system_name"],
                force=options["force"],
                chunk_size=options["chunk_size"],
                progress=progress,
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        if tty:
            self.stderr.write("")
        counts = ", ".join(f"{label} {n}" for label, n in sorted(summary.counts.items())) or "none"
        self.stdout.write(
            f"{summary.decoder} ({summary.model_version}, {summary.kind}): "
            f"{summary.windows} turns with a follow-up, {summary.labelled} labelled "
            f"({counts}), {summary.skipped} already labelled"
        )
