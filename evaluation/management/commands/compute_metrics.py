"""``manage.py compute_metrics --study NAME [--resamples N] [--seed S] [--confidence C]
[--method bca|percentile] [--conventions platform|paper] [--json]``.

Computes every metric of the study as a stored metric run (the same code the Celery task runs,
here in this process) and prints a table, or with ``--json`` the run's results as one object.
``--conventions paper`` uses the ReSpect paper's metric definitions (see the evaluation README);
without ``--method`` the interval method is the conventions' (BCa, or percentile for the paper's).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import ApplicationError
from evaluation import planning, services, terminal
from evaluation.models import MetricRun
from evaluation.stats.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, METHODS
from evaluation.stats.conventions import NAMES, PLATFORM
from games.models import Study


class Command(BaseCommand):
    help = "Compute every study metric with bootstrap intervals and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True, help="study name")
        parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE)
        parser.add_argument(
            "--method",
            choices=METHODS,
            default=None,
            help="interval method (default: the conventions' own: bca, or percentile for paper)",
        )
        parser.add_argument(
            "--conventions",
            choices=NAMES,
            default=PLATFORM.name,
            help="metric definitions: the platform's (default) or the ReSpect paper's",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--power",
            action="store_true",
            help="also estimate the games per system each round needs to separate each system "
            "from CONTROL (95%% interval of the difference excluding zero)",
        )

    def handle(self, *args, **options) -> None:
        try:
            study = Study.objects.get(name=options["study"])
        except Study.DoesNotExist:
            raise CommandError(f"no study named {options['study']!r}") from None
        try:
            run = services.create_metric_run(
                study,
                resamples=options["resamples"],
                seed=options["seed"],
                confidence=options["confidence"],
                method=options["method"],
                conventions=options["conventions"],
            )
        except ApplicationError as error:
            raise CommandError(str(error)) from None
        run = services.execute_metric_run(run.pk)
        if run.status != MetricRun.Status.DONE or run.results is None:
            raise CommandError(f"metric run {run.pk} failed: {run.error}")
        results = run.results
        power = (
            planning.planning_document(planning.cost_planning(study)) if options["power"] else None
        )
        if options["json"]:
            document = results if power is None else {**results, "power": power}
            self.stdout.write(json.dumps(document, allow_nan=False))
            return
        for row in power or []:
            needed = row["games_per_system"] or "more than 5000 (or no difference)"
            self.stdout.write(
                f"round {row['round']} {row['system']} vs {row['compared_with']}: observed "
                f"difference {row['observed_difference']:+.3f}; games per system needed: {needed}"
            )
        if not results["rows"]:
            self.stdout.write(f"study {study.name} has no ended games yet: nothing to compute")
            return
        self.stdout.write(f"study {study.name} · metric run {run.pk}\n")
        self.stdout.write(terminal.text_table(results))
