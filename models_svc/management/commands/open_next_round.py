"""Open round N+1 with the policies trained on rounds ≤ N."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ._study import study_named


class Command(BaseCommand):
    help = (
        "Create round N+1: one system per trained system of round N with its run's selected "
        "adapter, CONTROL with the round-0 policy, HH again if round N had it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True)
        parser.add_argument("--from-round", type=int, required=True, dest="from_round")

    def handle(self, *args, **options) -> None:
        from models_svc.training.runs import TrainingError, open_next_round

        study = study_named(options["study"])
        try:
            new_round = open_next_round(study, options["from_round"])
        except TrainingError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"opened round {new_round.index} of {study.name}:")
        for system in new_round.systems.order_by("name"):
            self.stdout.write(f"  {system.name}: {system.policy_checkpoint or 'human listeners'}")
