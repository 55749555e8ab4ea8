"""Embed tangram images with a CLIP checkpoint; the similarity metric reads the result."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError


class Command(BaseCommand):
    help = "Compute and store tangram embeddings and their cosine-similarity matrix."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--embedder", default="", help="clip:PATH (default: settings.MODELS_SVC['EMBEDDER'])"
        )
        parser.add_argument("names", nargs="*", help="only these tangrams (default: all)")

    def handle(self, *args, **options) -> None:
        from models_svc.registry import default_spec
        from models_svc.services import embed_tangrams

        spec = options["embedder"] or default_spec("embedder")
        if not spec:
            raise CommandError("no embedder: pass --embedder clip:PATH or set RESPECT_EMBEDDER")
        try:
            embedding_set = embed_tangrams(spec, options["names"] or None)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{embedding_set.embedder} ({embedding_set.model_version}): "
            f"{len(embedding_set.names)} tangrams, {embedding_set.dim}-d embeddings"
        )
