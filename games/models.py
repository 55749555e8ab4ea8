"""Core domain of the platform: tangrams, studies, rounds, systems, games, turns, labels.

Selections and orders are stored as JSON lists of tangram ids (``page3-21``). Selections are kept
in listener order, so their letters read A→J. The database enforces what it can portably (unique
ids and indices, value ranges); on PostgreSQL a migration adds the cross-table checks (targets in
the context, context size and target count per study). On every backend ``games.records`` and
``games.importing`` check the same rules before imported games are written, and
``games.live.configs`` draws configs that follow them.
"""

from __future__ import annotations

from decimal import Decimal

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
    simulated = models.BooleanField(
        default=False, help_text="played by scripted speakers (simulate_study), not by people"
    )
    simulation = models.JSONField(
        default=dict, blank=True, help_text="a simulated study's plan and speaker population"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class RoleRule(models.TextChoices):
        RANDOM = "random", "random"
        EXPERIENCED_SPEAKS = "experienced_speaks", "the more experienced worker speaks"

    # Live play (games.live): pairing, waiting and pay. Amounts are in the platform's currency.
    role_rule = models.CharField(
        max_length=20,
        choices=RoleRule.choices,
        default=RoleRule.RANDOM,
        help_text="How the two roles of a human-human game are given out.",
    )
    lobby_wait_seconds = models.PositiveIntegerField(
        default=300, help_text="After this long in the lobby a worker may leave with waiting pay."
    )
    waiting_pay_per_minute = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0.20")
    )
    base_pay = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("0.81"),
        help_text="Paid per game to each human player who did not idle.",
    )
    success_bonus = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.20"))
    correct_click_bonus = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text="Paid per correct click (as click accuracy counts them) to each human player.",
    )

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
    config_seed = models.BigIntegerField(
        default=0, help_text="Seed of the round's generated game configs (reproducible)."
    )
    reuse_configs = models.BooleanField(
        default=True,
        help_text="Every system plays the same configs (one config per block of slots).",
    )
    lobby_open = models.BooleanField(
        default=False,
        help_text="Whether the lobby admits and pairs workers (researchers open it).",
    )

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
    prompt_format = models.CharField(
        max_length=40,
        default="respect-2024",
        help_text="how the policy prompt is written (models_svc.prompt_formats): respect-2024 "
        "(the released checkpoints' layout) or platform-p1",
    )
    description = models.TextField(blank=True)
    decode_when_lobby_closes = models.BooleanField(
        default=False,
        help_text="queue the decoding of the round's turns (this system's decoder, the kind its "
        "name says) when a researcher closes the round's lobby on the round board",
    )

    class Meta:
        ordering = ["round", "name"]
        constraints = [
            models.UniqueConstraint(fields=["round", "name"], name="system_unique_name_per_round"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (round {self.round.index})"

    @property
    def is_human(self) -> bool:
        return self.name == self.HUMAN


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

    def __str__(self) -> str:
        return f"config {self.pk} ({len(self.targets)} targets)"

    @property
    def context(self) -> list[str]:
        return list(self.speaker_order)


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

    class Phase(models.TextChoices):
        SPEAKER = "speaker", "speaker types"
        LISTENER = "listener", "listener selects"
        NONE = "", "not playing"

    # Live state (games.live); the database is the only copy, so a restart loses nothing.
    phase = models.CharField(max_length=8, choices=Phase.choices, blank=True, default="")
    turn_index = models.PositiveSmallIntegerField(default=0, help_text="current turn (live)")
    deadline = models.DateTimeField(
        null=True, blank=True, help_text="when the current phase times out (absolute)"
    )
    listener_draft = models.JSONField(
        default=list, blank=True, help_text="listener's toggled selection in the current turn"
    )
    speaker_warnings = models.PositiveSmallIntegerField(default=0)
    listener_warnings = models.PositiveSmallIntegerField(default=0)
    version = models.PositiveIntegerField(default=0, help_text="bumped on every live change")
    slot = models.ForeignKey(
        "RoundSlot", null=True, blank=True, on_delete=models.SET_NULL, related_name="games"
    )

    # Not fields: what one live-play operation keeps with the game row it locked, so it does not
    # read them again (games.live.store: the current turn; games.live.engine: the earnings awarded
    # when the game ended).
    _live_turn: Turn | None
    _awarded: dict[int, list[GameEarning]]

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
        indexes = [
            models.Index(fields=["round", "system", "outcome"]),
            models.Index(fields=["status", "deadline"], name="game_live_deadline"),
        ]

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
    prompt_format = models.CharField(
        max_length=40, blank=True, help_text="prompt format the model's action was produced under"
    )
    sampling_temperature = models.FloatField(
        null=True, blank=True, help_text="temperature the model's action (and p_t) was sampled at"
    )
    sampling_constrained = models.BooleanField(
        null=True,
        blank=True,
        help_text="whether sampling was constrained to valid actions (null: not recorded)",
    )
    probability_recomputed_by = models.CharField(
        max_length=120,
        blank=True,
        help_text="checkpoint version that recomputed p_t after the fact (score_turns); empty "
        "when p_t was logged as the action was sampled",
    )
    probability_note = models.CharField(
        max_length=200, blank=True, help_text="why no p_t could be computed for this turn"
    )
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


class RoundSlot(models.Model):
    """One planned game of a round: which system plays which config, in arrival order.

    Slots come in blocks; with ``Round.reuse_configs`` a block is one config played once by every
    system, the systems in a seeded random order, so arriving speakers are spread at random over
    the systems and every system is compared on the same configs.
    """

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveIntegerField()
    block = models.PositiveIntegerField()
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="slots")
    config = models.ForeignKey(GameConfig, on_delete=models.PROTECT, related_name="slots")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["round", "position"]
        constraints = [
            models.UniqueConstraint(fields=["round", "position"], name="slot_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.round} slot {self.position} ({self.system.name})"


class LobbyEntry(models.Model):
    """A worker's wait in a round's lobby, from arrival to pairing or leaving."""

    class Status(models.TextChoices):
        WAITING = "waiting", "waiting"
        PAIRED = "paired", "paired"
        LEFT = "left", "left with waiting pay"
        CLOSED = "closed", "closed without pay"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="lobby_entries")
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="lobby_entries")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.WAITING)
    arrived_at = models.DateTimeField()
    # When the worker's lobby socket last told us they are there; empty until it first listens.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    waited_seconds = models.FloatField(null=True, blank=True)
    game = models.ForeignKey(
        Game, null=True, blank=True, on_delete=models.SET_NULL, related_name="lobby_entries"
    )
    system = models.ForeignKey(
        System,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="lobby_entries",
        help_text="The system the worker asked to play (the local entry); empty: the round's mix.",
    )

    class Meta:
        ordering = ["round", "arrived_at", "id"]
        verbose_name_plural = "lobby entries"
        constraints = [
            models.UniqueConstraint(
                fields=["worker"], condition=Q(status="waiting"), name="lobby_one_wait_per_worker"
            ),
        ]
        indexes = [models.Index(fields=["round", "status", "arrived_at"])]

    def __str__(self) -> str:
        return f"{self.worker} in {self.round} ({self.status})"


class GameEvent(models.Model):
    """Everything that happened in a live game, stored when it happened (append-only)."""

    class Kind(models.TextChoices):
        START = "start", "start"
        UTTERANCE = "utterance", "utterance"
        TOGGLE = "toggle", "toggle"
        SUBMIT = "submit", "submit"
        MODEL_ACTION = "model_action", "model action"
        TIMEOUT = "timeout", "timeout"
        WARNING = "warning", "warning"
        END = "end", "end"
        CONNECT = "connect", "connect"
        DISCONNECT = "disconnect", "disconnect"
        REFUSED = "refused", "refused message"

    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="events")
    turn_index = models.PositiveSmallIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    role = models.CharField(max_length=8, blank=True, help_text="speaker, listener, model, server")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["game", "id"]

    def __str__(self) -> str:
        return f"{self.game} {self.kind} ({self.role})"


class GameEarning(models.Model):
    """Money a worker earned in live play: per game (base, bonuses) or for waiting."""

    class Kind(models.TextChoices):
        BASE = "base", "base pay"
        SUCCESS_BONUS = "success_bonus", "success bonus"
        CLICK_BONUS = "click_bonus", "correct-click bonus"
        WAITING = "waiting", "waiting pay"

    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="game_earnings")
    game = models.ForeignKey(
        Game, null=True, blank=True, on_delete=models.CASCADE, related_name="earnings"
    )
    lobby_entry = models.ForeignKey(
        LobbyEntry, null=True, blank=True, on_delete=models.CASCADE, related_name="earnings"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["worker", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "game", "kind"],
                condition=Q(game__isnull=False),
                name="earning_once_per_game_kind",
            ),
            models.UniqueConstraint(
                fields=["worker", "lobby_entry", "kind"],
                condition=Q(lobby_entry__isnull=False),
                name="earning_once_per_lobby_entry",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="earning_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.worker} {self.kind} {self.amount}"


class ExitSurvey(models.Model):
    """A player's answers after a game, stored with the game."""

    game = models.ForeignKey(Game, on_delete=models.CASCADE, related_name="exit_surveys")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="exit_surveys")
    role = models.CharField(max_length=8)
    satisfaction = models.PositiveSmallIntegerField(help_text="1 (very unhappy) to 5 (very happy)")
    comprehension = models.PositiveSmallIntegerField(
        help_text="1 (not at all) to 5 (completely): how well the partners understood each other"
    )
    comments = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["game", "worker"], name="exit_survey_once"),
            models.CheckConstraint(
                condition=Q(satisfaction__gte=1, satisfaction__lte=5)
                & Q(comprehension__gte=1, comprehension__lte=5),
                name="exit_survey_scale",
            ),
        ]

    def __str__(self) -> str:
        return f"survey {self.game} by {self.worker}"
