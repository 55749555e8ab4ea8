"""Apply every overdue turn timeout (after an outage, or from cron as a backstop)."""

from django.core.management.base import BaseCommand

from games.live.tasks import sweep_overdue_games


class Command(BaseCommand):
    help = "End or advance live games whose current turn is past its deadline."

    def handle(self, *args, **options):
        count = sweep_overdue_games()
        self.stdout.write(f"{count} overdue games handled")
