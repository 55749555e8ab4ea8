"""Write the demo's base policy (a tiny random IDEFICS2 checkpoint) and register it, and build
the demo study's seed set D₀ that every training run rehearses."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from games.demo import DEMO_STUDY
from games.models import Study, System
from models_svc.checkpoint_registration import register_checkpoint
from models_svc.models import ModelCheckpoint
from models_svc.training.manifests import build_seed_manifest
from models_svc.training.selectors import seed_manifest_for

DEMO_POLICY_NOTES = "the demo's base policy (tiny random IDEFICS2, make_tiny_checkpoint)"


def demo_policy_dir() -> Path:
    return Path(settings.VAR_DIR) / "tiny-idefics2"


class Command(BaseCommand):
    help = (
        "Write a tiny random IDEFICS2 checkpoint to var/tiny-idefics2 (unless one is there) and "
        "register it as a policy checkpoint, the base the round board's Train step offers; "
        "build the demo study's D₀ in each of its systems' prompt formats (from its human–human "
        "games on main-split tangrams: the demo has no dev-split games). Idempotent; run.py "
        "demo runs it. Writing the checkpoint needs the ml extra."
    )

    def handle(self, *args, **options) -> None:
        directory = demo_policy_dir()
        if not directory.is_dir():
            from models_svc.tiny_models import learnable_tiny_idefics2

            # Written aside and renamed, so an interrupted start never leaves half a checkpoint.
            partial = directory.with_name(directory.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            learnable_tiny_idefics2(partial, seed=0)
            partial.rename(directory)
        checkpoint, created = register_checkpoint(
            ModelCheckpoint.Kind.POLICY, str(directory.resolve()), notes=DEMO_POLICY_NOTES
        )
        verb = "registered" if created else "already registered"
        self.stdout.write(f"demo base policy {verb}: {checkpoint.spec}")
        self._seed_sets()

    def _seed_sets(self) -> None:
        study = Study.objects.filter(name=DEMO_STUDY).first()
        if study is None or not System.objects.filter(round__study=study, name="HH").exists():
            return
        formats = set(
            System.objects.filter(round__study=study).values_list("prompt_format", flat=True)
        )
        for prompt_format in sorted(formats):
            if seed_manifest_for(study, prompt_format) is None:
                manifest = build_seed_manifest(study, 0, split="main", prompt_format=prompt_format)
                self.stdout.write(
                    f"demo seed set D₀ ({manifest.prompt_format}): "
                    f"{manifest.summary.get('examples', 0)} examples"
                )
