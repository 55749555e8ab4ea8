"""Writes and orchestration of the model service (policies acting, decoding, embeddings)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from config import heartbeat
from config.errors import ApplicationError
from games.models import FeedbackLabel, Game, Study, System, Tangram, Turn

from .checkpoints import fingerprint, inspect_checkpoint
from .interfaces import (
    KIND_LABELS,
    LABEL_UNPARSEABLE,
    CheckpointError,
    FeedbackDecoder,
    ImageEmbedder,
    ListenerPolicy,
    PolicyDecision,
)
from .models import DecodeRun, EmbeddingSet, ModelCheckpoint, TangramEmbedding
from .registry import default_spec, get_decoder, get_policy, parse_spec
from .selectors import (
    embedding_vectors,
    feedback_windows,
    policy_input_for_turn,
    study_turns,
    tangram_image_path,
)

logger = logging.getLogger(__name__)


def policy_spec_for_game(game: Game) -> str:
    """The game's system's policy checkpoint, or the configured default policy."""
    return game.system.policy_checkpoint.strip() or default_spec("policy") or "random"


def act_for_turn(game_id: int, turn_index: int) -> PolicyDecision | None:
    """Run the game's policy on a turn and hand the action to ``games.play``.

    Returns None (and does nothing) when the turn is already answered.
    """
    from games.play import record_model_action

    game = Game.objects.select_related("system").get(pk=game_id)
    if game.system.is_human:
        raise ValueError(f"game {game_id} has human listeners (system HH): no model acts in it")
    if Turn.objects.filter(
        game_id=game_id, index=turn_index, selection_after__isnull=False
    ).exists():
        logger.info("game %s turn %s is already answered; nothing to do", game_id, turn_index)
        return None
    inputs = policy_input_for_turn(game_id, turn_index)
    policy = get_policy(policy_spec_for_game(game), prompt_format=game.system.prompt_format)
    decision = policy.act([inputs])[0]
    record_model_action(
        game_id,
        turn_index,
        decision.action,
        decision.probability,
        reason=decision.reason,
        prompt_format=decision.prompt_format,
        temperature=decision.temperature,
        constrained=decision.constrained,
    )
    return decision


def cosine_similarities(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair of rows (float64, diagonal exactly 1, clipped to [−1, 1])."""
    data = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding is the zero vector: its cosine similarity is undefined")
    unit = data / norms
    matrix = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(matrix, 1.0)
    return matrix


@transaction.atomic
def store_embeddings(
    embedder: str, model_version: str, vectors: dict[str, Sequence[float]]
) -> EmbeddingSet:
    """Store (or replace) tangram embeddings in the set of ``model_version`` and rebuild its
    similarity matrix. All or nothing: unknown tangrams, mixed dimensions or non-finite values
    raise before anything is written."""
    if not vectors:
        raise ValueError("no embeddings to store")
    tangrams = {t.name: t for t in Tangram.objects.filter(name__in=list(vectors))}
    unknown = sorted(set(vectors) - set(tangrams))
    if unknown:
        raise ValueError(f"unknown tangram(s): {', '.join(unknown[:10])}")
    arrays = {name: np.asarray(vector, dtype=np.float32) for name, vector in vectors.items()}
    dims = {array.shape for array in arrays.values()}
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        raise ValueError(f"embeddings must be vectors of one length, got shapes {sorted(dims)}")
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)) or not np.any(array):
            raise ValueError(f"embedding of tangram {name} is zero or not finite")
    dim = next(iter(dims))[0]
    embedding_set, created = EmbeddingSet.objects.select_for_update().get_or_create(
        model_version=model_version, defaults={"embedder": embedder, "dim": dim}
    )
    if not created and embedding_set.dim != dim:
        raise ValueError(
            f"embedding set {model_version} holds {embedding_set.dim}-d vectors, got {dim}-d"
        )
    for name, array in arrays.items():
        unit = (array / np.linalg.norm(array.astype(np.float64))).astype("<f4")
        TangramEmbedding.objects.update_or_create(
            embedding_set=embedding_set,
            tangram=tangrams[name],
            defaults={"vector": unit.tobytes()},
        )
    names, matrix = embedding_vectors(embedding_set)
    embedding_set.names = names
    embedding_set.similarity = cosine_similarities(matrix).astype("<f4").tobytes()
    embedding_set.embedder = embedder
    embedding_set.save()
    return embedding_set


@dataclass(frozen=True)
class DecodeSummary:
    decoder: str
    model_version: str
    kind: str
    windows: int
    labelled: int
    skipped: int
    counts: dict[str, int]


def decode_study(
    study: Study,
    *,
    decoder_spec: str,
    kind: str,
    round_index: int | None = None,
    system_name: str | None = None,
    force: bool = False,
    chunk_size: int = 2048,
    progress: Callable[[int, int], None] | None = None,
) -> DecodeSummary:
    """Label every turn of a study that has a follow-up utterance and store FeedbackLabels.

    Turns already labelled by this decoder, version and kind are skipped (``force`` relabels
    them, replacing the stored label), so re-running never duplicates. Each chunk is stored in
    one transaction as soon as it is decoded. ``progress(done, total)`` follows the chunks.
    """
    if kind not in KIND_LABELS:
        raise ApplicationError(f"must be binary or ternary, not {kind!r}", field="kind")
    if round_index is not None and not study.rounds.filter(index=round_index).exists():
        raise ApplicationError(f"study {study.name!r} has no round {round_index}", field="round")
    if system_name and not System.objects.filter(round__study=study, name=system_name).exists():
        raise ApplicationError(
            f"study {study.name!r} has no system {system_name!r}", field="system"
        )
    decoder = get_decoder(decoder_spec)
    windows = feedback_windows(study_turns(study.pk, round_index, system_name))
    done_ids: set[int] = set()
    if not force:
        labelled = FeedbackLabel.objects.filter(
            turn__game__study=study, decoder=decoder.name, model_version=decoder.version, kind=kind
        )
        if round_index is not None:
            labelled = labelled.filter(turn__game__round__index=round_index)
        if system_name:
            labelled = labelled.filter(turn__game__system__name=system_name)
        done_ids = set(labelled.values_list("turn_id", flat=True))
    todo = [w for w in windows if w.turn_id not in done_ids]
    counts: dict[str, int] = {}
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        results = decoder.decode([w.context for w in chunk], kind)
        if len(results) != len(chunk):
            raise RuntimeError(
                f"decoder {decoder.name} returned {len(results)} labels for {len(chunk)} turns"
            )
        rows = []
        for window, result in zip(chunk, results, strict=True):
            if result.label not in (*KIND_LABELS[kind], LABEL_UNPARSEABLE):
                raise RuntimeError(f"decoder {decoder.name} gave label {result.label!r} for {kind}")
            counts[result.label] = counts.get(result.label, 0) + 1
            rows.append((window.turn_id, result.label, result.score, result.raw_output))
        store_feedback_labels(decoder.name, decoder.version, kind, rows)
        if progress:
            progress(start + len(chunk), len(todo))
    return DecodeSummary(
        decoder.name,
        decoder.version,
        kind,
        len(windows),
        len(todo),
        len(windows) - len(todo),
        counts,
    )


def store_feedback_labels(
    decoder: str, model_version: str, kind: str, rows: Sequence[tuple[int, str, float | None, str]]
) -> None:
    """Insert or replace labels ``(turn_id, label, score, raw_output)`` in one transaction.

    One ``INSERT ... ON CONFLICT DO UPDATE`` statement per batch (PostgreSQL and SQLite): the
    ORM's per-object preparation made storing a study's 50,000 labels take seconds.
    """
    if not rows:
        return
    table = connection.ops.quote_name(FeedbackLabel._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"INSERT INTO {table} (turn_id, decoder, model_version, kind, label, score, raw_output, "
        "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (turn_id, decoder, model_version, kind) DO UPDATE SET "
        "label = excluded.label, score = excluded.score, raw_output = excluded.raw_output"
    )
    params = [
        (turn_id, decoder, model_version, kind, label, score, raw, now)
        for turn_id, label, score, raw in rows
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)


# -- decoding runs launched from the web -----------------------------------------------------


def launch_decode_run(run: DecodeRun) -> DecodeRun:
    """Validate a new run, save it queued and send it to the gpu-batch queue on commit."""
    parse_spec(run.decoder or "lexicon", "decoder")
    if run.kind not in KIND_LABELS:
        raise ApplicationError(f"must be binary or ternary, not {run.kind!r}", field="kind")
    return heartbeat.enqueue(run)


def _decode_work(run: DecodeRun, lease: str) -> dict:
    stored_before = run.created  # by an earlier attempt that was stopped

    def progress(done: int, total: int) -> None:
        heartbeat.beat(
            DecodeRun, run.pk, lease, done=done, total=total, created=stored_before + done
        )

    summary = decode_study(
        run.study,
        decoder_spec=run.decoder or "lexicon",
        kind=run.kind,
        round_index=run.round_index,
        system_name=run.system_name or None,
        progress=progress,
    )
    return {"created": stored_before + summary.labelled}


def execute_decode_run(run_id: int) -> DecodeRun:
    """Run a queued decoding run through ``config.heartbeat.execute`` (progress with a
    heartbeat at every chunk; any failure ends it ``failed`` with the message). Safe to run
    again: labelled turns are skipped, and a label is stored once per turn, decoder, version
    and kind."""
    return heartbeat.execute(DecodeRun, run_id, _decode_work)


# -- embeddings ------------------------------------------------------------------------------


def embed_tangrams(embedder_spec: str, names: Sequence[str] | None = None) -> EmbeddingSet:
    """Embed tangrams (all with an image file, or ``names``) and store them with the matrix."""
    from .registry import get_embedder

    spec = parse_spec(embedder_spec, "embedder")
    inspect_checkpoint(spec.path, "embedder")
    tangrams = Tangram.objects.all() if names is None else Tangram.objects.filter(name__in=names)
    found = {t.name: tangram_image_path(t, t.name) for t in tangrams}
    if names is not None:
        unknown = sorted(set(names) - set(found))
        if unknown:
            raise ApplicationError(f"unknown tangram(s): {', '.join(unknown[:10])}", field="names")
    missing = sorted(name for name, path in found.items() if path is None)
    if names is not None and missing:
        raise ApplicationError(
            f"no image file for tangram(s): {', '.join(missing[:10])}", field="names"
        )
    todo = [(name, path) for name, path in sorted(found.items()) if path is not None]
    if not todo:
        raise ApplicationError(
            "no tangram has an image file to embed (set TANGRAM_DIR or import images)"
        )
    embedder = get_embedder(embedder_spec)
    vectors = embedder.embed([path for _, path in todo])
    return store_embeddings(
        embedder.name, embedder.version, dict(zip([n for n, _ in todo], vectors, strict=True))
    )


# -- checkpoints -----------------------------------------------------------------------------


def register_system_checkpoints() -> int:
    """Register every system's policy and decoder spec for its round; returns how many are new."""
    created = 0
    for system in System.objects.select_related("round").exclude(name=System.HUMAN):
        for kind, spec in (
            (ModelCheckpoint.Kind.POLICY, system.policy_checkpoint.strip()),
            (ModelCheckpoint.Kind.DECODER, system.decoder.strip()),
        ):
            if spec:
                _, new = ModelCheckpoint.objects.get_or_create(
                    kind=kind, spec=spec, round=system.round
                )
                created += new
    return created


def check_checkpoint_files(
    checkpoint: ModelCheckpoint, *, keep_load_failure: bool = True
) -> ModelCheckpoint:
    """Check a checkpoint's spec and files without loading it (safe in the web process).

    A checkpoint that ``failed`` to load on a worker stays failed while its files are the ones
    that failed (same fingerprint): only a new loading check can clear it."""
    failed_version = (
        checkpoint.model_version
        if keep_load_failure and checkpoint.status == ModelCheckpoint.Status.FAILED
        else None
    )
    status, message, version = ModelCheckpoint.Status.READY, "", ""
    try:
        spec = parse_spec(checkpoint.spec, checkpoint.kind)
        if spec.path:
            info = inspect_checkpoint(spec.path, f"{checkpoint.kind} checkpoint")
            if spec.backend == "hf" and (info.is_adapter or info.is_open_clip):
                raise CheckpointError(f"{spec.path} is not a Hugging Face model directory")
            if spec.backend == "clip" and not (info.is_open_clip or info.model_type == "clip"):
                raise CheckpointError(f"{spec.path} holds a {info.model_type!r} model, not CLIP")
            if spec.adapter and not inspect_checkpoint(spec.adapter, "adapter").is_adapter:
                raise CheckpointError(f"{spec.adapter} has no adapter_config.json")
            version = fingerprint(*([spec.path, spec.adapter] if spec.adapter else [spec.path]))
    except CheckpointError as exc:
        message = str(exc)
        status = (
            ModelCheckpoint.Status.MISSING
            if "does not exist" in message or "no checkpoint path" in message
            else ModelCheckpoint.Status.INCOMPATIBLE
        )
    if status == ModelCheckpoint.Status.READY and version and version == failed_version:
        return checkpoint
    checkpoint.status, checkpoint.status_message = status, message
    checkpoint.model_version, checkpoint.checked_at = version, timezone.now()
    checkpoint.save(update_fields=["status", "status_message", "model_version", "checked_at"])
    return checkpoint


def check_checkpoint_load(checkpoint_id: int) -> ModelCheckpoint:
    """Load a checkpoint through its backend (worker side) and record whether that worked.

    Whatever loading raises (a pickled ``.bin`` refused, a name too long, a bad config), the
    checkpoint ends ``failed`` with the message and is offered nowhere (the traceback is
    logged)."""
    from . import registry

    checkpoint = ModelCheckpoint.objects.get(pk=checkpoint_id)
    check_checkpoint_files(checkpoint, keep_load_failure=False)
    if checkpoint.status != ModelCheckpoint.Status.READY:
        return checkpoint
    loaders: dict[str, Callable[[str], ListenerPolicy | FeedbackDecoder | ImageEmbedder]] = {
        ModelCheckpoint.Kind.POLICY: registry.get_policy,
        ModelCheckpoint.Kind.DECODER: registry.get_decoder,
        ModelCheckpoint.Kind.EMBEDDER: registry.get_embedder,
    }
    loader = loaders[checkpoint.kind]
    try:
        backend = loader(checkpoint.spec)
        checkpoint.status_message = f"loaded by a worker ({backend.name})"
    except CheckpointError as exc:
        checkpoint.status, checkpoint.status_message = ModelCheckpoint.Status.INCOMPATIBLE, str(exc)
    except Exception as exc:
        logger.exception("loading checkpoint %s (%s) failed", checkpoint.pk, checkpoint.spec)
        checkpoint.status = ModelCheckpoint.Status.FAILED
        checkpoint.status_message = heartbeat.error_message(exc)
    checkpoint.checked_at = timezone.now()
    checkpoint.save(update_fields=["status", "status_message", "checked_at"])
    return checkpoint
