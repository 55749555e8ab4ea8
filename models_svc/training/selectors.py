"""Reads for training: a system's lineage, its games as records, labelled examples, manifests.

Which games a system learns from: every ended game of rounds ≤ ρ of the system of that name,
and, in the rounds before the system first appears, the games of that round's CONTROL system
(the initial policy everyone learns from in round 0). Which labels: the system's decoder
(``System.decoder``, else the configured default) and the kind its name says (``B-…`` binary,
``T-…`` ternary), per turn at the newest decoder version that labelled that turn
(``labels.newest_labels``).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from config.errors import ApplicationError
from games.actions import tangrams_to_letters
from games.models import Game, Study, System, Tangram

from ..models import TrainingManifest
from ..prompt_formats import get_format
from ..registry import default_spec, parse_spec
from .examples import (
    Example,
    GameRecord,
    Selection,
    TurnRecord,
    interaction_examples,
    past_turns,
    selection_after,
)

MAIN_SPLITS = ("train", "test")


class TrainingError(ApplicationError):
    """Training cannot proceed; the message names the study, round, system or turns at fault."""


def training_system(study: Study, round_index: int, name: str) -> System:
    system = System.objects.filter(round__study=study, round__index=round_index, name=name).first()
    if system is None:
        names = sorted(
            System.objects.filter(round__study=study, round__index=round_index).values_list(
                "name", flat=True
            )
        )
        raise TrainingError(
            f"study {study.name!r} round {round_index} has no system {name!r}"
            + (f" (it has {', '.join(names)})" if names else " (the round does not exist)")
        )
    if system.is_human:
        raise TrainingError(f"system {name!r} has human listeners: there is no policy to train")
    return system


def decoder_kind(system_name: str) -> str:
    """binary for ``B-…`` systems, ternary for ``T-…`` ones."""
    prefix = system_name.split("-", 1)[0].upper()
    if prefix == "B":
        return "binary"
    if prefix == "T":
        return "ternary"
    raise TrainingError(
        f"cannot tell the feedback kind of system {system_name!r}: name it B-… (binary decoder) "
        "or T-… (ternary decoder)"
    )


def objective_of(system_name: str) -> str:
    """The objective a system's name says (``B-FFT`` → fft), or fft."""
    suffix = system_name.rsplit("-", 1)[-1].lower()
    return suffix if suffix in ("fft", "rl", "kto") else "fft"


def decoder_name(system: System) -> str:
    return str(parse_spec(system.decoder or default_spec("decoder") or "lexicon", "decoder"))


def lineage_systems(study: Study, round_index: int, name: str) -> list[System]:
    """The systems whose games ``name`` learns from in rounds ≤ ``round_index`` (see module)."""
    systems = list(
        System.objects.filter(round__study=study, round__index__lte=round_index)
        .select_related("round")
        .order_by("round__index", "name")
    )
    first = min((s.round.index for s in systems if s.name == name), default=round_index)
    return [
        s for s in systems if s.name == name or (s.name == System.CONTROL and s.round.index < first)
    ]


def game_records(games: Iterable[Game]) -> list[GameRecord]:
    """Games (with config, system and turns prefetched) as records in listener letters."""
    records = []
    for game in games:
        order = list(game.config.listener_order)
        turns = tuple(
            TurnRecord(
                turn_id=turn.pk,
                index=turn.index,
                utterance=turn.utterance,
                selection=tuple(sorted(tangrams_to_letters(order, turn.selection_before))),
                action=turn.action,
                probability=turn.action_probability,
                prompt_format=turn.prompt_format,
                temperature=turn.sampling_temperature,
                constrained=turn.sampling_constrained,
            )
            for turn in sorted(game.turns.all(), key=lambda t: t.index)
        )
        records.append(
            GameRecord(
                game_id=game.pk,
                images=tuple(order),
                targets=frozenset(tangrams_to_letters(order, game.config.targets)),
                turns=turns,
                prompt_format=game.system.prompt_format,
            )
        )
    return records


def _games(**filters):
    return (
        Game.objects.filter(status=Game.Status.ENDED, **filters)
        .select_related("config", "system")
        .prefetch_related("turns")
        .order_by("pk")
    )


@dataclass(frozen=True)
class LabelSource:
    decoder: str
    version: str  # the versions whose labels the set uses, or how many (see the summary)
    kind: str
    versions: dict[str, int] = field(default_factory=dict)  # version → examples labelled by it


@dataclass
class InteractionSet:
    selection: Selection
    source: LabelSource
    label_ids: dict[int, int]
    games: int
    systems: list[str]


def _versions_text(versions: dict[str, int]) -> str:
    text = ", ".join(sorted(versions))
    return text if len(text) <= 120 else f"{len(versions)} versions"


def interaction_set(study: Study, round_index: int, system: System) -> InteractionSet:
    """Labelled examples of a system's lineage, each turn with its newest label of the system's
    decoder and kind (``labels.newest_labels``). Raises TrainingError with
    ``labels.label_readiness``'s refusal (the round board shows the same one)."""
    from .labels import label_readiness, newest_labels  # labels reads this module's helpers

    readiness = label_readiness(study, round_index, system)
    if readiness.refusal is not None:
        raise TrainingError(readiness.refusal)
    lineage = lineage_systems(study, round_index, system.name)
    records = game_records(_games(system__in=lineage))
    turn_ids = [t.turn_id for game in records for t in game.turns]
    found = newest_labels(turn_ids, readiness.decoder, readiness.kind)
    selection = interaction_examples(records, {t: row.label for t, row in found.items()})
    versions: dict[str, int] = {}
    for example in selection.examples:
        version = found[example.turn_id or 0].version
        versions[version] = versions.get(version, 0) + 1
    return InteractionSet(
        selection=selection,
        source=LabelSource(readiness.decoder, _versions_text(versions), readiness.kind, versions),
        label_ids={turn_id: row.label_id for turn_id, row in found.items()},
        games=len(records),
        systems=[f"{s.name}@{s.round.index}" for s in lineage],
    )


def _split_games(records: list[GameRecord], splits: Sequence[str]) -> list[GameRecord]:
    names = {name for game in records for name in game.images}
    split_of = dict(Tangram.objects.filter(name__in=names).values_list("name", "split"))
    return [g for g in records if all(split_of.get(name) in splits for name in g.images)]


def human_games(
    study: Study, splits: Sequence[str], round_index: int | None = None, system_name: str = "HH"
) -> list[GameRecord]:
    """Ended games of a study's human-listener system whose tangrams are all in ``splits``."""
    filters: dict = {"study": study, "system__name": system_name}
    if round_index is not None:
        filters["round__index"] = round_index
    return _split_games(game_records(_games(**filters)), splits)


def latest_manifest(study: Study, role: str, **filters) -> TrainingManifest | None:
    return (
        TrainingManifest.objects.filter(study=study, role=role, **filters)
        .order_by("-created_at", "-pk")
        .first()
    )


def seed_manifest_for(study: Study, prompt_format: str) -> TrainingManifest | None:
    """The study's newest seed set D₀ rendered in ``prompt_format`` (D₀ is built per format:
    a run rehearses it in the format its policy acts with), or None."""
    name = get_format(prompt_format).name
    return latest_manifest(study, TrainingManifest.Role.SEED, prompt_format=name)


def seed_set_for_run(study: Study, prompt_format: str) -> TrainingManifest:
    """D₀ in ``prompt_format``; raises TrainingError naming the command and the button that
    build it when the study has none in that format, or an empty one."""
    manifest = seed_manifest_for(study, prompt_format)
    if manifest is None or not manifest.entries:
        state = "no" if manifest is None else "an empty"
        raise TrainingError(
            f"study {study.name!r} has {state} seed set D₀ in prompt format {prompt_format!r}: "
            f"build one with build_seed_set --study {shlex.quote(study.name)} --format "
            f"{prompt_format} (or "
            "the round board's Build D₀ button) from human–human games on dev-split tangrams"
        )
    return manifest


def rehearsed_seed_set(study: Study, prompt_format: str, rehearse: bool) -> TrainingManifest | None:
    """The D₀ a run rehearses (``seed_set_for_run``), or None when its config turns rehearsal
    off (``rehearse_seed_set``): a run never rehearses nothing without saying so."""
    if not rehearse:
        return None
    try:
        return seed_set_for_run(study, prompt_format)
    except TrainingError as error:
        raise TrainingError(
            f"{error}; or train without rehearsing D₀ with --set rehearse_seed_set=false"
        ) from None


def manifest_examples(manifest: TrainingManifest) -> list[Example]:
    """The examples a manifest names, rebuilt from the stored turns (labels and p_t as recorded
    in the manifest; synthetic turns from their stored content)."""
    entries = manifest.entries
    game_ids = sorted({entry["game"] for entry in entries})
    records = {g.game_id: g for g in game_records(_games(pk__in=game_ids))}
    by_turn: dict[int, tuple[GameRecord, int]] = {}
    for game in records.values():
        for position, turn in enumerate(game.turns):
            by_turn[turn.turn_id] = (game, position)
    examples = []
    for entry in entries:
        anchor = entry.get("turn") or entry.get("after_turn")
        if anchor not in by_turn:
            raise TrainingError(
                f"manifest {manifest.content_hash[:10]} names turn {anchor}, which no longer "
                "exists (or its game is no longer ended)"
            )
        game, position = by_turn[anchor]
        examples.append(_from_entry(entry, game, position))
    return examples


def _from_entry(entry: dict, game: GameRecord, position: int) -> Example:
    turns = game.turns
    if "after_turn" in entry:
        return Example(
            key=entry["key"],
            group=entry["key"],
            images=game.images,
            history=past_turns(turns[: position + 1]),
            selection=selection_after(turns[position], len(game.images)),
            utterance=entry["utterance"],
            action=entry["action"],
            prompt_format=entry["format"],
        )
    turn = turns[position]
    return Example(
        key=entry["key"],
        group=f"game:{game.game_id}",
        images=game.images,
        history=past_turns(turns[:position]),
        selection=turn.selection,
        utterance=turn.utterance,
        action=turn.action,
        label=entry["label"],
        probability=entry.get("p"),
        prompt_format=entry["format"],
        turn_id=turn.turn_id,
        temperature=entry.get("temperature"),
        constrained=entry.get("constrained"),
    )


@dataclass(frozen=True)
class LineageStep:
    """One round of a system's policy chain: what it deployed and what that was trained on."""

    round_index: int
    system: System
    run: object | None  # the TrainingRun whose adapter this round deployed, if any


def policy_lineage(study: Study, system_name: str) -> list[LineageStep]:
    """π₀ → π₁ → …: the system's policy in each round and the run (with its manifest) that
    trained it, read from the checkpoints that open_next_round registered."""
    from ..models import ModelCheckpoint

    steps = []
    systems = System.objects.filter(round__study=study, name=system_name).select_related("round")
    for system in systems.order_by("round__index"):
        checkpoint = (
            ModelCheckpoint.objects.filter(round=system.round, spec=system.policy_checkpoint)
            .select_related("training_run__manifest")
            .first()
        )
        run = checkpoint.training_run if checkpoint else None
        steps.append(LineageStep(system.round.index, system, run))
    return steps


def study_training_runs(study: Study):
    from ..models import TrainingRun

    return TrainingRun.objects.filter(study=study).select_related("manifest").order_by("-pk")
