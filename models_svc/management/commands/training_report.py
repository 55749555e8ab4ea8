"""Print a training run's importance-weight diagnostics (start and per epoch)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Show a training run's diagnostics: RL's importance weight c before capping and KTO's "
        "log-ratio r and reference point z, before the first step and per epoch. --json prints "
        "them as JSON (start.rl_coefficient.{min,mean,max}, start.kto_log_ratio.{min,mean,max}, "
        "null where the objective has none)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--run", type=int, required=True, dest="run_id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        from models_svc.models import TrainingRun
        from models_svc.training.report import report_rows, training_report

        run = TrainingRun.objects.filter(pk=options["run_id"]).first()
        if run is None:
            raise CommandError(f"no training run {options['run_id']}")
        report = training_report(run)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
            return
        self.stdout.write(
            f"run {run.pk}: {run.objective.upper()} {run.system_name}, rounds ≤ "
            f"{run.round_index} ({run.status}); checkpoint selection: "
            f"{report['selection_decoding'] or 'not recorded'}; label smoothing: "
            f"{report['label_smoothing'] or 'not recorded'}"
        )
        rows = report_rows(report)
        if not rows:
            self.stdout.write("no importance-weight diagnostics (FFT, or not started yet)")
        for row in rows:
            extra = ""
            if row["share_capped"] is not None:
                extra = (
                    f"  capped or floored {row['share_capped']:.3f}"
                    f"  ESS {row['effective_sample_size']:.2f}"
                )
            self.stdout.write(
                f"{row['moment']:>20}  {row['term']}: min {row['min']:.6g}  "
                f"mean {row['mean']:.6g}  max {row['max']:.6g}  (n {row['n']}){extra}"
            )
