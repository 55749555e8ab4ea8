"""Apply every overdue turn timeout (after an outage, or from cron as a backstop)."""

from django.core.management.base import BaseCommand

from games.live import engine, notify


class Command(BaseCommand):
    help = "End or advance live games whose current turn is past its deadline."

    def handle(self, *args, **options):
        count = 0
        for game_id in engine.overdue_game_ids():
            change = engine.expire_due(game_id)
            if change is not None:
                notify.broadcast_sync(change)
                count += 1
        self.stdout.write(f"{count} overdue games handled")
