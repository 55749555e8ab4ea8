"""Writes of the round board that span apps: closing a lobby also queues the decodings its
round's systems ask for (``System.decode_when_lobby_closes``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from games.live.lobby import set_lobby_open
from games.models import Round
from models_svc.decode_runs import ClosingDecodes, decode_closed_round


@dataclass(frozen=True)
class LobbyChange:
    changed: bool
    decodes: ClosingDecodes = field(default_factory=lambda: ClosingDecodes([], {}))


def set_round_lobby(round_: Round, is_open: bool, *, user=None) -> LobbyChange:
    """Open or close the round's lobby; a lobby that closes now queues its automatic decodings."""
    changed = Round.objects.filter(pk=round_.pk, lobby_open=not is_open).exists()
    set_lobby_open(round_, is_open)
    if not changed or is_open:
        return LobbyChange(changed)
    return LobbyChange(changed, decode_closed_round(round_, user=user))
