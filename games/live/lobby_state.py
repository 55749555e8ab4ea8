"""Opening and closing a round's lobby (researchers do it from the round board).

A closed lobby pairs nobody (``lobby.try_pair`` returns no pairing) and the lobby page tells
arriving workers that the round is closed. Games already under way play on to their end.
"""

from __future__ import annotations

from django.db import transaction

from games.models import Round, System


def set_lobby_open(round_: Round, is_open: bool) -> bool:
    """Open (``True``) or close the round's lobby; returns whether that changed anything.

    The round's row is locked, so a pairing run in another process sees the lobby either
    before or after the change, never in between.
    """
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round_.pk)
        changed = locked.lobby_open != is_open
        if changed:
            locked.lobby_open = is_open
            locked.save(update_fields=["lobby_open"])
    round_.lobby_open = is_open
    return changed


def set_decode_when_lobby_closes(system: System, enabled: bool) -> None:
    """Whether closing the lobby of the system's round queues the decoding of its turns."""
    System.objects.filter(pk=system.pk).update(decode_when_lobby_closes=enabled)
    system.decode_when_lobby_closes = enabled
