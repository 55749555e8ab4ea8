"""Post-hoc annotations of turns (the two-phase survey) and the crowd machinery around them.

- ``AnnotationBatch`` → ``BatchItem`` (one game each; regular or gold) → ``Assignment`` (one
  worker's claim on an item) → ``TurnAnnotation`` (one answer per turn and worker).
- ``CrowdTask`` is what crowdworkers arrive at: an annotation batch or a game round. A
  ``CrowdSession`` is one platform submission (a Prolific session, an MTurk assignment).
- ``Quiz`` / ``QuizAttempt`` qualify workers; ``Consent`` records a worker's consent to a task.
- ``Bonus`` and ``Payout`` are money owed and money paid.

Platform worker ids never appear here: workers are ``games.Worker`` rows (keyed hashes).
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from games.models import Game, Round, Study, System, Turn, Worker


class Satisfaction(models.TextChoices):
    """Phase-2 answers; docs/protocols.md gives their default feedback classes (a metric-run
    setting in evaluation)."""

    YES = "yes", "yes"
    YES_INCOMPLETE = "yes_incomplete", "yes, though not all required selections were made"
    YES_WRONG = "yes_wrong", "yes, though some selections were wrong"
    NO = "no", "no"
    NONE = "", "no follow-up (last turn)"


def _new_key() -> str:
    return secrets.token_urlsafe(12)


class AnnotationBatch(models.Model):
    """Games of one system in one round, to be annotated by crowdworkers."""

    name = models.CharField(max_length=120)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="annotation_batches")
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="annotation_batches")
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="annotation_batches")
    redundancy_fraction = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    redundancy_count = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(2), MaxValueValidator(20)]
    )
    gold_interval = models.PositiveSmallIntegerField(
        default=0, help_text="every n-th game a worker gets is a gold game (0: none)"
    )
    timeout_minutes = models.PositiveSmallIntegerField(
        default=30, help_text="an assignment idle this long is released to other workers"
    )
    pay_per_turn = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("0.06"))
    pay_per_error_turn = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal("0.08")
    )
    pay_per_game = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text="paid for each game a worker submits, on top of the per-turn rates",
    )
    pay_per_minute = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text="paid per minute spent on the survey steps of submitted games (each step "
        "counts for at most the time-out)",
    )
    seed = models.BigIntegerField(default=0)
    is_open = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "annotation batches"
        constraints = [
            models.CheckConstraint(
                condition=Q(redundancy_fraction__gte=0) & Q(redundancy_fraction__lte=1),
                name="batch_redundancy_fraction_range",
            ),
            models.CheckConstraint(
                condition=Q(pay_per_turn__gte=0)
                & Q(pay_per_error_turn__gte=0)
                & Q(pay_per_game__gte=0)
                & Q(pay_per_minute__gte=0),
                name="batch_pay_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BatchItem(models.Model):
    """A game in a batch, wanted ``required_annotations`` times (gold items: once per worker)."""

    batch = models.ForeignKey(AnnotationBatch, on_delete=models.CASCADE, related_name="items")
    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="batch_items")
    position = models.PositiveIntegerField()
    required_annotations = models.PositiveSmallIntegerField(default=1)
    is_gold = models.BooleanField(default=False)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "game"], name="batch_item_unique_game"),
            models.UniqueConstraint(fields=["batch", "position"], name="batch_item_unique_pos"),
            models.CheckConstraint(
                condition=Q(required_annotations__gte=1), name="batch_item_required_min"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.batch} item {self.position}{' (gold)' if self.is_gold else ''}"


class GoldAnswer(models.Model):
    """The known answer of one turn of a gold item."""

    item = models.ForeignKey(BatchItem, on_delete=models.CASCADE, related_name="gold_answers")
    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="gold_answers")
    action = models.CharField(max_length=120, blank=True)
    satisfaction = models.CharField(
        max_length=16, choices=Satisfaction.choices, blank=True, default=""
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "turn"], name="gold_answer_unique_turn"),
        ]

    def __str__(self) -> str:
        return f"gold {self.turn}: {self.action or 'nothing'}"


class Quiz(models.Model):
    """A qualification quiz; a worker passes it once (``pass_mark`` percent correct)."""

    name = models.CharField(max_length=120, unique=True)
    instructions = models.TextField(blank=True)
    pass_mark = models.PositiveSmallIntegerField(
        default=80, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    max_attempts = models.PositiveSmallIntegerField(default=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "quizzes"
        constraints = [
            models.CheckConstraint(condition=Q(pass_mark__lte=100), name="quiz_pass_mark_range"),
        ]

    def __str__(self) -> str:
        return self.name


class QuizQuestion(models.Model):
    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(default=0)
    text = models.TextField()
    choices = models.JSONField(help_text="list of answer texts")
    correct_choice = models.PositiveSmallIntegerField(help_text="0-based index into choices")

    class Meta:
        ordering = ["quiz", "position", "id"]

    def __str__(self) -> str:
        return self.text[:60]


class QuizAttempt(models.Model):
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="quiz_attempts")
    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="attempts")
    answers = models.JSONField(help_text="question id → chosen index")
    score = models.PositiveSmallIntegerField(help_text="percent correct")
    passed = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.worker} {self.quiz}: {self.score}%"


class Currency(models.TextChoices):
    """What a task pays in (ISO 4217). MTurk pays in US dollars only."""

    GBP = "GBP", "GBP (pound sterling)"
    USD = "USD", "USD (US dollar)"
    EUR = "EUR", "EUR (euro)"


class CrowdTask(models.Model):
    """What crowdworkers arrive at: an annotation batch or a game round (exactly one).

    ``platform`` is where the task is published; a Prolific task needs its completion code,
    which the worker is sent back with. Amounts of the task, its batch and (for a game round)
    the study's live-play pay are in ``currency``.
    """

    class Kind(models.TextChoices):
        ANNOTATION = "annotation", "annotation batch"
        GAME = "game", "game round"

    class Platform(models.TextChoices):
        PROLIFIC = "prolific", "Prolific"
        MTURK = "mturk", "Amazon Mechanical Turk"

    key = models.CharField(max_length=32, unique=True, default=_new_key, editable=False)
    name = models.CharField(max_length=120)
    batch = models.OneToOneField(
        AnnotationBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="task"
    )
    round = models.ForeignKey(
        Round, null=True, blank=True, on_delete=models.CASCADE, related_name="crowd_tasks"
    )
    quiz = models.ForeignKey(Quiz, null=True, blank=True, on_delete=models.SET_NULL)
    consent_text = models.TextField()
    guidelines = models.TextField(blank=True)
    games_per_session = models.PositiveSmallIntegerField(default=1)
    platform = models.CharField(max_length=16, choices=Platform.choices, default=Platform.PROLIFIC)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.GBP)
    is_open = models.BooleanField(default=True)
    prolific_study_id = models.CharField(max_length=64, blank=True)
    prolific_completion_code = models.CharField(max_length=64, blank=True)
    mturk_sandbox = models.BooleanField(default=True)
    mturk_title = models.CharField(max_length=128, blank=True)
    mturk_description = models.CharField(max_length=2000, blank=True)
    mturk_keywords = models.CharField(max_length=500, blank=True)
    mturk_reward = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("0.10"))
    mturk_max_assignments = models.PositiveIntegerField(default=1)
    mturk_lifetime_seconds = models.PositiveIntegerField(default=3 * 24 * 3600)
    mturk_assignment_seconds = models.PositiveIntegerField(default=3600)
    mturk_auto_approve_seconds = models.PositiveIntegerField(default=3 * 24 * 3600)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(batch__isnull=False) & Q(round__isnull=True))
                | (Q(batch__isnull=True) & Q(round__isnull=False)),
                name="crowd_task_batch_xor_round",
            ),
            models.CheckConstraint(
                condition=Q(games_per_session__gte=1), name="crowd_task_games_per_session_min"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def kind(self) -> str:
        return self.Kind.ANNOTATION if self.batch_id else self.Kind.GAME


class Consent(models.Model):
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="consents")
    task = models.ForeignKey(CrowdTask, on_delete=models.CASCADE, related_name="consents")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["worker", "task"], name="consent_unique_per_task"),
        ]

    def __str__(self) -> str:
        return f"{self.worker} consented to {self.task}"


class CrowdSession(models.Model):
    """One platform submission: a Prolific session or an MTurk assignment."""

    class Status(models.TextChoices):
        STARTED = "started", "started"
        COMPLETED = "completed", "completed"

    task = models.ForeignKey(CrowdTask, on_delete=models.CASCADE, related_name="sessions")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="crowd_sessions")
    platform = models.CharField(max_length=16, choices=Worker.Platform.choices)
    external_id = models.CharField(
        max_length=64, help_text="Prolific SESSION_ID or MTurk assignmentId"
    )
    platform_study_id = models.CharField(
        max_length=64, blank=True, help_text="Prolific STUDY_ID or MTurk hitId"
    )
    turk_submit_to = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.STARTED)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "platform", "external_id"], name="crowd_session_unique_external"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.platform} session {self.external_id}"


class Assignment(models.Model):
    """A worker's claim on a batch item. ``active`` claims idle past the batch time-out stop
    counting against the item's capacity (and are marked ``released`` when next touched)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "in progress"
        SUBMITTED = "submitted", "submitted"
        RELEASED = "released", "released after time-out"

    item = models.ForeignKey(BatchItem, on_delete=models.CASCADE, related_name="assignments")
    batch = models.ForeignKey(AnnotationBatch, on_delete=models.CASCADE, related_name="+")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="assignments")
    session = models.ForeignKey(
        CrowdSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    started_at = models.DateTimeField(auto_now_add=True)
    step_started_at = models.DateTimeField(help_text="when the current survey step was shown")
    last_activity_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "worker"], name="assignment_once_per_worker"),
            models.UniqueConstraint(
                fields=["worker", "batch"],
                condition=Q(status="active"),
                name="assignment_one_active_per_batch",
            ),
        ]
        indexes = [models.Index(fields=["item", "status"])]

    def __str__(self) -> str:
        return f"{self.item} → {self.worker} ({self.status})"


class TurnAnnotation(models.Model):
    """One annotator's two-phase answer for a turn: ground-truth action a* and satisfaction."""

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="annotations")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="annotations")
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.CASCADE, related_name="answers"
    )
    annotated_action = models.CharField(
        max_length=120, blank=True, help_text="a*: canonical action string ('' = do nothing)"
    )
    satisfaction = models.CharField(
        max_length=16, choices=Satisfaction.choices, blank=True, default=""
    )
    phase1_seconds = models.FloatField(null=True, blank=True)
    phase2_seconds = models.FloatField(null=True, blank=True)
    phase2_at = models.DateTimeField(
        null=True, blank=True, help_text="when the phase-2 answer was given (null: not yet)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["turn", "worker"], name="annotation_unique_per_worker"),
        ]

    def __str__(self) -> str:
        return f"{self.turn} by {self.worker}"


class Bonus(models.Model):
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="bonuses")
    session = models.ForeignKey(
        CrowdSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="bonuses"
    )
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "bonuses"
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="bonus_positive")]

    def __str__(self) -> str:
        return f"{self.amount} to {self.worker}"


class Payout(models.Model):
    """Money sent (or being sent) through a platform; one row per platform call."""

    class Kind(models.TextChoices):
        APPROVAL = "approval", "assignment approval (HIT reward)"
        BONUS = "bonus", "bonus"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    session = models.ForeignKey(CrowdSession, on_delete=models.PROTECT, related_name="payouts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    request_token = models.CharField(max_length=64, unique=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.status})"


class MTurkHIT(models.Model):
    task = models.ForeignKey(CrowdTask, on_delete=models.CASCADE, related_name="hits")
    hit_id = models.CharField(max_length=64, unique=True)
    hit_type_id = models.CharField(max_length=64, blank=True)
    sandbox = models.BooleanField()
    max_assignments = models.PositiveIntegerField()
    reward = models.DecimalField(max_digits=6, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "MTurk HIT"

    def __str__(self) -> str:
        return self.hit_id
