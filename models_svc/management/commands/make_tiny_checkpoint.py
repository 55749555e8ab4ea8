"""Write a tiny random IDEFICS2 checkpoint (config, weights, processor, chat template)."""

from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Write a tiny random IDEFICS2-architecture checkpoint to DIR (a few MB, built from a "
        "config; nothing is downloaded). Every command accepts it as hf:DIR, so the whole "
        "play → decode → train → next round loop runs on a laptop. Needs the ml extra."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options) -> None:
        from models_svc.tiny_models import learnable_tiny_idefics2

        path = learnable_tiny_idefics2(options["directory"], seed=options["seed"])
        self.stdout.write(f"wrote a tiny IDEFICS2 checkpoint: use it as hf:{path.resolve()}")
