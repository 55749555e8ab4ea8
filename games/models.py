"""Core domain of the platform: tangrams, studies, rounds, systems, games, turns, labels.

Selections and orders are stored as JSON lists of tangram ids (``page3-21``). Selections are kept
in listener order, so their letters read A→J. The database enforces what it can portably (unique
ids and indices, value ranges); on PostgreSQL a migration adds the cross-table checks (targets in
the context, context size and target count per study). ``games.services`` validates the same
rules before writing on every backend.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class Tangram(models.Model):
    class Split(models.TextChoices):
        DEV = "dev", "dev"
        TRAIN = "train", "train"
        TEST = "test", "test"
        NONE = "", "unassigned"

    name = models.CharField(max_length=64, unique=True, help_text="KILOGRAM id, e.g. page3-21")
    image = models.FileField(upload_to="tangrams/", blank=True)
    split = models.CharField(max_length=8, choices=Split.choices, blank=True, default="")
    source = models.CharField(
        max_length=16, default="kilogram", help_text="kilogram, or generated for the demo"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Study(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    context_size = models.PositiveSmallIntegerField(default=10)
    min_targets = models.PositiveSmallIntegerField(default=3)
    max_targets = models.PositiveSmallIntegerField(default=5)
    turn_limit = models.PositiveSmallIntegerField(default=10)
    speaker_seconds = models.PositiveSmallIntegerField(default=25)
    listener_seconds = models.PositiveSmallIntegerField(default=45)
    max_utterance_chars = models.PositiveIntegerField(default=300)
    idle_ends_game = models.BooleanField(
        default=True, help_text="One missed turn ends the game; otherwise a warning comes first."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(context_size__gte=2) & Q(context_size__lte=26),
                name="study_context_size_range",
            ),
            models.CheckConstraint(
                condition=Q(min_targets__gte=1)
                & Q(max_targets__gte=F("min_targets"))
                & Q(max_targets__lte=F("context_size")),
                name="study_target_count_range",
            ),
            models.CheckConstraint(condition=Q(turn_limit__gte=1), name="study_turn_limit_min"),
        ]

    def __str__(self) -> str:
        return self.name


class Round(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="rounds")
    index = models.PositiveSmallIntegerField(help_text="ρ = 0, 1, 2, ...")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "index"]
        constraints = [
            models.UniqueConstraint(fields=["study", "index"], name="round_unique_index"),
        ]

    def __str__(self) -> str:
        return f"{self.study.name} round {self.index}"


class System(models.Model):
    """A listener variant deployed in a round: a model policy, or human listeners (``HH``)."""

    HUMAN = "HH"
    CONTROL = "CONTROL"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="systems")
    name = models.CharField(max_length=40, help_text="e.g. B-FFT, T-RL, B-KTO, CONTROL, HH")
    policy_checkpoint = models.CharField(max_length=500, blank=True)
    decoder = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["round", "name"]
        constraints = [
            models.UniqueConstraint(fields=["round", "name"], name="system_unique_name_per_round"),
        ]

    @property
    def is_human(self) -> bool:
        return self.name == self.HUMAN

    def __str__(self) -> str:
        return f"{self.name} (round {self.round.index})"


class Worker(models.Model):
    """A crowdworker, known only by a keyed hash of the platform id (see ``games.workers``)."""

    class Platform(models.TextChoices):
        PROLIFIC = "prolific", "Prolific"
        MTURK = "mturk", "Amazon Mechanical Turk"
        LOCAL = "local", "Local / lab"
        IMPORT = "import", "Imported record"

    platform = models.CharField(max_length=16, choices=Platform.choices)
    id_hash = models.CharField(max_length=64, help_text="HMAC-SHA256 of the platform id")
    encrypted_platform_id = models.BinaryField(
        null=True, blank=True, editable=False, help_text="Fernet token; admins only; for payments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "id_hash"], name="worker_unique_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.id_hash[:12]}"


class GameConfig(models.Model):
    """The images of one game: the context in both display orders and the targets."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="configs")
    speaker_order = models.JSONField(help_text="tangram ids in the speaker's display order")
    listener_order = models.JSONField(help_text="tangram ids in the listener's display order")
    targets = models.JSONField(help_text="target tangram ids (a subset of the context)")
    seed = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def context(self) -> list[str]:
        return list(self.speaker_order)

    def __str__(self) -> str:
        return f"config {self.pk} ({len(self.targets)} targets)"


class Game(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "waiting"
        PLAYING = "playing", "playing"
        ENDED = "ended", "ended"

    class Outcome(models.TextChoices):
        SUCCESSFUL = "successful", "successful"
        UNSUCCESSFUL = "unsuccessful", "unsuccessful"
        IDLE = "idle", "idle"
        NONE = "", "not ended"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="games")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="games")
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="games")
    config = models.ForeignKey(GameConfig, on_delete=models.PROTECT, related_name="games")
    external_id = models.CharField(max_length=64, help_text="game id, unique within the study")
    speaker = models.ForeignKey(
        Worker, null=True, blank=True, on_delete=models.SET_NULL, related_name="games_as_speaker"
    )
    listener = models.ForeignKey(
        Worker, null=True, blank=True, on_delete=models.SET_NULL, related_name="games_as_listener"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.WAITING)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True, default="")
    end_reason = models.CharField(
        max_length=120, blank=True, help_text="e.g. 'speaker idled', 'turn limit reached'"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="extra fields of the record")

    class Meta:
        ordering = ["study", "round", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "external_id"], name="game_unique_external_id_per_study"
            ),
            models.CheckConstraint(
                condition=Q(status="ended") | Q(outcome=""), name="game_outcome_only_when_ended"
            ),
        ]
        indexes = [models.Index(fields=["round", "system", "outcome"])]

    def __str__(self) -> str:
        return f"game {self.external_id}"


class Turn(models.Model):
    """One speaker utterance and the listener's answer to it.

    ``action`` is the canonical action string ("" for the empty action); ``selection_after`` is
    null until the listener's answer is recorded. ``action_reason`` says why an action is what it
    is when the listener did not act normally (e.g. ``model_timeout``).
    """

    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField(help_text="0-based turn number")
    utterance = models.TextField(blank=True)
    selection_before = models.JSONField(default=list)
    selection_after = models.JSONField(null=True, blank=True)
    action = models.CharField(max_length=120, blank=True)
    action_reason = models.CharField(max_length=40, blank=True)
    action_probability = models.FloatField(null=True, blank=True)
    speaker_seconds = models.FloatField(null=True, blank=True, help_text="until the utterance")
    listener_seconds = models.FloatField(
        null=True, blank=True, help_text="from the utterance to the submission"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    utterance_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["game", "index"]
        constraints = [
            models.UniqueConstraint(fields=["game", "index"], name="turn_unique_index_per_game"),
            models.CheckConstraint(
                condition=Q(action_probability__isnull=True)
                | (Q(action_probability__gte=0) & Q(action_probability__lte=1)),
                name="turn_probability_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.game} turn {self.index}"


class FeedbackLabel(models.Model):
    """A feedback decoder's label for a turn (read from the turn's follow-up utterance)."""

    class Label(models.TextChoices):
        POSITIVE = "positive", "positive"
        NEUTRAL = "neutral", "neutral"
        NEGATIVE = "negative", "negative"
        UNPARSEABLE = "unparseable", "unparseable"

    class Kind(models.TextChoices):
        BINARY = "binary", "binary"
        TERNARY = "ternary", "ternary"

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="feedback_labels")
    decoder = models.CharField(max_length=200, help_text="decoder name, e.g. lexicon or hf:PATH")
    model_version = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    label = models.CharField(max_length=12, choices=Label.choices)
    score = models.FloatField(null=True, blank=True, help_text="confidence of the label")
    raw_output = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["turn", "decoder", "model_version", "kind"],
                name="feedback_label_unique_per_decoder",
            ),
            models.CheckConstraint(
                condition=~Q(kind="binary", label="neutral"), name="feedback_binary_has_no_neutral"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.turn}: {self.label} ({self.decoder})"

