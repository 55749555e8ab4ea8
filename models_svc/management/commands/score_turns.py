"""Recompute p_t for listener turns that have none (imported games), on the gpu-batch queue."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from ._study import study_named


class Command(BaseCommand):
    help = (
        "For every listener turn without p_t, compute the probability of its recorded action "
        "under a checkpoint (the turn's prompt format, the constrained sampling distribution) "
        "and store it marked as recomputed. Runs on the gpu-batch queue and waits for it; --here "
        "runs it in this process. Idempotent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True)
        parser.add_argument("--round", type=int, dest="round_index")
        parser.add_argument("--system", dest="system_name", default="")
        parser.add_argument("--policy", required=True, help="hf:PATH or hf:PATH+lora:PATH")
        parser.add_argument("--here", action="store_true", help="score in this process")

    def handle(self, *args, **options) -> None:
        from config.errors import ApplicationError
        from models_svc.models import ScoringRun
        from models_svc.scoring import execute_scoring_run, launch_scoring_run

        study = study_named(options["study"])
        run = ScoringRun(
            study=study,
            round_index=options["round_index"],
            system_name=options["system_name"],
            policy=options["policy"],
        )
        try:
            if options["here"]:
                run.save()
                run = execute_scoring_run(run.pk)
            else:
                run = launch_scoring_run(run)
                run = self._follow(run)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        if run.status != ScoringRun.Status.DONE:
            raise CommandError(f"scoring run {run.pk} {run.status}: {run.error}")
        left = ", ".join(f"{n} {reason}" for reason, n in run.unscorable.items()) or "none"
        self.stdout.write(
            f"scored {run.scored} of {run.total} turns with {run.policy} ({run.model_version}); "
            f"left without p_t: {left}"
        )

    def _follow(self, run):
        from models_svc.models import ScoringRun

        shown = None
        while run.status in (ScoringRun.Status.QUEUED, ScoringRun.Status.RUNNING):
            time.sleep(1)
            run.refresh_from_db()
            if (run.status, run.done) != shown:
                shown = (run.status, run.done)
                self.stderr.write(f"{run.status}: {run.done}/{run.total} turns")
        return run
