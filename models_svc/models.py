"""Model-service records: registered checkpoints, decoding runs, tangram embeddings, training
manifests and training runs."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from config.heartbeat import HeartbeatRun


class ModelCheckpoint(models.Model):
    """A policy, decoder or embedder checkpoint registered for a study round (or globally)."""

    class Kind(models.TextChoices):
        POLICY = "policy", "listener policy"
        DECODER = "decoder", "feedback decoder"
        EMBEDDER = "embedder", "image embedder"

    class Status(models.TextChoices):
        UNCHECKED = "unchecked", "not checked yet"
        READY = "ready", "ready"
        MISSING = "missing", "path missing"
        INCOMPATIBLE = "incompatible", "incompatible"
        FAILED = "failed", "failed to load"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    spec = models.CharField(
        max_length=600, help_text="random, lexicon, clip:PATH, hf:PATH or hf:PATH+lora:PATH"
    )
    round = models.ForeignKey(
        "games.Round", null=True, blank=True, on_delete=models.CASCADE, related_name="checkpoints"
    )
    notes = models.CharField(max_length=200, blank=True)
    training_run = models.ForeignKey(
        "TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="checkpoints",
        help_text="the run that trained this checkpoint (lineage)",
    )
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.UNCHECKED)
    status_message = models.TextField(blank=True)
    model_version = models.CharField(max_length=40, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["round__study__name", "round__index", "kind", "spec"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "spec", "round"],
                name="checkpoint_unique_per_round",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.spec}"


class DecodeRun(HeartbeatRun):
    """One launch of feedback decoding over a study (from the admin or the command line)."""

    task_name = "models_svc.tasks.decode_feedback_run"
    task_queue = settings.GPU_BATCH_QUEUE

    study = models.ForeignKey("games.Study", on_delete=models.CASCADE, related_name="decode_runs")
    round_index = models.PositiveSmallIntegerField(null=True, blank=True)
    system_name = models.CharField(max_length=40, blank=True)
    decoder = models.CharField(max_length=600)
    kind = models.CharField(max_length=8, choices=[("binary", "binary"), ("ternary", "ternary")])
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="labels newly stored")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"decode {self.study} {self.decoder} {self.kind}"

    @property
    def progress(self) -> str:
        return f"{self.done}/{self.total}"


class EmbeddingSet(models.Model):
    """Tangram embeddings of one embedder checkpoint version, with the cached similarity matrix.

    ``similarity`` holds float32 cosine similarities (row-major, ``names`` × ``names``); it is
    rebuilt whenever embeddings are added to the set.
    """

    embedder = models.CharField(max_length=600)
    model_version = models.CharField(max_length=40, unique=True)
    dim = models.PositiveIntegerField()
    names = models.JSONField(default=list, help_text="tangram ids in matrix order")
    similarity = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"{self.embedder} ({self.model_version}, {len(self.names)} tangrams)"


class TangramEmbedding(models.Model):
    """One tangram's L2-normalised embedding (float32 bytes) in an embedding set."""

    embedding_set = models.ForeignKey(
        EmbeddingSet, on_delete=models.CASCADE, related_name="embeddings"
    )
    tangram = models.ForeignKey(
        "games.Tangram", on_delete=models.CASCADE, related_name="embeddings"
    )
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["embedding_set", "tangram"], name="embedding_unique_per_set"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tangram} in {self.embedding_set.model_version}"


class TrainingManifest(models.Model):
    """An immutable, content-hashed list of the examples a training run reads.

    ``entries`` name each example (turn id, label id and label, logged p_t, prompt format; or a
    synthetic turn's content); ``summary`` counts them per label and the excluded turns per
    reason. The same content always hashes to the same manifest, so a run can be reproduced and
    audited.
    """

    class Role(models.TextChoices):
        TRAIN = "train", "interaction examples"
        SEED = "seed", "seed set D₀"
        VALIDATION = "validation", "validation set"

    study = models.ForeignKey(
        "games.Study", on_delete=models.CASCADE, related_name="training_manifests"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    round_index = models.PositiveSmallIntegerField()
    system_name = models.CharField(max_length=40)
    content_hash = models.CharField(max_length=64, unique=True)
    decoder = models.CharField(max_length=200, blank=True)
    decoder_version = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=8, blank=True)
    prompt_format = models.CharField(max_length=40)
    summary = models.JSONField(default=dict)
    entries = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return (
            f"{self.role} {self.system_name} ≤ round {self.round_index} ({self.content_hash[:10]})"
        )

    @property
    def size(self) -> int:
        return len(self.entries)


class TrainingRun(HeartbeatRun):
    """One training of a system's next-round policy (LoRA adapter) from its manifests."""

    task_name = "models_svc.tasks.train_policy_run"
    task_queue = settings.GPU_BATCH_QUEUE
    stale_setting = "TRAINING_STALE_SECONDS"

    class Objective(models.TextChoices):
        FFT = "fft", "filtered fine-tuning"
        RL = "rl", "REINFORCE"
        KTO = "kto", "KTO"

    study = models.ForeignKey("games.Study", on_delete=models.CASCADE, related_name="training_runs")
    round_index = models.PositiveSmallIntegerField(help_text="trained on rounds ≤ this one")
    system_name = models.CharField(max_length=40)
    objective = models.CharField(max_length=4, choices=Objective.choices)
    base_checkpoint = models.CharField(max_length=600, help_text="hf:PATH of the pretrained model")
    initial_adapter = models.CharField(max_length=600, blank=True)
    prompt_format = models.CharField(max_length=40)
    manifest = models.ForeignKey(TrainingManifest, on_delete=models.PROTECT, related_name="runs")
    seed_manifest = models.ForeignKey(
        TrainingManifest,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="seed_runs",
    )
    validation_manifest = models.ForeignKey(
        TrainingManifest,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="validation_runs",
    )
    hyperparameters = models.JSONField(default=dict)
    cancel_requested = models.BooleanField(default=False)
    seed_index = models.PositiveSmallIntegerField(default=0)
    epoch = models.PositiveIntegerField(default=0, help_text="epochs finished in this seed")
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    history = models.JSONField(
        default=list, help_text="per epoch: seed, epoch, train loss, validation exact match"
    )
    selected = models.JSONField(default=dict, blank=True, help_text="chosen seed and epoch")
    output_adapter = models.CharField(max_length=600, blank=True)
    folder = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="names the run's folder under TRAINING_DIR (unique across databases)",
    )
    diagnostics = models.JSONField(
        default=dict,
        blank=True,
        help_text="importance weights (RL's c, KTO's r and z) at the start and per epoch, the "
        "label-smoothing weights used and the checkpoint-selection decoding",
    )
    resumed = models.PositiveSmallIntegerField(default=0, help_text="times resumed")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.objective} {self.system_name} round {self.round_index} ({self.status})"

    @property
    def policy_spec(self) -> str:
        """The spec of the trained policy (``hf:BASE+lora:ADAPTER``), empty until done."""
        if not self.output_adapter:
            return ""
        return f"{self.base_checkpoint}+lora:{self.output_adapter}"


class ScoringRun(HeartbeatRun):
    """One launch of ``score_turns``: p_t recomputed for listener turns that have none."""

    task_name = "models_svc.tasks.score_turns_run"
    task_queue = settings.GPU_BATCH_QUEUE

    study = models.ForeignKey("games.Study", on_delete=models.CASCADE, related_name="scoring_runs")
    round_index = models.PositiveSmallIntegerField(null=True, blank=True)
    system_name = models.CharField(max_length=40, blank=True)
    policy = models.CharField(max_length=600, help_text="hf:PATH or hf:PATH+lora:PATH")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(default=0)
    unscorable = models.JSONField(default=dict, help_text="turns left without p_t, per reason")
    model_version = models.CharField(max_length=120, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"score {self.study} with {self.policy} ({self.status})"
