"""Small studies for the round board's tests."""

from __future__ import annotations

from games.models import Round
from models_svc.models import TrainingManifest, TrainingRun
from tests.factories import make_game, make_study, make_system

PICKS = [["page9-9"], ["page9-9", "page9-8"], ["page9-9", "page9-8", "page9-1"]]
UTTERANCES = ["pick A", "good, now B", "yes, then I"]


def letters_round(name: str) -> Round:
    """Round 0 of a new study, its lobby closed: B-FFT with two ended games of three turns
    (four decodable turns, all positive for the lexicon) and CONTROL without games."""
    system = make_system(make_study(name), 0, "B-FFT")
    Round.objects.filter(pk=system.round_id).update(lobby_open=False)
    make_system(system.round.study, 0, "CONTROL")
    for _ in range(2):
        make_game(system, PICKS, UTTERANCES)
    return Round.objects.get(pk=system.round_id)


def finish_run(round_: Round, system_name: str, adapter: str = "/runs/adapter") -> TrainingRun:
    """A finished training run of the round's system (its manifest stands in for a real one)."""
    manifest = TrainingManifest.objects.create(
        study=round_.study,
        role=TrainingManifest.Role.TRAIN,
        round_index=round_.index,
        system_name=system_name,
        content_hash=f"{round_.study_id}-{round_.index}-{system_name}-{adapter}",
        prompt_format="respect-2024",
    )
    return TrainingRun.objects.create(
        study=round_.study,
        round_index=round_.index,
        system_name=system_name,
        objective="fft",
        base_checkpoint="hf:/models/base",
        prompt_format="respect-2024",
        manifest=manifest,
        status=TrainingRun.Status.DONE,
        output_adapter=adapter,
    )
