"""Reads for the model service: what a policy or decoder may see, embeddings, similarities.

A policy input is built from the listener order, the selections before each turn, the
utterances and the earlier actions only; targets are never read here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet

from games.actions import tangrams_to_letters
from games.models import FeedbackLabel, Game, Study, Tangram, Turn

from .interfaces import FeedbackContext, PastTurn, PolicyInput
from .models import ModelCheckpoint


class TurnNotReady(LookupError):
    """The turn does not exist yet or has no utterance (the caller may retry shortly)."""


def tangram_image_path(tangram: Tangram | None, name: str) -> str | None:
    """The image file of a tangram: its stored file, else ``TANGRAM_DIR/<name>.png``."""
    if tangram is not None and tangram.image:
        try:
            return tangram.image.path
        except NotImplementedError:
            return None
    if settings.TANGRAM_DIR:
        for suffix in (".png", ".svg"):
            candidate = Path(settings.TANGRAM_DIR) / f"{name}{suffix}"
            if candidate.exists():
                return str(candidate)
    return None


def image_paths(names: Sequence[str]) -> tuple[str | None, ...]:
    tangrams = {t.name: t for t in Tangram.objects.filter(name__in=list(names))}
    return tuple(tangram_image_path(tangrams.get(name), name) for name in names)


def policy_input_for_turn(game_id: int, turn_index: int) -> PolicyInput:
    """The listener's view of turn ``turn_index`` of game ``game_id`` (raises TurnNotReady).

    The sampling seed names the game by its external id and config seed, not its database id,
    so a simulated study replayed from the same seed samples the same actions."""
    game = Game.objects.select_related("config").get(pk=game_id)
    listener_order = list(game.config.listener_order)
    turns = list(
        Turn.objects.filter(game_id=game_id, index__lte=turn_index)
        .order_by("index")
        .only("index", "utterance", "selection_before", "action", "utterance_at")
    )
    if not turns or turns[-1].index != turn_index:
        raise TurnNotReady(f"game {game_id} has no turn {turn_index} yet")
    current = turns[-1]
    if not current.utterance and current.utterance_at is None:
        raise TurnNotReady(f"game {game_id} turn {turn_index} has no utterance yet")
    history = tuple(
        PastTurn(
            selection=tuple(sorted(tangrams_to_letters(listener_order, turn.selection_before))),
            utterance=turn.utterance,
            action=turn.action,
        )
        for turn in turns[:-1]
    )
    return PolicyInput(
        images=tuple(listener_order),
        selection=tuple(sorted(tangrams_to_letters(listener_order, current.selection_before))),
        utterance=current.utterance,
        history=history,
        image_paths=image_paths(listener_order),
        seed=f"{game.external_id}:{game.config.seed}:{turn_index}",
    )


@dataclass(frozen=True)
class DecodingWindow:
    """A turn to label, with its decoder context."""

    turn_id: int
    game_id: int
    index: int
    context: FeedbackContext


def feedback_windows(rows: Sequence[dict]) -> list[DecodingWindow]:
    """Decoder windows for turns given as dicts (``id``, ``game_id``, ``index``, ``utterance``,
    ``action``), sorted by game then index. A turn gets a window only if the next turn of its
    game exists and has an utterance (so the last turn of a game gets none)."""
    by_key = {(row["game_id"], row["index"]): row for row in rows}
    windows = []
    for row in rows:
        follow = by_key.get((row["game_id"], row["index"] + 1))
        if follow is None or not follow["utterance"].strip():
            continue
        previous = by_key.get((row["game_id"], row["index"] - 1))
        windows.append(
            DecodingWindow(
                turn_id=row["id"],
                game_id=row["game_id"],
                index=row["index"],
                context=FeedbackContext(
                    utterance=row["utterance"],
                    action=row["action"],
                    follow_up=follow["utterance"],
                    previous_action=previous["action"] if previous is not None else None,
                ),
            )
        )
    return windows


def study_turns(study_id: int, round_index: int | None = None, system_name: str | None = None):
    """Turn rows of a study (optionally one round and/or one system), by game then index."""
    turns = Turn.objects.filter(game__study_id=study_id)
    if round_index is not None:
        turns = turns.filter(game__round__index=round_index)
    if system_name:
        turns = turns.filter(game__system__name=system_name)
    return list(
        turns.order_by("game_id", "index").values("id", "game_id", "index", "utterance", "action")
    )


def with_follow_up(turns: QuerySet[Turn]) -> QuerySet[Turn]:
    """The turns a decoder can label: the game's next turn has an utterance (the rule of
    ``feedback_windows``, as one query)."""
    follow_up = Turn.objects.filter(
        game_id=OuterRef("game_id"), index=OuterRef("index") + 1, utterance__regex=r"\S"
    )
    return turns.filter(Exists(follow_up))


def decodable_turns(study_id: int, round_index: int) -> QuerySet[Turn]:
    """The turns of a round that a decoder can label (``with_follow_up``)."""
    return with_follow_up(
        Turn.objects.filter(game__study_id=study_id, game__round__index=round_index)
    )


@dataclass(frozen=True)
class LabelCoverage:
    """How many of a round's decodable turns carry a label of one decoder and kind."""

    decoder: str
    kind: str
    labelled: int
    decodable: int

    @property
    def complete(self) -> bool:
        return self.decodable > 0 and self.labelled >= self.decodable


def label_coverage(study_id: int, round_index: int, decoder: str, kind: str) -> LabelCoverage:
    """Labels of ``decoder`` (any version) and ``kind`` over the round's decodable turns."""
    turns = decodable_turns(study_id, round_index)
    labels = FeedbackLabel.objects.filter(turn_id=OuterRef("pk"), decoder=decoder, kind=kind)
    return LabelCoverage(
        decoder=decoder,
        kind=kind,
        labelled=turns.filter(Exists(labels)).count(),
        decodable=turns.count(),
    )


def registered_checkpoints() -> list[ModelCheckpoint]:
    """Every registered checkpoint, by study, round, kind and spec."""
    return list(ModelCheckpoint.objects.select_related("round__study", "training_run"))


def latest_embedding_set():
    """The most recently updated embedding set, or None."""
    from .models import EmbeddingSet

    return EmbeddingSet.objects.order_by("-updated_at", "-pk").first()


_matrix_cache: dict[tuple[int, str], tuple[dict[str, int], np.ndarray]] = {}


def _set_matrix(embedding_set) -> tuple[dict[str, int], np.ndarray]:
    key = (embedding_set.pk, embedding_set.updated_at.isoformat())
    if key not in _matrix_cache:
        names = list(embedding_set.names)
        size = len(names)
        matrix = np.frombuffer(bytes(embedding_set.similarity), dtype="<f4").reshape(size, size)
        _matrix_cache.clear()
        _matrix_cache[key] = ({name: i for i, name in enumerate(names)}, matrix)
    return _matrix_cache[key]


def similarity_matrix(tangram_names: Sequence[str]) -> np.ndarray | None:
    """Cosine similarities between tangrams (rows and columns in the given order), float64.

    Read from the latest stored embedding set's cached matrix; the diagonal is exactly 1.
    None when there is no embedding set or any tangram lacks an embedding in it.
    """
    embedding_set = latest_embedding_set()
    if embedding_set is None or embedding_set.similarity is None:
        return None
    index, matrix = _set_matrix(embedding_set)
    try:
        rows = [index[name] for name in tangram_names]
    except KeyError:
        return None
    result = matrix[np.ix_(rows, rows)].astype(np.float64)
    same = np.equal.outer(np.asarray(rows), np.asarray(rows))
    result[same] = 1.0
    return result


def embedding_vectors(embedding_set) -> tuple[list[str], np.ndarray]:
    """Names and the (n, dim) float32 matrix of an embedding set's vectors, ordered by name."""
    rows = list(
        embedding_set.embeddings.select_related("tangram")
        .order_by("tangram__name")
        .values_list("tangram__name", "vector")
    )
    names = [name for name, _ in rows]
    if not rows:
        return names, np.zeros((0, embedding_set.dim), dtype=np.float32)
    vectors = np.stack([np.frombuffer(bytes(vector), dtype="<f4") for _, vector in rows])
    return names, vectors


@dataclass(frozen=True)
class RenderedPrompt:
    """A turn's policy prompt as chat messages, its target action string, and the format."""

    game_id: int
    turn_index: int
    prompt_format: str
    messages: list[dict]
    target: str
    image_paths: tuple[str | None, ...]


def turn_prompt_format(turn: Turn, system_format: str) -> str:
    """The format a turn's action was produced under: the turn's own record, else its system's
    (human and imported turns record none)."""
    return turn.prompt_format or system_format


def rendered_prompt(game_id: int, turn_index: int, format_name: str = "") -> RenderedPrompt:
    """Exactly what a policy in ``format_name`` (default: the turn's own format) is given for a
    turn, and the action string it is trained to answer (raises TurnNotReady, Game.DoesNotExist,
    UnknownPromptFormat)."""
    from .prompt_formats import get_format

    game = Game.objects.select_related("system").get(pk=game_id)
    turn = Turn.objects.filter(game_id=game_id, index=turn_index).first()
    if turn is None:
        raise TurnNotReady(f"game {game_id} has no turn {turn_index}")
    prompt_format = get_format(format_name or turn_prompt_format(turn, game.system.prompt_format))
    item = policy_input_for_turn(game_id, turn_index)
    return RenderedPrompt(
        game_id=game_id,
        turn_index=turn_index,
        prompt_format=prompt_format.name,
        messages=prompt_format.policy_messages(item),
        target=prompt_format.action_text(turn.action),
        image_paths=item.image_paths,
    )


def export_feedback_rows(
    study: Study, *, decoder: str | None = None, kind: str | None = None
) -> Iterator[dict[str, object]]:
    """Feedback labels of a study as export rows (turn 0-based), by game, turn, decoder, kind."""
    labels = FeedbackLabel.objects.filter(turn__game__study=study)
    if decoder:
        labels = labels.filter(decoder=decoder)
    if kind:
        labels = labels.filter(kind=kind)
    for row in labels.order_by(
        "turn__game__external_id", "turn__index", "decoder", "model_version", "kind"
    ).values_list("turn__game__external_id", "turn__index", "label", "decoder", "kind", "score"):
        game_id, turn, label, decoder_name, label_kind, score = row
        yield {
            "game_id": game_id,
            "turn": turn,
            "label": label,
            "decoder": decoder_name,
            "kind": label_kind,
            "score": score,
        }
