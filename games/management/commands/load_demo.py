"""Load the zero-setup demo (users, tangrams, a study of synthetic games); safe to rerun."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from games.demo import DEMO_PASSWORD, DEMO_STUDY, load_demo
from games.records import RecordError
from games.tangrams import TangramImportError


class Command(BaseCommand):
    help = (
        f"Create the demo: users researcher and admin (password {DEMO_PASSWORD} with DEBUG on; "
        "no usable password otherwise), a tangram "
        "library (KILOGRAM from TANGRAM_DIR when set, else generated silhouettes) and the study "
        f"'{DEMO_STUDY}' with three rounds of synthetic games. Running it again changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=0, help="seed of tangrams and games")
        parser.add_argument(
            "--tangrams", type=int, default=60, help="how many silhouettes to generate"
        )

    def handle(self, *args, seed: int, tangrams: int, **options) -> None:
        try:
            result = load_demo(seed=seed, tangram_count=tangrams)
        except (ApplicationError, TangramImportError, ValueError) as error:
            hint = ""
            if isinstance(error, RecordError):
                hint = (
                    f" The study '{DEMO_STUDY}' already holds different demo games (another "
                    "seed or tangram library?); delete it in the admin and run load_demo again."
                )
            raise CommandError(f"{error}.{hint} Nothing was changed.") from error
        users = ", ".join(result.users_created) or "none (already there)"
        self.stdout.write(f"Demo users created: {users}.")
        if result.users_created and not settings.DEBUG:
            self.stdout.write(
                "DEBUG is off, so they have no usable password: set one with "
                "`manage.py changepassword USERNAME`."
            )
        if result.tangrams is not None:
            self.stdout.write(f"Tangram library: {result.tangrams.summary()}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"{DEMO_STUDY}: {result.games_created} games created, "
                f"{result.games_present} already present."
            )
        )
