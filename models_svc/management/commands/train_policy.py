"""Launch a training run of a system's next-round policy (on the gpu queue)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from models_svc.training.config import PRESETS

from ._study import settings_from, study_named

QUEUE = "gpu"


def queue_consumers(queue: str, timeout: float = 2.0) -> list[str]:
    """The workers that answer within ``timeout`` seconds and consume ``queue``."""
    from config.celery import app

    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    return sorted(
        worker for worker, queues in replies.items() if any(q["name"] == queue for q in queues)
    )


class Command(BaseCommand):
    help = (
        "Train a system's next-round policy from its decoded interactions of rounds ≤ N: "
        "builds the manifests, queues the run on the gpu queue, and with --wait follows it "
        "to the end."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True)
        parser.add_argument("--round", type=int, required=True, dest="round_index")
        parser.add_argument("--system", required=True, dest="system_name")
        parser.add_argument("--objective", choices=["fft", "rl", "kto"], default="")
        parser.add_argument("--base", default="", help="hf:PATH (default: the system's policy)")
        parser.add_argument(
            "--preset",
            choices=list(PRESETS),
            default=None,
            help="named settings (default: RESPECT_TRAINING_PRESET, else paper; tiny: 1 epoch, "
            "1 seed, the settings that teach a make_tiny_checkpoint policy on a CPU)",
        )
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--seeds", type=int)
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="any other training setting, e.g. --set learning_rate=2e-4",
        )
        parser.add_argument("--wait", action="store_true", help="follow the run until it ends")

    def handle(self, *args, **options) -> None:
        from models_svc.models import TrainingRun
        from models_svc.training.runs import TrainingError, launch_training_run

        study = study_named(options["study"])
        preset = options["preset"] or settings.TRAINING_PRESET
        overrides: dict = {**PRESETS[preset], **settings_from(options["set"])}
        for name in ("epochs", "seeds"):
            if options[name] is not None:
                overrides[name] = options[name]
        try:
            run = launch_training_run(
                study,
                options["round_index"],
                options["system_name"],
                objective=options["objective"],
                base=options["base"],
                overrides=overrides,
            )
        except (TrainingError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        summary = run.manifest.summary
        self.stdout.write(
            f"training run {run.pk} queued: {run.objective.upper()} {run.system_name}, "
            f"{summary['examples']} examples ({summary['labels']}), base {run.base_checkpoint}"
        )
        if not options["wait"]:
            return
        if not queue_consumers(QUEUE):
            self.stderr.write(
                f"no worker is consuming the {QUEUE} queue: run {run.pk} waits until one starts "
                f"(python3 run.py demo, or celery -A config worker -Q {QUEUE})"
            )
        shown = None
        while run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
            time.sleep(1)
            run.refresh_from_db()
            line = (run.status, run.seed_index, run.epoch, run.step)
            if line != shown:
                shown = line
                loss = f"{run.loss:.4f}" if run.loss is not None else "-"
                self.stderr.write(
                    f"{run.status}: seed {run.seed_index} epoch {run.epoch} step "
                    f"{run.step}/{run.total_steps} loss {loss}"
                )
        if run.status != TrainingRun.Status.DONE:
            raise CommandError(f"training run {run.pk} {run.status}: {run.error}")
        self.stdout.write(
            f"training run {run.pk} done: selected {run.selected}; policy {run.policy_spec}"
        )
