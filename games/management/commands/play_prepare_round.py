"""Generate a round's game configs and slots ahead of live play (seeded, reproducible)."""

from django.core.management.base import BaseCommand, CommandError

from games.live.configs import ConfigError, prepare_round
from games.models import Round


class Command(BaseCommand):
    help = "Generate BLOCKS blocks of slots (one config per block, every system) for a round."

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="study name")
        parser.add_argument("--round", type=int, required=True, help="round index")
        parser.add_argument("--blocks", type=int, default=10)
        parser.add_argument("--seed", type=int, help="set the round's config seed first")
        parser.add_argument(
            "--separate-configs", action="store_true", help="each system gets its own configs"
        )

    def handle(self, *args, **options):
        round_ = Round.objects.filter(study__name=options["study"], index=options["round"]).first()
        if round_ is None:
            raise CommandError(f"no round {options['round']} in study {options['study']!r}")
        if options["seed"] is not None or options["separate_configs"]:
            if round_.slots.exists():
                raise CommandError("the round already has slots: its seed cannot change now")
            if options["seed"] is not None:
                round_.config_seed = options["seed"]
            round_.reuse_configs = not options["separate_configs"]
            round_.save(update_fields=["config_seed", "reuse_configs"])
        try:
            slots = prepare_round(round_, options["blocks"])
        except ConfigError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{len(slots)} slots added to {round_}")
