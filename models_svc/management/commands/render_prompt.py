"""Print a turn's policy prompt exactly as a policy is given it, and its target action."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from games.models import Game


class Command(BaseCommand):
    help = (
        "Print the chat messages a policy is given for one turn (as passed to the processor) "
        "and the target action string, in the turn's prompt format or the one named."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--game", required=True, type=int, help="game id (primary key)")
        parser.add_argument("--turn", required=True, type=int, help="0-based turn index")
        parser.add_argument(
            "--format",
            default="",
            help="prompt format, e.g. respect-2024 or platform-p1 (default: the turn's own)",
        )
        parser.add_argument("--json", action="store_true", help="one JSON document")

    def handle(self, *args, **options) -> None:
        from models_svc.prompt_formats import UnknownPromptFormat, plain_chat_text
        from models_svc.selectors import TurnNotReady, rendered_prompt

        try:
            rendered = rendered_prompt(options["game"], options["turn"], options["format"])
        except Game.DoesNotExist as exc:
            raise CommandError(f"no game with id {options['game']}") from exc
        except (TurnNotReady, UnknownPromptFormat) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            document = {
                "game": rendered.game_id,
                "turn": rendered.turn_index,
                "format": rendered.prompt_format,
                "messages": rendered.messages,
                "target": rendered.target,
                "images": list(rendered.image_paths),
            }
            self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
            return
        self.stdout.write(f"# format {rendered.prompt_format}")
        self.stdout.write(plain_chat_text(rendered.messages) + " " + rendered.target)
