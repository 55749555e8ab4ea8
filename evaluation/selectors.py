"""Reads of the evaluation app: a study's inputs as plain arrays, metric runs, data stamps.

``study_input`` is the only place that reads games, turns, annotations and decoder labels for
the metrics; everything after it is ``evaluation.stats`` on arrays. What it takes:

- games: every *ended* game of the study (any outcome), grouped by round × system;
- turns: every turn of those games; a turn without a recorded answer changed nothing;
- annotations: those not tied to an assignment (imported) and those of *submitted* assignments,
  except answers on gold items (quality checks, not part of the sample);
- decoder labels: per turn and kind, the label of the system's own decoder if it has one, else
  the most recent label.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max, Q

from annotation.models import Assignment, TurnAnnotation
from evaluation.models import MetricRun
from evaluation.stats.inputs import (
    EMBEDDING_SIMILARITY,
    IDENTITY_SIMILARITY,
    AnnotationInput,
    GroupInput,
    LabelInput,
    StudyInput,
)
from games.actions import ActionError, parse_action
from games.models import FeedbackLabel, Game, Study, Turn

ENDED = Game.Status.ENDED


class UnusableStudyData(ValueError):
    """Stored data the metrics cannot use; the message names the record and the field."""


@dataclass
class _Group:
    round_index: int
    system: str
    decoder: str
    games: list[int]


def _ended_games(study: Study):
    return Game.objects.filter(study=study, status=ENDED)


def _annotations(study: Study):
    return (
        TurnAnnotation.objects.filter(turn__game__study=study, turn__game__status=ENDED)
        .filter(Q(assignment__isnull=True) | Q(assignment__status=Assignment.Status.SUBMITTED))
        .exclude(assignment__item__is_gold=True)
    )


def _labels(study: Study):
    return FeedbackLabel.objects.filter(turn__game__study=study, turn__game__status=ENDED)


def data_stamp(study: Study) -> dict:
    """Counts and latest changes of everything the metrics read (cheap aggregate queries)."""
    games = _ended_games(study).aggregate(n=Count("id"), last=Max("id"))
    turns = Turn.objects.filter(game__study=study, game__status=ENDED).aggregate(
        n=Count("id"), last=Max("id")
    )
    annotations = _annotations(study).aggregate(n=Count("id"), last=Max("updated_at"))
    labels = _labels(study).aggregate(n=Count("id"), last=Max("id"))
    return {
        "games": games["n"],
        "last_game": games["last"],
        "turns": turns["n"],
        "last_turn": turns["last"],
        "annotations": annotations["n"],
        "last_annotation": annotations["last"].isoformat() if annotations["last"] else None,
        "labels": labels["n"],
        "last_label": labels["last"],
    }


def _mask(order_index: dict[str, int], size: int, names, where: str) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    for name in names or ():
        position = order_index.get(name)
        if position is None:
            raise UnusableStudyData(f"{where}: image {name!r} is not in the game's context")
        mask[position] = True
    return mask


def similarity_for(names: list[str]) -> tuple[np.ndarray | None, str]:
    """Cosine similarities from the model service, or None (identity) when it has none."""
    if not names:
        return None, IDENTITY_SIMILARITY
    try:
        from models_svc.selectors import similarity_matrix
    except ImportError:
        return None, IDENTITY_SIMILARITY
    matrix = similarity_matrix(names)
    if matrix is None:
        return None, IDENTITY_SIMILARITY
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(names), len(names)) or not np.all(np.isfinite(matrix)):
        raise UnusableStudyData(
            f"the similarity matrix has shape {matrix.shape} or non-finite values; "
            f"expected ({len(names)}, {len(names)})"
        )
    return matrix, EMBEDDING_SIMILARITY


def study_input(study: Study) -> StudyInput:
    """The study's games, turns, annotations and labels as ``evaluation.stats`` inputs."""
    game_rows = list(
        _ended_games(study)
        .order_by("round__index", "system__name", "id")
        .values_list(
            "id",
            "external_id",
            "round__index",
            "system__name",
            "system__decoder",
            "outcome",
            "config__listener_order",
            "config__targets",
        )
    )
    groups: dict[tuple[int, str], _Group] = {}
    game_info: dict[int, tuple] = {}
    width = max((len(row[6]) for row in game_rows), default=0)
    tangram_names: set[str] = set()
    for game_id, external_id, round_index, system, decoder, outcome, order, targets in game_rows:
        group = groups.setdefault((round_index, system), _Group(round_index, system, decoder, []))
        position = len(group.games)
        group.games.append(game_id)
        index = {name: i for i, name in enumerate(order)}
        target_mask = _mask(index, width, targets, f"game {external_id} targets")
        game_info[game_id] = (group, position, index, external_id, order, target_mask, outcome)
        tangram_names.update(order)

    turns_by_group: dict[tuple[int, str], list] = defaultdict(list)
    turn_position: dict[int, tuple[tuple[int, str], int]] = {}
    turn_rows = (
        Turn.objects.filter(game__study=study, game__status=ENDED)
        .order_by("game_id", "index")
        .values_list("id", "game_id", "index", "utterance", "selection_before", "selection_after")
        .iterator(chunk_size=5000)
    )
    for turn_id, game_id, turn_index, utterance, before, after in turn_rows:
        group, game_position, index, external_id, _, _, _ = game_info[game_id]
        key = (group.round_index, group.system)
        where = f"game {external_id} turn {turn_index}"
        before_mask = _mask(index, width, before, f"{where} selection_before")
        after_mask = (
            before_mask if after is None else _mask(index, width, after, f"{where} selection_after")
        )
        turn_position[turn_id] = (key, len(turns_by_group[key]))
        turns_by_group[key].append((game_position, utterance or "", before_mask, after_mask))

    annotations_by_group: dict[tuple[int, str], list] = defaultdict(list)
    annotation_rows = _annotations(study).values_list(
        "turn_id",
        "turn__game_id",
        "turn__index",
        "worker__id_hash",
        "annotated_action",
        "satisfaction",
    )
    for turn_id, game_id, turn_index, worker, action_text, satisfaction in annotation_rows:
        key, position = turn_position[turn_id]
        _, _, _, external_id, order, _, _ = game_info[game_id]
        try:
            action = parse_action(action_text, len(order), strict=False)
        except ActionError as error:
            raise UnusableStudyData(
                f"annotation of game {external_id} turn {turn_index} by worker {worker[:12]}: "
                f"annotated_action: {error}"
            ) from None
        select = np.zeros(width, dtype=bool)
        deselect = np.zeros(width, dtype=bool)
        select[[ord(letter) - ord("A") for letter in action.select]] = True
        deselect[[ord(letter) - ord("A") for letter in action.deselect]] = True
        annotations_by_group[key].append((position, worker, select, deselect, satisfaction))

    labels_by_group: dict[tuple[int, str], dict[str, dict[int, tuple]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    label_rows = (
        _labels(study)
        .order_by("created_at", "id")
        .values_list("turn_id", "kind", "label", "decoder", "model_version")
    )
    for turn_id, kind, label, decoder, version in label_rows:
        key, position = turn_position[turn_id]
        chosen = labels_by_group[key][kind]
        own = groups[key].decoder
        current = chosen.get(position)
        if current is not None and own and current[1] == own and decoder != own:
            continue  # the system's own decoder wins over later labels of others
        chosen[position] = (label, decoder, f"{decoder}@{version}" if version else decoder)

    annotated_names = sorted(
        {
            name
            for key in annotations_by_group
            for game_id in groups[key].games
            for name in game_info[game_id][4]
        }
    )
    similarity, label = similarity_for(annotated_names)
    name_index = {name: i for i, name in enumerate(annotated_names)}

    inputs = []
    for key, group in groups.items():
        turns = turns_by_group.get(key, [])
        n = len(group.games)
        context = np.full((n, width), -1, dtype=np.intp)
        targets = np.zeros((n, width), dtype=bool)
        successful = np.zeros(n, dtype=bool)
        for position, game_id in enumerate(group.games):
            _, _, _, _, order, target_mask, outcome = game_info[game_id]
            targets[position] = target_mask
            successful[position] = outcome == Game.Outcome.SUCCESSFUL
            if key in annotations_by_group:
                context[position, : len(order)] = [name_index[name] for name in order]
        rows = annotations_by_group.get(key)
        annotations = None
        if rows:
            annotations = AnnotationInput(
                turn=np.array([r[0] for r in rows], dtype=np.intp),
                rater=np.array([r[1] for r in rows], dtype=object),
                select=np.array([r[2] for r in rows], dtype=bool).reshape(len(rows), width),
                deselect=np.array([r[3] for r in rows], dtype=bool).reshape(len(rows), width),
                satisfaction=np.array([r[4] for r in rows], dtype=object),
            )
        labels = {}
        for kind, chosen in labels_by_group.get(key, {}).items():
            positions = sorted(chosen)
            labels[kind] = LabelInput(
                turn=np.array(positions, dtype=np.intp),
                label=np.array([chosen[p][0] for p in positions], dtype=object),
                decoder=", ".join(sorted({chosen[p][2] for p in positions})),
            )
        inputs.append(
            GroupInput(
                round_index=group.round_index,
                system=group.system,
                successful=successful,
                targets=targets,
                context=context,
                turn_game=np.array([t[0] for t in turns], dtype=np.intp),
                before=np.array([t[2] for t in turns], dtype=bool).reshape(len(turns), width),
                after=np.array([t[3] for t in turns], dtype=bool).reshape(len(turns), width),
                utterances=[t[1] for t in turns],
                annotations=annotations,
                labels=labels,
            )
        )
    return StudyInput(
        name=study.name,
        groups=inputs,
        tangrams=annotated_names,
        similarity=similarity,
        similarity_label=label,
    )


def latest_run(
    study: Study, *, done: bool = True, conventions: str | None = None
) -> MetricRun | None:
    """The study's newest (done) run, of the given conventions if named (any if None)."""
    runs = MetricRun.objects.filter(study=study)
    if done:
        runs = runs.filter(status=MetricRun.Status.DONE)
    if conventions is not None:
        runs = runs.filter(conventions=conventions)
    return runs.order_by("-created_at", "-id").first()


def active_run(study: Study) -> MetricRun | None:
    return (
        MetricRun.objects.filter(
            study=study, status__in=[MetricRun.Status.QUEUED, MetricRun.Status.RUNNING]
        )
        .order_by("-created_at", "-id")
        .first()
    )


def study_runs(study: Study, limit: int = 10) -> list[MetricRun]:
    return list(MetricRun.objects.filter(study=study).order_by("-created_at", "-id")[:limit])


@dataclass(frozen=True)
class StudyOverview:
    study: Study
    games: int
    latest: MetricRun | None
    active: MetricRun | None


def study_overviews() -> list[StudyOverview]:
    studies = Study.objects.annotate(ended=Count("games", filter=Q(games__status=ENDED))).order_by(
        "name"
    )
    return [
        StudyOverview(study, study.ended, latest_run(study), active_run(study)) for study in studies
    ]
