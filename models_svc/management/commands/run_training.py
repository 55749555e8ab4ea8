"""Execute a training run in this process (under torchrun for several GPUs)."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Execute a queued training run here instead of on a Celery gpu-batch worker. For data "
        "parallel training on several GPUs: torchrun --nproc-per-node N manage.py run_training "
        "--run ID (rank 0 records progress)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--run", type=int, required=True, dest="run_id")

    def handle(self, *args, **options) -> None:
        from models_svc.models import TrainingRun
        from models_svc.training.runs import execute_training_run, training_job
        from models_svc.training.trainer import Progress, train

        if not TrainingRun.objects.filter(pk=options["run_id"]).exists():
            raise CommandError(f"no training run {options['run_id']}")
        if int(os.environ.get("RANK", "0")) != 0:
            train(training_job(TrainingRun.objects.get(pk=options["run_id"])), Progress())
            return
        run = execute_training_run(options["run_id"])
        if run.status != TrainingRun.Status.DONE:
            raise CommandError(f"run {run.pk}: {run.status}: {run.error}")
        self.stdout.write(f"run {run.pk}: {run.status} {run.output_adapter}")
