"""Launch a training run of a system's next-round policy (on the gpu-batch queue)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from models_svc.training.config import PRESETS
from models_svc.training.forms import default_preset

from ._study import settings_from, study_named


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
        "builds the manifests, queues the run on the gpu-batch queue, and with --wait follows it "
        "to the end. With --seed-policy, train π₀ on the seed set D₀ alone instead (deploy it "
        "to round 0 with --deploy RUN)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True)
        parser.add_argument("--round", type=int, dest="round_index")
        parser.add_argument("--system", dest="system_name")
        parser.add_argument(
            "--seed-policy",
            action="store_true",
            help="train π₀ on D₀ alone (FFT from --base; 40 epochs, 10 with --preset tiny)",
        )
        parser.add_argument(
            "--deploy",
            type=int,
            metavar="RUN",
            help="make finished seed run RUN the policy of round 0's model systems",
        )
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
        from config.errors import ApplicationError
        from models_svc.models import TrainingRun

        study = study_named(options["study"])
        preset = options["preset"] or default_preset()
        chosen: dict = settings_from(options["set"])
        for name in ("epochs", "seeds"):
            if options[name] is not None:
                chosen[name] = options[name]
        if options["deploy"] is not None:
            self._deploy(study, options["deploy"])
            return
        try:
            run = self._launch(study, preset, chosen, options)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        summary = run.manifest.summary
        self.stdout.write(
            f"training run {run.pk} queued: {run.objective.upper()} {run.system_name}, "
            f"{summary['examples']} examples ({summary['labels']}), base {run.base_checkpoint}"
        )
        if not options["wait"]:
            return
        queue = settings.GPU_BATCH_QUEUE
        if not queue_consumers(queue):
            self.stderr.write(
                f"no worker is consuming the {queue} queue: run {run.pk} waits until one starts "
                f"(python3 run.py demo, or celery -A config worker -Q {queue})"
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

    def _launch(self, study, preset: str, chosen: dict, options: dict):
        """A seed run (its preset picks its own epochs) or a run of a system (the preset's
        settings, then those given)."""
        from models_svc.training.runs import launch_training_run
        from models_svc.training.seed_runs import launch_seed_run

        if options["seed_policy"]:
            return launch_seed_run(study, base=options["base"], overrides=chosen, preset=preset)
        if options["round_index"] is None or not options["system_name"]:
            raise CommandError("--round and --system are required (or pass --seed-policy)")
        return launch_training_run(
            study,
            options["round_index"],
            options["system_name"],
            objective=options["objective"],
            base=options["base"],
            overrides={**PRESETS[preset], **chosen},
        )

    def _deploy(self, study, run_id: int) -> None:
        from config.errors import ApplicationError
        from models_svc.models import TrainingRun
        from models_svc.training.seed_runs import deploy_seed_policy

        run = TrainingRun.objects.filter(study=study, pk=run_id).first()
        if run is None:
            raise CommandError(f"study {study.name!r} has no training run {run_id}")
        try:
            systems = deploy_seed_policy(run)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        names = ", ".join(s.name for s in systems)
        self.stdout.write(f"round 0 policy of {names}: {run.policy_spec}")
