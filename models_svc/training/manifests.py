"""Writes of training manifests: the train, seed (D₀) and validation sets of a run.

A manifest is stored once per content (its SHA-256 is unique): building the same set again
returns the stored manifest, so runs that read the same data point at the same record.
"""

from __future__ import annotations

from dataclasses import replace

from django.db import transaction

from games.models import Study

from ..models import TrainingManifest
from ..prompt_formats import get_format
from .examples import (
    Example,
    GameRecord,
    Selection,
    content_hash,
    good_turn_examples,
    synthetic_deselections,
)
from .selectors import MAIN_SPLITS, TrainingError, human_games, interaction_set, training_system


def _turn_entry(example: Example, label_ids: dict[int, int]) -> dict:
    return {
        "key": example.key,
        "turn": example.turn_id,
        "game": int(example.group.split(":", 1)[1]),
        "label": example.label,
        "label_id": label_ids.get(example.turn_id or 0),
        "p": example.probability,
        "format": example.prompt_format,
        "temperature": example.temperature,
        "constrained": example.constrained,
    }


def _synthetic_entry(example: Example, game_id: int) -> dict:
    kind, after_turn = example.key.split(":")[1:]
    return {
        "key": example.key,
        "after_turn": int(after_turn),
        "game": game_id,
        "kind": kind,
        "utterance": example.utterance,
        "action": example.action,
        "format": example.prompt_format,
    }


def _summary(selection: Selection, entries: list[dict], **extra) -> dict:
    return {
        "examples": len(entries),
        "labels": selection.label_counts(),
        "excluded": dict(sorted(selection.excluded.items())),
        "excluded_total": sum(selection.excluded.values()),
        **extra,
    }


@transaction.atomic
def store_manifest(
    study: Study,
    role: str,
    round_index: int,
    system_name: str,
    entries: list[dict],
    summary: dict,
    *,
    prompt_format: str,
    decoder: str = "",
    decoder_version: str = "",
    kind: str = "",
) -> TrainingManifest:
    """The manifest of this content, created if new (immutable once stored)."""
    payload = {
        "study": study.pk,
        "role": role,
        "round": round_index,
        "system": system_name,
        "decoder": decoder,
        "decoder_version": decoder_version,
        "kind": kind,
        "format": prompt_format,
        "entries": entries,
    }
    manifest, _ = TrainingManifest.objects.get_or_create(
        content_hash=content_hash(payload),
        defaults={
            "study": study,
            "role": role,
            "round_index": round_index,
            "system_name": system_name,
            "decoder": decoder,
            "decoder_version": decoder_version,
            "kind": kind,
            "prompt_format": prompt_format,
            "summary": summary,
            "entries": entries,
        },
    )
    return manifest


def build_training_manifest(study: Study, round_index: int, system_name: str) -> TrainingManifest:
    """The interaction examples of ``system_name`` for round ``round_index`` (raises
    TrainingError for an unknown system, no decoded labels or an empty set)."""
    system = training_system(study, round_index, system_name)
    found = interaction_set(study, round_index, system)
    entries = [_turn_entry(e, found.label_ids) for e in found.selection.examples]
    summary = _summary(
        found.selection,
        entries,
        games=found.games,
        systems=found.systems,
        without_probability=sum(1 for e in entries if e["p"] is None),
        decoder_versions=dict(sorted(found.source.versions.items())),
    )
    if not entries:
        raise TrainingError(
            f"the training set of {system_name} in rounds ≤ {round_index} is empty: "
            + (
                ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in summary["excluded"].items())
                or "no ended games"
            )
        )
    return store_manifest(
        study,
        TrainingManifest.Role.TRAIN,
        round_index,
        system_name,
        entries,
        summary,
        prompt_format=system.prompt_format,
        decoder=found.source.decoder,
        decoder_version=found.source.version,
        kind=found.source.kind,
    )


def build_seed_manifest(
    study: Study,
    round_index: int,
    *,
    system_name: str = "HH",
    split: str = "dev",
    prompt_format: str = "",
    seed: str = "0",
) -> TrainingManifest:
    """D₀: the good turns of human–human games on ``split`` tangrams (``main``: train and
    test, for studies without dev-split games such as the demo), plus synthetic deselection
    turns at one per twelve (seeded), rendered in ``prompt_format``."""
    format_name = get_format(prompt_format).name
    splits = MAIN_SPLITS if split == "main" else (split,)
    games = [
        _with_format(g, format_name) for g in human_games(study, splits, round_index, system_name)
    ]
    if not games:
        raise TrainingError(
            f"study {study.name!r} round {round_index} has no ended {system_name} games whose "
            f"tangrams are all in the {split!r} split"
        )
    selection = good_turn_examples(games)
    synthetic = synthetic_deselections(games, len(selection.examples), f"{study.pk}:{seed}")
    game_of_turn = {t.turn_id: g.game_id for g in games for t in g.turns}
    entries = [_turn_entry(e, {}) for e in selection.examples] + [
        _synthetic_entry(e, game_of_turn[int(e.key.rsplit(":", 1)[1])]) for e in synthetic
    ]
    kinds = [e["kind"] for e in entries if "kind" in e]
    summary = _summary(
        selection,
        entries,
        games=len(games),
        split=split,
        seed=seed,
        real=len(selection.examples),
        synthetic={"undo": kinds.count("undo"), "clear": kinds.count("clear")},
    )
    if not selection.examples:
        raise TrainingError(f"the {system_name} games of round {round_index} have no good turns")
    return store_manifest(
        study,
        TrainingManifest.Role.SEED,
        round_index,
        system_name,
        entries,
        summary,
        prompt_format=format_name,
    )


def build_validation_manifest(study: Study, prompt_format: str) -> TrainingManifest | None:
    """Good human–human turns on main-split tangrams, or None when the study has none."""
    games = [_with_format(g, prompt_format) for g in human_games(study, MAIN_SPLITS)]
    selection = good_turn_examples(games)
    if not selection.examples:
        return None
    entries = [_turn_entry(e, {}) for e in selection.examples]
    return store_manifest(
        study,
        TrainingManifest.Role.VALIDATION,
        0,
        "HH",
        entries,
        _summary(selection, entries),
        prompt_format=prompt_format,
    )


def _with_format(game: GameRecord, format_name: str) -> GameRecord:
    """Human turns record no format: render them in the format of the policy being trained."""
    return replace(game, prompt_format=format_name)


__all__ = [
    "TrainingError",
    "build_seed_manifest",
    "build_training_manifest",
    "build_validation_manifest",
    "store_manifest",
]
