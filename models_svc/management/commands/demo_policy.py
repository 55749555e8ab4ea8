"""Write the demo's base policy (a tiny random IDEFICS2 checkpoint) and register it."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from models_svc.checkpoint_registration import register_checkpoint
from models_svc.models import ModelCheckpoint

DEMO_POLICY_NOTES = "the demo's base policy (tiny random IDEFICS2, make_tiny_checkpoint)"


def demo_policy_dir() -> Path:
    return Path(settings.VAR_DIR) / "tiny-idefics2"


class Command(BaseCommand):
    help = (
        "Write a tiny random IDEFICS2 checkpoint to var/tiny-idefics2 (unless one is there) and "
        "register it as a policy checkpoint, the base the round board's Train step offers. "
        "Idempotent; run.py demo runs it. Writing the checkpoint needs the ml extra."
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
